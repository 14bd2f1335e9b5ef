//! The receive-side adaptive jitter buffer: reorders Opus RTP payloads by sequence
//! number and hands one 20 ms frame's worth of playout decision per call, with the
//! [`Adjustment`] (time-stretch) that moves the delay toward its target.
//!
//! Time is always passed in (`arrival`, `now`), so the buffer is deterministic and
//! tests drive it without sleeping.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Audio carried by one packet (one Opus frame).
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Target delay before any jitter has been measured: 100 ms, enough to ride out the
/// call's first keyframe holding a narrow link's queue (audio stalls behind it, 80-120 ms
/// at 300 kbit/s with a 100 ms queue); the target then follows the measured jitter
/// down within a second or two on a clean link.
pub const INITIAL_TARGET: Duration = Duration::from_millis(100);

/// The lowest target delay: one packet interval.
pub const MIN_TARGET: Duration = Duration::from_millis(20);

/// The highest target delay; beyond it conversation suffers more than from loss.
pub const MAX_TARGET: Duration = Duration::from_millis(200);

/// Audio held beyond [`MAX_TARGET`] before the oldest packets are dropped.
pub const CAPACITY_MARGIN: Duration = Duration::from_millis(60);

/// Sequence distance behind the playout point past which a packet is taken as a
/// restarted stream rather than a late one (RFC 3550 A.1 `MAX_MISORDER`).
const MAX_MISORDER: i64 = 100;

/// Sequence jump ahead past which the stream is taken as restarted (RFC 3550 A.1
/// `MAX_DROPOUT`).
const MAX_DROPOUT: i64 = 3000;

/// Ticks in a row with nothing buffered before the buffer goes back to buffering
/// (e.g. the far side muted or stopped sending): 200 ms of concealment.
const MAX_DRY_TICKS: u32 = 10;

/// Ticks in a row with more than target + 1 frames queued before one frame is
/// dropped to cut latency.
const SHRINK_AFTER_TICKS: u32 = 5;

/// Ticks in a row with fewer than target frames queued before one concealed frame is
/// inserted to build up delay.
const GROW_AFTER_TICKS: u32 = 3;

/// Gain of the RFC 3550 §6.4.1 jitter estimate: J += (|D| - J) / 16.
const JITTER_GAIN: f64 = 1.0 / 16.0;

/// Target = one frame + this many times the interarrival jitter estimate (the mean
/// deviation; four of them cover nearly all arrivals).
const JITTER_MULTIPLE: f64 = 4.0;

/// What to play for the next 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next packet in sequence: decode it.
    Packet(Bytes),
    /// The next packet is missing but its successor is here: decode the successor's
    /// in-band FEC for this frame (the successor itself comes as `Packet` next tick).
    Fec(Bytes),
    /// The next packet is missing (lost, or late and not here yet): conceal (PLC).
    Conceal,
    /// Nothing to play yet: before the first packet or after a long silence, while
    /// buffering up to the target delay. Play silence.
    Empty,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued for playout.
    Queued,
    /// Its playout time had passed; dropped.
    Late,
    /// Already queued; dropped.
    Duplicate,
}

/// Counters for the stats view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Dropped because they arrived after their playout time.
    pub late: u64,
    /// Dropped as duplicates.
    pub duplicates: u64,
    /// Dropped because the buffer held more than its capacity.
    pub overflow_dropped: u64,
    /// Frames played shortened by a pitch period to bring the delay down to the target
    /// (time-scale modification: no packet is dropped for it).
    pub accelerated: u64,
    /// Frames recovered from the next packet's FEC.
    pub fec_recovered: u64,
    /// Frames played from a copy a later packet carried (RED, RFC 2198) because their
    /// own packet was missing.
    pub red_recovered: u64,
    /// Frames concealed for a missing packet (loss or underrun).
    pub concealed: u64,
    /// Frames played lengthened by a pitch period to grow the delay (no concealed
    /// frame is inserted for it).
    pub expanded: u64,
}

/// A change of the playout delay the buffer asks for on the frame it just handed out,
/// carried out by [`super::stretch`] on the decoded audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adjustment {
    /// Play the frame as it is.
    #[default]
    None,
    /// Lengthen it by a pitch period: the delay grows (NetEQ's preemptive expand).
    Expand,
    /// Shorten it by a pitch period: the delay shrinks (NetEQ's accelerate).
    Accelerate,
}

/// Where playout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for packets to cover the target delay; playout starts at `start_at`
    /// (first arrival + target), `None` until a packet arrives.
    Buffering { start_at: Option<Instant> },
    /// Handing out one frame per tick; `dry_ticks` counts ticks in a row with nothing
    /// queued.
    Playing { dry_ticks: u32 },
}

/// One queued packet's payload and where it came from.
#[derive(Debug, Clone)]
struct Queued {
    payload: Bytes,
    /// A copy from a later packet's RED blocks, not the packet itself.
    redundant: bool,
}

/// The RFC 3550 §6.4.1 interarrival jitter estimate, in seconds.
#[derive(Debug, Clone, Copy)]
struct InterarrivalJitter {
    /// RTP timestamp and arrival of the previous packet.
    last: Option<(u32, Instant)>,
    /// Smoothed mean deviation of transit time, seconds.
    jitter_secs: f64,
}

impl InterarrivalJitter {
    fn update(&mut self, rtp_timestamp: u32, arrival: Instant) {
        if let Some((last_ts, last_arrival)) = self.last {
            let arrival_delta = signed_secs(arrival, last_arrival);
            let ts_delta =
                f64::from(rtp_timestamp.wrapping_sub(last_ts) as i32) / f64::from(SAMPLE_RATE_HZ);
            let d = (arrival_delta - ts_delta).abs();
            self.jitter_secs += (d - self.jitter_secs) * JITTER_GAIN;
        }
        self.last = Some((rtp_timestamp, arrival));
    }
}

/// `a - b` in seconds, negative when `a` is earlier.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64(),
        None => -b.duration_since(a).as_secs_f64(),
    }
}

/// An adaptive jitter buffer for one Opus stream of 20 ms packets (48 kHz RTP clock).
///
/// Push packets as they arrive, in any order; call [`pop`](Self::pop) every 20 ms.
/// Packets are ordered by extended sequence number (u16 wrap handled), duplicates and
/// packets behind the playout point are dropped. The target delay follows the
/// interarrival jitter (RFC 3550 §6.4.1) as one frame + 4 J, clamped to
/// [`MIN_TARGET`]..=[`MAX_TARGET`], starting at [`INITIAL_TARGET`]. Playout keeps the
/// queued audio near the target: it inserts a concealed frame when too little is
/// queued and drops one when too much is, and it never holds more than
/// [`MAX_TARGET`] + [`CAPACITY_MARGIN`].
#[derive(Debug)]
pub struct JitterBuffer {
    /// Queued payloads by extended sequence number.
    packets: BTreeMap<i64, Queued>,
    /// Highest extended sequence number seen: the reference for extending the next.
    highest: Option<i64>,
    /// The next sequence number to play; packets below it are late.
    next: Option<i64>,
    /// Buffering or playing.
    state: State,
    /// Transit-time jitter estimate.
    jitter: InterarrivalJitter,
    /// Ticks in a row with too much queued.
    excess_ticks: u32,
    /// Ticks in a row with too little queued.
    deficit_ticks: u32,
    /// The stretch asked for on the frame last handed out.
    adjustment: Adjustment,
    /// Counters.
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// An empty buffer, buffering, target [`INITIAL_TARGET`].
    pub fn new() -> Self {
        let initial_jitter = (INITIAL_TARGET - FRAME_DURATION).as_secs_f64() / JITTER_MULTIPLE;
        Self {
            packets: BTreeMap::new(),
            highest: None,
            next: None,
            state: State::Buffering { start_at: None },
            jitter: InterarrivalJitter {
                last: None,
                jitter_secs: initial_jitter,
            },
            excess_ticks: 0,
            deficit_ticks: 0,
            adjustment: Adjustment::None,
            stats: JitterStats::default(),
        }
    }

    /// The current target delay.
    pub fn target_delay(&self) -> Duration {
        let secs = FRAME_DURATION.as_secs_f64() + JITTER_MULTIPLE * self.jitter.jitter_secs;
        Duration::from_secs_f64(secs).clamp(MIN_TARGET, MAX_TARGET)
    }

    /// The interarrival jitter estimate (RFC 3550 §6.4.1), as a duration.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter.jitter_secs)
    }

    /// Packets queued now.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Counters since creation.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Most packets ever held: ([`MAX_TARGET`] + [`CAPACITY_MARGIN`]) / 20 ms.
    pub fn capacity_packets() -> usize {
        ((MAX_TARGET + CAPACITY_MARGIN).as_millis() / FRAME_DURATION.as_millis()) as usize
    }

    /// Queues one RTP packet's payload (one 20 ms Opus packet).
    pub fn push(
        &mut self,
        sequence_number: u16,
        rtp_timestamp: u32,
        payload: Bytes,
        arrival: Instant,
    ) -> PushOutcome {
        self.stats.received += 1;
        let mut seq = self.extend(sequence_number);
        if self.is_restart(seq) {
            tracing::debug!(sequence_number, "RTP sequence jumped: restarting playout");
            self.restart();
            seq = self.extend(sequence_number);
        }
        self.jitter.update(rtp_timestamp, arrival);
        if self.next.is_some_and(|next| seq < next) {
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if self.packets.get(&seq).is_some_and(|q| !q.redundant) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        // A RED copy already queued for it is replaced by the packet itself.
        self.packets.insert(
            seq,
            Queued {
                payload,
                redundant: false,
            },
        );
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        if let State::Buffering { start_at: None } = self.state {
            self.state = State::Buffering {
                start_at: Some(arrival + self.target_delay()),
            };
        }
        self.enforce_capacity();
        PushOutcome::Queued
    }

    /// Queues `payload`, a copy of an earlier packet that packet `carrier` (a sequence
    /// number) repeated `timestamp_offset` RTP units before its own (RED, RFC 2198),
    /// where that packet is missing: not played yet, not queued, and within capacity
    /// behind the highest packet. One packet is 20 ms, so the copy is packet `carrier -
    /// timestamp_offset / 960`; other offsets are skipped. Push the carrier first. The
    /// copy counts as neither received, late nor duplicate, and its arrival leaves the
    /// jitter estimate alone (it says nothing of its own transit). True when it filled
    /// a gap.
    pub fn push_redundant(&mut self, carrier: u16, timestamp_offset: u32, payload: Bytes) -> bool {
        let packets_back = timestamp_offset / TIMESTAMP_STEP;
        let (Some(highest), Some(floor)) = (self.highest, self.capacity_floor()) else {
            return false;
        };
        if !timestamp_offset.is_multiple_of(TIMESTAMP_STEP) || packets_back == 0 {
            return false;
        }
        let Ok(packets_back) = u16::try_from(packets_back) else {
            return false;
        };
        let seq = self.extend(carrier.wrapping_sub(packets_back));
        let played = self.next.is_some_and(|next| seq < next);
        if seq >= highest || seq < floor || played || self.packets.contains_key(&seq) {
            return false;
        }
        self.packets.insert(
            seq,
            Queued {
                payload,
                redundant: true,
            },
        );
        true
    }

    /// Decides what to play for the next 20 ms at time `now`. Call once per 20 ms.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let next = match (self.state, self.next, self.packets.first_key_value()) {
            (State::Buffering { start_at: Some(at) }, _, Some((&first, _))) if now >= at => {
                self.state = State::Playing { dry_ticks: 0 };
                self.excess_ticks = 0;
                self.deficit_ticks = 0;
                first
            }
            (State::Buffering { .. }, ..) => return Playout::Empty,
            (State::Playing { .. }, Some(next), _) => next,
            // Playing always has a position; recover by buffering again.
            (State::Playing { .. }, None, _) => {
                self.state = State::Buffering { start_at: None };
                return Playout::Empty;
            }
        };
        self.next = Some(next);
        if self.packets.is_empty() {
            return self.underrun();
        }
        self.state = State::Playing { dry_ticks: 0 };
        self.adjustment = if self.should_stretch(next) {
            self.stats.expanded += 1;
            Adjustment::Expand
        } else if self.should_accelerate(next) {
            self.stats.accelerated += 1;
            Adjustment::Accelerate
        } else {
            Adjustment::None
        };
        self.play(next)
    }

    /// How to stretch the frame [`pop`](Self::pop) just handed out (once: it resets).
    pub fn take_adjustment(&mut self) -> Adjustment {
        std::mem::take(&mut self.adjustment)
    }

    /// Plays `next`: the packet, else its successor's FEC, else concealment.
    fn play(&mut self, next: i64) -> Playout {
        self.next = Some(next + 1);
        if let Some(queued) = self.packets.remove(&next) {
            if queued.redundant {
                self.stats.red_recovered += 1;
            }
            return Playout::Packet(queued.payload);
        }
        self.stats.concealed += 1;
        match self.packets.get(&(next + 1)) {
            Some(successor) => {
                self.stats.fec_recovered += 1;
                self.stats.concealed -= 1;
                Playout::Fec(successor.payload.clone())
            }
            None => Playout::Conceal,
        }
    }

    /// Nothing queued: conceal without advancing (the delay grows by one frame), and
    /// after [`MAX_DRY_TICKS`] go back to buffering.
    fn underrun(&mut self) -> Playout {
        let dry_ticks = match self.state {
            State::Playing { dry_ticks } => dry_ticks + 1,
            State::Buffering { .. } => 1,
        };
        if dry_ticks > MAX_DRY_TICKS {
            self.state = State::Buffering { start_at: None };
            return Playout::Empty;
        }
        self.state = State::Playing { dry_ticks };
        self.stats.concealed += 1;
        Playout::Conceal
    }

    /// Frames queued from `next` to the highest sequence number, gaps included.
    fn queued_frames(&self, next: i64) -> i64 {
        self.highest.map_or(0, |h| (h - next + 1).max(0))
    }

    fn target_frames(&self) -> i64 {
        let frame = FRAME_DURATION.as_secs_f64();
        (self.target_delay().as_secs_f64() / frame).ceil() as i64
    }

    /// True when too little has been queued for a while: lengthen one frame.
    fn should_stretch(&mut self, next: i64) -> bool {
        if self.queued_frames(next) < self.target_frames() {
            self.deficit_ticks += 1;
        } else {
            self.deficit_ticks = 0;
        }
        if self.deficit_ticks >= GROW_AFTER_TICKS {
            self.deficit_ticks = 0;
            return true;
        }
        false
    }

    /// True when too much has been queued for a while: shorten one frame.
    fn should_accelerate(&mut self, next: i64) -> bool {
        if self.queued_frames(next) > self.target_frames() + 1 {
            self.excess_ticks += 1;
        } else {
            self.excess_ticks = 0;
        }
        if self.excess_ticks >= SHRINK_AFTER_TICKS && self.packets.contains_key(&next) {
            self.excess_ticks = 0;
            return true;
        }
        false
    }

    /// Drops the oldest packets so that at most [`Self::capacity_packets`] frames lie
    /// between the playout point and the highest sequence number.
    fn enforce_capacity(&mut self) {
        let Some(floor) = self.capacity_floor() else {
            return;
        };
        while let Some((&first, _)) = self.packets.first_key_value() {
            if first >= floor {
                break;
            }
            self.packets.pop_first();
            self.stats.overflow_dropped += 1;
        }
        if self.next.is_some_and(|next| next < floor) {
            self.next = Some(floor);
        }
    }

    /// The lowest sequence number the buffer may hold: [`Self::capacity_packets`] back
    /// from the highest seen; `None` before the first packet.
    fn capacity_floor(&self) -> Option<i64> {
        self.highest
            .map(|highest| highest - Self::capacity_packets() as i64 + 1)
    }

    /// Extends a 16-bit sequence number to the one nearest the highest seen.
    fn extend(&self, sequence_number: u16) -> i64 {
        match self.highest {
            None => i64::from(sequence_number),
            Some(h) => {
                let delta = sequence_number.wrapping_sub(h as u16) as i16;
                h + i64::from(delta)
            }
        }
    }

    /// True when `seq` is so far from where playout stands that the sender must have
    /// restarted its sequence (RFC 3550 A.1's misorder and dropout limits).
    fn is_restart(&self, seq: i64) -> bool {
        let behind = self.next.is_some_and(|next| seq < next - MAX_MISORDER);
        let ahead = self.highest.is_some_and(|h| seq > h + MAX_DROPOUT);
        behind || ahead
    }

    /// Forgets the stream: the next packet starts a new one (stats and jitter kept).
    fn restart(&mut self) {
        self.packets.clear();
        self.highest = None;
        self.next = None;
        self.state = State::Buffering { start_at: None };
        // Transit times of the old stream say nothing about the new one.
        self.jitter.last = None;
    }
}

/// RTP timestamp units per packet: 20 ms at 48 kHz.
pub const TIMESTAMP_STEP: u32 = FRAME_SAMPLES as u32;

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn payload(seq: u16) -> Bytes {
        Bytes::copy_from_slice(&seq.to_be_bytes())
    }

    /// Pushes `seq` with the RTP timestamp a sender would give it: 960 per packet,
    /// continuous across the sequence wrap for the numbers these tests use (from
    /// 60000 through the wrap to 59999).
    fn push(jb: &mut JitterBuffer, seq: u16, at: Instant) -> PushOutcome {
        let timestamp = u32::from(seq.wrapping_sub(60_000)) * TIMESTAMP_STEP;
        jb.push(seq, timestamp, payload(seq), at)
    }

    /// Pushes `seqs` in the given order, one per 20 ms from t0, then starts playout
    /// (pops until not Empty); returns the first playout and the time of the next tick.
    fn start(jb: &mut JitterBuffer, t0: Instant, seqs: &[u16]) -> (Playout, Instant) {
        let mut now = t0;
        for &s in seqs {
            push(jb, s, now);
            now += FRAME_DURATION;
        }
        loop {
            match jb.pop(now) {
                Playout::Empty => now += FRAME_DURATION,
                p => return (p, now + FRAME_DURATION),
            }
            assert!(now < t0 + Duration::from_secs(1), "never started");
        }
    }

    #[test]
    fn empty_until_the_target_delay_after_the_first_packet() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        assert_eq!(jb.pop(t0), Playout::Empty);
        push(&mut jb, 10, t0);
        assert_eq!(jb.pop(t0 + 99 * MS), Playout::Empty);
        assert_eq!(jb.pop(t0 + 100 * MS), Playout::Packet(payload(10)));
    }

    #[test]
    fn reorders_by_sequence_number_across_the_u16_wrap() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let (first, mut now) = start(&mut jb, t0, &[65534, 0, 65535, 1]);
        let mut played = vec![first];
        for _ in 0..3 {
            played.push(jb.pop(now));
            now += FRAME_DURATION;
        }
        let expected: Vec<_> = [65534, 65535, 0, 1]
            .into_iter()
            .map(|s| Playout::Packet(payload(s)))
            .collect();
        assert_eq!(played, expected);
    }

    #[test]
    fn a_gap_with_a_successor_uses_fec_and_a_wider_gap_conceals() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let (first, mut now) = start(&mut jb, t0, &[1, 2, 5, 6]);
        let mut played = vec![first];
        for _ in 0..5 {
            played.push(jb.pop(now));
            now += FRAME_DURATION;
        }
        assert_eq!(
            played,
            vec![
                Playout::Packet(payload(1)),
                Playout::Packet(payload(2)),
                Playout::Conceal,
                Playout::Fec(payload(5)),
                Playout::Packet(payload(5)),
                Playout::Packet(payload(6)),
            ]
        );
        let stats = jb.stats();
        assert_eq!((stats.concealed, stats.fec_recovered), (1, 1));
    }

    #[test]
    fn red_copies_fill_a_burst_of_lost_packets_and_count_as_recovered() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        // 3 and 4 are lost; 5 arrives carrying copies of 3 and 4 (RED).
        let (first, mut now) = start(&mut jb, t0, &[1, 2, 5]);
        assert!(jb.push_redundant(5, 2 * TIMESTAMP_STEP, payload(3)));
        assert!(jb.push_redundant(5, TIMESTAMP_STEP, payload(4)));
        let mut played = vec![first];
        for _ in 0..4 {
            played.push(jb.pop(now));
            now += FRAME_DURATION;
        }
        let expected: Vec<_> = (1..=5).map(|s| Playout::Packet(payload(s))).collect();
        assert_eq!(played, expected);
        let stats = jb.stats();
        assert_eq!(
            (stats.red_recovered, stats.concealed, stats.fec_recovered),
            (2, 0, 0)
        );
        assert_eq!((stats.received, stats.duplicates, stats.late), (3, 0, 0));
    }

    #[test]
    fn a_red_copy_never_replaces_a_packet_nor_comes_back_after_playout() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let copy = || Bytes::from_static(b"copy");
        assert!(
            !jb.push_redundant(2, TIMESTAMP_STEP, copy()),
            "nothing to place it against"
        );
        let (_, now) = start(&mut jb, t0, &[1, 2, 4]);
        // 1 was played, 2 is queued: neither takes a copy; nor does an offset that is
        // not a whole packet, or no offset at all.
        assert!(!jb.push_redundant(4, 3 * TIMESTAMP_STEP, copy()));
        assert!(!jb.push_redundant(4, 2 * TIMESTAMP_STEP, copy()));
        assert!(!jb.push_redundant(4, TIMESTAMP_STEP / 2, copy()));
        assert!(!jb.push_redundant(4, 0, copy()));
        // A copy of 3 waits for it; the packet itself, coming late, replaces the copy.
        assert!(jb.push_redundant(4, TIMESTAMP_STEP, copy()));
        assert_eq!(push(&mut jb, 3, now), PushOutcome::Queued);
        assert_eq!(jb.pop(now), Playout::Packet(payload(2)));
        assert_eq!(jb.pop(now + FRAME_DURATION), Playout::Packet(payload(3)));
        let stats = jb.stats();
        assert_eq!((stats.red_recovered, stats.duplicates), (0, 0));
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let (_, now) = start(&mut jb, t0, &[1, 2, 3]);
        assert_eq!(jb.pop(now), Playout::Packet(payload(2)));
        // 1 and 2 were played: they come too late now.
        assert_eq!(push(&mut jb, 1, now), PushOutcome::Late);
        assert_eq!(push(&mut jb, 2, now), PushOutcome::Late);
        assert_eq!(push(&mut jb, 4, now), PushOutcome::Queued);
        assert_eq!(push(&mut jb, 4, now), PushOutcome::Duplicate);
        let stats = jb.stats();
        assert_eq!((stats.late, stats.duplicates), (2, 1));
        assert_eq!(jb.len(), 2, "3 and one copy of 4");
    }

    #[test]
    fn underrun_conceals_then_returns_to_buffering_after_a_long_silence() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let (_, mut now) = start(&mut jb, t0, &[1]);
        let mut playouts = Vec::new();
        for _ in 0..12 {
            playouts.push(jb.pop(now));
            now += FRAME_DURATION;
        }
        assert!(playouts[..10].iter().all(|p| *p == Playout::Conceal));
        assert_eq!(playouts[10], Playout::Empty);
        // A packet that continues the stream starts playout again after the target.
        push(&mut jb, 2, now);
        let target = jb.target_delay();
        assert_eq!(jb.pop(now), Playout::Empty);
        assert_eq!(jb.pop(now + target), Playout::Packet(payload(2)));
    }

    /// Simulates a sender every 20 ms and a network adding a delay in
    /// `base..base+spread` (deterministic pseudo-random), with pops every 20 ms.
    /// Returns the buffer and how many ticks played a packet.
    fn simulate(
        jb: &mut JitterBuffer,
        t0: Instant,
        first_seq: u16,
        count: u16,
        spread_ms: u64,
    ) -> usize {
        let mut rng: u32 = 12345;
        let mut arrivals: Vec<(Instant, u16)> = (0..count)
            .map(|i| {
                rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let delay = if spread_ms == 0 {
                    0
                } else {
                    u64::from(rng >> 16) % spread_ms
                };
                (
                    t0 + FRAME_DURATION * u32::from(i) + Duration::from_millis(delay),
                    first_seq.wrapping_add(i),
                )
            })
            .collect();
        arrivals.sort();
        let end = t0 + FRAME_DURATION * u32::from(count);
        let mut next_arrival = 0;
        let mut now = t0 + Duration::from_micros(500);
        let mut packets = 0;
        while now < end {
            while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= now {
                let (at, seq) = arrivals[next_arrival];
                push(jb, seq, at);
                next_arrival += 1;
            }
            if let Playout::Packet(_) = jb.pop(now) {
                packets += 1;
            }
            now += FRAME_DURATION;
        }
        packets
    }

    #[test]
    fn target_grows_under_jitter_and_shrinks_when_it_calms() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let played = simulate(&mut jb, t0, 100, 500, 80);
        let jittery_target = jb.target_delay();
        assert!(jittery_target >= 80 * MS, "target {jittery_target:?}");
        assert!(jittery_target <= MAX_TARGET);
        // Once adapted, nearly every packet is played (late drops are the early ones).
        assert!(played > 450, "played {played} of 500");

        let calm_start = t0 + Duration::from_secs(10);
        simulate(&mut jb, calm_start, 600, 500, 0);
        assert!(
            jb.target_delay() <= 25 * MS,
            "target {:?}",
            jb.target_delay()
        );
        assert!(
            jb.stats().accelerated > 0,
            "queued audio was played faster, back to the target"
        );
    }

    #[test]
    fn holds_at_most_its_capacity_when_nobody_pops() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        for seq in 0..100u16 {
            push(&mut jb, seq, t0 + FRAME_DURATION * u32::from(seq));
        }
        assert_eq!(jb.len(), JitterBuffer::capacity_packets());
        assert_eq!(
            jb.stats().overflow_dropped,
            100 - JitterBuffer::capacity_packets() as u64
        );
        // Playout starts at the oldest packet kept.
        let kept_first = 100 - JitterBuffer::capacity_packets() as u16;
        assert_eq!(
            jb.pop(t0 + Duration::from_secs(3)),
            Playout::Packet(payload(kept_first))
        );
    }

    #[test]
    fn a_sequence_jump_restarts_the_stream() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        let (_, now) = start(&mut jb, t0, &[1000, 1001]);
        // A far-away sequence number (sender restarted) is a new stream, not "late".
        assert_eq!(push(&mut jb, 20, now), PushOutcome::Queued);
        let target = jb.target_delay();
        assert_eq!(jb.pop(now), Playout::Empty);
        assert_eq!(jb.pop(now + target), Playout::Packet(payload(20)));
    }
}
