//! What the send rate may be, given GCC's estimate and the link capacity it has already
//! run into.
//!
//! GCC's estimate (rtc-interceptor 0.21's send-side controller) ramps multiplicatively
//! until its delay detector or loss report sees congestion. On a 300 kbit/s bottleneck
//! with a 100 ms queue it climbed to 365-387 kbit/s each time, overflowed the queue,
//! fell to its floor on the loss and climbed again every 6-7 s (BENCHMARKS, "Impaired
//! networks"). libwebrtc's AIMD rate control avoids the repeat by remembering the link
//! capacity at each overuse and growing only slowly near it (`LinkCapacityEstimator` in
//! `aimd_rate_control.cc`). This does the same on top of the estimate: a steep fall of
//! the estimate marks a congestion event, and so does a standing queue that GCC's delay
//! detector missed (two RTT samples in a row well above the smallest one: the
//! estimate kept climbing while a 100 ms queue filled); 85 % of the rate sent before
//! (libwebrtc's backoff factor) is a capacity sample, averaged over events; the allowed
//! rate is the estimate, but no more than the capacity, which then grows by a few percent
//! a second so a link that got better is found again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A fall of the estimate by more than this share below its highest of the last
/// [`DROP_WINDOW`] is a congestion event: an overflowing queue's burst of loss and the
/// delay detector's overuse cut this deep, in one update or a few.
const CONGESTION_DROP: f64 = 0.15;
/// How far back the highest estimate is taken from.
const DROP_WINDOW: Duration = Duration::from_secs(2);
/// Share of the rate before the fall taken as the capacity sample (libwebrtc's beta).
const BACKOFF: f64 = 0.85;
/// Weight of a new sample in the capacity average.
const SAMPLE_WEIGHT: f64 = 0.5;
/// How fast the remembered capacity grows while nothing congests, per second: slowly,
/// as libwebrtc's additive increase near a known capacity (5 % refilled a 100 ms queue
/// within 10 s and the repairs of its losses overran the link).
const GROWTH_PER_S: f64 = 0.02;
/// No growth for this long after a congestion event: the queue it filled must drain.
const HOLD_AFTER_EVENT: Duration = Duration::from_secs(2);
/// An RTT this much above the smallest seen (or half the smallest, if more) means a
/// queue is standing on the path; ±30 ms of jitter each way moves single samples about
/// this far, so it takes [`QUEUE_SAMPLES`] in a row.
const QUEUE_RTT_RISE: Duration = Duration::from_millis(60);
/// RTT samples in a row above the rise that make a congestion event.
const QUEUE_SAMPLES: u32 = 2;

/// The link capacity learnt from congestion events, and the send rate it allows.
#[derive(Debug, Clone, Default)]
pub struct CapacityMemory {
    /// Learnt capacity, kbit/s; `None` until the first congestion event.
    capacity_kbps: Option<f64>,
    /// The estimates of the last [`DROP_WINDOW`] since the last event: (when, kbit/s).
    recent: VecDeque<(Instant, f64)>,
    /// When the previous update and the last congestion event were.
    updated: Option<Instant>,
    last_event: Option<Instant>,
    /// The smallest RTT seen, and the latest sample (a new one arrives about once a
    /// second with the RTCP reports; repeats of it are not new evidence).
    min_rtt: Option<Duration>,
    last_rtt: Option<Duration>,
    /// Samples in a row showing a standing queue.
    queue_samples: u32,
}

impl CapacityMemory {
    /// Takes GCC's estimate (`estimate_kbps`, kbit/s of RTP) and the latest RTT (`None`
    /// before the first) at `now` and returns the total send rate allowed, kbit/s: the
    /// estimate, capped by the learnt capacity.
    pub fn allowed_kbps(&mut self, estimate_kbps: f64, rtt: Option<Duration>, now: Instant) -> f64 {
        let dt = self
            .updated
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.updated = Some(now);
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > DROP_WINDOW)
        {
            self.recent.pop_front();
        }
        let peak = self
            .recent
            .iter()
            .map(|(_, e)| *e)
            .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
        self.recent.push_back((now, estimate_kbps));
        if let Some(peak) = peak
            && estimate_kbps < peak * (1.0 - CONGESTION_DROP)
        {
            self.on_congestion(peak, now);
        } else if self.queue_standing(rtt) && !self.holding(now) {
            let sending = self
                .capacity_kbps
                .map_or(estimate_kbps, |c| c.min(estimate_kbps));
            self.on_congestion(sending, now);
        }
        let holding = self.holding(now);
        let Some(capacity) = self.capacity_kbps.as_mut() else {
            return estimate_kbps;
        };
        if !holding && estimate_kbps > *capacity {
            *capacity *= 1.0 + GROWTH_PER_S * dt.as_secs_f64();
        }
        estimate_kbps.min(*capacity)
    }

    /// The learnt capacity, kbit/s, if there has been a congestion event.
    #[cfg(test)]
    pub fn capacity_kbps(&self) -> Option<f64> {
        self.capacity_kbps
    }

    fn holding(&self, now: Instant) -> bool {
        self.last_event
            .is_some_and(|t| now.saturating_duration_since(t) < HOLD_AFTER_EVENT)
    }

    /// Takes an RTT sample; whether [`QUEUE_SAMPLES`] new ones in a row stood
    /// [`QUEUE_RTT_RISE`] above the smallest.
    fn queue_standing(&mut self, rtt: Option<Duration>) -> bool {
        let Some(rtt) = rtt.filter(|r| !r.is_zero()) else {
            return false;
        };
        if self.last_rtt.replace(rtt) == Some(rtt) {
            return false;
        }
        let min = *self.min_rtt.get_or_insert(rtt);
        let min = min.min(rtt);
        self.min_rtt = Some(min);
        if rtt > min + QUEUE_RTT_RISE.max(min / 2) {
            self.queue_samples += 1;
        } else {
            self.queue_samples = 0;
        }
        if self.queue_samples >= QUEUE_SAMPLES {
            self.queue_samples = 0;
            return true;
        }
        false
    }

    fn on_congestion(&mut self, previous_kbps: f64, now: Instant) {
        // The estimate was above what the link carried; the allowed rate (what we sent)
        // may have been lower still.
        let sent = self
            .capacity_kbps
            .map_or(previous_kbps, |c| c.min(previous_kbps));
        let sample = sent * BACKOFF;
        self.capacity_kbps = Some(match self.capacity_kbps {
            Some(c) => c * (1.0 - SAMPLE_WEIGHT) + sample * SAMPLE_WEIGHT,
            None => sample,
        });
        self.last_event = Some(now);
        self.recent.clear();
        tracing::debug!(
            previous_kbps,
            capacity_kbps = self.capacity_kbps,
            "congestion: send rate capped near the link's capacity"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `estimates` 250 ms apart from `t0`; the allowed rates.
    fn feed(m: &mut CapacityMemory, t0: Instant, estimates: &[f64]) -> Vec<f64> {
        estimates
            .iter()
            .enumerate()
            .map(|(i, &e)| m.allowed_kbps(e, None, t0 + Duration::from_millis(250 * i as u64)))
            .collect()
    }

    #[test]
    fn without_congestion_the_estimate_passes_unchanged() {
        let mut m = CapacityMemory::default();
        let ramp: Vec<f64> = (0..20).map(|i| 300.0 * 1.02f64.powi(i)).collect();
        assert_eq!(feed(&mut m, Instant::now(), &ramp), ramp);
        assert_eq!(m.capacity_kbps(), None);
    }

    #[test]
    fn after_an_overshoot_the_climb_stops_below_where_it_broke() {
        let mut m = CapacityMemory::default();
        let t0 = Instant::now();
        // Climb to 380, collapse to the floor, climb again far past it.
        let estimates = [
            300.0, 330.0, 360.0, 380.0, 100.0, 130.0, 180.0, 250.0, 330.0, 420.0,
        ];
        let allowed = feed(&mut m, t0, &estimates);
        let cap = 380.0 * BACKOFF;
        assert_eq!(m.capacity_kbps(), Some(cap));
        assert_eq!(allowed[4], 100.0, "a falling estimate is followed at once");
        // Inside the hold the cap does not grow: 330 and 420 are both held at 323.
        assert_eq!(allowed[8], cap);
        assert_eq!(allowed[9], cap);
    }

    #[test]
    fn the_cap_grows_slowly_once_the_queue_had_time_to_drain() {
        let mut m = CapacityMemory::default();
        let t0 = Instant::now();
        feed(&mut m, t0, &[400.0, 200.0]);
        let cap = 400.0 * BACKOFF;
        // The estimate jumps to 1000 and stays: held at the cap for 2 s, then about 2 %
        // a second (10 s of growth: x1.22), still far below the estimate.
        let allowed: Vec<f64> = (2..50)
            .map(|i| m.allowed_kbps(1000.0, None, t0 + Duration::from_millis(250 * i)))
            .collect();
        assert_eq!(allowed[0], cap);
        assert_eq!(allowed[6], cap, "held for 2 s after the event");
        let last = *allowed.last().unwrap();
        assert!(last > cap * 1.15 && last < cap * 1.3, "{last}");
    }

    #[test]
    fn a_fall_spread_over_several_updates_is_one_event() {
        let mut m = CapacityMemory::default();
        // 300 down to 204 in four steps of under 15 % each, as GCC fell at a call's start.
        feed(&mut m, Instant::now(), &[300.0, 280.0, 250.0, 225.0, 204.0]);
        assert_eq!(m.capacity_kbps(), Some(300.0 * BACKOFF));
    }

    #[test]
    fn a_standing_queue_in_the_rtt_is_a_congestion_event_a_single_spike_is_not() {
        let mut m = CapacityMemory::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let at = |m: &mut CapacityMemory, i: u64, est: f64, rtt: u64| {
            m.allowed_kbps(est, Some(ms(rtt)), t0 + ms(250 * i))
        };
        // 15 ms baseline; one jittery 90 ms sample, then back: no event.
        for (i, rtt) in [15, 15, 90, 90, 20, 15].into_iter().enumerate() {
            at(&mut m, i as u64, 400.0, rtt);
        }
        assert_eq!(m.capacity_kbps(), None);
        // Two distinct samples in a row 90 ms above: a queue stands; 85 % of the rate.
        at(&mut m, 6, 400.0, 100);
        let allowed = at(&mut m, 7, 420.0, 105);
        assert_eq!(m.capacity_kbps(), Some(420.0 * BACKOFF));
        assert_eq!(allowed, 420.0 * BACKOFF);
    }

    #[test]
    fn gentle_decreases_are_not_congestion_events() {
        let mut m = CapacityMemory::default();
        // 2 % per update: 15 % takes longer than the window.
        let estimates: Vec<f64> = (0..20).map(|i| 800.0 * 0.98f64.powi(i)).collect();
        assert_eq!(feed(&mut m, Instant::now(), &estimates), estimates);
        assert_eq!(m.capacity_kbps(), None);
    }

    #[test]
    fn repeated_events_average_towards_the_link() {
        let mut m = CapacityMemory::default();
        let t0 = Instant::now();
        let first_climb = [380.0, 100.0, 160.0, 220.0, 280.0, 340.0];
        feed(&mut m, t0, &first_climb);
        let first = m.capacity_kbps().unwrap();
        // The next overshoot happens at the capped rate (we sent no more than the cap),
        // so its sample is lower.
        m.allowed_kbps(150.0, None, t0 + Duration::from_millis(1_500));
        let second = m.capacity_kbps().unwrap();
        assert!(second < first, "{first} -> {second}");
        assert!(second > first * BACKOFF * BACKOFF, "{second}");
    }
}
