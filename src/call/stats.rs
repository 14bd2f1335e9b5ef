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
    /// Video frames (access units) sent since the call connected.
    pub frames_sent: u64,
    /// Video frames our encoder encoded since sending started. One encoder serves every
    /// peer of a room, so each peer's `frames_sent` is about this figure, not a third
    /// of it: one encode per frame.
    pub video_frames_encoded: u64,
    /// RTP packets lost (inbound, both tracks) since the call connected.
    pub packets_lost: i64,
    /// Inbound interarrival jitter (RFC 3550 §6.4.1) of the audio track, in milliseconds.
    pub jitter_ms: f64,
    /// Level of the audio we send, dBFS (RMS over the interval; -inf-like -127 for silence).
    pub audio_level_out_dbfs: f64,
    /// Level of the audio we receive, dBFS.
    pub audio_level_in_dbfs: f64,
    /// The echo canceller's echo return loss enhancement, dB (how much echo it takes
    /// off); none when it does not run or has no estimate yet.
    pub echo_erle_db: Option<f64>,
    /// The likelihood (0-1) that echo is left in what we send.
    pub residual_echo_likelihood: Option<f64>,
    /// The echo path delay the canceller estimates, ms.
    pub echo_delay_ms: Option<i32>,
    /// Size of the remote video as decoded, `[width, height]` in pixels.
    pub video_size_in: Option<[u32; 2]>,
    /// Keyframe requests (PLI or FIR) we sent since the call connected.
    pub pli_sent: u64,
    /// Keyframes we sent since the call connected (on start and on each PLI/FIR).
    pub keyframes_sent: u64,
    /// Audio frames the jitter buffer concealed since the call connected (packet loss,
    /// underrun, or a frame inserted to grow the playout delay).
    pub audio_concealed_frames: u64,
    /// Audio frames recovered from the next packet's in-band FEC (RFC 6716 §2.1.7).
    pub audio_fec_recovered_frames: u64,
    /// The packet loss our Opus encoder plans in-band FEC for now, percent (0-20): the
    /// loss the peers' TWCC feedback reports (the highest peer's in a room), averaged
    /// over 10 s as libwebrtc does. 0 on a clean link, where FEC would be wasted work.
    pub audio_fec_planned_percent: u8,
    /// Audio frames played from the copy a later packet carried (RED, RFC 2198) because
    /// their own packet was lost.
    pub audio_red_recovered_frames: u64,
    /// Audio packets the jitter buffer dropped: late, duplicate, over capacity, or cut to
    /// bring the delay down.
    pub audio_dropped_packets: u64,
    /// The jitter buffer's current target playout delay, in milliseconds (20-200).
    pub audio_playout_delay_ms: f64,
    /// The available send bandwidth the congestion controller estimates (GCC), kbit/s.
    pub available_bandwidth_kbps: Option<f64>,
    /// The bitrate the video encoder is asked for now, kbit/s.
    pub video_target_kbps: f64,
    /// The size we send video at now, `[width, height]`: smaller than `--video-size`
    /// when the bandwidth is too low for it.
    pub video_size_out: Option<[u32; 2]>,
    /// The frame rate we send video at now (the ladder's, frames per second).
    pub video_fps_target: u32,
    /// RTP packets we retransmitted on the peer's NACKs since the call connected.
    pub retransmissions_sent: u64,
    /// Remote video frames skipped since the call connected: packets lost for good, or
    /// frames undecodable until the next keyframe.
    pub video_frames_skipped: u64,
    /// Remote video packets that filled a gap (reordered, or retransmitted after a NACK).
    pub video_packets_recovered: u64,
    /// Mean time a remote video frame spent in the jitter buffer, from its first packet to
    /// its release for decoding, in milliseconds (W3C `jitterBufferDelay` / frames).
    pub video_jitter_buffer_delay_ms: f64,
    /// The video jitter buffer's playout delay in force, in milliseconds.
    pub video_playout_delay_ms: f64,
    /// Video freezes since the call connected (W3C `freezeCount`: a gap between displayed
    /// frames of at least max(3 × mean interval, mean + 150 ms)).
    pub freeze_count: u64,
    /// Their summed duration, in seconds (W3C `totalFreezesDuration`).
    pub total_freezes_duration_s: f64,
    /// Capture-to-display latency of the latest remote frame, in milliseconds, when the
    /// peer sends the test pattern (its counter strip carries the capture clock).
    pub glass_to_glass_ms: Option<f64>,
    /// The ICE candidate pair media flows over (the selected pair, RFC 8445 §8.1.1):
    /// its local and remote candidate types and addresses, e.g. `relay` when the call
    /// goes through TURN; `None` before ICE has selected one.
    pub path: Option<CandidatePath>,
}

/// The selected ICE candidate pair, as JSON
/// `{"local":{"type":"relay","address":"203.0.113.7:49160"},"remote":{...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CandidatePath {
    /// Our end.
    pub local: PathEnd,
    /// The peer's end.
    pub remote: PathEnd,
}

/// One end of the selected candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathEnd {
    /// How the candidate was found.
    #[serde(rename = "type")]
    pub kind: CandidateKind,
    /// Its transport address; `None` when the peer hid it behind an mDNS name.
    pub address: Option<std::net::SocketAddr>,
}

/// ICE candidate types (RFC 8445 §5.1.1, W3C `RTCIceCandidateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateKind {
    /// An address of a local interface.
    Host,
    /// Server-reflexive: our address as a STUN server saw it (the NAT's outside).
    Srflx,
    /// Peer-reflexive: an address learnt from a connectivity check.
    Prflx,
    /// An address allocated on a TURN server: media goes through the relay.
    Relay,
}

impl CandidateKind {
    /// The W3C name: `host`, `srflx`, `prflx` or `relay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }
}

impl std::fmt::Display for PathEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.address {
            Some(addr) => write!(f, "{} {addr}", self.kind.as_str()),
            None => write!(f, "{} (hidden)", self.kind.as_str()),
        }
    }
}

/// Cumulative figures of one outgoing track.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SentStats {
    /// RTP packets sent (webrtc's outbound-rtp `packetsSent`).
    pub packets: u64,
    /// Samples written: video access units, or Opus packets.
    pub frames: u64,
    /// Media bytes written (Annex-B access units or Opus packets), before RTP framing.
    pub payload_bytes: u64,
}

/// Cumulative figures of one incoming track, counted by our own receive loop because
/// webrtc 0.21 leaves several of them empty (FIELD-NOTES).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceivedStats {
    /// RTP packets received.
    pub packets: u64,
    /// RTP payload bytes received.
    pub payload_bytes: u64,
    /// Complete frames received: packets with the marker bit for video (RFC 6184 §5.1),
    /// packets for audio.
    pub frames: u64,
    /// Cumulative packets lost (RFC 3550 §6.4.1, A.3); negative with duplicates.
    pub packets_lost: i64,
    /// Interarrival jitter (RFC 3550 §6.4.1), in milliseconds.
    pub jitter_ms: f64,
    /// Packets dropped because the media pipeline did not keep up.
    pub dropped: u64,
}

/// Both directions of one media kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrackStats {
    /// Our outgoing track.
    pub sent: SentStats,
    /// The peer's incoming track.
    pub received: ReceivedStats,
}

/// A snapshot of the PeerConnection's counters (cumulative since it was built), taken by
/// `PeerSession::stats`. Two snapshots give per-second rates with [`CallStats::from_peer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerStats {
    /// When the snapshot was taken.
    pub at: std::time::Instant,
    /// Round-trip time of the selected ICE candidate pair (STUN consent checks,
    /// RFC 7675), `None` before the first response.
    pub rtt: Option<std::time::Duration>,
    /// H.264 video.
    pub video: TrackStats,
    /// Opus audio.
    pub audio: TrackStats,
    /// PLIs we sent for the remote video.
    pub pli_sent: u64,
    /// Keyframe requests (PLI or FIR) the peer sent for our video.
    pub keyframe_requests_received: u64,
    /// The congestion controller's estimate of the available send bandwidth (GCC over
    /// TWCC feedback), bit/s; `None` before its first figure.
    pub estimate_bps: Option<f64>,
    /// The share (0-1) of our RTP packets, both tracks, that the peer's TWCC feedback
    /// reported lost over the last second; `None` before 50 were reported.
    pub uplink_loss: Option<f64>,
    /// RTP packets we sent again on a NACK (RFC 4585 §6.2.1), both tracks.
    pub retransmitted_packets_sent: u64,
    /// The selected candidate pair, once ICE has one.
    pub path: Option<CandidatePath>,
}

impl CallStats {
    /// The network part of a call's stats: RTT, video fps and kbit/s both ways (frames
    /// received stand in for frames decoded), audio kbit/s, loss and audio jitter. Rates
    /// are over `now.at - prev.at`; with no previous snapshot they are zero. Fields only
    /// the media pipeline knows (frames decoded, audio levels, video size, keyframes sent)
    /// are left at their defaults for the caller to fill.
    pub fn from_peer(now: &PeerStats, prev: Option<&PeerStats>) -> Self {
        let secs = prev
            .map(|p| now.at.saturating_duration_since(p.at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let rate = |cur: u64, old: fn(&PeerStats) -> u64| match (secs, prev) {
            (Some(s), Some(p)) => cur.saturating_sub(old(p)) as f64 / s,
            _ => 0.0,
        };
        let kbps = |bytes_per_s: f64| bytes_per_s * 8.0 / 1000.0;
        Self {
            rtt_ms: now.rtt.map(|d| d.as_secs_f64() * 1000.0),
            video_fps_out: rate(now.video.sent.frames, |p| p.video.sent.frames),
            video_fps_in: rate(now.video.received.frames, |p| p.video.received.frames),
            video_kbps_out: kbps(rate(now.video.sent.payload_bytes, |p| {
                p.video.sent.payload_bytes
            })),
            video_kbps_in: kbps(rate(now.video.received.payload_bytes, |p| {
                p.video.received.payload_bytes
            })),
            audio_kbps_out: kbps(rate(now.audio.sent.payload_bytes, |p| {
                p.audio.sent.payload_bytes
            })),
            audio_kbps_in: kbps(rate(now.audio.received.payload_bytes, |p| {
                p.audio.received.payload_bytes
            })),
            packets_lost: now.video.received.packets_lost.max(0)
                + now.audio.received.packets_lost.max(0),
            jitter_ms: now.audio.received.jitter_ms,
            pli_sent: now.pli_sent,
            available_bandwidth_kbps: now.estimate_bps.map(|b| b / 1000.0),
            retransmissions_sent: now.retransmitted_packets_sent,
            frames_sent: now.video.sent.frames,
            path: now.path,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn snapshot(at: Instant, video_frames: u64, video_bytes: u64) -> PeerStats {
        PeerStats {
            at,
            rtt: Some(Duration::from_micros(1500)),
            video: TrackStats {
                sent: SentStats {
                    packets: video_frames * 3,
                    frames: video_frames,
                    payload_bytes: video_bytes,
                },
                received: ReceivedStats {
                    frames: video_frames,
                    payload_bytes: video_bytes,
                    packets_lost: 2,
                    ..Default::default()
                },
            },
            audio: TrackStats {
                received: ReceivedStats {
                    packets_lost: -1,
                    jitter_ms: 4.5,
                    ..Default::default()
                },
                ..Default::default()
            },
            pli_sent: 1,
            keyframe_requests_received: 0,
            estimate_bps: Some(450_000.0),
            uplink_loss: Some(0.02),
            retransmitted_packets_sent: 4,
            path: None,
        }
    }

    #[test]
    fn rates_come_from_the_difference_of_two_snapshots() {
        let t0 = Instant::now();
        let prev = snapshot(t0, 10, 10_000);
        let now = snapshot(t0 + Duration::from_secs(2), 40, 60_000);
        let s = CallStats::from_peer(&now, Some(&prev));
        assert_eq!(s.video_fps_out, 15.0);
        assert_eq!(s.video_fps_in, 15.0);
        assert_eq!(s.video_kbps_out, 200.0); // 25_000 B/s
        assert_eq!(s.rtt_ms, Some(1.5));
        // Duplicates (negative loss) do not cancel real loss on the other track.
        assert_eq!(s.packets_lost, 2);
        assert_eq!(s.jitter_ms, 4.5);
        assert_eq!(s.pli_sent, 1);
        assert_eq!(s.available_bandwidth_kbps, Some(450.0));
        assert_eq!(s.retransmissions_sent, 4);
    }

    #[test]
    fn first_snapshot_has_no_rates() {
        let now = snapshot(Instant::now(), 40, 60_000);
        let s = CallStats::from_peer(&now, None);
        assert_eq!(s.video_fps_out, 0.0);
        assert_eq!(s.video_kbps_in, 0.0);
        assert_eq!(s.rtt_ms, Some(1.5));
    }
}
