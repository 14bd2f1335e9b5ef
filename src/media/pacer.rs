//! Pacing for synthetic and file sources (video frames, 20 ms audio frames): frame `n`
//! is due at `start + n * interval`.
//!
//! Due times come from the schedule, not from "last frame + interval", so sleep
//! overshoot never accumulates into drift. A caller that falls more than its allowed
//! lag behind (one interval unless set) restarts the schedule from now instead of
//! receiving a burst of late frames.

use std::time::{Duration, Instant};

/// Sleeps a source thread until each frame is due.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// When frame 0 of the current schedule was due; `None` before the first frame.
    start: Option<Instant>,
    /// Frames since `start`.
    count: u32,
    /// How far behind the schedule a caller may fall and still catch up frame by frame.
    max_lag: Duration,
}

impl Pacer {
    /// A pacer with `interval` between frames (e.g. `FrameRate::frame_interval()`).
    pub fn new(interval: Duration) -> Self {
        Self::with_max_lag(interval, interval)
    }

    /// A pacer that lets its caller fall up to `max_lag` behind and catch up (frames
    /// due in the past are returned at once) before it restarts the schedule; audio
    /// allows more than one frame so a short stall loses no audio.
    pub fn with_max_lag(interval: Duration, max_lag: Duration) -> Self {
        Self {
            interval,
            start: None,
            count: 0,
            max_lag,
        }
    }

    /// The time between frames.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Blocks until the next frame is due and returns its due time (the first frame is
    /// due at once).
    pub fn wait(&mut self) -> Instant {
        let due = self.next_due(Instant::now());
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        due
    }

    /// Advances the schedule as seen at `now` and returns the next due time.
    fn next_due(&mut self, now: Instant) -> Instant {
        let Some(start) = self.start else {
            return self.restart(now);
        };
        self.count = self.count.wrapping_add(1);
        let Some(due) = self
            .interval
            .checked_mul(self.count)
            .and_then(|offset| start.checked_add(offset))
        else {
            return self.restart(now);
        };
        if now > due + self.max_lag {
            tracing::debug!(late = ?(now - due), "frame pacing fell behind; schedule restarted");
            return self.restart(now);
        }
        due
    }

    fn restart(&mut self, now: Instant) -> Instant {
        self.start = Some(now);
        self.count = 0;
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn due_times_follow_the_schedule_without_drift() {
        let mut p = Pacer::new(33 * MS);
        let t0 = Instant::now();
        assert_eq!(p.next_due(t0), t0);
        // The caller asks a little late each time; due times stay on the grid.
        for n in 1..100u32 {
            let asked_at = t0 + 33 * MS * (n - 1) + 5 * MS;
            assert_eq!(p.next_due(asked_at), t0 + 33 * MS * n);
        }
    }

    #[test]
    fn a_larger_allowed_lag_catches_up_frame_by_frame() {
        let mut p = Pacer::with_max_lag(20 * MS, 200 * MS);
        let t0 = Instant::now();
        p.next_due(t0);
        // 100 ms stall: the missed frames are due at once, still on the grid.
        let late = t0 + 100 * MS;
        for n in 1..=5u32 {
            assert_eq!(p.next_due(late), t0 + 20 * MS * n);
        }
        // 300 ms stall: past the allowed lag, the schedule restarts.
        let stalled = t0 + 400 * MS;
        assert_eq!(p.next_due(stalled), stalled);
    }

    #[test]
    fn falling_more_than_an_interval_behind_restarts_the_schedule() {
        let mut p = Pacer::new(10 * MS);
        let t0 = Instant::now();
        p.next_due(t0);
        assert_eq!(p.next_due(t0 + 15 * MS), t0 + 10 * MS); // late, but within one interval
        let stalled = t0 + 100 * MS;
        assert_eq!(p.next_due(stalled), stalled);
        assert_eq!(p.next_due(stalled), stalled + 10 * MS);
    }

    #[test]
    fn wait_returns_due_times_one_interval_apart() {
        let mut p = Pacer::new(MS);
        let a = p.wait();
        let b = p.wait();
        assert!(Instant::now() >= b);
        // On the grid, or later if this thread was descheduled and the schedule restarted.
        assert!(b >= a + MS);
    }
}
