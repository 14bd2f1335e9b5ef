#![warn(missing_docs)]
//! rtc-cli: a video-call client for the terminal.
//!
//! # Layout
//! - [`cli`]: the command line (clap derive types); `main.rs` only parses and dispatches
//!   to [`commands`], which runs each subcommand.
//! - [`config`]: the profile and settings file (TOML in the XDG config dir) and the
//!   flag > env > file > default precedence.
//! - [`logging`]: tracing to a log file, never to the terminal that shows the call.
//! - [`signaling`]: the JSON-over-WebSocket protocol ([`signaling::protocol`]), the server
//!   behind `rtc-cli serve` and the reconnecting client.
//! - [`call`]: call state ([`call::CallState`], [`call::EndReason`]), the controller that
//!   owns one client's calls, and the WebRTC peer connection of one call.
//! - [`media`]: sources, sinks and codecs: I420 video with H.264, 48 kHz audio with Opus.
//! - [`ui`]: the half-block renderer, the ratatui call screen and the headless JSON-lines view.
//! - [`devices`]: camera, microphone and speaker enumeration and selection.
//! - [`stderr`]: keeps C libraries' stderr writes off the terminal during setup calls.

pub mod call;
pub mod cli;
pub mod commands;
pub mod config;
pub mod devices;
pub mod logging;
pub mod media;
pub mod signaling;
pub mod stderr;
pub mod ui;
