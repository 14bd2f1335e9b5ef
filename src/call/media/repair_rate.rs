//! The rate our retransmissions take, which the video budget leaves to them.
//!
//! A narrow link that drops packets draws NACKs, and the retransmissions they ask for
//! travel on top of the encoder's output: on a 300 kbit/s bottleneck with a 100 ms queue
//! they came to 90-180 kbit/s in the seconds after GCC's first overshoot, kept the queue
//! full and took audio with it (BENCHMARKS, "Keyframes that fit and repairs counted").
//! libwebrtc subtracts its protection bitrate (NACK and FEC) from the encoder's target
//! (`RtpVideoSender::OnBitrateUpdated`); [`RepairRate`] measures ours for the same use.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate is measured: a few RTTs of a call, long enough that one
/// burst of repairs is not forgotten by the next control interval.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The send rate of retransmissions over the last [`WINDOW`], from cumulative byte counts.
#[derive(Debug, Default)]
pub struct RepairRate {
    /// (when, cumulative retransmitted bytes), oldest first, spanning at most [`WINDOW`].
    samples: VecDeque<(Instant, u64)>,
}

impl RepairRate {
    /// Takes the cumulative retransmitted RTP bytes at `now` and returns their rate over
    /// the samples of the last [`WINDOW`], kbit/s (0 until two samples are apart).
    pub fn update(&mut self, total_bytes: u64, now: Instant) -> f64 {
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > WINDOW)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, total_bytes));
        let (first_at, first_bytes) = self.samples[0];
        let secs = now.saturating_duration_since(first_at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        total_bytes.saturating_sub(first_bytes) as f64 * 8.0 / secs / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_covers_the_last_second_and_forgets_older_repairs() {
        let mut rate = RepairRate::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(rate.update(0, t0), 0.0);
        // 12.5 kB in the first half second: 200 kbit/s over it.
        assert!((rate.update(12_500, ms(500)) - 200.0).abs() < 1e-9);
        // Nothing more: the burst is averaged over the whole second...
        assert!((rate.update(12_500, ms(1000)) - 100.0).abs() < 1e-9);
        // ...and gone once the second has passed it.
        assert_eq!(rate.update(12_500, ms(1600)), 0.0);
        assert!((rate.update(15_000, ms(2100)) - 40.0).abs() < 1e-9);
    }
}
