//! Views of a call: the half-block renderer, the ratatui call screen, and the
//! headless JSON-lines view.
//!
//! The call screen follows The Elm Architecture: [`app`] holds the model, messages
//! and `update`; [`view`] draws; [`tui`] runs the loop; [`halfblock`] and [`video`]
//! turn I420 frames into colored `▀` cells; [`terminal`] owns raw mode and restores it.

pub mod app;
pub mod halfblock;
pub mod headless;
pub mod terminal;
pub mod tui;
pub mod video;
pub mod view;

pub use app::Role;
pub use tui::run;

/// What connects a view to the call controller and the media pipeline.
#[derive(Debug)]
pub struct ViewLink {
    /// Events from the controller; the view ends when this closes.
    pub events: tokio::sync::mpsc::Receiver<crate::call::TimedEvent>,
    /// Commands from keys (accept, hang up, mute, quit, …).
    pub commands: tokio::sync::mpsc::Sender<crate::call::UserCommand>,
    /// The peer's decoded video, latest frame only.
    pub remote_video: crate::media::video::FrameReceiver,
    /// Our own camera, latest frame only (for the self-view).
    pub local_video: crate::media::video::FrameReceiver,
}

/// Settings of the call screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    /// Most frames drawn per second (`--max-draw-fps`); frames beyond it are dropped.
    pub max_fps: u32,
    /// The terminal window title while the screen is up.
    pub title: String,
    /// `listen` or `call`: what the idle screen says and whether an ended call
    /// returns to listening.
    pub role: Role,
}

impl Default for TuiOptions {
    fn default() -> Self {
        Self {
            max_fps: 30,
            title: "rtc-cli".into(),
            role: Role::Listen,
        }
    }
}
