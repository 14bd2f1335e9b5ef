//! Media: I420 video with H.264 ([`video`]), 48 kHz mono audio with Opus ([`audio`]),
//! the one parser of source and sink specs ([`spec`]), and the schedule that paces file
//! and synthetic sources ([`pacer`]).

pub mod audio;
pub mod pacer;
pub mod spec;
pub mod video;
