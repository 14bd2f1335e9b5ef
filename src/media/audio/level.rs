//! The audio level meter shown in the call stats.

/// The floor of [`level_dbfs`], dBFS: silence. RFC 6464 §3 uses 127 as "silent" for
/// the audio level header extension, and this meter matches its range.
pub const SILENCE_DBFS: f64 = -127.0;

/// RMS level of `frame` in dBFS (0 dBFS = a full-scale square wave; a full-scale sine
/// is about -3 dBFS), floored at [`SILENCE_DBFS`]. An empty frame is silence.
pub fn level_dbfs(frame: &[f32]) -> f64 {
    if frame.is_empty() {
        return SILENCE_DBFS;
    }
    let mean_square = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
    if mean_square <= 0.0 {
        return SILENCE_DBFS;
    }
    (10.0 * mean_square.log10()).max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_is_minus_3_dbfs_and_halving_takes_6_db() {
        let sine: Vec<f32> = (0..960)
            .map(|i| (2.0 * std::f32::consts::PI * i as f32 / 48.0).sin())
            .collect();
        let full = level_dbfs(&sine);
        assert!((full + 3.01).abs() < 0.05, "{full}");
        let half: Vec<f32> = sine.iter().map(|s| s * 0.5).collect();
        assert!((full - level_dbfs(&half) - 6.02).abs() < 0.05);
    }

    #[test]
    fn silence_and_tiny_signals_hit_the_floor() {
        assert_eq!(level_dbfs(&[0.0; 960]), SILENCE_DBFS);
        assert_eq!(level_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(level_dbfs(&[1e-30; 960]), SILENCE_DBFS);
        assert_eq!(level_dbfs(&[1.0; 960]), 0.0);
    }
}
