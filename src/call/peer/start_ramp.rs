//! The start of a call: the estimate doubles towards the link's measured rate until the
//! first sign of congestion.
//!
//! GCC climbs from its start rate (300 kbit/s) at 8 % a second, so a 640x480@30 call on
//! a clean link spends its first 15 s under 1 Mbit/s and never reaches the size it was
//! asked for: the ladder needs 600 kbit/s of video for three seconds to step up to it
//! (BENCHMARKS, "640x480@30 real footage"). libwebrtc does not climb from there alone: its
//! `ProbeController` sends probe clusters at 3 and 6 times the start rate as the call
//! starts and keeps doubling while they arrive as fast as they left ("exponential
//! probing"), and the delay-based estimate takes the rate they measured. rtc-interceptor
//! 0.21 has no prober, and our streams have no RTX stream to carry padding probes, but
//! the pacer's back-to-back pairs already measure the bottleneck ([`super::link_rate`]).
//!
//! [`StartRamp`] uses that measurement as the probe's answer: once the pairs put the link
//! at least [`RAMP_FACTOR`] times above the estimate, the estimate doubles (restarting the
//! wrapped controller at the new rate, as libwebrtc hands a probe's result to its AIMD),
//! at most once per [`RAMP_INTERVAL`] so that each rate is sent and reported before the
//! next, up to the configured maximum. The first decrease of the wrapped estimate (delay
//! overuse, or loss over what the link always has) ends the ramp for the rest of the
//! call: from there the controller's own increase rules. A pair measures the link's
//! capacity, not what other traffic leaves of it; the delay half's first overuse is what
//! stops an overshoot, as it stops a probe's.

use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

use super::link_rate::LinkCeiling;

/// Each step multiplies the estimate by this much, and needs the measured link at least
/// this far above the estimate (libwebrtc's `further_exponential_probe_scale`, 2).
pub const RAMP_FACTOR: f64 = 2.0;
/// Shortest time between two steps, and from the first report to the first step: the
/// pacer and the encoder follow a new estimate within a few hundred milliseconds, and
/// TWCC reports what was sent at it 100 ms later.
pub const RAMP_INTERVAL: Duration = Duration::from_secs(1);
/// A wrapped estimate this much below the last one seen is a decrease (GCC only lowers
/// its estimate on overuse or loss; a step of its increase is never negative).
const DECREASE_TOLERANCE: f64 = 0.01;

/// Where the ramp is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No report yet.
    Idle,
    /// Stepping: the last step (or the first report) was at the instant.
    Ramping(Instant),
    /// Congestion was seen, or the maximum reached: the wrapped controller alone rules.
    Over,
}

/// A congestion controller (`E`, built by `make` at a start rate in bit/s) whose estimate
/// doubles while the link measured by packet pairs ([`LinkCeiling`]) allows it, until its
/// first decrease.
pub struct StartRamp<E, F> {
    inner: E,
    make: F,
    link: LinkCeiling,
    max_bps: f64,
    phase: Phase,
    /// The wrapped estimate after the last batch, bit/s.
    last_bps: f64,
}

impl<E, F> StartRamp<E, F>
where
    E: BandwidthEstimator,
    F: Fn(f64) -> E + Send + Sync,
{
    /// A controller made by `make(start_bps)` that may ramp up to `max_bps` (bit/s) while
    /// `link` allows it.
    pub fn new(make: F, start_bps: f64, max_bps: f64, link: LinkCeiling) -> Self {
        let inner = make(start_bps);
        let last_bps = inner.target_bitrate();
        Self {
            inner,
            make,
            link,
            max_bps,
            phase: Phase::Idle,
            last_bps,
        }
    }

    /// Whether the ramp has ended (congestion seen or the maximum reached).
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    fn step(&mut self, now: Instant) {
        let estimate = self.inner.target_bitrate();
        if estimate < self.last_bps * (1.0 - DECREASE_TOLERANCE) || estimate >= self.max_bps {
            tracing::debug!(
                estimate_kbps = estimate / 1000.0,
                "start ramp over: the estimate fell or reached its maximum"
            );
            self.phase = Phase::Over;
            return;
        }
        self.last_bps = estimate;
        let Phase::Ramping(since) = self.phase else {
            return;
        };
        let Some(link) = self.link.get() else {
            return;
        };
        if now.saturating_duration_since(since) < RAMP_INTERVAL || link < RAMP_FACTOR * estimate {
            return;
        }
        let next = (estimate * RAMP_FACTOR).min(self.max_bps);
        tracing::debug!(
            from_kbps = estimate / 1000.0,
            to_kbps = next / 1000.0,
            link_kbps = link / 1000.0,
            "start ramp: the link measured far above the estimate"
        );
        self.inner = (self.make)(next);
        self.last_bps = self.inner.target_bitrate();
        self.phase = Phase::Ramping(now);
    }
}

impl<E, F> BandwidthEstimator for StartRamp<E, F>
where
    E: BandwidthEstimator,
    F: Fn(f64) -> E + Send + Sync,
{
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        if reports.is_empty() || self.phase == Phase::Over {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Ramping(now);
        }
        self.step(now);
    }

    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate()
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// An estimator that holds its start rate, or the rate `cut` names once set (bit/s).
    struct Held {
        bps: f64,
        cut: Arc<AtomicU64>,
    }

    impl BandwidthEstimator for Held {
        fn on_reports(&mut self, _now: Instant, _reports: &[PacketReport]) {
            let cut = self.cut.load(Ordering::Relaxed);
            if cut != 0 {
                self.bps = cut as f64;
            }
        }
        fn target_bitrate(&self) -> f64 {
            self.bps
        }
    }

    fn ramp(
        start: f64,
        max: f64,
        link: &LinkCeiling,
    ) -> (
        StartRamp<Held, impl Fn(f64) -> Held + Send + Sync>,
        Arc<AtomicU64>,
    ) {
        let cut = Arc::new(AtomicU64::new(0));
        let shared = cut.clone();
        let make = move |bps| Held {
            bps,
            cut: shared.clone(),
        };
        (StartRamp::new(make, start, max, link.clone()), cut)
    }

    /// A report batch every 100 ms from `from_s` for `seconds` (one packet each: the ramp
    /// reads only the estimate and the clock).
    fn feed<E: BandwidthEstimator>(estimator: &mut E, t0: Instant, from_s: f64, seconds: f64) {
        let first = (from_s * 10.0).round() as u64;
        for batch in first..first + (seconds * 10.0).round() as u64 {
            let sent_ms = batch as f64 * 100.0;
            let report = report(batch, 1200, t0, sent_ms, Some(sent_ms + 20.0));
            estimator.on_reports(t0 + Duration::from_millis(batch * 100 + 50), &[report]);
        }
    }

    #[test]
    fn doubles_once_a_second_up_to_the_maximum_while_the_link_is_far_above() {
        let link = LinkCeiling::default();
        link.set(f64::INFINITY);
        let (mut estimator, _) = ramp(300_000.0, 1_000_000.0, &link);
        let t0 = Instant::now();

        feed(&mut estimator, t0, 0.0, 0.9);
        assert_eq!(estimator.target_bitrate(), 300_000.0, "not before a second");
        feed(&mut estimator, t0, 0.9, 0.2);
        assert_eq!(estimator.target_bitrate(), 600_000.0);
        feed(&mut estimator, t0, 1.1, 1.0);
        assert_eq!(
            estimator.target_bitrate(),
            1_000_000.0,
            "held to the maximum"
        );
        feed(&mut estimator, t0, 2.1, 0.1);
        assert!(estimator.is_over());
    }

    #[test]
    fn waits_for_the_link_to_be_measured_and_never_steps_past_it() {
        let link = LinkCeiling::default();
        let (mut estimator, _) = ramp(300_000.0, 2_000_000.0, &link);
        let t0 = Instant::now();

        feed(&mut estimator, t0, 0.0, 3.0);
        assert_eq!(
            estimator.target_bitrate(),
            300_000.0,
            "no link measured yet"
        );

        // A 1 Mbit/s link: 300 -> 600 kbit/s, not 1.2 Mbit/s.
        link.set(1_000_000.0);
        feed(&mut estimator, t0, 3.0, 5.0);
        assert_eq!(estimator.target_bitrate(), 600_000.0);
        assert!(!estimator.is_over());
    }

    #[test]
    fn the_first_decrease_ends_the_ramp_for_good() {
        let link = LinkCeiling::default();
        link.set(f64::INFINITY);
        let (mut estimator, cut) = ramp(300_000.0, 5_000_000.0, &link);
        let t0 = Instant::now();
        feed(&mut estimator, t0, 0.0, 1.1);
        assert_eq!(estimator.target_bitrate(), 600_000.0);

        cut.store(500_000, Ordering::Relaxed);
        feed(&mut estimator, t0, 1.1, 0.1);
        assert!(estimator.is_over());
        cut.store(0, Ordering::Relaxed);
        feed(&mut estimator, t0, 1.2, 5.0);
        assert_eq!(estimator.target_bitrate(), 500_000.0, "no step after it");
    }

    /// rtc-interceptor's GCC on a quiet path: 8 % a second at most alone; with the ramp,
    /// the maximum within a few seconds.
    #[test]
    fn gcc_reaches_the_maximum_in_seconds_instead_of_climbing_for_a_quarter_minute() {
        let link = LinkCeiling::default();
        link.set(f64::INFINITY);
        let gcc = |bps| rtc::interceptor::Gcc::new(bps, 100_000.0, 1_000_000.0);
        let t0 = Instant::now();

        let mut alone = gcc(300_000.0);
        feed(&mut alone, t0, 0.0, 5.0);
        let mut ramped = StartRamp::new(gcc, 300_000.0, 1_000_000.0, link);
        feed(&mut ramped, t0, 0.0, 5.0);

        let alone = alone.target_bitrate();
        assert!((300_000.0..500_000.0).contains(&alone), "alone: {alone}");
        assert_eq!(ramped.target_bitrate(), 1_000_000.0);
    }
}
