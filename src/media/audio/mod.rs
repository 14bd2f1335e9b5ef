//! Audio: 48 kHz mono in 20 ms frames, Opus, jitter buffer, resampling, WAV files
//! and cpal devices.

/// The pipeline's sample rate, in Hz (Opus' native rate; RFC 7587 §4.1).
pub const SAMPLE_RATE_HZ: u32 = 48_000;

/// Samples in one 20 ms frame at [`SAMPLE_RATE_HZ`] (one Opus packet, one RTP packet).
pub const FRAME_SAMPLES: usize = 960;

/// One 20 ms mono frame, samples in [-1.0, 1.0].
pub type AudioFrame = [f32; FRAME_SAMPLES];

/// A source of outgoing audio, paced in real time: `read_frame` blocks until the
/// next 20 ms are available (a microphone as it captures, a file or tone on a clock).
pub trait AudioSource: Send {
    /// Fills `out` with the next 20 ms.
    ///
    /// # Errors
    /// A device that went away or a file that can no longer be read.
    fn read_frame(&mut self, out: &mut AudioFrame) -> anyhow::Result<()>;

    /// A short description for notices and logs, e.g. `tone 440 Hz`.
    fn describe(&self) -> String;
}

/// A sink for received audio. `write_frame` never blocks for long: a device sink
/// drops what does not fit in its ring buffer, a file sink appends.
pub trait AudioSink: Send {
    /// Takes the next 20 ms to play.
    ///
    /// # Errors
    /// The device failed or the file could not be written; the caller falls back to no
    /// output with a notice.
    fn write_frame(&mut self, frame: &AudioFrame) -> anyhow::Result<()>;

    /// A short description for notices and logs.
    fn describe(&self) -> String;

    /// How long from `write_frame` until the frame is heard: the audio queued ahead of
    /// it plus the device's reported output latency; `None` for sinks that play nothing
    /// aloud (files, none). The echo canceller's delay hint.
    fn output_latency(&self) -> Option<std::time::Duration> {
        None
    }
}

pub mod device;
pub mod jitter;
pub mod level;
pub mod mix;
pub mod opus;
pub mod processing;
pub mod quality;
pub mod red;
pub mod resample;
pub mod ring;
pub mod sink;
pub mod source;
mod stream;
pub mod stretch;
pub mod wav;

pub use level::level_dbfs;
pub use sink::open_audio_sink;
pub use source::open_audio_source;

/// What opening a source or sink from a spec gave: the media (`None` when the spec was
/// `none`) and, when `auto` fell back to something else, the notice to show the user.
#[derive(Debug)]
pub struct Opened<T> {
    /// The opened source or sink; `None` for `none`.
    pub media: Option<T>,
    /// Why the result differs from what `auto` would ideally give, e.g.
    /// `no microphone (…); sending a 440 Hz tone`.
    pub notice: Option<String>,
}

impl<T> Opened<T> {
    /// Opened as asked, with nothing to tell the user.
    pub fn plain(media: Option<T>) -> Self {
        Self {
            media,
            notice: None,
        }
    }
}
