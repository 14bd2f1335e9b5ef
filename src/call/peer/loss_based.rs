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
        }
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

impl<E: BandwidthEstimator> BandwidthEstimator for LossLimited<E> {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let arrived: Vec<PacketReport> = reports.iter().filter(|r| r.arrived).cloned().collect();
        self.inner.on_reports(now, &arrived);
        self.window.add(Batch {
            at: now,
            reported: reports.len(),
            lost: reports.len() - arrived.len(),
        });
        if let Some(loss) = self.window.loss() {
            self.last_loss = Some(loss);
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
    use super::*;
    use rtc::interceptor::ConstantBitrate;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

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
                    PacketReport {
                        ssrc: 1,
                        id,
                        rtp_sequence_number: id as u16,
                        is_twcc: true,
                        twcc_sequence_number: id as u16,
                        size: 1200,
                        arrived: !lost,
                        departure: t0 + Duration::from_millis(sent_ms),
                        arrival: (!lost).then(|| Duration::from_millis(sent_ms + 20)),
                        ecn: Ecn::default(),
                    }
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
