//! Signal comparison for tests: normalized cross-correlation over a range of lags,
//! to check that audio survived a codec or a call after aligning for its delay.

/// The best normalized cross-correlation between `reference` and `degraded` over lags
/// `-max_lag..=max_lag`, and that lag.
///
/// A positive lag means `degraded` is late: `degraded[i + lag]` lines up with
/// `reference[i]`. The value is Σ r·d / √(Σ r² · Σ d²) over the overlapping part, in
/// [-1, 1]; 1 means the same waveform up to a gain. Returns `(0.0, 0)` when either
/// signal is silent or they do not overlap.
pub fn normalized_cross_correlation(
    reference: &[f32],
    degraded: &[f32],
    max_lag: usize,
) -> (f64, isize) {
    let max_lag = isize::try_from(max_lag).unwrap_or(isize::MAX);
    let mut best = (0.0, 0);
    for lag in -max_lag..=max_lag {
        let ncc = correlation_at(reference, degraded, lag);
        if ncc > best.0 {
            best = (ncc, lag);
        }
    }
    best
}

/// Normalized correlation of `reference[i]` with `degraded[i + lag]`.
fn correlation_at(reference: &[f32], degraded: &[f32], lag: isize) -> f64 {
    let (r, d) = if lag >= 0 {
        let lag = lag.unsigned_abs();
        if lag >= degraded.len() {
            return 0.0;
        }
        (reference, &degraded[lag..])
    } else {
        let lag = lag.unsigned_abs();
        if lag >= reference.len() {
            return 0.0;
        }
        (&reference[lag..], degraded)
    };
    let (mut rd, mut rr, mut dd) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in r.iter().zip(d) {
        let (x, y) = (f64::from(x), f64::from(y));
        rd += x * y;
        rr += x * x;
        dd += y * y;
    }
    if rr == 0.0 || dd == 0.0 {
        0.0
    } else {
        rd / (rr * dd).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        // xorshift: deterministic broadband test signal.
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn finds_the_delay_of_a_scaled_delayed_copy() {
        let x = noise(4_000, 7);
        let mut delayed = vec![0.0; 37];
        delayed.extend(x.iter().map(|v| v * 0.25));
        let (ncc, lag) = normalized_cross_correlation(&x, &delayed, 100);
        assert_eq!(lag, 37);
        assert!(ncc > 0.99, "{ncc}");

        let (_, lag) = normalized_cross_correlation(&delayed, &x, 100);
        assert_eq!(lag, -37);
    }

    #[test]
    fn unrelated_signals_correlate_weakly_and_silence_gives_zero() {
        let (ncc, _) = normalized_cross_correlation(&noise(4_000, 1), &noise(4_000, 99), 50);
        assert!(ncc < 0.2, "{ncc}");
        assert_eq!(
            normalized_cross_correlation(&[0.0; 100], &noise(100, 3), 10),
            (0.0, 0)
        );
    }
}
