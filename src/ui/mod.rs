//! Views of a call: the half-block renderer, the ratatui call screen, and the
//! headless JSON-lines view.
//!
//! The call screen follows The Elm Architecture: [`app`] holds the model, messages
//! and `update`; [`view`] draws; [`tui`] runs the loop; [`halfblock`] and [`video`]
//! turn I420 frames into colored `▀` cells; [`terminal`] owns raw mode and restores it.

pub mod alert;
pub mod app;
pub mod chat;
mod grid;
pub mod halfblock;
pub mod headless;
pub mod kitty;
pub mod passthrough;
pub mod phone;
pub mod probe;
pub mod shm;
pub mod sixel;
pub mod symbols;
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
    /// The decoded video to show.
    pub video: VideoFeeds,
}

/// Where a view's video comes from (latest frames only).
#[derive(Debug)]
pub enum VideoFeeds {
    /// A 1:1 call: the peer's decoded video and our own camera (the self-view).
    Call {
        /// The peer's decoded video.
        remote: crate::media::video::FrameReceiver,
        /// Our own camera.
        local: crate::media::video::FrameReceiver,
    },
    /// A room: each connected member's decoded video, and our own camera.
    Room(crate::call::room::RoomVideo),
}

/// Settings of the call screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    /// Most frames drawn per second (`--max-draw-fps`); frames beyond it are dropped.
    pub max_fps: u32,
    /// How video is drawn (`--render`).
    pub render: video::RenderMode,
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
            render: video::RenderMode::Auto,
            title: "rtc-cli".into(),
            role: Role::Listen,
        }
    }
}
