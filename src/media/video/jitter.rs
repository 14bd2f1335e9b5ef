//! Video jitter buffer: RTP packets of one H.264 stream, in arrival order, in; whole
//! access units, in decode order and on time, out.
//!
//! What a real network does to the packets and how this buffer answers it:
//! - **Reordering** (independent per-packet delays): packets are kept by extended
//!   sequence number (RFC 3550 §A.1) and a frame is released only once every packet from
//!   its first to its marker-bit packet is present. A frame's first packet is known by
//!   the packet before it (a marker bit, another timestamp), or, when that one is still
//!   missing, by opening an access unit (an SPS): a keyframe whose parameter sets come
//!   last is waited for, not decoded without them.
//! - **Loss**: the NACK generator (webrtc's interceptor) asks for the missing packets
//!   (RFC 4585 §6.2.1) and the sender retransmits them; the buffer holds the frames after
//!   a gap for up to [`VideoJitterBuffer::gap_wait`] (a few RTTs). When a packet is lost
//!   for good, or a later keyframe is complete first, the frames in between are skipped
//!   and, if no keyframe follows, a keyframe is requested (PLI, RFC 4585 §6.3.1).
//! - **Jitter**: each frame's transit time is measured against its RTP timestamp (90 kHz,
//!   RFC 6184 §5.1); the playout delay is the 95th percentile of the recent transit
//!   variation less a few milliseconds left unsmoothed, so it is zero on a clean link
//!   and a few times the jitter on a jittery one. A frame is released at
//!   `base + timestamp + delay`, or when it completes if that is later; never before
//!   the frame ahead of it.
//!
//! H.264 constrained baseline (what openh264 and browsers send here) predicts each
//! P-frame from the previous picture, so a frame is decodable when every frame before
//! it since the last keyframe was released. Late packets of frames already released or
//! skipped are dropped: frames never go out of order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::assemble::{
    AccessUnit, H264FrameAssembler, begins_keyframe, carries_idr, opens_access_unit,
};

/// RTP clock rate of video (RFC 6184 §8.2.1): timestamps count 1/90 000 s.
const VIDEO_CLOCK_HZ: f64 = 90_000.0;

/// Packets held at most; older ones are evicted (skipping what they belonged to). About
/// 3 s of 720p at 2.5 Mbit/s, and bounds what a hostile peer can make us hold.
pub const MAX_PACKETS: usize = 2048;

/// Longest playout delay the buffer adds for jitter (the glass-to-glass budget
/// on a 100 ms ± 30 ms path leaves about this much).
pub const MAX_PLAYOUT_DELAY: Duration = Duration::from_millis(400);

/// A frame due within this much is released now rather than after another wakeup.
const RELEASE_TOLERANCE: Duration = Duration::from_millis(1);

/// Frames whose transit times set the playout delay: about 10 s at 30 fps.
const DELAY_WINDOW_FRAMES: usize = 300;

/// Percentile of the transit variation the playout delay covers.
const DELAY_PERCENTILE: f64 = 0.95;
/// Transit variation the playout delay leaves unsmoothed: the percentile minus this.
/// A sender's encode time varies by a few milliseconds from frame to frame (a keyframe
/// takes longer), which on a clean loopback read as a 4-6 ms playout delay added to
/// every frame (glass-to-glass p50 7-8 ms where issue 9 asks for 5). Frames 33 ms apart
/// released a few milliseconds unevenly are not seen: the call screen draws on arrival
/// under a token-bucket cap.
const UNSMOOTHED_VARIATION: Duration = Duration::from_millis(4);

/// Shortest and longest time a gap is waited for before the frames behind it are
/// skipped. The wait is three RTTs plus this floor: room for the NACK interval and a
/// retransmission that is itself lost once.
const GAP_WAIT_FLOOR: Duration = Duration::from_millis(120);

/// The RTT assumed until the first measurement (libwebrtc's `kDefaultRtt`, 100 ms).
/// Assuming none made the first gaps wait only the 120 ms floor: on a 300 kbit/s link
/// the first keyframe's retransmissions could not arrive in time, and the PLIs that
/// followed drew more keyframes into the full queue.
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
const GAP_WAIT_MAX: Duration = Duration::from_millis(1500);

/// How long the frames behind a missing packet wait for its retransmission at `rtt`:
/// three RTTs plus [`GAP_WAIT_FLOOR`], at most [`GAP_WAIT_MAX`].
fn gap_wait_for(rtt: Duration) -> Duration {
    (rtt * 3 + GAP_WAIT_FLOOR).min(GAP_WAIT_MAX)
}

/// How long after the stream's first packet a missing start is asked for (a FIR) when
/// the lowest packet seen does not begin a keyframe: under ±30 ms of jitter (the issue's
/// profile) a frame's packets arrive within 60 ms of each other in any order, and a
/// FIR sent on the first reordered packet drew keyframes the call did not need.
const START_REORDER_WAIT: Duration = Duration::from_millis(150);

/// How long after the stream's first packet the packets before its lowest are asked for
/// (a NACK) when that lowest packet does not begin a keyframe: the NACK generator's
/// reorder grace ([`crate::call::peer::nack::REORDER_GRACE`]) plus a frame's packets'
/// usual spread, so a start that is merely a few packets behind is not asked for.
pub const START_REPAIR_WAIT: Duration = Duration::from_millis(20);

/// Sequence numbers before the stream's lowest packet asked for when it does not begin a
/// keyframe: the parameter sets' packet and the IDR fragments before it (a 640x480 IDR
/// is 6-13 kB, 5-12 packets). Those the sender never sent it ignores.
pub const START_REPAIR_SPAN: u16 = 32;

/// The stream's lowest packet seen so far.
#[derive(Debug, Clone, Copy)]
struct StreamStart {
    /// Its extended sequence number.
    sequence_number: u64,
    /// Whether it begins a keyframe with its parameter sets (an SPS first). A stream
    /// whose lowest packet is a later part of its first keyframe, its IDR slice with the
    /// STAP-A before it missing, cannot have that keyframe repaired: NACK knows nothing
    /// before the first packet received. webrtc 0.21 drops a new track's first packets
    /// when they come through a TURN relay ("Failed to get track_remote"), and the
    /// repair wait for such a keyframe took 1.35 s of a relayed call's start.
    keyframe: bool,
    arrival: Instant,
}

/// One buffered RTP packet.
#[derive(Debug)]
struct Packet {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrival: Instant,
}

/// A frame released for decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedFrame {
    /// The access unit, Annex-B, ready for the decoder.
    pub access_unit: AccessUnit,
    /// When its first packet arrived (the start of its W3C `jitterBufferDelay`).
    pub first_arrival: Instant,
    /// When its last missing packet arrived.
    pub completed: Instant,
}

/// Counters of the buffer since it was made (W3C webrtc-stats `RTCInboundRtpStreamStats`
/// names where one exists).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VideoJitterStats {
    /// Frames released for decoding.
    pub frames_released: u64,
    /// Frames skipped: lost packets never recovered, or undecodable until a keyframe.
    pub frames_skipped: u64,
    /// Packets that arrived after their frame was released or skipped, or twice.
    pub packets_late: u64,
    /// Packets that filled a gap (arrived after a packet with a higher sequence number):
    /// reordered or retransmitted.
    pub packets_recovered: u64,
    /// Sum over released frames of the time from first packet to release, in seconds
    /// (`jitterBufferDelay`; divide by [`Self::frames_released`] for the mean).
    pub jitter_buffer_delay_s: f64,
    /// The playout delay in force (ms): the delay added on top of the fastest transit.
    pub target_delay_ms: f64,
    /// Keyframe requests the buffer raised.
    pub keyframe_requests: u64,
}

/// How to ask the sender for a keyframe; the later variant is the more urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyframeRequest {
    /// Picture Loss Indication (RFC 4585 §6.3.1): pictures were lost after decoding
    /// started; the sender may wait until its last keyframe had time to arrive.
    Pli,
    /// Full Intra Request (RFC 5104 §4.3.1): the decoder never had a start, as for a
    /// receiver that joined late (the stream's first packets never reached us); the
    /// sender answers at once.
    Fir,
}

/// What the buffer found at the head of its queue.
enum Head {
    /// A complete frame: its first and last extended sequence numbers.
    Complete { first: u64, last: u64 },
    /// The frame at the head misses a packet that a later one overtook (lost or
    /// reordered): wait for it, then give up.
    Waiting,
    /// The frame at the head is still arriving: nothing after it is missing.
    Incomplete,
    /// Nothing buffered beyond what was released.
    Empty,
}

/// The jitter buffer of one remote H.264 stream. Not thread-safe: one receive thread
/// owns it, calls [`push`](Self::push) for every packet and [`pop`](Self::pop) until it
/// yields nothing, then sleeps until [`next_wakeup`](Self::next_wakeup) or the next packet.
#[derive(Debug)]
pub struct VideoJitterBuffer {
    packets: BTreeMap<u64, Packet>,
    /// The last extended sequence number seen (for unwrapping, RFC 3550 §A.1).
    highest: Option<u64>,
    /// The last sequence number of the last frame released or skipped: the next frame
    /// starts right after it.
    released_through: Option<u64>,
    /// Nothing decodes until a keyframe: at the start, and after frames were skipped.
    need_keyframe: bool,
    /// A keyframe request waits to be taken by the caller.
    keyframe_request: bool,
    /// The packets before the stream's start were asked for ([`Self::take_start_repair`]).
    start_repair_taken: bool,
    /// The packet with the stream's lowest sequence number seen so far; `None` before
    /// any. Under reordering the first packet to arrive need not be the first sent.
    stream_start: Option<StreamStart>,
    /// When the first packet arrived, whichever it was.
    first_arrival: Option<Instant>,
    /// Since when the head of the queue has waited for a missing packet.
    gap_since: Option<Instant>,
    rtt: Duration,
    timing: PlayoutTiming,
    stats: VideoJitterStats,
}

impl Default for VideoJitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoJitterBuffer {
    /// An empty buffer that waits for a keyframe.
    pub fn new() -> Self {
        Self {
            packets: BTreeMap::new(),
            highest: None,
            released_through: None,
            need_keyframe: true,
            keyframe_request: false,
            start_repair_taken: false,
            stream_start: None,
            first_arrival: None,
            gap_since: None,
            rtt: DEFAULT_RTT,
            timing: PlayoutTiming::default(),
            stats: VideoJitterStats::default(),
        }
    }

    /// The round-trip time to the sender (the selected candidate pair's), which sets how
    /// long a gap is waited for; zero (no measurement yet) keeps [`DEFAULT_RTT`].
    pub fn set_rtt(&mut self, rtt: Duration) {
        if !rtt.is_zero() {
            self.rtt = rtt;
        }
    }

    /// How long the frames behind a missing packet wait for its retransmission.
    pub fn gap_wait(&self) -> Duration {
        gap_wait_for(self.rtt)
    }

    /// Counters since the start.
    pub fn stats(&self) -> VideoJitterStats {
        VideoJitterStats {
            target_delay_ms: self.timing.delay.as_secs_f64() * 1000.0,
            ..self.stats
        }
    }

    /// Whether a keyframe should be requested from the sender (once per need), and how:
    /// a [`KeyframeRequest::Fir`] while nothing was released yet and the stream's lowest
    /// sequence number seen did not begin a keyframe (its start never reached us), a PLI
    /// otherwise.
    pub fn take_keyframe_request(&mut self) -> Option<KeyframeRequest> {
        if !std::mem::take(&mut self.keyframe_request) {
            return None;
        }
        let missed_start = self.stream_start.is_some_and(|s| !s.keyframe);
        Some(if missed_start && self.stats.frames_released == 0 {
            KeyframeRequest::Fir
        } else {
            KeyframeRequest::Pli
        })
    }

    /// The sequence numbers to ask the sender for (a NACK, RFC 4585 §6.2.1) because the
    /// stream's first keyframe began before the lowest packet seen: once per stream,
    /// [`START_REPAIR_WAIT`] after its first packet, while nothing was released and that
    /// lowest packet does not begin a keyframe; the [`START_REPAIR_SPAN`] before it,
    /// oldest first. The NACK generator cannot ask for these: it knows nothing before
    /// the first packet it saw. A FIR follows if the keyframe is still missing 150 ms
    /// after the first packet.
    pub fn take_start_repair(&mut self, now: Instant) -> Option<Vec<u16>> {
        let due = self.start_repair_due()?;
        if now < due {
            return None;
        }
        self.start_repair_taken = true;
        let lowest = self.stream_start?.sequence_number as u16;
        Some(
            (1..=START_REPAIR_SPAN)
                .rev()
                .map(|back| lowest.wrapping_sub(back))
                .collect(),
        )
    }

    /// When [`Self::take_start_repair`] will have something, if it may yet.
    fn start_repair_due(&self) -> Option<Instant> {
        let start = self.stream_start?;
        let pending = !self.start_repair_taken && !start.keyframe;
        (pending && self.stats.frames_released == 0)
            .then_some(self.first_arrival? + START_REPAIR_WAIT)
    }

    /// The decoder lost its state (a decode error, a restart): drop everything up to
    /// the next keyframe and ask for one.
    pub fn request_keyframe(&mut self) {
        self.need_keyframe = true;
        self.raise_keyframe_request();
    }

    /// Takes one RTP packet (RFC 3550 §5.1 fields, H.264 payload per RFC 6184).
    pub fn push(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
        arrival: Instant,
    ) {
        let extended = self.unwrap(sequence_number);
        self.first_arrival.get_or_insert(arrival);
        if self
            .stream_start
            .is_none_or(|s| extended < s.sequence_number)
        {
            self.stream_start = Some(StreamStart {
                sequence_number: extended,
                keyframe: begins_keyframe(&payload) && opens_access_unit(&payload),
                arrival,
            });
        }
        let too_old = self.released_through.is_some_and(|r| extended <= r);
        if too_old || self.packets.contains_key(&extended) {
            self.stats.packets_late += 1;
            return;
        }
        if self.highest.is_some_and(|h| extended < h) {
            self.stats.packets_recovered += 1;
        }
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        let packet = Packet {
            timestamp,
            marker,
            payload,
            arrival,
        };
        self.packets.insert(extended, packet);
        self.evict_overflow();
    }

    /// The next frame due at `now`, if any. Call until it returns `None`.
    pub fn pop(&mut self, now: Instant) -> Option<ReleasedFrame> {
        // Each pass releases, skips or stops; a skip only moves forward, so this ends.
        for _ in 0..=self.packets.len() {
            self.skip_padding_at_head();
            if self.need_keyframe {
                return self.pop_keyframe(now);
            }
            match self.head() {
                Head::Empty => return None,
                Head::Complete { first, last } => {
                    self.gap_since = None;
                    return self.release_if_due(first, last, now);
                }
                Head::Incomplete => return None,
                Head::Waiting => {
                    if let Some((first, last)) = self.later_complete_keyframe() {
                        self.skip_to(first);
                        return self.release_if_due(first, last, now);
                    }
                    let since = *self.gap_since.get_or_insert(now);
                    if now.duration_since(since) < self.gap_wait() {
                        return None;
                    }
                    tracing::debug!("video: a packet never arrived; waiting for a keyframe");
                    self.request_keyframe();
                }
            }
        }
        None
    }

    /// When [`pop`](Self::pop) may next release a frame or give up on a gap, if nothing
    /// else arrives before.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let repair = self.start_repair_due();
        let due = |first: u64| {
            let packet = &self.packets[&first];
            self.timing.release_at(packet.timestamp, packet.arrival)
        };
        let frame = if self.need_keyframe {
            // Only a keyframe can be released; a complete P-frame at the head is not due.
            self.later_complete_keyframe().map(|(first, _)| due(first))
        } else if let Some(since) = self.gap_since {
            Some(since + self.gap_wait())
        } else if let Head::Complete { first, .. } = self.head() {
            Some(due(first))
        } else {
            None
        };
        repair.into_iter().chain(frame).min()
    }

    /// Spread between a frame's first and last packet beyond which it is taken to have
    /// waited for a retransmission: 1.5 RTT, at least 100 ms.
    fn retransmit_guard(&self) -> Duration {
        (self.rtt * 3 / 2).max(Duration::from_millis(100))
    }

    /// Padding-only packets (RFC 3550 §5.1, empty payload: bandwidth probes a browser
    /// sends on the media SSRC when no RTX stream is negotiated) belong to no frame; at
    /// the head they are passed over as released.
    fn skip_padding_at_head(&mut self) {
        let Some(mut through) = self.released_through else {
            return;
        };
        while self
            .packets
            .get(&(through + 1))
            .is_some_and(|p| p.payload.is_empty())
        {
            through += 1;
            self.packets.remove(&through);
        }
        self.released_through = Some(through);
    }

    fn raise_keyframe_request(&mut self) {
        self.keyframe_request = true;
        self.stats.keyframe_requests += 1;
    }

    fn unwrap(&self, sequence_number: u16) -> u64 {
        // Start a whole cycle up so that early reordered packets do not go below zero.
        let Some(highest) = self.highest else {
            return (1 << 16) + u64::from(sequence_number);
        };
        let delta = sequence_number.wrapping_sub(highest as u16);
        if delta < 0x8000 {
            highest + u64::from(delta)
        } else {
            highest.saturating_sub(u64::from(delta.wrapping_neg()))
        }
    }

    /// The frame at the head of the queue: right after the last released one, or at the
    /// first buffered packet that starts an access unit when nothing was released yet.
    fn head(&self) -> Head {
        let Some(start) = self.head_start() else {
            return Head::Empty;
        };
        if self.packets.range(start..).next().is_none() {
            return Head::Empty;
        }
        if let Some(last) = self.complete_frame_at(start) {
            return Head::Complete { first: start, last };
        }
        let buffered = self.packets.range(start..).count() as u64;
        let span = self.highest.map_or(0, |h| h + 1 - start);
        if buffered == span {
            Head::Incomplete
        } else {
            Head::Waiting
        }
    }

    /// If a whole frame starts at `first` (every packet to its marker-bit packet, same
    /// timestamp), its last sequence number.
    fn complete_frame_at(&self, first: u64) -> Option<u64> {
        let timestamp = self.packets.get(&first)?.timestamp;
        for (expected, (&seq, packet)) in (first..).zip(self.packets.range(first..)) {
            if seq != expected || packet.timestamp != timestamp {
                return None;
            }
            if packet.marker {
                return Some(seq);
            }
        }
        None
    }

    /// The first complete keyframe after the head, as (first, last) sequence numbers.
    fn later_complete_keyframe(&self) -> Option<(u64, u64)> {
        let from = self.released_through.map_or(0, |r| r + 1);
        self.frame_starts(from).find_map(|first| {
            let last = self.complete_frame_at(first)?;
            let keyframe = self
                .packets
                .range(first..=last)
                .any(|(_, p)| carries_idr(&p.payload));
            keyframe.then_some((first, last))
        })
    }

    /// Sequence numbers from `from` on that begin a frame for certain: the packet after
    /// a released one, after a marker bit or before a timestamp change; where the packet
    /// before is missing, only one that opens an access unit whatever came before it (an
    /// SPS or a delimiter, [`opens_access_unit`]). A picture's first slice right after a
    /// gap is no certain start: the missing packet may hold its access unit's parameter
    /// sets (webrtc-rs sends them in a STAP-A of their own), and a stream's first
    /// keyframe released without them does not decode.
    fn frame_starts(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        self.packets.range(from..).filter_map(|(&seq, packet)| {
            if packet.payload.is_empty() {
                return None;
            }
            let before = seq.wrapping_sub(1);
            let starts = match self.packets.get(&before) {
                Some(p) => p.marker || p.timestamp != packet.timestamp,
                None if self.released_through == Some(before) => true,
                None => opens_access_unit(&packet.payload),
            };
            starts.then_some(seq)
        })
    }

    /// While a keyframe is needed: release the first complete keyframe (skipping all
    /// before it) when it is due; otherwise nothing.
    fn pop_keyframe(&mut self, now: Instant) -> Option<ReleasedFrame> {
        let Some((first, last)) = self.later_complete_keyframe() else {
            // Frames flow but none can be decoded: keep asking (the caller rate-limits),
            // unless the keyframe at the head is still being repaired.
            let repairing = self.keyframe_repair_deadline().is_some_and(|d| now < d);
            if self.packets.values().any(|p| p.marker) && !repairing {
                self.keyframe_request = true;
            }
            return None;
        };
        self.skip_to(first);
        self.need_keyframe = false;
        self.gap_since = None;
        self.release_if_due(first, last, now)
    }

    /// Until when no new keyframe is asked for while one is awaited. While nothing was
    /// released: when the stream's lowest packet begins a keyframe, its arrival plus
    /// [`Self::gap_wait`], at least the wait at [`DEFAULT_RTT`] (on a narrow link the
    /// first keyframe's retransmissions wait behind the queue it built, which the RTT
    /// measured at call start does not include); otherwise the first arrival plus
    /// [`START_REORDER_WAIT`], for the keyframe's start may still be reordering in.
    /// Later: a keyframe's first packet at the head, its arrival plus
    /// [`Self::gap_wait`]; `None` when the head does not begin one. Asking before then
    /// sends a second keyframe into the link still delivering or repairing the first.
    fn keyframe_repair_deadline(&self) -> Option<Instant> {
        if self.stats.frames_released == 0 {
            let start = self.stream_start?;
            if !start.keyframe {
                return Some(self.first_arrival? + START_REORDER_WAIT);
            }
            return Some(start.arrival + self.gap_wait().max(gap_wait_for(DEFAULT_RTT)));
        }
        let head = self.packets.get(&self.head_start()?)?;
        begins_keyframe(&head.payload).then(|| head.arrival + self.gap_wait())
    }

    /// Where the next frame starts: after the last released packet, else at the first
    /// one buffered; `None` before any packet.
    fn head_start(&self) -> Option<u64> {
        match self.released_through {
            Some(r) => Some(r + 1),
            None => self.packets.keys().next().copied(),
        }
    }

    /// Drops every packet before `first`, counting the frames they held as skipped.
    fn skip_to(&mut self, first: u64) {
        let kept = self.packets.split_off(&first);
        let dropped = std::mem::replace(&mut self.packets, kept);
        let mut timestamps: Vec<u32> = dropped.values().map(|p| p.timestamp).collect();
        timestamps.dedup();
        self.stats.frames_skipped += timestamps.len() as u64;
        self.released_through = Some(first - 1);
        self.gap_since = None;
    }

    fn release_if_due(&mut self, first: u64, last: u64, now: Instant) -> Option<ReleasedFrame> {
        let head = &self.packets[&first];
        if now + RELEASE_TOLERANCE < self.timing.release_at(head.timestamp, head.arrival) {
            return None;
        }
        let access_unit = self.assemble(first, last);
        let frame: Vec<Packet> = (first..=last)
            .filter_map(|s| self.packets.remove(&s))
            .collect();
        self.released_through = Some(last);
        let first_arrival = frame.iter().map(|p| p.arrival).min()?;
        let completed = frame.iter().map(|p| p.arrival).max()?;
        // A frame completed by a retransmission says nothing about jitter (RTT does).
        let waited_for_loss = completed.duration_since(first_arrival) > self.retransmit_guard();
        if !waited_for_loss {
            self.timing.observe(frame[0].timestamp, completed);
        }
        let Some(access_unit) = access_unit else {
            // Malformed payloads: the decoder cannot use what follows either.
            self.stats.frames_skipped += 1;
            self.request_keyframe();
            return None;
        };
        self.stats.frames_released += 1;
        self.stats.jitter_buffer_delay_s += now.duration_since(first_arrival).as_secs_f64();
        Some(ReleasedFrame {
            access_unit,
            first_arrival,
            completed,
        })
    }

    /// Depacketizes the packets `first..=last` (a complete frame) into an access unit.
    fn assemble(&self, first: u64, last: u64) -> Option<AccessUnit> {
        let mut assembler = H264FrameAssembler::new();
        let mut out = None;
        for seq in first..=last {
            let p = self.packets.get(&seq)?;
            let assembled = assembler.push(seq as u16, p.timestamp, p.marker, &p.payload);
            if assembled.corruption.is_some() {
                return None;
            }
            out = assembled.access_unit.or(out);
        }
        out
    }

    fn evict_overflow(&mut self) {
        while self.packets.len() > MAX_PACKETS {
            let Some((&oldest, _)) = self.packets.first_key_value() else {
                return;
            };
            self.skip_to(oldest + 1);
            self.request_keyframe();
        }
    }
}

/// When frames are due: the fastest transit seen recently sets the base, and the 95th
/// percentile of how much later frames completed sets the playout delay.
#[derive(Debug, Default)]
struct PlayoutTiming {
    /// The first frame's timestamp and completion, the origin of both clocks.
    origin: Option<(u32, Instant)>,
    /// Recent frames' transit relative to the origin (seconds; smaller is faster).
    transits: VecDeque<f64>,
    /// The current playout delay.
    delay: Duration,
}

impl PlayoutTiming {
    /// Local time minus media time of a frame completing at `at`, in seconds.
    fn transit(&self, timestamp: u32, at: Instant) -> Option<f64> {
        let (t0, i0) = self.origin?;
        let media = f64::from(timestamp.wrapping_sub(t0) as i32) / VIDEO_CLOCK_HZ;
        let local = if at >= i0 {
            at.duration_since(i0).as_secs_f64()
        } else {
            -i0.duration_since(at).as_secs_f64()
        };
        Some(local - media)
    }

    fn observe(&mut self, timestamp: u32, completed: Instant) {
        if self.origin.is_none() {
            self.origin = Some((timestamp, completed));
        }
        let Some(transit) = self.transit(timestamp, completed) else {
            return;
        };
        if self.transits.len() == DELAY_WINDOW_FRAMES {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        self.delay = self.percentile_delay();
    }

    fn base(&self) -> f64 {
        self.transits.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn percentile_delay(&self) -> Duration {
        let base = self.base();
        let mut late: Vec<f64> = self.transits.iter().map(|t| t - base).collect();
        late.sort_by(f64::total_cmp);
        let index = ((late.len() as f64 - 1.0) * DELAY_PERCENTILE).round() as usize;
        let seconds = late.get(index).copied().unwrap_or(0.0) - UNSMOOTHED_VARIATION.as_secs_f64();
        Duration::from_secs_f64(seconds.clamp(0.0, MAX_PLAYOUT_DELAY.as_secs_f64()))
    }

    /// When a frame of `timestamp`, whose first packet arrived at `arrival`, is due.
    fn release_at(&self, timestamp: u32, arrival: Instant) -> Instant {
        let (Some((t0, i0)), false) = (self.origin, self.transits.is_empty()) else {
            return arrival;
        };
        let media = f64::from(timestamp.wrapping_sub(t0) as i32) / VIDEO_CLOCK_HZ;
        let due = media + self.base() + self.delay.as_secs_f64();
        let at = if due >= 0.0 {
            i0 + Duration::from_secs_f64(due)
        } else {
            i0.checked_sub(Duration::from_secs_f64(-due)).unwrap_or(i0)
        };
        // Never later than the fastest transit plus the cap, however the clocks drift.
        at.min(arrival + MAX_PLAYOUT_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FU indicators (F=0, NRI=3, type 28) and FU headers for IDR (5) and non-IDR (1).
    const FU_INDICATOR: u8 = 0x7C;

    /// An SPS and a PPS (H.264 Table 7-1 types 7 and 8; their bodies do not matter here).
    const SPS: [u8; 3] = [0x67, 0x42, 0xC0];
    const PPS: [u8; 2] = [0x68, 0xCE];

    /// A STAP-A (RFC 6184 §5.7.1) of `nals`.
    fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0x78];
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    /// The RTP packets of one frame of `n` packets, as (sequence number, timestamp,
    /// marker, payload). A keyframe is packed as webrtc-rs packs openh264's: its SPS and
    /// PPS in a STAP-A of their own, then the IDR slice (in the STAP-A when `n == 1`).
    /// Slices of more than one packet are FU-A fragments.
    fn frame(first: u16, timestamp: u32, keyframe: bool, n: u16) -> Vec<(u16, u32, bool, Bytes)> {
        let (header, nal_type) = if keyframe { (0x65, 5) } else { (0x41, 1) };
        let slice = [header, 0x88, 1, 2];
        let mut payloads: Vec<Vec<u8>> = match (keyframe, n) {
            (true, 1) => vec![stap_a(&[&SPS, &PPS, &slice])],
            (true, _) => vec![stap_a(&[&SPS, &PPS])],
            (false, _) => Vec::new(),
        };
        let slice_packets = n - payloads.len() as u16;
        if slice_packets == 1 {
            payloads.push(slice.to_vec());
        }
        if slice_packets > 1 {
            payloads.extend((0..slice_packets).map(|i| {
                let flags = match i {
                    0 => 0x80,
                    i if i == slice_packets - 1 => 0x40,
                    _ => 0,
                };
                vec![FU_INDICATOR, flags | nal_type, 0x88, i as u8]
            }));
        }
        let last = payloads.len() - 1;
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                (
                    first.wrapping_add(i as u16),
                    timestamp,
                    i == last,
                    Bytes::from(payload),
                )
            })
            .collect()
    }

    /// `count` frames of `n` packets each at 30 fps from sequence `first`; the first one
    /// (and every `gop`-th) a keyframe.
    fn stream(first: u16, count: u16, n: u16, gop: u16) -> Vec<(u16, u32, bool, Bytes)> {
        (0..count)
            .flat_map(|f| {
                let seq = first.wrapping_add(f * n);
                frame(seq, u32::from(f) * 3000, f % gop == 0, n)
            })
            .collect()
    }

    fn push(jb: &mut VideoJitterBuffer, p: &(u16, u32, bool, Bytes), at: Instant) {
        jb.push(p.0, p.1, p.2, p.3.clone(), at);
    }

    fn drain(jb: &mut VideoJitterBuffer, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| jb.pop(now))
            .map(|f| f.access_unit.rtp_timestamp)
            .collect()
    }

    const FRAME: Duration = Duration::from_micros(33_333);

    #[test]
    fn a_clean_stream_comes_out_whole_in_order_with_no_added_delay() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (i, p) in stream(100, 30, 3, 30).iter().enumerate() {
            let at = t0 + FRAME * (i as u32 / 3);
            push(&mut jb, p, at);
            out.extend(drain(&mut jb, at));
        }
        let expected: Vec<u32> = (0..30).map(|f| f * 3000).collect();
        assert_eq!(out, expected);
        let stats = jb.stats();
        assert_eq!(stats.frames_released, 30);
        assert_eq!(stats.frames_skipped, 0);
        assert!(stats.target_delay_ms < 1.0, "{stats:?}");
        assert_eq!(jb.take_keyframe_request(), None);
    }

    #[test]
    fn reordered_packets_still_make_every_frame_in_order() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let mut packets = stream(65_500, 20, 4, 20); // crosses the sequence wrap
        // Swap neighbours across frame boundaries: 1<->2, 5<->6, ...
        for i in (1..packets.len() - 1).step_by(4) {
            packets.swap(i, i + 1);
        }
        packets.swap(7, 12);
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64 * 8);
            push(&mut jb, p, at);
            out.extend(drain(&mut jb, at + Duration::from_secs(1)));
        }
        let expected: Vec<u32> = (0..20).map(|f| f * 3000).collect();
        assert_eq!(out, expected);
        assert_eq!(jb.stats().frames_skipped, 0);
        assert!(jb.stats().packets_recovered > 0);
    }

    #[test]
    fn a_retransmitted_packet_in_time_loses_no_frame() {
        let mut jb = VideoJitterBuffer::new();
        jb.set_rtt(Duration::from_millis(50));
        let t0 = Instant::now();
        let packets = stream(0, 10, 2, 10);
        let lost = 5; // frame 2's second packet
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate().filter(|(i, _)| *i != lost) {
            let at = t0 + FRAME * (i as u32 / 2);
            push(&mut jb, p, at);
            out.extend(drain(&mut jb, at));
        }
        assert_eq!(out, vec![0, 3000], "frames after the gap wait");
        assert!(jb.next_wakeup().is_some());
        let late = t0 + FRAME * 5 + Duration::from_millis(60);
        push(&mut jb, &packets[lost], late);
        out.extend(drain(&mut jb, t0 + FRAME * 10));
        let expected: Vec<u32> = (0..10).map(|f| f * 3000).collect();
        assert_eq!(out, expected);
        assert_eq!(jb.stats().frames_skipped, 0);
        assert_eq!(jb.take_keyframe_request(), None);
    }

    #[test]
    fn a_packet_lost_for_good_skips_to_the_next_keyframe_and_asks_for_one() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let packets = stream(0, 12, 2, 8); // keyframes at frames 0 and 8
        let lost = 4; // frame 2's first packet
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate().filter(|(i, _)| *i != lost) {
            let at = t0 + FRAME * (i as u32 / 2);
            push(&mut jb, p, at);
            out.extend(drain(&mut jb, at));
        }
        // Frame 8 (a keyframe) was complete before the gap timed out: jump to it.
        let expected: Vec<u32> = [0, 1, 8, 9, 10, 11].iter().map(|f| f * 3000).collect();
        assert_eq!(out, expected);
        assert_eq!(jb.stats().frames_skipped, 6);
        // The late packet of a skipped frame is dropped, not shown.
        push(&mut jb, &packets[lost], t0 + FRAME * 13);
        assert_eq!(drain(&mut jb, t0 + FRAME * 13), Vec::<u32>::new());
        assert_eq!(jb.stats().packets_late, 1);
    }

    #[test]
    fn a_gap_that_outlasts_the_wait_raises_a_keyframe_request() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let packets = stream(0, 6, 1, 100);
        for (i, p) in packets.iter().enumerate().filter(|(i, _)| *i != 2) {
            push(&mut jb, p, t0 + FRAME * i as u32);
        }
        let now = t0 + FRAME * 6;
        assert_eq!(drain(&mut jb, now), vec![0, 3000]);
        assert_eq!(jb.take_keyframe_request(), None);
        let after = now + jb.gap_wait();
        assert_eq!(drain(&mut jb, after), Vec::<u32>::new());
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Pli));
        assert_eq!(jb.stats().keyframe_requests, 1);
        // The next keyframe restarts the picture.
        let key = frame(6, 6 * 3000, true, 1);
        push(&mut jb, &key[0], after);
        assert_eq!(drain(&mut jb, after), vec![6 * 3000]);
    }

    #[test]
    fn a_first_keyframe_missing_its_tail_is_asked_for_with_a_pli() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let key = frame(0, 0, true, 4);
        for p in key.iter().take(2).chain(&frame(4, 3000, false, 1)) {
            push(&mut jb, p, t0);
        }
        let after = t0 + jb.gap_wait() + FRAME;
        assert_eq!(drain(&mut jb, after), Vec::<u32>::new());
        // Its start arrived: NACK may still repair it, so the sender may wait.
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Pli));
    }

    #[test]
    fn a_first_keyframe_being_repaired_is_waited_for_not_asked_for_again() {
        let mut jb = VideoJitterBuffer::new();
        jb.set_rtt(Duration::from_millis(20));
        let t0 = Instant::now();
        let key = frame(0, 0, true, 4);
        // Its third packet is lost; the P-frames behind it arrive whole.
        for p in key.iter().filter(|p| p.0 != 2) {
            push(&mut jb, p, t0);
        }
        for f in 1..10u16 {
            let at = t0 + FRAME * u32::from(f);
            push(&mut jb, &frame(3 + f, u32::from(f) * 3000, false, 1)[0], at);
            assert_eq!(drain(&mut jb, at), Vec::<u32>::new());
            assert_eq!(
                jb.take_keyframe_request(),
                None,
                "frame {f}: still repairable"
            );
        }
        // The retransmission arrives within the wait (333 ms, past three RTTs plus the
        // floor at the measured 20 ms RTT): the keyframe and the frames behind it come out, and no second
        // keyframe was asked for.
        let repaired = t0 + FRAME * 10;
        push(&mut jb, &key[2], repaired);
        let out = drain(&mut jb, repaired);
        assert_eq!(out.first(), Some(&0), "{out:?}");
        assert_eq!(out.len(), 10, "{out:?}");
        assert_eq!(jb.take_keyframe_request(), None);
        assert_eq!(jb.stats().keyframe_requests, 0);
    }

    #[test]
    fn a_first_keyframe_never_repaired_is_asked_for_after_the_wait() {
        let mut jb = VideoJitterBuffer::new();
        jb.set_rtt(Duration::from_millis(20));
        let t0 = Instant::now();
        for p in frame(0, 0, true, 4).iter().filter(|p| p.0 != 2) {
            push(&mut jb, p, t0);
        }
        let late = t0 + gap_wait_for(DEFAULT_RTT) + FRAME;
        push(&mut jb, &frame(4, 3000, false, 1)[0], late);
        assert_eq!(drain(&mut jb, late), Vec::<u32>::new());
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Pli));
    }

    #[test]
    fn p_frames_before_the_first_keyframe_are_not_released() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        for p in frame(10, 0, false, 1)
            .iter()
            .chain(&frame(11, 3000, false, 1))
        {
            push(&mut jb, p, t0);
        }
        assert_eq!(drain(&mut jb, t0), Vec::<u32>::new());
        // The keyframe may still be reordering in: nothing is asked for yet.
        assert_eq!(jb.take_keyframe_request(), None);
        // It never came: a FIR, which the sender answers at once.
        let late = t0 + START_REORDER_WAIT + FRAME;
        assert_eq!(drain(&mut jb, late), Vec::<u32>::new());
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Fir));
        push(&mut jb, &frame(12, 6000, true, 1)[0], late);
        assert_eq!(drain(&mut jb, late), vec![6000]);
    }

    #[test]
    fn a_first_keyframe_whose_parameter_sets_arrive_last_waits_for_them() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let key = frame(0, 0, true, 4);
        // Jitter reorders the keyframe: its IDR slice, whole, before its SPS and PPS.
        for (i, p) in key[1..].iter().enumerate() {
            let at = t0 + Duration::from_millis(5 * i as u64);
            push(&mut jb, p, at);
            assert_eq!(drain(&mut jb, at), Vec::<u32>::new(), "without its SPS");
        }
        let at = t0 + Duration::from_millis(30);
        push(&mut jb, &key[0], at);
        let released = jb.pop(at).expect("the keyframe, whole");
        let annexb = &released.access_unit.annexb;
        assert_eq!(
            annexb.get(..5),
            Some(&[0, 0, 0, 1, SPS[0]][..]),
            "{annexb:?}"
        );
        assert!(released.access_unit.keyframe);
        assert_eq!(jb.take_keyframe_request(), None);
        assert_eq!(jb.stats().frames_skipped, 0);
    }

    #[test]
    fn a_first_keyframe_missing_its_start_is_asked_for_by_sequence_number_then_decoded() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        // The keyframe is packets 100-103: its STAP-A and first fragment never came.
        let key = frame(100, 0, true, 4);
        for p in &key[2..] {
            push(&mut jb, p, t0);
        }
        // Within the wait the start may still be reordering in: nothing asked.
        assert_eq!(jb.take_start_repair(t0 + Duration::from_millis(5)), None);
        // No complete keyframe: the only wakeup is the repair's (nothing to spin on).
        assert_eq!(jb.next_wakeup(), Some(t0 + START_REPAIR_WAIT));
        let at = t0 + START_REPAIR_WAIT;
        let asked = jb.take_start_repair(at).expect("the packets before 102");
        assert_eq!(asked.len(), usize::from(START_REPAIR_SPAN));
        assert_eq!(asked.first(), Some(&70));
        assert_eq!(asked.last(), Some(&101));
        assert_eq!(jb.take_start_repair(at + FRAME), None, "once per stream");
        // The retransmissions bring the keyframe whole: no FIR, nothing skipped.
        let repaired = at + Duration::from_millis(10);
        push(&mut jb, &key[1], repaired);
        push(&mut jb, &key[0], repaired);
        assert_eq!(drain(&mut jb, repaired), vec![0]);
        assert_eq!(jb.take_keyframe_request(), None);
        assert_eq!(jb.stats().frames_skipped, 0);
    }

    #[test]
    fn a_stream_that_starts_with_a_keyframe_or_whose_start_reorders_in_asks_for_nothing() {
        let t0 = Instant::now();
        let key = frame(65_530, 0, true, 4);
        let mut whole = VideoJitterBuffer::new();
        push(&mut whole, &key[0], t0);
        assert_eq!(whole.take_start_repair(t0 + START_REORDER_WAIT), None);

        let mut reordered = VideoJitterBuffer::new();
        push(&mut reordered, &key[2], t0);
        push(&mut reordered, &key[0], t0 + Duration::from_millis(8));
        assert_eq!(reordered.take_start_repair(t0 + START_REORDER_WAIT), None);
    }

    #[test]
    fn a_first_keyframe_whose_parameter_sets_never_came_is_asked_for_with_a_fir() {
        let mut jb = VideoJitterBuffer::new();
        // A slow start: the repair wait would be 1.32 s.
        jb.set_rtt(Duration::from_millis(400));
        let t0 = Instant::now();
        // The STAP-A before the IDR slice was dropped before it reached the buffer.
        let key = frame(0, 0, true, 4);
        for p in &key[1..] {
            push(&mut jb, p, t0);
        }
        push(&mut jb, &frame(4, 3000, false, 1)[0], t0 + FRAME);
        assert_eq!(drain(&mut jb, t0 + FRAME), Vec::<u32>::new());
        assert_eq!(
            jb.take_keyframe_request(),
            None,
            "it may still be reordering in"
        );
        let later = t0 + START_REORDER_WAIT + FRAME;
        push(&mut jb, &frame(5, 6000, false, 1)[0], later);
        assert_eq!(drain(&mut jb, later), Vec::<u32>::new());
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Fir));
    }

    #[test]
    fn the_stream_start_is_its_lowest_sequence_number_not_its_first_arrival() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        // A middle fragment of the keyframe's IDR slice arrives first; the slice's
        // first fragment is lost for good.
        let key = frame(0, 0, true, 4);
        for p in [&key[2], &key[0], &key[3]] {
            push(&mut jb, p, t0);
        }
        push(&mut jb, &frame(4, 3000, false, 1)[0], t0 + FRAME);
        let late = t0 + gap_wait_for(DEFAULT_RTT) + FRAME;
        assert_eq!(drain(&mut jb, late), Vec::<u32>::new());
        // Its start did arrive: a PLI, not a FIR that bypasses the sender's pacing.
        assert_eq!(jb.take_keyframe_request(), Some(KeyframeRequest::Pli));
    }

    #[test]
    fn a_frame_still_arriving_is_not_a_gap() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let key = frame(0, 0, true, 20); // a keyframe paced out over 600 ms
        for (i, p) in key.iter().enumerate() {
            let at = t0 + Duration::from_millis(30 * i as u64);
            push(&mut jb, p, at);
            let out = drain(&mut jb, at);
            assert_eq!(out.is_empty(), i < 19);
        }
        assert_eq!(jb.take_keyframe_request(), None);
    }

    #[test]
    fn jitter_sets_a_playout_delay_that_spaces_frames_by_their_timestamps() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        // Every other frame arrives 40 ms late.
        let packets = stream(0, 60, 1, 60);
        let arrival = |i: usize| t0 + FRAME * i as u32 + Duration::from_millis(40 * (i % 2) as u64);
        for (i, p) in packets.iter().enumerate() {
            push(&mut jb, p, arrival(i));
            drain(&mut jb, arrival(i) + Duration::from_secs(1));
        }
        let delay = jb.stats().target_delay_ms;
        assert!((35.0..=45.0).contains(&delay), "target delay {delay} ms");
        // From now on an early frame waits for its due time instead of going out at once.
        let early = frame(60, 60 * 3000, false, 1);
        let at = t0 + FRAME * 60;
        push(&mut jb, &early[0], at);
        assert_eq!(drain(&mut jb, at), Vec::<u32>::new());
        let due = jb.next_wakeup().expect("a due time");
        assert!(due > at && due <= at + Duration::from_millis(50));
        assert_eq!(drain(&mut jb, due), vec![60 * 3000]);
    }

    #[test]
    fn a_few_milliseconds_of_variation_add_no_playout_delay() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        // A sender's encode time varying by 3 ms (under UNSMOOTHED_VARIATION): every
        // frame goes out the moment it completes.
        let packets = stream(0, 60, 1, 60);
        for (i, p) in packets.iter().enumerate() {
            let at = t0 + FRAME * i as u32 + Duration::from_millis(3 * (i % 2) as u64);
            push(&mut jb, p, at);
            assert_eq!(drain(&mut jb, at).len(), 1, "frame {i} held back");
        }
        assert_eq!(jb.stats().target_delay_ms, 0.0);
    }

    #[test]
    fn padding_packets_between_frames_do_not_stall_the_stream() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let mut packets = frame(10, 0, true, 2);
        packets.push((12, 0, false, Bytes::new())); // probe padding after the frame
        packets.push((13, 0, false, Bytes::new()));
        packets.extend(frame(14, 3000, false, 2));
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let at = t0 + Duration::from_millis(10 * i as u64);
            push(&mut jb, p, at);
            out.extend(drain(&mut jb, at));
        }
        assert_eq!(out, vec![0, 3000]);
        assert_eq!(jb.take_keyframe_request(), None);
    }

    #[test]
    fn duplicates_are_counted_and_dropped() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        let key = frame(0, 0, true, 2);
        push(&mut jb, &key[0], t0);
        push(&mut jb, &key[0], t0);
        push(&mut jb, &key[1], t0);
        assert_eq!(drain(&mut jb, t0), vec![0]);
        push(&mut jb, &key[1], t0);
        assert_eq!(jb.stats().packets_late, 2);
    }

    #[test]
    fn the_buffer_stays_bounded_when_nothing_can_be_released() {
        let mut jb = VideoJitterBuffer::new();
        let t0 = Instant::now();
        // P-frames only, never a keyframe.
        for i in 0..(MAX_PACKETS as u16 + 500) {
            push(&mut jb, &frame(i, u32::from(i) * 3000, false, 1)[0], t0);
        }
        assert!(jb.packets.len() <= MAX_PACKETS);
        assert_eq!(drain(&mut jb, t0), Vec::<u32>::new());
    }

    #[test]
    fn idr_detection_reads_single_stap_a_and_fu_a_payloads() {
        use super::super::assemble::carries_idr;
        assert!(carries_idr(&[0x65, 0x88]));
        assert!(!carries_idr(&[0x41, 0x9A]));
        assert!(carries_idr(&[0x7C, 0x85, 0]));
        assert!(!carries_idr(&[0x5C, 0x81, 0]));
        // STAP-A: SPS (2 bytes), then an IDR (2 bytes).
        assert!(carries_idr(&[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x65, 0x88]));
        assert!(!carries_idr(&[0x78, 0, 2, 0x67, 0x42, 0, 9, 0x65]));
        assert!(!carries_idr(&[]));
    }
}
