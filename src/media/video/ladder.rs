//! The send ladder: the picture size and frame rate to send at for the bitrate the
//! congestion controller allows, stepping down when it is too low for the size and back
//! up when it recovers (what browsers call "balanced" degradation).
//!
//! Each rung needs [`BITS_PER_PIXEL`] bits per pixel per frame: 640x480 at 30 fps needs
//! 460 kbit/s, 320x240 at 30 fps 115 kbit/s. Below that, H.264 at call bitrates turns to
//! blocks, and fewer, sharper pixels look better. Down is taken at once (at most one rung
//! per [`STEP_DOWN_EVERY`]); up only after the bitrate has allowed the rung above with
//! [`UP_HEADROOM`] to spare for [`STEP_UP_AFTER`], so the ladder does not flap, and then
//! to the largest rung it allows: a call whose estimate ramps from its start rate
//! ([`crate::call::peer::start_ramp`]) goes from 320x240 to 640x480 in one step.

use std::time::{Duration, Instant};

/// Bits per pixel per frame a rung needs (H.264 baseline talking heads stay clean
/// above about 0.05; WebRTC's own bitrate/resolution tables are in this range).
pub const BITS_PER_PIXEL: f64 = 0.05;
/// How much more than the rung above needs before stepping up.
pub const UP_HEADROOM: f64 = 1.3;
/// How long the bitrate must allow the rung above before stepping up.
pub const STEP_UP_AFTER: Duration = Duration::from_secs(3);
/// Shortest time between two steps down.
pub const STEP_DOWN_EVERY: Duration = Duration::from_secs(1);
/// The lowest bitrate the encoder is asked for, kbit/s.
pub const MIN_VIDEO_KBPS: u32 = 30;

/// One picture size and frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl Rung {
    /// The bitrate this rung needs, kbit/s ([`BITS_PER_PIXEL`]).
    pub fn min_kbps(&self) -> u32 {
        let bits = f64::from(self.width * self.height * self.fps) * BITS_PER_PIXEL;
        (bits / 1000.0).round() as u32
    }

    /// The size scaled by `num/den`, rounded down to even sides of at least 16 pixels.
    fn scaled(&self, num: u32, den: u32, fps: u32) -> Self {
        let side = |s: u32| ((s * num / den) & !1).max(16);
        Self {
            width: side(self.width),
            height: side(self.height),
            fps: fps.max(1),
        }
    }
}

/// What the encoder should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTarget {
    /// Size and frame rate.
    pub rung: Rung,
    /// Encoder bitrate, kbit/s.
    pub bitrate_kbps: u32,
}

/// Chooses the rung for the available bitrate, with hysteresis.
#[derive(Debug)]
pub struct SendLadder {
    /// From the configured size and rate (index 0) down to the smallest.
    rungs: Vec<Rung>,
    current: usize,
    /// The configured video bitrate: never asked for more.
    max_kbps: u32,
    /// Since when the bitrate has allowed the rung above.
    up_since: Option<Instant>,
    last_down: Option<Instant>,
}

impl SendLadder {
    /// A ladder from `full` (the configured `--video-size` and rate) down: 3/4, 1/2 of
    /// the size, then half the frame rate (not below 10 fps), then 1/4 of the size.
    /// `max_kbps` is the configured `--video-bitrate`.
    pub fn new(full: Rung, max_kbps: u32) -> Self {
        let low_fps = (full.fps / 2).max(10).min(full.fps);
        let mut rungs = vec![
            full,
            full.scaled(3, 4, full.fps),
            full.scaled(1, 2, full.fps),
            full.scaled(1, 2, low_fps),
            full.scaled(1, 4, low_fps),
        ];
        rungs.dedup();
        Self {
            rungs,
            current: 0,
            max_kbps: max_kbps.max(MIN_VIDEO_KBPS),
            up_since: None,
            last_down: None,
        }
    }

    /// The target for a video bitrate budget of `available_kbps` at `now`.
    pub fn update(&mut self, available_kbps: u32, now: Instant) -> SendTarget {
        let bitrate = available_kbps.clamp(MIN_VIDEO_KBPS, self.max_kbps);
        let can_step_down = self
            .last_down
            .is_none_or(|at| now.duration_since(at) >= STEP_DOWN_EVERY);
        let last = self.rungs.len() - 1;
        if self.current < last && bitrate < self.rungs[self.current].min_kbps() && can_step_down {
            self.current += 1;
            self.last_down = Some(now);
            self.up_since = None;
        } else if let Some(highest) = self.highest_allowed(bitrate) {
            let since = *self.up_since.get_or_insert(now);
            if now.duration_since(since) >= STEP_UP_AFTER {
                self.current = highest;
                self.up_since = None;
            }
        } else {
            self.up_since = None;
        }
        SendTarget {
            rung: self.rungs[self.current],
            bitrate_kbps: bitrate,
        }
    }

    /// The largest rung above the current one that `bitrate_kbps` allows with
    /// [`UP_HEADROOM`] to spare, if any: recovery goes straight there (one keyframe), not a
    /// rung per [`STEP_UP_AFTER`].
    fn highest_allowed(&self, bitrate_kbps: u32) -> Option<usize> {
        (0..self.current)
            .find(|&i| f64::from(bitrate_kbps) >= f64::from(self.rungs[i].min_kbps()) * UP_HEADROOM)
    }

    /// The rungs, largest first.
    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA30: Rung = Rung {
        width: 640,
        height: 480,
        fps: 30,
    };

    #[test]
    fn the_ladder_goes_down_by_size_then_rate() {
        let ladder = SendLadder::new(VGA30, 800);
        let sizes: Vec<_> = ladder
            .rungs()
            .iter()
            .map(|r| (r.width, r.height, r.fps))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (640, 480, 30),
                (480, 360, 30),
                (320, 240, 30),
                (320, 240, 15),
                (160, 120, 15)
            ]
        );
        assert_eq!(VGA30.min_kbps(), 461);
    }

    #[test]
    fn a_low_bitrate_steps_down_one_rung_a_second_until_it_fits() {
        let mut ladder = SendLadder::new(VGA30, 800);
        let t0 = Instant::now();
        assert_eq!(ladder.update(800, t0).rung, VGA30);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(ladder.update(200, ms(100)).rung.width, 480);
        // Not again within a second.
        assert_eq!(ladder.update(200, ms(600)).rung.width, 480);
        let t = ladder.update(200, ms(1200));
        assert_eq!((t.rung.width, t.rung.fps), (320, 30));
        assert_eq!(t.bitrate_kbps, 200);
        // 200 kbit/s is enough for 320x240@30 (115): it stays.
        assert_eq!(ladder.update(200, ms(5000)).rung.width, 320);
    }

    #[test]
    fn recovery_steps_up_only_after_the_bitrate_held_with_headroom() {
        let mut ladder = SendLadder::new(VGA30, 800);
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        for n in 0..4 {
            ladder.update(100, s(n * 2));
        }
        assert_eq!(ladder.update(100, s(8)).rung.fps, 15);
        // 320x240@30 needs 115 * 1.3 = 150: 140 is not enough.
        for n in 9..20 {
            assert_eq!(ladder.update(140, s(n)).rung.fps, 15);
        }
        assert_eq!(ladder.update(160, s(20)).rung.fps, 15);
        assert_eq!(ladder.update(160, s(22)).rung.fps, 15);
        assert_eq!(ladder.update(160, s(23)).rung.fps, 30);
    }

    #[test]
    fn a_bitrate_that_allows_several_rungs_up_goes_straight_to_the_largest() {
        let mut ladder = SendLadder::new(VGA30, 800);
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        ladder.update(200, s(0));
        assert_eq!(ladder.update(200, s(1)).rung.width, 320);
        // 700 allows 640x480@30 (461 * 1.3 = 599), two rungs up.
        assert_eq!(ladder.update(700, s(2)).rung.width, 320);
        assert_eq!(ladder.update(700, s(4)).rung.width, 320);
        assert_eq!(ladder.update(700, s(5)).rung, VGA30);
        // 400 allows only 480x360 (259 * 1.3 = 337) from 320x240.
        let mut ladder = SendLadder::new(VGA30, 800);
        ladder.update(200, s(0));
        ladder.update(200, s(1));
        ladder.update(400, s(2));
        assert_eq!(ladder.update(400, s(5)).rung.width, 480);
    }

    #[test]
    fn the_bitrate_stays_within_the_configured_range() {
        let mut ladder = SendLadder::new(VGA30, 800);
        let now = Instant::now();
        assert_eq!(ladder.update(5000, now).bitrate_kbps, 800);
        assert_eq!(ladder.update(0, now).bitrate_kbps, MIN_VIDEO_KBPS);
    }

    #[test]
    fn small_sources_keep_distinct_rungs() {
        let ladder = SendLadder::new(
            Rung {
                width: 320,
                height: 240,
                fps: 15,
            },
            300,
        );
        let rungs = ladder.rungs();
        assert_eq!(rungs[0].min_kbps(), 58);
        assert!(rungs.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(rungs.last().map(|r| (r.width, r.fps)), Some((80, 10)));
    }
}
