//! Video: I420 frames, their sources (camera, Y4M file, test pattern), scaling,
//! and H.264 encode/decode with openh264.

pub mod assemble;
pub mod camera;
pub mod decode;
pub mod encode;
pub mod frame;
pub mod freeze;
pub mod jitter;
pub mod ladder;
pub mod pattern;
pub mod quality;
pub mod scale;
pub mod source;
pub mod y4m;

pub use frame::{CapturedFrame, I420Frame};

/// A source of outgoing video. Implementations pace themselves: `next_frame` blocks
/// until the next frame is due (a file at its frame rate, the test pattern at the
/// requested fps, a camera until it delivers), so the caller runs it on its own thread.
pub trait VideoSource: Send {
    /// Blocks until the next frame and returns it.
    ///
    /// # Errors
    /// A device that went away or a file that can no longer be read; the caller stops
    /// sending video with a notice and the call goes on.
    fn next_frame(&mut self) -> anyhow::Result<CapturedFrame>;

    /// A short description for notices and logs, e.g. `test pattern 640x480@30`.
    fn describe(&self) -> String;

    /// The rate frames come at, rounded to whole frames per second, when the source
    /// sets it itself (a file's header); `None` when it follows the requested `--fps`.
    fn fps(&self) -> Option<u32> {
        None
    }
}

/// The receiving end of a latest-frame slot: the display reads the newest frame and
/// never queues (ARCHITECTURE: "video hands over the latest frame only").
pub type FrameReceiver = tokio::sync::watch::Receiver<Option<std::sync::Arc<I420Frame>>>;

/// The sending end of a latest-frame slot.
pub type FrameSender = tokio::sync::watch::Sender<Option<std::sync::Arc<I420Frame>>>;
