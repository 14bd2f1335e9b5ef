//! The pacer: outgoing video leaves at a rate, in small bursts, and audio never waits
//! behind it.
//!
//! Shaped like libwebrtc's `PacingController`:
//! - video (retransmissions included) is metered at [`PACING_FACTOR`] times the
//!   congestion controller's estimate (`kDefaultPaceMultiplier`), in bursts of at most
//!   [`BURST_INTERVAL`] at that rate (its `send_burst_interval`) and never under
//!   [`MIN_BURST_BITS`];
//! - audio is not queued (`pace_audio` off): it leaves the moment it comes, and its bits
//!   are charged to the same budget, so the video after it makes room.
//!
//! - queued video never takes longer than [`MAX_QUEUE_TIME`] to leave: the rate rises to
//!   drain it in time (`kMaxExpectedQueueLength`).
//!
//! One thing libwebrtc does not do: the video rate is also held to the bottleneck's rate
//! where paced packet pairs have measured one ([`LinkCeiling`]), and to the start
//! estimate until they have. At 2.5x the estimate, a keyframe larger than a narrow link's
//! queue (a 480x360 IDR is 6.3 kB, a 300 kbit/s link's 100 ms queue holds 3.75 kB)
//! overflows it, and its drop-tail takes the audio packets that arrive behind it. Held
//! to the link's rate, the keyframe waits here instead, where audio passes it.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Pacer, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::link_rate::LinkCeiling;

/// How much faster than the estimate video may be sent (libwebrtc: 2.5).
pub const PACING_FACTOR: f64 = 2.5;
/// The longest run of video sent at once after an idle spell, in time at the pacing rate
/// (libwebrtc's default `send_burst_interval`).
pub const BURST_INTERVAL: Duration = Duration::from_millis(40);
/// The smallest burst: two full-size packets, the pair whose spread at the receiver
/// measures the link ([`super::link_rate`]).
pub const MIN_BURST_BITS: f64 = 2.0 * 1500.0 * 8.0;
/// Queued video leaves in runs of this many packets sent back to back, so that a
/// keyframe queued behind a narrow link still gives one pair per run for the link-rate
/// measurement ([`super::link_rate`]); one at a time, only each frame's first burst would.
pub const RELEASE_RUN: usize = 2;
/// The longest the oldest queued video packet may wait: when the queue would take longer
/// at the pacing rate, the rate rises to send it all by then (libwebrtc's
/// `kMaxExpectedQueueLength`), so a queue never grows into seconds of latency.
pub const MAX_QUEUE_TIME: Duration = Duration::from_secs(2);
/// Added to each release time the pacer asks to be woken at.
const ROUNDING_MARGIN: Duration = Duration::from_micros(1);
/// Video packets held at most; beyond it new ones are dropped (NACK repairs them once the
/// queue has drained). At 2.5 Mbit/s a full queue of full-size packets is 16 s.
pub const QUEUE_LIMIT: usize = 4096;

/// An interceptor for [`rtc::interceptor::Slot::Pacer`]: audio RTP and all RTCP pass at
/// once, the rest of the RTP is released at [`PacedRate::bps`]; inbound packets pass
/// untouched (the estimate riding them is read).
pub struct AudioFirstPacer {
    bucket: Pacer,
    rate: PacedRate,
    /// SSRCs of the local audio streams.
    audio: HashSet<u32>,
    /// Video waiting for budget, oldest first (each packet's `now` is when it came).
    queue: VecDeque<TaggedPacket>,
    /// The bits in `queue`.
    queued_bits: f64,
    /// Released, to the network.
    out: VecDeque<TaggedPacket>,
    /// From the network, untouched.
    inbound: VecDeque<TaggedPacket>,
    dropped: u64,
}

/// What the pacing rate follows.
#[derive(Debug, Clone)]
pub struct PacedRate {
    /// The congestion controller's estimate, bit/s.
    pub estimate_bps: f64,
    /// The rate held to until the link has been measured, bit/s (the start estimate).
    pub unmeasured_cap_bps: f64,
    /// The link's measured rate, shared with the congestion controller.
    pub link: LinkCeiling,
}

impl PacedRate {
    /// The video pacing rate, bit/s: [`PACING_FACTOR`] times the estimate, held to the
    /// link's ceiling (or to `unmeasured_cap_bps` before there is one), never under the
    /// estimate itself.
    pub fn bps(&self) -> f64 {
        let cap = self.link.get().unwrap_or(self.unmeasured_cap_bps);
        (PACING_FACTOR * self.estimate_bps).min(cap.max(self.estimate_bps))
    }
}

impl AudioFirstPacer {
    /// A pacer starting from `rate`.
    pub fn new(rate: PacedRate) -> Self {
        let bps = rate.bps();
        Self {
            bucket: Pacer::new(bps).with_burst_bits(burst_bits(bps)),
            rate,
            audio: HashSet::new(),
            queue: VecDeque::new(),
            queued_bits: 0.0,
            out: VecDeque::new(),
            inbound: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Video packets waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Follows the current rate (raised to drain the queue within [`MAX_QUEUE_TIME`] of
    /// its oldest packet's arrival) and refills the budget up to `now` at it.
    fn refill(&mut self, now: Instant) {
        let bps = self.rate.bps().max(self.drain_bps(now));
        if bps != self.bucket.target_bitrate() {
            self.bucket.set_target_bitrate(bps);
            self.bucket = self.bucket.clone().with_burst_bits(burst_bits(bps));
        }
        self.bucket.refill(now);
    }

    /// Releases the queued video the budget allows at `now`, [`RELEASE_RUN`] packets at a
    /// time.
    fn release(&mut self, now: Instant) {
        self.refill(now);
        while !self.queue.is_empty() {
            let (count, bits) = self.next_run();
            if !self.bucket.can_release(bits) {
                break;
            }
            self.bucket.consume(bits);
            self.queued_bits = (self.queued_bits - bits).max(0.0);
            for mut packet in self.queue.drain(..count) {
                packet.now = now;
                self.out.push_back(packet);
            }
        }
    }

    /// The rate that sends the whole queue before its oldest packet has waited
    /// [`MAX_QUEUE_TIME`], bit/s (0 for an empty queue).
    fn drain_bps(&self, now: Instant) -> f64 {
        let Some(oldest) = self.queue.front() else {
            return 0.0;
        };
        let left = MAX_QUEUE_TIME
            .saturating_sub(now.saturating_duration_since(oldest.now))
            .max(Duration::from_millis(1));
        self.queued_bits / left.as_secs_f64()
    }

    /// The packets at the head of the queue that leave together, and their bits.
    fn next_run(&self) -> (usize, f64) {
        let count = self.queue.len().min(RELEASE_RUN);
        (count, self.queue.iter().take(count).map(bits_of).sum())
    }

    fn is_audio(&self, packet: &TaggedPacket) -> bool {
        matches!(&packet.message.packet, Packet::Rtp(rtp) if self.audio.contains(&rtp.header.ssrc))
    }
}

/// The burst at `bps`: [`BURST_INTERVAL`] of it, at least [`MIN_BURST_BITS`].
fn burst_bits(bps: f64) -> f64 {
    (bps * BURST_INTERVAL.as_secs_f64()).max(MIN_BURST_BITS)
}

/// An RTP packet's size in bits (anything else is not metered: 0).
fn bits_of(packet: &TaggedPacket) -> f64 {
    match &packet.message.packet {
        Packet::Rtp(rtp) => (rtp.marshal_size() * 8) as f64,
        _ => 0.0,
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for AudioFirstPacer {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.rate.estimate_bps = *bits_per_second;
        }
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if !matches!(msg.message.packet, Packet::Rtp(_)) {
            self.out.push_back(msg);
            return Ok(());
        }
        if self.is_audio(&msg) {
            self.refill(msg.now);
            self.bucket.consume(bits_of(&msg));
            self.out.push_back(msg);
            return Ok(());
        }
        let now = msg.now;
        if self.queue.len() >= QUEUE_LIMIT {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::debug!(dropped = self.dropped, "pacer queue full; video dropped");
            }
            return Ok(());
        }
        self.queued_bits += bits_of(&msg);
        self.queue.push_back(msg);
        self.release(now);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.out.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.release(now);
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        if self.queue.is_empty() {
            return None;
        }
        // A microsecond late: a timer at the exact instant can find the budget a rounding
        // error short, and would be asked for again at the same instant.
        self.bucket
            .releasable_at(self.next_run().1)
            .map(|at| at + ROUNDING_MARGIN)
    }
}

impl Interceptor for AudioFirstPacer {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if info.mime_type.to_ascii_lowercase().starts_with("audio/") {
            self.audio.insert(info.ssrc);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.audio.remove(&info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtp;
    use rtc::shared::TransportContext;

    const AUDIO: u32 = 1;
    const VIDEO: u32 = 2;

    fn pacer(estimate_bps: f64, link: &LinkCeiling) -> AudioFirstPacer {
        let mut p = AudioFirstPacer::new(PacedRate {
            estimate_bps,
            unmeasured_cap_bps: 300_000.0,
            link: link.clone(),
        });
        p.bind_local_stream(&StreamInfo {
            ssrc: AUDIO,
            mime_type: "audio/opus".into(),
            ..Default::default()
        });
        p.bind_local_stream(&StreamInfo {
            ssrc: VIDEO,
            mime_type: "video/H264".into(),
            ..Default::default()
        });
        p
    }

    /// An RTP packet of `ssrc` with `payload` bytes (12 more of header) written at `now`.
    fn rtp(ssrc: u32, sequence_number: u16, payload: usize, now: Instant) -> TaggedPacket {
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                ssrc,
                sequence_number,
                ..Default::default()
            },
            payload: vec![0u8; payload].into(),
        };
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    /// (ssrc, sequence number, release time) of everything released so far.
    fn drain(p: &mut AudioFirstPacer) -> Vec<(u32, u16, Instant)> {
        std::iter::from_fn(|| p.poll_write())
            .map(|m| match m.message.packet {
                Packet::Rtp(r) => (r.header.ssrc, r.header.sequence_number, m.now),
                _ => (0, 0, m.now),
            })
            .collect()
    }

    /// Runs `p`'s timer until its queue is empty (at most `limit` wake-ups).
    fn run_timer(p: &mut AudioFirstPacer, limit: usize) -> Vec<(u32, u16, Instant)> {
        let mut released = Vec::new();
        for _ in 0..limit {
            let Some(at) = p.poll_timeout() else { break };
            p.handle_timeout(at).unwrap();
            released.extend(drain(p));
        }
        released
    }

    #[test]
    fn the_rate_is_held_to_the_link_once_measured_and_to_the_start_before() {
        let link = LinkCeiling::default();
        let mut rate = PacedRate {
            estimate_bps: 240_000.0,
            unmeasured_cap_bps: 300_000.0,
            link: link.clone(),
        };
        assert_eq!(rate.bps(), 300_000.0);
        link.set(260_000.0);
        assert_eq!(rate.bps(), 260_000.0);
        // A fast link: 2.5x the estimate.
        link.set(20_000_000.0);
        assert_eq!(rate.bps(), 600_000.0);
        // Never under the estimate, whatever the ceiling says.
        rate.estimate_bps = 400_000.0;
        link.set(100_000.0);
        assert_eq!(rate.bps(), 400_000.0);
        // Pairs that measured no bottleneck (jitter): 2.5x the estimate.
        link.set(f64::INFINITY);
        assert_eq!(rate.bps(), 1_000_000.0);
    }

    #[test]
    fn a_keyframe_leaves_at_the_link_rate_and_audio_passes_it() {
        let link = LinkCeiling::default();
        link.set(250_000.0);
        let mut p = pacer(240_000.0, &link);
        let t0 = Instant::now();
        // Six 1 000-byte packets of a keyframe (1 012 on the wire each).
        for seq in 0..6 {
            p.handle_write(rtp(VIDEO, seq, 1000, t0)).unwrap();
        }
        // The first burst leaves at once: two full-size packets' worth.
        let first = drain(&mut p);
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(p.queued(), 4);
        // Audio written 5 ms later leaves at once, ahead of the queued video.
        let t5 = t0 + Duration::from_millis(5);
        p.handle_write(rtp(AUDIO, 0, 100, t5)).unwrap();
        assert_eq!(drain(&mut p), vec![(AUDIO, 0, t5)]);
        // The rest follows in pairs at 250 kbit/s, 8 096 bits a packet, the audio's 896
        // bits charged to the same budget: the last pair leaves once the link's rate has
        // paid for all but the first burst's 24 000 bits, 64.8 ms after the one before.
        let rest = run_timer(&mut p, 100);
        let seqs: Vec<u16> = rest.iter().map(|r| r.1).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5]);
        assert_eq!(rest[0].2, rest[1].2, "a pair leaves back to back");
        assert_eq!(rest[2].2, rest[3].2, "a pair leaves back to back");
        let took = rest[3].2.duration_since(t0).as_secs_f64();
        let expected = (6.0 * 8096.0 + 896.0 - 24_000.0) / 250_000.0;
        assert!((took - expected).abs() < 0.002, "{took} vs {expected}");
        let gap = rest[2].2.duration_since(rest[1].2).as_secs_f64();
        assert!((gap - 2.0 * 8096.0 / 250_000.0).abs() < 0.001, "{gap}");
    }

    #[test]
    fn the_estimate_riding_inbound_packets_sets_the_rate() {
        let link = LinkCeiling::default();
        link.set(50_000_000.0);
        let mut p = pacer(300_000.0, &link);
        let estimate =
            AttributedPacket::new(Packet::Rtcp(vec![])).with(Attribute::TargetBitrateChanged {
                bits_per_second: 2_000_000.0,
            });
        let t0 = Instant::now();
        p.handle_timeout(t0).unwrap();
        p.handle_read(TaggedPacket {
            now: t0,
            transport: TransportContext::default(),
            message: estimate,
        })
        .unwrap();
        assert!(p.poll_read().is_some(), "inbound packets pass");
        // 5 Mbit/s: a burst of 40 ms is 200 000 bits, so after an idle 100 ms a 20-packet
        // frame leaves at once.
        let later = t0 + Duration::from_millis(100);
        for seq in 0..20 {
            p.handle_write(rtp(VIDEO, seq, 1000, later)).unwrap();
        }
        assert_eq!(drain(&mut p).len(), 20);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn a_queue_the_rate_would_take_too_long_to_send_drains_within_the_limit() {
        let link = LinkCeiling::default();
        link.set(100_000.0);
        let mut p = pacer(100_000.0, &link);
        let t0 = Instant::now();
        // 40 packets of 8 096 bits: 3 s at 100 kbit/s after the first burst.
        for seq in 0..40 {
            p.handle_write(rtp(VIDEO, seq, 1000, t0)).unwrap();
        }
        let mut released = drain(&mut p);
        released.extend(run_timer(&mut p, 200));
        assert_eq!(released.len(), 40);
        let took = released[39].2.duration_since(t0);
        assert!(took <= MAX_QUEUE_TIME, "{took:?}");
        // Still paced, not dumped.
        assert!(took > MAX_QUEUE_TIME / 2, "{took:?}");
    }

    #[test]
    fn rtcp_is_never_held() {
        let link = LinkCeiling::default();
        let mut p = pacer(100_000.0, &link);
        let t0 = Instant::now();
        for seq in 0..4 {
            p.handle_write(rtp(VIDEO, seq, 1200, t0)).unwrap();
        }
        drain(&mut p);
        p.handle_write(TaggedPacket {
            now: t0,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![])),
        })
        .unwrap();
        assert_eq!(drain(&mut p).len(), 1);
        assert!(p.queued() > 0);
    }
}
