//! The test pattern's clock stamps: capture time in its counter strip, read back
//! after decode as glass-to-glass latency (both ends on one machine share the clock).

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::media::video::pattern::COUNTER_MODULUS;

/// Milliseconds of the wall clock modulo the test pattern's counter range: what the
/// test pattern stamps at capture and the receiver compares after decode (both ends on
/// one machine share the clock).
pub(crate) fn clock_stamp_ms(at: SystemTime) -> u32 {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    (ms % u128::from(COUNTER_MODULUS)) as u32
}

/// Milliseconds on this process's monotonic clock since its first reading: spacing of
/// logged events that stays right when the wall clock steps (the log's own stamps are
/// wall-clock time).
pub(crate) fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Glass-to-glass latency from a clock stamp read back at `now`; `None` when the stamp
/// is not plausible (not a test pattern, or a stale frame).
pub(crate) fn glass_to_glass(stamp: u32, now: SystemTime) -> Option<Duration> {
    let elapsed = clock_stamp_ms(now).wrapping_sub(stamp) % COUNTER_MODULUS;
    (elapsed < 10_000).then(|| Duration::from_millis(u64::from(elapsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_stamps_measure_latency_across_the_wrap() {
        let t0 = UNIX_EPOCH + Duration::from_millis(u64::from(COUNTER_MODULUS) * 7 - 5);
        let stamp = clock_stamp_ms(t0);
        let later = t0 + Duration::from_millis(12);
        assert_eq!(
            glass_to_glass(stamp, later),
            Some(Duration::from_millis(12))
        );
        assert_eq!(glass_to_glass(stamp, t0 + Duration::from_secs(60)), None);
    }
}
