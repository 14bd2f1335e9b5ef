//! An RTT-aware NACK generator (RFC 4585 §6.2.1 Generic NACK) for the remote streams.
//!
//! webrtc's generator (a port of pion's) NACKs every missing packet on a fixed interval
//! until it arrives: on a 300 ms path with a 20 ms interval one loss draws fifteen
//! retransmissions, which a narrow link can least afford, and with a 100 ms interval the
//! first request waits up to 100 ms. This one asks for a missing packet as soon as a gap
//! shows (after [`REORDER_GRACE`], so a merely reordered packet is not asked for), then
//! again only once a retransmission had time to come back (1.25 RTT), at most
//! [`MAX_RETRIES`] times, as libwebrtc's `NackRequester` does. The RTT comes from the
//! selected candidate pair through [`RttCell`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, Slot, StreamInfo, TaggedPacket,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;

use super::packet_map::{Direction, PacketMap};

/// How long a gap may be a reordering before its packets are asked for.
pub const REORDER_GRACE: Duration = Duration::from_millis(10);
/// Most requests for one packet: enough for a retransmission to be lost in turn a few
/// times at 10 % loss, few enough that a lost cause does not eat a narrow link.
pub const MAX_RETRIES: u8 = 6;
/// Shortest time between two requests for one packet.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(30);
/// A packet missing longer than this is given up (the jitter buffer has moved on).
pub const MAX_AGE: Duration = Duration::from_millis(1500);
/// Most packets tracked as missing per stream; a larger gap is a reset, not a loss
/// (the receiver asks for a keyframe instead).
pub const MAX_MISSING: usize = 1000;
/// RTT assumed before the first measurement.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// The current RTT, shared between the stats path that measures it and the generator.
#[derive(Debug, Clone, Default)]
pub struct RttCell(Arc<AtomicU64>);

impl RttCell {
    /// Stores a new RTT measurement.
    pub fn set(&self, rtt: Duration) {
        self.0
            .store(rtt.as_micros().max(1) as u64, Ordering::Relaxed);
    }

    /// The latest RTT, or 100 ms before the first one.
    pub fn get(&self) -> Duration {
        match self.0.load(Ordering::Relaxed) {
            0 => DEFAULT_RTT,
            us => Duration::from_micros(us),
        }
    }
}

/// One missing packet.
#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    next_request: Instant,
    /// When it was first asked for.
    first_request: Option<Instant>,
    retries: u8,
}

/// The missing packets of one stream, by extended sequence number (RFC 3550 §A.1).
#[derive(Debug, Default)]
pub struct MissingPackets {
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
    /// Smoothed time from a first request to its retransmission's arrival: the RTT the
    /// retransmissions really see, queues included (the consent-check RTT can be taken
    /// while a bottleneck's queue is empty).
    repair_time: Option<Duration>,
}

impl MissingPackets {
    /// Records an arrived packet: a jump forward opens a gap, a late one closes its own.
    pub fn on_packet(&mut self, sequence_number: u16, now: Instant) {
        let Some(highest) = self.highest else {
            self.highest = Some((1 << 16) + u64::from(sequence_number));
            return;
        };
        let delta = sequence_number.wrapping_sub(highest as u16);
        if delta >= 0x8000 {
            let back = u64::from(delta.wrapping_neg());
            let filled = self.missing.remove(&highest.saturating_sub(back));
            // Timed from the first request even if a later one brought it: that errs
            // towards waiting longer, never towards asking again too soon.
            if let Some(asked) = filled.and_then(|m| m.first_request) {
                self.observe_repair(now.saturating_duration_since(asked));
            }
            return;
        }
        let extended = highest + u64::from(delta);
        if delta > 1 {
            if usize::from(delta) - 1 > MAX_MISSING {
                self.missing.clear();
            } else {
                let first_request = now + REORDER_GRACE;
                for seq in highest + 1..extended {
                    self.missing.insert(
                        seq,
                        Missing {
                            since: now,
                            next_request: first_request,
                            first_request: None,
                            retries: 0,
                        },
                    );
                }
            }
        }
        self.highest = Some(extended);
        while self.missing.len() > MAX_MISSING {
            self.missing.pop_first();
        }
    }

    fn observe_repair(&mut self, sample: Duration) {
        self.repair_time = Some(match self.repair_time {
            None => sample,
            Some(old) => (old * 3 + sample) / 4,
        });
    }

    /// How long to wait before asking again for a packet already asked for: 1.5 times the
    /// repair time seen, at least `rtt_retry` (1.25 RTT of the candidate pair) and
    /// [`MIN_RETRY_INTERVAL`].
    pub fn retry_after(&self, rtt_retry: Duration) -> Duration {
        let repair = self.repair_time.map_or(Duration::ZERO, |r| r * 3 / 2);
        repair.max(rtt_retry).max(MIN_RETRY_INTERVAL)
    }

    /// The sequence numbers to request now; schedules their next request one
    /// [`retry_after`](Self::retry_after) later and forgets those past [`MAX_RETRIES`]
    /// or [`MAX_AGE`].
    pub fn due(&mut self, now: Instant, rtt_retry: Duration) -> Vec<u16> {
        self.missing
            .retain(|_, m| m.retries < MAX_RETRIES && now.duration_since(m.since) < MAX_AGE);
        let retry_after = self.retry_after(rtt_retry);
        let mut due = Vec::new();
        for (&seq, m) in self
            .missing
            .iter_mut()
            .filter(|(_, m)| m.next_request <= now)
        {
            m.retries += 1;
            m.first_request.get_or_insert(now);
            m.next_request = now + retry_after;
            due.push(seq as u16);
        }
        due
    }

    /// When [`due`](Self::due) next has something.
    pub fn next_due(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.next_request).min()
    }
}

/// Where the retransmission counter sits: on the write path below webrtc's NACK
/// responder (4 000), above the pacer (3 000), so it sees every retransmission once.
pub const RETRANSMISSION_COUNTER_SLOT: Slot = Slot::Custom(3_900);

/// An interceptor that counts the RTP packets webrtc's NACK responder sends again
/// (tagged [`Attribute::Retransmission`]) into `sent`; webrtc 0.21's outbound stats
/// leave `retransmittedPacketsSent` at 0.
pub fn count_retransmissions(
    sent: Arc<AtomicU64>,
) -> PacketMap<impl FnMut(TaggedPacket) -> Option<TaggedPacket> + Send + Sync + 'static> {
    PacketMap::new(Direction::Outbound, move |msg: TaggedPacket| {
        if msg.message.has(&Attribute::Retransmission) {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        Some(msg)
    })
}

/// The interceptor: watches remote RTP that negotiated `nack`, writes NACKs.
pub struct NackGenerator {
    rtt: RttCell,
    sender_ssrc: u32,
    streams: HashMap<u32, MissingPackets>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl NackGenerator {
    /// A generator that paces its retries by `rtt`.
    pub fn new(rtt: RttCell) -> Self {
        Self {
            rtt,
            sender_ssrc: rand::random(),
            streams: HashMap::new(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    /// 1.25 times the candidate pair's RTT.
    fn rtt_retry(&self) -> Duration {
        self.rtt.get() * 5 / 4
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackGenerator {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &msg.message.packet
            && let Some(stream) = self.streams.get_mut(&rtp.header.ssrc)
        {
            stream.on_packet(rtp.header.sequence_number, msg.now);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        let rtt_retry = self.rtt_retry();
        for (&media_ssrc, stream) in &mut self.streams {
            let due = stream.due(now, rtt_retry);
            if due.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc: self.sender_ssrc,
                media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&due),
            };
            self.write_queue.push_back(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack)])),
            });
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(MissingPackets::next_due)
            .min()
    }
}

impl Interceptor for NackGenerator {
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        let nack = info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty());
        if nack {
            self.streams.insert(info.ssrc, MissingPackets::default());
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
    }

    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: Duration = Duration::from_millis(50);

    #[test]
    fn a_gap_is_asked_for_after_the_reorder_grace_then_once_per_retry_interval() {
        let mut m = MissingPackets::default();
        let t0 = Instant::now();
        m.on_packet(100, t0);
        m.on_packet(103, t0);
        assert_eq!(m.due(t0, RETRY), Vec::<u16>::new());
        assert_eq!(m.next_due(), Some(t0 + REORDER_GRACE));
        let t1 = t0 + REORDER_GRACE;
        assert_eq!(m.due(t1, RETRY), vec![101, 102]);
        assert_eq!(m.due(t1 + RETRY / 2, RETRY), Vec::<u16>::new());
        m.on_packet(101, t1 + RETRY / 2);
        assert_eq!(m.due(t1 + RETRY, RETRY), vec![102]);
    }

    #[test]
    fn retries_wait_for_the_repair_time_seen_not_just_the_rtt() {
        let mut m = MissingPackets::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        m.on_packet(1, t0);
        m.on_packet(3, t0);
        assert_eq!(m.due(ms(10), RETRY), vec![2]);
        // The retransmission took 200 ms (a queue the consent RTT did not see).
        m.on_packet(2, ms(210));
        assert_eq!(m.retry_after(RETRY), Duration::from_millis(300));
        m.on_packet(5, ms(300));
        assert_eq!(m.due(ms(310), RETRY), vec![4]);
        assert_eq!(m.due(ms(310 + 299), RETRY), Vec::<u16>::new());
        assert_eq!(m.due(ms(310 + 300), RETRY), vec![4]);
    }

    #[test]
    fn a_reordered_packet_within_the_grace_is_never_asked_for() {
        let mut m = MissingPackets::default();
        let t0 = Instant::now();
        m.on_packet(7, t0);
        m.on_packet(9, t0);
        m.on_packet(8, t0 + Duration::from_millis(5));
        assert_eq!(m.next_due(), None);
        assert_eq!(m.due(t0 + Duration::from_secs(1), RETRY), Vec::<u16>::new());
    }

    #[test]
    fn requests_stop_after_the_retry_budget() {
        let mut m = MissingPackets::default();
        let t0 = Instant::now();
        m.on_packet(65_535, t0);
        m.on_packet(1, t0); // across the wrap: 0 is missing
        let mut asked = 0;
        for i in 0..50u32 {
            asked += m.due(t0 + REORDER_GRACE + RETRY * i, RETRY).len();
        }
        assert_eq!(asked, usize::from(MAX_RETRIES));
        assert_eq!(m.next_due(), None);
    }

    #[test]
    fn a_huge_jump_is_a_reset_not_a_thousand_losses() {
        let mut m = MissingPackets::default();
        let t0 = Instant::now();
        m.on_packet(0, t0);
        m.on_packet(30_000, t0);
        assert_eq!(m.next_due(), None);
        m.on_packet(30_002, t0);
        assert_eq!(m.due(t0 + REORDER_GRACE, RETRY), vec![30_001]);
    }

    #[test]
    fn the_rtt_cell_starts_at_a_default_and_keeps_the_latest() {
        let cell = RttCell::default();
        assert_eq!(cell.get(), DEFAULT_RTT);
        cell.clone().set(Duration::from_millis(7));
        assert_eq!(cell.get(), Duration::from_millis(7));
    }
}
