//! The loss half of congestion control: loss the link always has, told from loss that
//! sending caused.
//!
//! rtc-interceptor's GCC cuts its loss-based target whenever the smoothed loss is over
//! 10 % and raises it only under 2 % (draft-ietf-rmcat-gcc-02 §5.5). On a link that
//! loses a tenth of its packets at random, whatever is sent, that target only ever falls:
//! a 640x480 call on such a link held 150 kbit/s, and the ladder sent 134 of the clip's
//! 225 frames, where two Chromium peers offered 448 kbit/s and showed 229 of 230
//! (BENCHMARKS, "Impaired networks").
//!
//! libwebrtc's `LossBasedBweV2` models loss as inherent loss plus the loss that sending
//! over the link's rate causes, and takes loss up to
//! `InherentLossUpperBoundOffset + InherentLossUpperBoundBwBalance / rate` (0.05 and
//! 75 kbit/s) as inherent: sending less would not make it go away. [`inherent_loss_bound`]
//! is that bound. [`LossLimited`] keeps the delay half of the controller it wraps, which
//! is never shown a lost packet (so the wrapped loss half never limits), and puts beside
//! it a loss half that cuts only when the loss is over the bound at the current rate:
//!
//! - over the bound: the rate falls to `rate × (1 − loss / 2)` (§5.5's decrease), at most
//!   once per [`DECREASE_INTERVAL`], and the loss measured before the cut is forgotten;
//! - within it: a cut rate climbs [`INCREASE_PER_SECOND`] (libwebrtc's classic loss-based
//!   increase) and stops limiting once it passes the delay half's estimate.
//!
//! 10 % random loss is inherent up to 1.5 Mbit/s; at 300 kbit/s loss is taken as caused by
//! sending only over 30 %, where the delay half and the link's measured rate
//! ([`super::link_rate`]) have long since acted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

/// Loss up to this share is inherent at any rate (libwebrtc `LossBasedBweV2`'s
/// `InherentLossUpperBoundOffset`).
pub const INHERENT_LOSS_OFFSET: f64 = 0.05;
/// Rate, bit/s, over which this much more loss is inherent: 75 kbit/s / rate
/// (`InherentLossUpperBoundBwBalance`).
pub const INHERENT_LOSS_BALANCE_BPS: f64 = 75_000.0;
/// How far back reported packets count towards the loss.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// Reported packets the window needs before the loss is acted on: at 50, 10 % loss
/// reads 10 ± 4 %.
pub const MIN_PACKETS: usize = 50;
/// Shortest time between two cuts (libwebrtc's `kBweDecreaseInterval`).
pub const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// Departure span of a run of lost reports at the head of a batch from which it is
/// taken as a lost feedback packet's, not lost media (`unreported_prefix`): half the
/// 100 ms feedback interval.
pub const FEEDBACK_GAP_SPAN: Duration = Duration::from_millis(50);
/// Fewest packets in such a run: 50 ms of a call carries two or three audio packets and
/// some video.
pub const FEEDBACK_GAP_PACKETS: usize = 4;
/// Growth per second of a cut rate while the loss is within the bound (libwebrtc's
/// classic loss-based increase, 8 % a second).
pub const INCREASE_PER_SECOND: f64 = 1.08;

/// The most loss, as a fraction, that sending at `rate_bps` is taken not to cause:
/// `0.05 + 75 kbit/s / rate`, at most 1.
pub fn inherent_loss_bound(rate_bps: f64) -> f64 {
    if rate_bps <= 0.0 {
        return 1.0;
    }
    (INHERENT_LOSS_OFFSET + INHERENT_LOSS_BALANCE_BPS / rate_bps).min(1.0)
}

/// The share of our packets the peer's TWCC feedback reported lost over the last
/// [`LOSS_WINDOW`] (both tracks), shared between [`LossLimited`], which measures it, and
/// the stats path, which hands it to the Opus encoder's FEC planning.
#[derive(Debug, Clone, Default)]
pub struct LossCell(Arc<AtomicU64>);

impl LossCell {
    /// Stores a loss fraction in [0, 1].
    pub fn set(&self, fraction: f64) {
        // Parts per million, plus one: zero means no figure yet.
        let ppm = (fraction.clamp(0.0, 1.0) * 1e6).round() as u64;
        self.0.store(ppm + 1, Ordering::Relaxed);
    }

    /// The latest loss fraction in [0, 1]; `None` before [`MIN_PACKETS`] were reported.
    pub fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            stored => Some((stored - 1) as f64 / 1e6),
        }
    }
}

/// One feedback batch: when it came, how many of its packets were reported and lost.
#[derive(Debug, Clone, Copy)]
struct Batch {
    at: Instant,
    reported: usize,
    lost: usize,
}

/// Reported and lost packets over the last [`LOSS_WINDOW`].
#[derive(Debug, Default)]
struct LossWindow {
    batches: VecDeque<Batch>,
    reported: usize,
    lost: usize,
}

impl LossWindow {
    fn add(&mut self, batch: Batch) {
        while let Some(oldest) = self.batches.front().copied() {
            if batch.at.saturating_duration_since(oldest.at) <= LOSS_WINDOW {
                break;
            }
            self.batches.pop_front();
            self.reported -= oldest.reported;
            self.lost -= oldest.lost;
        }
        self.reported += batch.reported;
        self.lost += batch.lost;
        self.batches.push_back(batch);
    }

    /// The loss fraction, once [`MIN_PACKETS`] have been reported.
    fn loss(&self) -> Option<f64> {
        (self.reported >= MIN_PACKETS).then(|| self.lost as f64 / self.reported as f64)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// A rate the loss half holds the estimate under, and when it last moved.
#[derive(Debug, Clone, Copy)]
struct Limit {
    bps: f64,
    since: Instant,
}

/// A congestion controller (`E`, GCC) whose loss half tells inherent loss from loss
/// that sending causes. `E` is shown only the packets that arrived, so only its delay
/// half acts; the estimate is the lower of its and this loss half's.
pub struct LossLimited<E> {
    inner: E,
    window: LossWindow,
    /// `None` while loss does not limit the rate.
    limit: Option<Limit>,
    last_cut: Option<Instant>,
    min_bps: f64,
    /// The loss the window last read, for the stats.
    last_loss: Option<f64>,
    /// Where that loss is published.
    cell: LossCell,
}

impl<E: BandwidthEstimator> LossLimited<E> {
    /// Wraps `inner`; the loss half never holds the estimate below `min_bps`.
    pub fn new(inner: E, min_bps: f64) -> Self {
        Self {
            inner,
            window: LossWindow::default(),
            limit: None,
            last_cut: None,
            min_bps,
            last_loss: None,
            cell: LossCell::default(),
        }
    }

    /// Publishes every loss figure the window reads to `cell` as well.
    pub fn reporting_to(self, cell: LossCell) -> Self {
        Self { cell, ..self }
    }

    fn update_limit(&mut self, now: Instant, loss: f64) {
        let rate = self.target_bitrate();
        if loss > inherent_loss_bound(rate) {
            let due = self
                .last_cut
                .is_none_or(|last| now.saturating_duration_since(last) >= DECREASE_INTERVAL);
            if due {
                let bps = (rate * (1.0 - loss / 2.0)).max(self.min_bps);
                tracing::debug!(
                    loss_percent = loss * 100.0,
                    from_kbps = rate / 1000.0,
                    to_kbps = bps / 1000.0,
                    "loss over the inherent bound: rate cut"
                );
                self.limit = Some(Limit { bps, since: now });
                self.last_cut = Some(now);
                self.window.clear();
            }
        } else if let Some(limit) = self.limit {
            let seconds = now.saturating_duration_since(limit.since).as_secs_f64();
            let bps = limit.bps * INCREASE_PER_SECOND.powf(seconds);
            self.limit = (bps < self.inner.target_bitrate()).then_some(Limit { bps, since: now });
        }
    }
}

/// The packets at the head of a report batch that a lost feedback packet should have
/// reported: a run of "lost" reports whose departures span at least
/// [`FEEDBACK_GAP_SPAN`] and that holds at least [`FEEDBACK_GAP_PACKETS`].
///
/// TWCC feedback reports what arrived since the last feedback (every 100 ms from
/// rtc-interceptor's receiver). When one is lost on the way back, rtc-interceptor's
/// history reports its packets as lost with the next: they are the oldest of the next
/// batch, and all of them read as lost. A queue that overflows drops a burst, a few
/// milliseconds of departures, not a whole feedback interval of every packet sent; a
/// link where the feedback direction was congested read 28-93 % "loss" on a loss-free
/// forward path, and the rate was cut to a third (BENCHMARKS, "640x480@30 real footage").
fn unreported_prefix(reports: &[PacketReport]) -> usize {
    let run = reports.iter().take_while(|r| !r.arrived).count();
    if run < FEEDBACK_GAP_PACKETS {
        return 0;
    }
    let span = reports[run - 1]
        .departure
        .saturating_duration_since(reports[0].departure);
    if span >= FEEDBACK_GAP_SPAN { run } else { 0 }
}

impl<E: BandwidthEstimator> BandwidthEstimator for LossLimited<E> {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let arrived: Vec<PacketReport> = reports.iter().filter(|r| r.arrived).cloned().collect();
        self.inner.on_reports(now, &arrived);
        let unreported = unreported_prefix(reports);
        if unreported > 0 {
            tracing::debug!(
                packets = unreported,
                "a feedback report was lost: its packets are not counted as lost"
            );
        }
        let reported = reports.len() - unreported;
        self.window.add(Batch {
            at: now,
            reported,
            lost: reported - arrived.len(),
        });
        if let Some(loss) = self.window.loss() {
            self.last_loss = Some(loss);
            self.cell.set(loss);
            self.update_limit(now, loss);
        }
    }

    fn target_bitrate(&self) -> f64 {
        let estimate = self.inner.target_bitrate();
        self.limit.map_or(estimate, |limit| estimate.min(limit.bps))
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = self.inner.stats();
        stats.loss_based_bitrate = self.limit.map(|limit| limit.bps);
        stats.packet_loss = self.last_loss;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::super::report_fixture::report;
    use super::*;
    use rtc::interceptor::ConstantBitrate;

    /// Feedback every 100 ms for `seconds` from `t0 + from_s`, on 20 packets of 1 200
    /// bytes sent 5 ms apart (1.9 Mbit/s), each arriving 20 ms after it left, every
    /// `nth` lost (none when `nth` is 0).
    fn feed<E: BandwidthEstimator>(
        estimator: &mut E,
        t0: Instant,
        from_s: f64,
        seconds: f64,
        nth: u64,
    ) {
        let first = (from_s * 10.0) as u64;
        for batch in first..first + (seconds * 10.0) as u64 {
            let reports: Vec<PacketReport> = (0..20)
                .map(|i| {
                    let id = batch * 20 + i;
                    let sent_ms = batch * 100 + i * 5;
                    let lost = nth != 0 && id % nth == 0;
                    let sent_ms = sent_ms as f64;
                    report(id, 1200, t0, sent_ms, (!lost).then_some(sent_ms + 20.0))
                })
                .collect();
            estimator.on_reports(t0 + Duration::from_millis(batch * 100 + 100), &reports);
        }
    }

    #[test]
    fn the_bound_falls_with_the_rate() {
        assert!((inherent_loss_bound(1_500_000.0) - 0.10).abs() < 1e-9);
        assert!((inherent_loss_bound(300_000.0) - 0.30).abs() < 1e-9);
        assert_eq!(inherent_loss_bound(10_000.0), 1.0);
        assert_eq!(inherent_loss_bound(0.0), 1.0);
    }

    #[test]
    fn the_loss_cell_follows_the_window_once_enough_packets_are_reported() {
        let t0 = Instant::now();
        let cell = LossCell::default();
        let mut estimator = LossLimited::new(ConstantBitrate::new(1_000_000.0), 100_000.0)
            .reporting_to(cell.clone());
        // Two batches are 40 packets: under MIN_PACKETS, no figure yet.
        feed(&mut estimator, t0, 0.0, 0.2, 10);
        assert_eq!(cell.get(), None);
        feed(&mut estimator, t0, 0.2, 2.0, 10);
        let loss = cell.get().expect("a figure after 50 packets");
        assert!((loss - 0.1).abs() < 0.01, "{loss}");
        feed(&mut estimator, t0, 2.2, 2.0, 0);
        assert_eq!(cell.get(), Some(0.0), "the window has moved past the loss");
    }

    #[test]
    fn ten_percent_random_loss_under_the_bound_does_not_cut() {
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(ConstantBitrate::new(1_000_000.0), 100_000.0);
        feed(&mut estimator, t0, 0.0, 20.0, 10);

        assert_eq!(estimator.target_bitrate(), 1_000_000.0);
        assert_eq!(estimator.stats().loss_based_bitrate, None);
        let loss = estimator.stats().packet_loss.expect("loss measured");
        assert!((loss - 0.10).abs() < 0.01, "loss {loss}");
    }

    #[test]
    fn ten_percent_loss_holds_a_fast_sender_near_where_it_becomes_inherent() {
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(ConstantBitrate::new(4_000_000.0), 100_000.0);
        feed(&mut estimator, t0, 0.0, 30.0, 10);

        let target = estimator.target_bitrate();
        assert!(
            (1_000_000.0..=1_700_000.0).contains(&target),
            "10 % is inherent up to 1.5 Mbit/s, target {target}"
        );
    }

    #[test]
    fn heavy_loss_cuts_to_where_it_would_be_inherent_and_no_lower_than_the_floor() {
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(ConstantBitrate::new(600_000.0), 100_000.0);
        // Every 4th packet: 25 %, inherent only under 375 kbit/s.
        feed(&mut estimator, t0, 0.0, 20.0, 4);
        let target = estimator.target_bitrate();
        assert!((100_000.0..=420_000.0).contains(&target), "target {target}");

        // Every other packet: 50 %, over the bound at any rate above 167 kbit/s.
        feed(&mut estimator, t0, 20.0, 20.0, 2);
        let target = estimator.target_bitrate();
        assert!((100_000.0..=200_000.0).contains(&target), "target {target}");
    }

    #[test]
    fn a_cut_rate_climbs_back_and_stops_limiting_once_loss_ends() {
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(ConstantBitrate::new(600_000.0), 100_000.0);
        feed(&mut estimator, t0, 0.0, 5.0, 2);
        let cut = estimator.target_bitrate();
        assert!(cut < 300_000.0, "cut to {cut}");

        feed(&mut estimator, t0, 5.0, 3.0, 0);
        let climbing = estimator.target_bitrate();
        assert!(
            climbing > cut && climbing < 600_000.0,
            "{cut} -> {climbing}"
        );

        // 8 % a second takes ~20 s from 130 to 600 kbit/s.
        feed(&mut estimator, t0, 8.0, 30.0, 0);
        assert_eq!(estimator.target_bitrate(), 600_000.0);
        assert_eq!(estimator.stats().loss_based_bitrate, None);
    }

    /// rtc-interceptor's GCC shown 12.5 % random loss on an uncongested path (each packet
    /// 20 ms after it left) ratchets down from its start; with this loss half it climbs.
    #[test]
    fn gcc_climbs_through_random_loss_that_alone_it_ratchets_down_on() {
        fn run<E: BandwidthEstimator>(mut estimator: E) -> f64 {
            feed(&mut estimator, Instant::now(), 0.0, 20.0, 8);
            estimator.target_bitrate()
        }
        let gcc = || rtc::interceptor::Gcc::new(300_000.0, 100_000.0, 2_000_000.0);

        let alone = run(gcc());
        let limited = run(LossLimited::new(gcc(), 100_000.0));

        assert!(alone < 300_000.0, "GCC alone: {alone}");
        assert!(limited > 600_000.0, "with the loss half: {limited}");
    }

    /// A batch of `lost` packets that all read as lost, sent `gap_ms` apart, then 20
    /// that arrived, 5 ms apart after them.
    fn batch_after_a_gap(t0: Instant, first_id: u64, lost: u64, gap_ms: u64) -> Vec<PacketReport> {
        (0..lost + 20)
            .map(|i| {
                let id = first_id + i;
                let arrived = i >= lost;
                let sent_ms = if arrived {
                    lost * gap_ms + (i - lost) * 5
                } else {
                    i * gap_ms
                } as f64;
                report(id, 1200, t0, sent_ms, arrived.then_some(sent_ms + 20.0))
            })
            .collect()
    }

    #[test]
    fn a_lost_feedback_report_is_not_lost_media_but_a_dropped_burst_is() {
        let t0 = Instant::now();
        // 10 packets over 90 ms, all "lost": the feedback that covered them was lost.
        let gap = batch_after_a_gap(t0, 0, 10, 10);
        assert_eq!(unreported_prefix(&gap), 10);
        let mut estimator = LossLimited::new(ConstantBitrate::new(600_000.0), 100_000.0);
        for k in 0..5 {
            let at = t0 + Duration::from_millis(100 * k + 300);
            estimator.on_reports(at, &batch_after_a_gap(t0, k * 30, 10, 10));
        }
        assert_eq!(estimator.stats().packet_loss, Some(0.0));
        assert_eq!(estimator.target_bitrate(), 600_000.0);

        // 10 packets over 9 ms, all lost: a queue dropped a burst.
        let burst = batch_after_a_gap(t0, 0, 10, 1);
        assert_eq!(unreported_prefix(&burst), 0);
        // Three lost over 60 ms: too few to be a feedback interval's.
        assert_eq!(unreported_prefix(&batch_after_a_gap(t0, 0, 3, 30)), 0);
    }

    #[test]
    fn too_few_packets_are_not_acted_on() {
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(ConstantBitrate::new(600_000.0), 100_000.0);
        // Two batches of 20, half lost: 40 packets, under MIN_PACKETS.
        feed(&mut estimator, t0, 0.0, 0.2, 2);

        assert_eq!(estimator.target_bitrate(), 600_000.0);
        assert_eq!(estimator.stats().packet_loss, None);
    }

    /// The wrapped controller is shown only arrived packets, so its own loss half sees none.
    #[test]
    fn the_inner_controller_sees_only_arrived_packets() {
        struct SeesLoss(bool);
        impl BandwidthEstimator for SeesLoss {
            fn on_reports(&mut self, _now: Instant, reports: &[PacketReport]) {
                self.0 |= reports.iter().any(|r| !r.arrived);
            }
            fn target_bitrate(&self) -> f64 {
                500_000.0
            }
        }
        let t0 = Instant::now();
        let mut estimator = LossLimited::new(SeesLoss(false), 100_000.0);
        feed(&mut estimator, t0, 0.0, 2.0, 3);

        assert!(!estimator.inner.0);
    }
}
