//! Per-call network and media figures, reported once a second while connected.
//!
//! webrtc 0.21 leaves remote-inbound RTT, fraction lost and PLI/NACK counts empty
//! (FIELD-NOTES): RTT comes from the selected candidate pair, and the rest is counted
//! by our own pipeline.

use serde::Serialize;

/// One second's snapshot of a call. Rates are over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CallStats {
    /// Round-trip time of the selected ICE candidate pair, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Video frames sent per second.
    pub video_fps_out: f64,
    /// Video frames decoded per second.
    pub video_fps_in: f64,
    /// Video bitrate sent, kbit/s (RTP payload).
    pub video_kbps_out: f64,
    /// Video bitrate received, kbit/s (RTP payload).
    pub video_kbps_in: f64,
    /// Audio bitrate sent, kbit/s.
    pub audio_kbps_out: f64,
    /// Audio bitrate received, kbit/s.
    pub audio_kbps_in: f64,
    /// Video frames decoded since the call connected.
    pub frames_decoded: u64,
    /// RTP packets lost (inbound, both tracks) since the call connected.
    pub packets_lost: i64,
    /// Inbound interarrival jitter (RFC 3550 §6.4.1) of the audio track, in milliseconds.
    pub jitter_ms: f64,
    /// Level of the audio we send, dBFS (RMS over the interval; -inf-like -127 for silence).
    pub audio_level_out_dbfs: f64,
    /// Level of the audio we receive, dBFS.
    pub audio_level_in_dbfs: f64,
    /// Size of the remote video as decoded, `[width, height]` in pixels.
    pub video_size_in: Option<[u32; 2]>,
    /// PLIs we sent since the call connected.
    pub pli_sent: u64,
    /// Keyframes we sent since the call connected (on start and on each PLI/FIR).
    pub keyframes_sent: u64,
}
