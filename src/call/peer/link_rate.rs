//! A ceiling on the congestion controller's estimate: the bottleneck's rate, read from
//! how far apart paced packets arrive (packet-pair dispersion).
//!
//! GCC climbs from its start rate at 8 % a second until its delay or loss signal sees
//! congestion. Where the link is no faster than the start rate, the climb overshoots it
//! before either signal fires: on a 300 kbit/s link with a 100 ms queue the estimate
//! reached 345-361 kbit/s 2-3 s into each call, the queue overflowed and took three audio
//! packets in a row (BENCHMARKS, "Keyframes that fit and repairs counted"). libwebrtc
//! finds the link first, with probe clusters sent at 3 and 6 times the start rate
//! (`ProbeController`) whose arrival spacing gives the rate (`ProbeBitrateEstimator`).
//! rtc-interceptor 0.21 has no prober, but our pacer ([`super::pacing`]) lets each video
//! frame start with a burst of two or more packets sent back to back: two such packets
//! cannot arrive closer together than the bottleneck takes to send the second.
//! [`LinkRateCapped`] takes that rate from the TWCC reports of every such pair, holds the
//! estimate to [`LINK_SHARE`] of it, and shares it with the pacer ([`LinkCeiling`]),
//! which holds video to it.
//!
//! Only pairs sent faster than the pacer ever sends count ([`BURST_FACTOR`]): pairs the
//! pacer spaced would measure its own rate, and the pacer, held to the ceiling, would
//! then pull the ceiling down with it. A back-to-back pair on a fast link arrives as fast
//! as it left, which sets the ceiling far above anything the estimate reaches. The
//! ceiling is the median of the last [`WINDOW`]'s pairs, and infinite when they scatter
//! ([`SCATTER_RATIO`]): independent per-packet delays (jitter) space the two packets of
//! a pair by chance, not by a link's rate. Before that test, ±30 ms of jitter on an
//! unlimited link read as a 224-230 kbit/s ceiling and held video to it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

/// Smallest packet that ends a pair: at 300 kbit/s a 200-byte packet takes 5.3 ms to
/// send, twenty times TWCC's 0.25 ms arrival resolution and five times a forwarder's
/// scheduling. At 500 bytes, a sender whose frames fit one packet each and whose
/// keyframes are two (the test pattern: 0.8-1.4 kB) never measured its link: the start
/// ramp waited 9 s on loopback, and behind 300 kbit/s its rate was never held to the
/// link's.
pub const PAIR_MIN_BYTES: usize = 200;
/// A pair counts only if it left at least this many times faster than the estimate:
/// faster than the pacer sends anything it spaces
/// ([`PACING_FACTOR`](super::pacing::PACING_FACTOR) times the estimate at most), so only
/// packets of one burst, sent back to back.
pub const BURST_FACTOR: f64 = 2.0 * super::pacing::PACING_FACTOR;
/// The resolution of TWCC arrival times (draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §3.1.5: receive deltas are multiples of 250 µs). A pair whose packets carry the same
/// arrival time is taken to have arrived this far apart: at 1 200 bytes, 38 Mbit/s, a
/// lower bound of the link's rate rather than no sample. Without it, a call's first
/// keyframe on a fast link gave one pair where two are needed, the frames after it (one
/// packet each at the start rate) none, and the ceiling waited 6-7 s.
pub const TWCC_ARRIVAL_RESOLUTION: Duration = Duration::from_micros(250);
/// How far back pairs are kept.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Pairs needed in the window before the ceiling applies: a call's first keyframe gives
/// two or more (its parameter sets' packet is too small to end a pair), and the median
/// of two is the faster one.
pub const MIN_PAIRS: usize = 2;
/// Share of the measured link rate the estimate may reach: room for the headers the
/// reports do not count (UDP/IP, SRTP's tag: a fifth of a small audio packet) and for a
/// queue to drain.
pub const LINK_SHARE: f64 = 0.9;

/// Pairs whose upper-quartile rate is over this many times their lower quartile's were
/// spaced by arrival jitter, not by a bottleneck, and set no ceiling. A bottleneck spaces
/// each pair by the time it takes to send the second packet, the same for every pair of
/// a size (a forwarder's scheduling adds a millisecond to the 27 ms a 1 000-byte packet
/// takes at 300 kbit/s); independent per-packet delays of ±30 ms spread pairs over
/// 0-60 ms, whose quartiles lie 3.75 times apart.
pub const SCATTER_RATIO: f64 = 2.0;
/// Under this many pairs there are no quartiles to speak of: all of them must then lie
/// within [`FEW_PAIRS_RATIO`] of each other. A call's first keyframe gives two or three
/// pairs; through a bottleneck they agree within a few per cent, while two pairs spread
/// by ±30 ms of jitter agree that closely about one time in seven (three: one in fifty).
pub const FEW_PAIRS: usize = 4;
/// How far apart, as a ratio, [`FEW_PAIRS`] pairs may lie and still set a ceiling.
pub const FEW_PAIRS_RATIO: f64 = 1.25;

/// A queue sends packets in the order they came, so a bottleneck never reorders a burst
/// pair; independent per-packet delays (±30 ms of jitter) reorder about half of them.
/// When more than this share of the window's burst pairs arrived reordered, the in-order
/// ones are taken as spaced by chance too, however well they agree: two or three of them
/// agree within [`FEW_PAIRS_RATIO`] one time in seven to fifty, and such a ceiling (175-232
/// kbit/s on an unlimited link) queued a 30 fps sender's video in its pacer, g2g p95
/// 763 ms.
pub const MAX_REORDERED_SHARE: f64 = 0.1;
/// Most pairs kept: at high rates every frame gives several, and the median is taken
/// once per report batch.
pub const MAX_PAIRS: usize = 512;

/// A ceiling change smaller than this share is not logged.
const LOG_STEP: f64 = 0.1;

/// The last large packet that arrived, and the bytes sent after it so far.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    id: u64,
    departure: Instant,
    arrival: Duration,
    bytes_since: usize,
}

impl Anchor {
    fn at(report: &PacketReport, arrival: Duration) -> Self {
        Self {
            id: report.id,
            departure: report.departure,
            arrival,
            bytes_since: 0,
        }
    }
}

/// Link-rate samples from paced packet pairs, and the ceiling they set.
#[derive(Debug, Default)]
pub struct PairDispersion {
    anchor: Option<Anchor>,
    /// Reports seen last, to tell a gap in the ids (an unreported packet) from a run.
    last_id: Option<u64>,
    /// (when, bit/s), oldest first; at most [`MAX_PAIRS`].
    samples: VecDeque<(Instant, f64)>,
    /// When burst pairs arrived second packet first, oldest first; at most [`MAX_PAIRS`].
    reordered: VecDeque<Instant>,
    /// [`Self::ceiling_bps`], computed when the samples change.
    ceiling: Option<f64>,
}

impl PairDispersion {
    /// Takes a batch of reports (in send order) at `now`, with the estimate they were
    /// sent under (`target_bps`), and records the pairs among them.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport], target_bps: f64) {
        for report in reports {
            // A loss or a gap in the ids breaks the run: what lies between is unknown.
            let run = self.last_id.is_some_and(|id| report.id == id + 1);
            self.last_id = Some(report.id);
            let Some(arrival) = report.arrival.filter(|_| report.arrived) else {
                self.anchor = None;
                continue;
            };
            let anchor = self.anchor.filter(|_| run);
            if report.size < PAIR_MIN_BYTES {
                self.anchor = anchor.map(|a| Anchor {
                    bytes_since: a.bytes_since + report.size,
                    ..a
                });
                continue;
            }
            match anchor.and_then(|a| pair_outcome(&a, report, arrival, target_bps)) {
                Some(Pair::Rate(rate)) => {
                    tracing::trace!(kbps = rate / 1000.0, id = report.id, "packet pair");
                    if self.samples.len() == MAX_PAIRS {
                        self.samples.pop_front();
                    }
                    self.samples.push_back((now, rate));
                }
                Some(Pair::Reordered) => {
                    tracing::trace!(id = report.id, "packet pair reordered");
                    if self.reordered.len() == MAX_PAIRS {
                        self.reordered.pop_front();
                    }
                    self.reordered.push_back(now);
                }
                None => {}
            }
            self.anchor = Some(Anchor::at(report, arrival));
        }
        let expired = |at: &Instant| now.saturating_duration_since(*at) > WINDOW;
        while self.samples.front().is_some_and(|(at, _)| expired(at)) {
            self.samples.pop_front();
        }
        while self.reordered.front().is_some_and(expired) {
            self.reordered.pop_front();
        }
        let reordered = self.reordered.len() as f64;
        let in_order = self.samples.len() as f64;
        let reordering = reordered > MAX_REORDERED_SHARE * (reordered + in_order);
        self.ceiling = (self.samples.len() >= MIN_PAIRS).then(|| {
            let mut rates: Vec<f64> = self.samples.iter().map(|(_, r)| *r).collect();
            rates.sort_by(f64::total_cmp);
            let quartile = |q: usize| rates[(rates.len() - 1) * q / 4];
            let scattered = reordering
                || if rates.len() < FEW_PAIRS {
                    quartile(4) > FEW_PAIRS_RATIO * quartile(0)
                } else {
                    quartile(3) > SCATTER_RATIO * quartile(1)
                };
            if scattered {
                f64::INFINITY
            } else {
                // The upper median: of two pairs, the faster ([`MIN_PAIRS`]).
                rates[rates.len() / 2] * LINK_SHARE
            }
        });
    }

    /// The ceiling, bit/s: [`LINK_SHARE`] of the median pair rate of the last
    /// [`WINDOW`], once there are [`MIN_PAIRS`]; infinite when the pairs scatter over
    /// [`SCATTER_RATIO`] (over [`FEW_PAIRS_RATIO`] when fewer than [`FEW_PAIRS`]) or
    /// more than [`MAX_REORDERED_SHARE`] of them arrived reordered: no bottleneck spaced
    /// them.
    pub fn ceiling_bps(&self) -> Option<f64> {
        self.ceiling
    }
}

/// What a burst pair tells.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pair {
    /// It arrived in order at this rate, bit/s.
    Rate(f64),
    /// Its second packet arrived first.
    Reordered,
}

/// What a pair says, if it left as a burst.
fn pair_outcome(
    anchor: &Anchor,
    second: &PacketReport,
    arrival: Duration,
    target_bps: f64,
) -> Option<Pair> {
    debug_assert!(second.id > anchor.id);
    let bits = (anchor.bytes_since + second.size) as f64 * 8.0;
    let sent = second
        .departure
        .saturating_duration_since(anchor.departure)
        .as_secs_f64();
    let burst = sent == 0.0 || bits / sent >= BURST_FACTOR * target_bps;
    if !burst {
        return None;
    }
    // Two packets stamped with the same arrival tick arrived at least as fast as one
    // tick allows: on a fast link most pairs do.
    Some(match arrival.checked_sub(anchor.arrival) {
        Some(spread) => Pair::Rate(bits / spread.max(TWCC_ARRIVAL_RESOLUTION).as_secs_f64()),
        None => Pair::Reordered,
    })
}

/// The last link-rate ceiling measured ([`PairDispersion::ceiling_bps`]), shared between
/// the congestion controller that measures it and the pacer that holds video to it: bit/s,
/// `None` until the first measurement, infinite while the pairs measure no bottleneck.
/// Unlike the controller's own cap it does not expire when the pairs of the last
/// [`WINDOW`] run out: the last measurement stands.
#[derive(Debug, Clone, Default)]
pub struct LinkCeiling(Arc<AtomicU64>);

impl LinkCeiling {
    /// The ceiling, bit/s, once measured.
    pub fn get(&self) -> Option<f64> {
        let bits = self.0.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Records a measured ceiling (bit/s, positive; infinite when the pairs measured no
    /// bottleneck; others are ignored).
    pub fn set(&self, bps: f64) {
        if bps > 0.0 {
            self.0.store(bps.to_bits(), Ordering::Relaxed);
        }
    }
}

/// A congestion controller (`E`, GCC) whose estimate is held under the link rate that
/// paced packet pairs measure ([`PairDispersion`]), and never under `min_bps`.
pub struct LinkRateCapped<E> {
    inner: E,
    pairs: PairDispersion,
    min_bps: f64,
    /// The ceiling last logged, bit/s.
    logged: Option<f64>,
    shared: LinkCeiling,
}

impl<E: BandwidthEstimator> LinkRateCapped<E> {
    /// Wraps `inner`; the estimate is never held below `min_bps`. The ceiling measured is
    /// published to `shared` (for the pacer, and for [`super::start_ramp`], which `inner`
    /// may hold).
    pub fn new(inner: E, min_bps: f64, shared: LinkCeiling) -> Self {
        Self {
            inner,
            pairs: PairDispersion::default(),
            min_bps,
            logged: None,
            shared,
        }
    }
}

impl<E: BandwidthEstimator> BandwidthEstimator for LinkRateCapped<E> {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let target = self.target_bitrate();
        self.pairs.on_reports(now, reports, target);
        self.inner.on_reports(now, reports);
        let ceiling = self.pairs.ceiling_bps();
        if let Some(bps) = ceiling {
            self.shared.set(bps);
        }
        let moved = match (ceiling, self.logged) {
            (Some(new), Some(old)) => (new / old - 1.0).abs() > LOG_STEP,
            (new, old) => new.is_some() != old.is_some(),
        };
        if moved {
            self.logged = ceiling;
            tracing::debug!(
                ceiling_kbps = ceiling.map(|c| c / 1000.0),
                estimate_kbps = self.inner.target_bitrate() / 1000.0,
                "link rate from packet pairs"
            );
        }
    }

    fn target_bitrate(&self) -> f64 {
        let estimate = self.inner.target_bitrate();
        match self.pairs.ceiling_bps() {
            Some(ceiling) => estimate.min(ceiling.max(self.min_bps)),
            None => estimate,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::super::report_fixture::report;
    use super::*;
    use rtc::interceptor::ConstantBitrate;

    /// A back-to-back pair of 1 000-byte packets, ids `id` and `id + 1`, sent at `sent_ms`;
    /// the first arrives 20 ms later, the second `spread_ms` after it.
    fn pair(id: u64, t0: Instant, sent_ms: f64, spread_ms: f64) -> [PacketReport; 2] {
        let arrival = sent_ms + 20.0;
        [
            report(id, 1000, t0, sent_ms, Some(arrival)),
            report(id + 1, 1000, t0, sent_ms + 0.01, Some(arrival + spread_ms)),
        ]
    }

    /// A frame of `n` 1 000-byte packets sent in pairs 0.01 ms apart, the pairs 24 ms apart
    /// (the pacer's two-packet bursts at 2.5x 300 kbit/s), through a link of `link_kbps`
    /// that was idle: each arrives once the link has sent it.
    fn frame(first_id: u64, n: u64, t0: Instant, at_ms: f64, link_kbps: f64) -> Vec<PacketReport> {
        let service_ms = 8_000.0 / link_kbps;
        let mut link_free = at_ms;
        (0..n)
            .map(|i| {
                let sent = at_ms + 24.0 * (i / 2) as f64 + 0.01 * (i % 2) as f64;
                link_free = link_free.max(sent) + service_ms;
                report(first_id + i, 1000, t0, sent, Some(link_free + 20.0))
            })
            .collect()
    }

    #[test]
    fn a_frame_through_a_slow_link_sets_the_ceiling_at_its_rate() {
        let t0 = Instant::now();
        let shared = LinkCeiling::default();
        let mut capped =
            LinkRateCapped::new(ConstantBitrate::new(300_000.0), 100_000.0, shared.clone());
        // Three packets, two bursts: one pair (the packets between bursts were spaced by
        // the pacer and make none), not enough.
        capped.on_reports(t0, &frame(0, 3, t0, 0.0, 300.0));
        assert_eq!(capped.target_bitrate(), 300_000.0);
        assert_eq!(shared.get(), None);
        capped.on_reports(t0, &frame(3, 2, t0, 120.0, 300.0));
        let target = capped.target_bitrate();
        assert!((target - 270_000.0).abs() < 1_000.0, "{target}");
        assert_eq!(shared.get(), Some(target));
    }

    #[test]
    fn a_link_faster_than_the_pacer_sets_a_ceiling_far_above_the_estimate() {
        let t0 = Instant::now();
        let mut capped = LinkRateCapped::new(
            ConstantBitrate::new(300_000.0),
            100_000.0,
            LinkCeiling::default(),
        );
        capped.on_reports(t0, &frame(0, 6, t0, 0.0, 10_000.0));
        assert_eq!(capped.target_bitrate(), 300_000.0);
        // Each burst's pair arrived 0.8 ms apart: the 10 Mbit/s link, not the pacer's
        // 667 kbit/s between bursts.
        let ceiling = capped.pairs.ceiling_bps().unwrap();
        assert!((ceiling - 9_000_000.0).abs() < 10_000.0, "{ceiling}");
    }

    /// A call's first keyframe on a fast link (as measured in the lab): two packets with
    /// the same arrival tick, then a pair a tick apart. Both count, and set the ceiling.
    #[test]
    fn pairs_within_one_arrival_tick_measure_a_fast_link() {
        let t0 = Instant::now();
        let mut pairs = PairDispersion::default();
        let keyframe = [
            report(0, 1208, t0, 0.0, Some(1.25)),
            report(1, 1208, t0, 0.05, Some(1.25)),
            report(2, 1208, t0, 55.0, Some(56.25)),
            report(3, 1057, t0, 55.0, Some(56.5)),
        ];
        pairs.on_reports(t0, &keyframe, 300_000.0);

        let rates: Vec<f64> = pairs.samples.iter().map(|(_, r)| *r).collect();
        assert_eq!(rates.len(), 2, "{rates:?}");
        assert!((rates[0] - 1208.0 * 8.0 / 250e-6).abs() < 1.0, "{rates:?}");
        assert!((rates[1] - 1057.0 * 8.0 / 250e-6).abs() < 1.0, "{rates:?}");
        let ceiling = pairs.ceiling_bps().expect("two pairs set a ceiling");
        assert!(ceiling > 30_000_000.0, "{ceiling}");
    }

    /// Two pairs that agree within 1.25x, as two spread by jitter do one time in seven,
    /// set no ceiling when a third burst pair arrived reordered: no queue reorders.
    #[test]
    fn a_reordered_burst_pair_marks_agreeing_pairs_as_jitter() {
        let t0 = Instant::now();
        let mut pairs = PairDispersion::default();
        pairs.on_reports(t0, &pair(0, t0, 0.0, 30.0), 300_000.0);
        pairs.on_reports(t0, &pair(10, t0, 100.0, 33.0), 300_000.0);
        let agreeing = pairs.ceiling_bps().expect("two pairs");
        assert!(agreeing.is_finite(), "{agreeing}");

        let reordered = [
            report(20, 1000, t0, 200.0, Some(250.0)),
            report(21, 1000, t0, 200.01, Some(230.0)),
        ];
        pairs.on_reports(t0, &reordered, 300_000.0);
        assert_eq!(pairs.samples.len(), 2);
        assert_eq!(pairs.ceiling_bps(), Some(f64::INFINITY));
    }

    #[test]
    fn losses_gaps_small_packets_and_slow_sends_make_no_pair() {
        let t0 = Instant::now();
        let mut pairs = PairDispersion::default();
        let batch = [
            report(0, 1000, t0, 0.0, Some(20.0)),
            // Lost: no pair across it.
            report(1, 1000, t0, 12.0, None),
            report(2, 1000, t0, 24.0, Some(80.0)),
            // A gap in the ids: packet 3 was never reported.
            report(4, 1000, t0, 36.0, Some(120.0)),
            // Sent 100 ms after the last: the encoder's spacing, not a burst.
            report(5, 1000, t0, 136.0, Some(160.0)),
            // Too small to end a pair (its bytes count toward the next one).
            report(6, 100, t0, 138.0, Some(161.0)),
        ];
        pairs.on_reports(t0, &batch, 300_000.0);
        assert!(pairs.samples.is_empty(), "{:?}", pairs.samples);
        // 100 + 1100 bytes sent 4 ms after packet 5, arriving 30 ms after it: 320 kbit/s.
        pairs.on_reports(t0, &[report(7, 1100, t0, 140.0, Some(190.0))], 300_000.0);
        assert_eq!(pairs.samples.len(), 1);
        assert!((pairs.samples[0].1 - 320_000.0).abs() < 1.0);
    }

    #[test]
    fn the_median_ignores_squeezed_and_spread_pairs_and_old_ones_expire() {
        let t0 = Instant::now();
        let mut pairs = PairDispersion::default();
        // Pairs of 1 000 bytes sent 1 ms apart, arriving 4, 40, 26, 27 and 28 ms apart:
        // 2 000 and 200 kbit/s are jitter, the link is near 300.
        let mut id = 0;
        let mut arrival = 0.0;
        for spread in [4.0, 40.0, 26.0, 27.0, 28.0] {
            // 50 ms between pairs: no pair across two of them.
            let sent = id as f64 * 50.0;
            let first = report(id, 1000, t0, sent, Some(arrival));
            arrival += spread;
            let second = report(id + 1, 1000, t0, sent + 1.0, Some(arrival));
            pairs.on_reports(t0, &[first, second], 300_000.0);
            id += 2;
            arrival += 100.0;
        }
        let ceiling = pairs.ceiling_bps().unwrap();
        assert!(
            (ceiling - 0.9 * 8_000_000.0 / 27.0).abs() < 1.0,
            "{ceiling}"
        );
        pairs.on_reports(t0 + WINDOW + Duration::from_millis(1), &[], 300_000.0);
        assert_eq!(pairs.ceiling_bps(), None);
    }

    /// ±30 ms of independent per-packet delay on a link with no bottleneck spaces pairs
    /// anywhere from nothing to 60 ms: a median of them would read as a slow link.
    #[test]
    fn pairs_scattered_by_jitter_set_no_ceiling() {
        let t0 = Instant::now();
        let shared = LinkCeiling::default();
        let mut capped =
            LinkRateCapped::new(ConstantBitrate::new(600_000.0), 100_000.0, shared.clone());
        for (n, spread) in [3.0, 41.0, 12.0, 8.0, 30.0, 17.0, 55.0, 22.0]
            .into_iter()
            .enumerate()
        {
            // Ids 3 apart: a gap between frames, no pair across them.
            capped.on_reports(t0, &pair(3 * n as u64, t0, n as f64 * 66.0, spread));
        }
        assert_eq!(capped.pairs.samples.len(), 8);
        assert_eq!(capped.pairs.ceiling_bps(), Some(f64::INFINITY));
        assert_eq!(shared.get(), Some(f64::INFINITY));
        assert_eq!(capped.target_bitrate(), 600_000.0);
    }

    /// Two or three pairs (a first keyframe's) set a ceiling only if they agree closely.
    #[test]
    fn a_few_pairs_set_a_ceiling_only_when_they_agree() {
        let t0 = Instant::now();
        let ceiling_of = |spreads: &[f64]| {
            let mut pairs = PairDispersion::default();
            for (n, &spread) in spreads.iter().enumerate() {
                pairs.on_reports(
                    t0,
                    &pair(3 * n as u64, t0, n as f64 * 66.0, spread),
                    300_000.0,
                );
            }
            pairs.ceiling_bps()
        };
        // Through a 300 kbit/s bottleneck: 26.7 ms each, give or take a millisecond; the
        // faster of two sets the ceiling.
        let ceiling = ceiling_of(&[27.5, 26.0]).expect("two pairs");
        assert!(
            (ceiling - 0.9 * 8_000_000.0 / 26.0).abs() < 1.0,
            "{ceiling}"
        );
        // Spread by jitter.
        assert_eq!(ceiling_of(&[8.0, 41.0]), Some(f64::INFINITY));
        assert_eq!(ceiling_of(&[20.0, 23.0, 30.0]), Some(f64::INFINITY));
    }

    #[test]
    fn the_ceiling_never_holds_the_estimate_under_the_floor() {
        let t0 = Instant::now();
        let mut capped = LinkRateCapped::new(
            ConstantBitrate::new(300_000.0),
            100_000.0,
            LinkCeiling::default(),
        );
        capped.on_reports(t0, &frame(0, 6, t0, 0.0, 50.0));
        assert_eq!(capped.target_bitrate(), 100_000.0);
    }
}
