//! Media: I420 video with H.264 ([`video`]), 48 kHz mono audio with Opus ([`audio`]),
//! and the one parser of source and sink specs ([`spec`]).

pub mod audio;
pub mod spec;
pub mod video;
