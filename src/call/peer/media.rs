//! RTP in and out of the PeerConnection: sample writers for our tracks, and the light loops
//! that move remote RTP into bounded channels while counting reception statistics.

use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

use super::codecs::{AUDIO_CLOCK_RATE_HZ, MIME_TYPE_OPUS, MIME_TYPE_RED};
use crate::media::audio::red::{self, RedEncoder, RedundantBlock};

/// One RTP packet of a remote track, as the media pipeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// RTP sequence number (RFC 3550 §5.1); wraps at 65536.
    pub sequence_number: u16,
    /// RTP timestamp in the codec's clock (90 kHz video, 48 kHz Opus).
    pub timestamp: u32,
    /// Marker bit: for H.264 the last packet of an access unit (RFC 6184 §5.1).
    pub marker: bool,
    /// The RTP payload (an H.264 NAL unit, FU-A or STAP-A; or one Opus packet, the
    /// primary block of a RED packet).
    pub payload: Bytes,
    /// The earlier Opus packets a RED packet carried again (RFC 2198), oldest first;
    /// empty for any other packet.
    pub redundant: Vec<RedundantBlock>,
    /// When the packet left webrtc's queue (local monotonic clock).
    pub arrival: Instant,
}

/// The payload type the peer's RED audio packets (RFC 2198) carry, once the SDP has
/// negotiated RED; none until then. Shared by the session and its audio forwarder.
#[derive(Debug)]
pub(crate) struct RedPayloadType(AtomicU16);

impl Default for RedPayloadType {
    fn default() -> Self {
        Self(AtomicU16::new(PAYLOAD_TYPE_UNKNOWN))
    }
}

impl RedPayloadType {
    /// Records the negotiated payload type, or that RED is not negotiated.
    pub(crate) fn set(&self, payload_type: Option<u8>) {
        let value = payload_type.map_or(PAYLOAD_TYPE_UNKNOWN, u16::from);
        self.0.store(value, Ordering::Relaxed);
    }

    /// True when `payload_type` is the negotiated RED payload type.
    fn is_red(&self, payload_type: u8) -> bool {
        self.0.load(Ordering::Relaxed) == u16::from(payload_type)
    }
}

/// Remote RTP, handed to the media pipeline through bounded channels. They are filled by
/// a light loop per remote track that never waits: webrtc's own per-track queue holds 256
/// events and drops when its reader is slow (FIELD-NOTES), so a full channel here drops
/// the packet instead (counted in [`crate::call::stats::ReceivedStats::dropped`]).
#[derive(Debug)]
pub struct RemoteMedia {
    /// H.264 RTP packets of the remote video track.
    pub video: mpsc::Receiver<RtpPacket>,
    /// Opus RTP packets of the remote audio track.
    pub audio: mpsc::Receiver<RtpPacket>,
}

/// Why a sample could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TrackWriteError {
    /// SDP negotiation has not finished, or removed the codec.
    #[error("the {0} track has no negotiated codec yet")]
    NotNegotiated(&'static str),
    /// An empty sample (nothing to packetize).
    #[error("refusing to send an empty {0} sample")]
    Empty(&'static str),
    /// webrtc refused the packets (connection closed, sender unbound).
    #[error("sending {kind} RTP: {source}")]
    Webrtc {
        /// `video` or `audio`.
        kind: &'static str,
        /// The webrtc error.
        #[source]
        source: webrtc::error::Error,
    },
}

/// Lock-free counters of one outgoing track, read by `PeerSession::stats`.
#[derive(Debug, Default)]
pub(crate) struct SentCounters {
    pub(crate) frames: AtomicU64,
    pub(crate) payload_bytes: AtomicU64,
}

/// Lock-free counters of one incoming track, written by its forwarding loop.
#[derive(Debug, Default)]
pub(crate) struct ReceivedCounters {
    pub(crate) packets: AtomicU64,
    pub(crate) payload_bytes: AtomicU64,
    pub(crate) frames: AtomicU64,
    pub(crate) lost: AtomicI64,
    /// `f64::to_bits` of the jitter in milliseconds.
    pub(crate) jitter_ms_bits: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

const PAYLOAD_TYPE_UNKNOWN: u16 = u16::MAX;

/// Locks `mutex`, also after a panic elsewhere poisoned it: the values kept behind these
/// locks (a cached codec, RED's last packets) are whole after any panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a track sends, as negotiated: the first codec of its sender's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SendCodec {
    /// The RTP payload type to stamp.
    payload_type: u8,
    /// When that codec is RED (RFC 2198): the Opus payload type its blocks carry.
    red_blocks: Option<u8>,
}

/// One of our outgoing tracks, with its SSRC and, once negotiated, its sender.
pub(crate) struct LocalTrack {
    pub(crate) kind: RtpCodecKind,
    pub(crate) track: Arc<TrackLocalStaticSample>,
    pub(crate) ssrc: u32,
    pub(crate) sender: OnceLock<Arc<dyn RtpSender>>,
    /// Cached after the first lookup; cleared by a renegotiation.
    send_codec: Mutex<Option<SendCodec>>,
    /// The packets RED repeats, while RED is what the track sends.
    red: Mutex<Option<RedEncoder>>,
    pub(crate) counters: SentCounters,
}

impl LocalTrack {
    /// A sample track with a fresh UUID track id (RTCP is routed by track id, so ids must
    /// be unique across both peers: FIELD-NOTES) and a random SSRC (RFC 3550 §8.1).
    pub(crate) fn new(
        stream_id: &str,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
    ) -> anyhow::Result<Self> {
        let ssrc = rand::random::<u32>();
        let track = MediaStreamTrack::new(
            stream_id.to_owned(),
            uuid::Uuid::new_v4().to_string(),
            kind.to_string(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        Ok(Self {
            kind,
            track: Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?),
            ssrc,
            sender: OnceLock::new(),
            send_codec: Mutex::default(),
            red: Mutex::default(),
            counters: SentCounters::default(),
        })
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            RtpCodecKind::Video => "video",
            _ => "audio",
        }
    }

    /// The codec negotiated first for this track, cached after the first lookup.
    async fn send_codec(&self) -> Result<SendCodec, TrackWriteError> {
        if let Some(cached) = *lock(&self.send_codec) {
            return Ok(cached);
        }
        let not_negotiated = || TrackWriteError::NotNegotiated(self.kind_name());
        let sender = self.sender.get().ok_or_else(not_negotiated)?;
        let params = sender
            .get_parameters()
            .await
            .map_err(|_| not_negotiated())?;
        let codecs = &params.rtp_parameters.codecs;
        let first = codecs.first().ok_or_else(not_negotiated)?;
        let is = |c: &RTCRtpCodecParameters, mime: &str| {
            c.rtp_codec.mime_type.eq_ignore_ascii_case(mime)
        };
        let red_blocks = if is(first, MIME_TYPE_RED) {
            let opus = codecs.iter().find(|c| is(c, MIME_TYPE_OPUS));
            Some(opus.ok_or_else(not_negotiated)?.payload_type)
        } else {
            None
        };
        let codec = SendCodec {
            payload_type: first.payload_type,
            red_blocks,
        };
        *lock(&self.send_codec) = Some(codec);
        Ok(codec)
    }

    /// True when the track sends RED (RFC 2198) as negotiated so far.
    pub(crate) fn sends_red(&self) -> bool {
        lock(&self.send_codec).is_some_and(|c| c.red_blocks.is_some())
    }

    /// After a renegotiation: forgets RED's history and the cached codec, and looks the
    /// codec up again (left for the first write if the track is not negotiated yet).
    pub(crate) async fn renegotiated(&self) {
        *lock(&self.send_codec) = None;
        *lock(&self.red) = None;
        let _ = self.send_codec().await;
    }

    /// `data` as one RTP payload of `codec`: as it is, or wrapped in RED with the packets
    /// written before it.
    fn payload(&self, codec: SendCodec, data: &[u8], duration: Duration) -> Bytes {
        let Some(opus_payload_type) = codec.red_blocks else {
            return Bytes::copy_from_slice(data);
        };
        let step = (duration.as_secs_f64() * f64::from(AUDIO_CLOCK_RATE_HZ)).round() as u32;
        let mut red = lock(&self.red);
        let encoder =
            red.get_or_insert_with(|| RedEncoder::new(opus_payload_type, step, red::DISTANCE));
        Bytes::from(encoder.encode(data))
    }

    async fn write(
        &self,
        data: &[u8],
        duration: Duration,
        capture: Instant,
    ) -> Result<(), TrackWriteError> {
        if data.is_empty() {
            return Err(TrackWriteError::Empty(self.kind_name()));
        }
        let codec = self.send_codec().await?;
        let payload = self.payload(codec, data, duration);
        let payload_len = payload.len();
        let sample = Sample {
            data: payload,
            duration,
            ..Sample::new(capture)
        };
        self.track
            .sample_writer(self.ssrc, codec.payload_type)
            .write_sample(&sample)
            .await
            .map_err(|source| TrackWriteError::Webrtc {
                kind: self.kind_name(),
                source,
            })?;
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        self.counters
            .payload_bytes
            .fetch_add(payload_len as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Sends H.264 access units on our video track. Cheap to clone; use from the encoder task.
#[derive(Clone)]
pub struct VideoTrackWriter(pub(crate) Arc<LocalTrack>);

impl VideoTrackWriter {
    /// Packetizes one access unit (Annex-B byte stream as openh264 writes it: start codes
    /// and NAL units, RFC 6184 §5.6/§5.8 FU-A when larger than the MTU) and sends it.
    /// `duration` is the frame interval (advances the 90 kHz RTP timestamp); `capture` is
    /// when the frame was captured.
    ///
    /// Waits only for room in webrtc's outbound queue (its back-pressure).
    ///
    /// # Errors
    /// [`TrackWriteError::NotNegotiated`] before the SDP exchange completes,
    /// [`TrackWriteError::Empty`] for an empty frame, [`TrackWriteError::Webrtc`] after close.
    pub async fn write_h264(
        &self,
        annexb: &[u8],
        duration: Duration,
        capture: Instant,
    ) -> Result<(), TrackWriteError> {
        self.0.write(annexb, duration, capture).await
    }

    /// Our video SSRC (RFC 3550 §3).
    pub fn ssrc(&self) -> u32 {
        self.0.ssrc
    }
}

/// Sends Opus packets on our audio track. Cheap to clone; use from the encoder task.
#[derive(Clone)]
pub struct AudioTrackWriter(pub(crate) Arc<LocalTrack>);

impl AudioTrackWriter {
    /// Sends one Opus packet (one RTP payload, RFC 7587 §4.2) covering `duration` of audio
    /// (20 ms frames advance the 48 kHz RTP timestamp by 960). Where the SDP negotiated
    /// RED first, the payload also repeats the packets sent before it (RFC 2198,
    /// [`crate::media::audio::red`]).
    ///
    /// # Errors
    /// As [`VideoTrackWriter::write_h264`].
    pub async fn write_opus(
        &self,
        packet: &[u8],
        duration: Duration,
    ) -> Result<(), TrackWriteError> {
        self.0.write(packet, duration, Instant::now()).await
    }

    /// Our audio SSRC (RFC 3550 §3).
    pub fn ssrc(&self) -> u32 {
        self.0.ssrc
    }
}

/// Reception statistics of one RTP source (RFC 3550 Appendix A.1, A.3 and A.8): extended
/// highest sequence number, cumulative packets lost and interarrival jitter.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    clock_rate_hz: f64,
    epoch: Instant,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    last_transit: Option<f64>,
    /// Interarrival jitter in RTP timestamp units.
    jitter: f64,
}

impl ReceptionStats {
    /// Starts with the first packet of a source.
    pub fn new(
        clock_rate_hz: u32,
        first_sequence: u16,
        first_timestamp: u32,
        arrival: Instant,
    ) -> Self {
        let mut stats = Self {
            clock_rate_hz: f64::from(clock_rate_hz.max(1)),
            epoch: arrival,
            base_seq: u32::from(first_sequence),
            max_seq: first_sequence,
            cycles: 0,
            received: 0,
            last_transit: None,
            jitter: 0.0,
        };
        stats.record(first_sequence, first_timestamp, arrival);
        stats
    }

    /// Records one received packet.
    pub fn record(&mut self, sequence: u16, timestamp: u32, arrival: Instant) {
        self.received += 1;
        // A forward step (mod 2^16) moves the maximum; a wrap adds a cycle (RFC 3550 A.1).
        let step = sequence.wrapping_sub(self.max_seq);
        if step != 0 && step < 0x8000 {
            if sequence < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = sequence;
        }
        // Jitter (RFC 3550 A.8): J += (|D(i-1,i)| - J) / 16, all in RTP units. The
        // timestamp is taken mod 2^32 against a local clock in the same units.
        let arrival_units =
            arrival.saturating_duration_since(self.epoch).as_secs_f64() * self.clock_rate_hz;
        let transit = arrival_units - f64::from(timestamp);
        if let Some(last) = self.last_transit {
            let mut d = (transit - last).abs();
            // Ignore a timestamp wrap between the two packets.
            if d > f64::from(u32::MAX / 2) {
                d = 0.0;
            }
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from the sequence numbers seen (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        u64::from(self.cycles + u32::from(self.max_seq)) + 1 - u64::from(self.base_seq)
    }

    /// Cumulative packets lost: expected minus received; negative with duplicates (A.3).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter / self.clock_rate_hz * 1000.0
    }
}

/// How to read one kind of remote track.
pub(crate) struct RemoteTrackFormat {
    /// RTP clock rate, Hz.
    pub(crate) clock_rate_hz: u32,
    /// A frame per marker bit (video) instead of per packet (audio).
    pub(crate) frames_by_marker: bool,
    /// Audio: the payload type of RED packets, whose blocks are taken apart here.
    pub(crate) red: Option<Arc<RedPayloadType>>,
}

/// Moves one remote track's RTP into `tx` until the track ends, and calls `on_goodbye`
/// when the peer's RTCP BYE arrives on it. RED packets (RFC 2198) go on as their
/// primary block with the redundant blocks beside it; one that cannot be read is
/// dropped. Never waits on `tx`: a full channel drops the packet and counts it.
pub(crate) async fn forward_remote_track(
    track: Arc<dyn TrackRemote>,
    format: RemoteTrackFormat,
    tx: mpsc::Sender<RtpPacket>,
    counters: Arc<ReceivedCounters>,
    on_goodbye: impl Fn() + Send,
) {
    let mut reception: Option<ReceptionStats> = None;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnRtcpPacket(packets) => {
                if packets.iter().any(|p| super::rtcp::is_goodbye(p.as_ref())) {
                    on_goodbye();
                }
                continue;
            }
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => continue,
        };
        let arrival = Instant::now();
        let header = &packet.header;
        match reception.as_mut() {
            Some(r) => r.record(header.sequence_number, header.timestamp, arrival),
            None => {
                reception = Some(ReceptionStats::new(
                    format.clock_rate_hz,
                    header.sequence_number,
                    header.timestamp,
                    arrival,
                ));
            }
        }
        if let Some(r) = &reception {
            counters.lost.store(r.lost(), Ordering::Relaxed);
            counters
                .jitter_ms_bits
                .store(r.jitter_ms().to_bits(), Ordering::Relaxed);
        }
        counters.packets.fetch_add(1, Ordering::Relaxed);
        counters
            .payload_bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        if !format.frames_by_marker || header.marker {
            counters.frames.fetch_add(1, Ordering::Relaxed);
        }
        let is_red = format
            .red
            .as_ref()
            .is_some_and(|red| red.is_red(header.payload_type));
        let (payload, redundant) = if is_red {
            match red::parse(&packet.payload) {
                Ok(parsed) => (parsed.primary, parsed.redundant),
                Err(e) => {
                    tracing::debug!(
                        sequence_number = header.sequence_number,
                        "dropping a RED packet: {e}"
                    );
                    continue;
                }
            }
        } else {
            (packet.payload, Vec::new())
        };
        let rtp = RtpPacket {
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            marker: header.marker,
            payload,
            redundant,
            arrival,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(rtp) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    tracing::debug!("remote track ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_gap_in_sequence_numbers_counts_as_loss() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(48_000, 10, 0, t0);
        for seq in [11u16, 13, 14] {
            r.record(
                seq,
                u32::from(seq - 10) * 960,
                at(t0, u64::from(seq - 10) * 20),
            );
        }
        assert_eq!(r.expected(), 5);
        assert_eq!(r.lost(), 1);
    }

    #[test]
    fn sequence_wrap_is_not_loss() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(90_000, 65_534, 0, t0);
        r.record(65_535, 3000, t0);
        r.record(0, 6000, t0);
        r.record(1, 9000, t0);
        assert_eq!(r.expected(), 4);
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn late_reordered_packet_does_not_move_the_maximum() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(48_000, 100, 0, t0);
        r.record(102, 1920, t0);
        r.record(101, 960, t0);
        assert_eq!(r.expected(), 3);
        assert_eq!(r.lost(), 0);
    }

    #[test]
    fn evenly_paced_packets_have_no_jitter_and_uneven_ones_do() {
        let t0 = Instant::now();
        let mut steady = ReceptionStats::new(48_000, 0, 0, t0);
        for i in 1..50u16 {
            steady.record(i, u32::from(i) * 960, at(t0, u64::from(i) * 20));
        }
        assert!(steady.jitter_ms() < 0.01, "{}", steady.jitter_ms());

        let mut uneven = ReceptionStats::new(48_000, 0, 0, t0);
        for i in 1..50u16 {
            // Every other packet arrives 10 ms late.
            let late = if i % 2 == 0 { 10 } else { 0 };
            uneven.record(i, u32::from(i) * 960, at(t0, u64::from(i) * 20 + late));
        }
        // |D| alternates around 10 ms, so J converges towards 10 ms.
        assert!(uneven.jitter_ms() > 5.0, "{}", uneven.jitter_ms());
        assert!(uneven.jitter_ms() < 11.0, "{}", uneven.jitter_ms());
    }
}
