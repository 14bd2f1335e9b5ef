//! Video freezes as the W3C defines them (webrtc-stats `RTCInboundRtpStreamStats.freezeCount`
//! and `totalFreezesDuration`): a freeze is a gap between two displayed frames of at
//! least max(3 × the mean frame interval, mean + 150 ms), the mean taken over the last
//! 30 intervals.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frame intervals the mean is taken over (W3C: the last 30 rendered frames).
const WINDOW: usize = 30;
/// The additive part of the threshold (W3C: 150 ms).
const MIN_EXCESS: Duration = Duration::from_millis(150);

/// Counts freezes from the instants frames are displayed.
#[derive(Debug, Default)]
pub struct FreezeDetector {
    last: Option<Instant>,
    intervals: VecDeque<Duration>,
    count: u64,
    total: Duration,
}

impl FreezeDetector {
    /// A detector that has seen no frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a frame displayed at `at`; returns the freeze it ended, if it ended one.
    pub fn frame_displayed(&mut self, at: Instant) -> Option<Duration> {
        let previous = self.last.replace(at)?;
        let interval = at.saturating_duration_since(previous);
        let freeze = self.is_freeze(interval);
        if freeze {
            self.count += 1;
            self.total += interval;
        }
        if self.intervals.len() == WINDOW {
            self.intervals.pop_front();
        }
        self.intervals.push_back(interval);
        freeze.then_some(interval)
    }

    fn is_freeze(&self, interval: Duration) -> bool {
        if self.intervals.is_empty() {
            return false;
        }
        let mean = self.intervals.iter().sum::<Duration>() / self.intervals.len() as u32;
        interval >= (mean * 3).max(mean + MIN_EXCESS)
    }

    /// Freezes so far (`freezeCount`).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their summed duration (`totalFreezesDuration`).
    pub fn total(&self) -> Duration {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_frames_never_freeze_and_a_long_gap_does() {
        let mut d = FreezeDetector::new();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for i in 0..30 {
            assert_eq!(d.frame_displayed(ms(i * 33)), None);
        }
        // 33 ms mean: the threshold is max(99, 183) = 183 ms.
        assert_eq!(d.frame_displayed(ms(29 * 33 + 150)), None);
        let at = 29 * 33 + 150 + 400;
        assert_eq!(d.frame_displayed(ms(at)), Some(Duration::from_millis(400)));
        assert_eq!(d.count(), 1);
        assert_eq!(d.total(), Duration::from_millis(400));
    }

    #[test]
    fn slow_frame_rates_use_three_times_the_mean() {
        let mut d = FreezeDetector::new();
        let t0 = Instant::now();
        for i in 0..10 {
            d.frame_displayed(t0 + Duration::from_millis(i * 200));
        }
        // Mean 200 ms: threshold max(600, 350) = 600 ms.
        assert_eq!(
            d.frame_displayed(t0 + Duration::from_millis(1800 + 500)),
            None
        );
        assert!(
            d.frame_displayed(t0 + Duration::from_millis(2300 + 700))
                .is_some()
        );
    }
}
