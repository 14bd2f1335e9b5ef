//! Time-scale modification of decoded speech: one pitch period taken out of a frame
//! ("accelerate") or put in ("expand"), with a cross-fade, so the jitter buffer can
//! change its delay by a few milliseconds at a time without a gap or a repeated 20 ms
//! frame that a listener hears. The method is WSOLA-style overlap-add at the lag of
//! best self-similarity, as WebRTC's NetEQ does (its `Accelerate` and
//! `PreemptiveExpand`): on voiced speech the removed or repeated period is nearly
//! identical to its neighbour, so the seam is inaudible and the pitch is kept.

use std::collections::VecDeque;

/// Shortest lag searched, in samples at 48 kHz: 2.5 ms (a 400 Hz voice).
pub const MIN_LAG: usize = 120;
/// Longest lag searched: 10 ms (a 100 Hz voice), so two periods fit in a 20 ms frame.
pub const MAX_LAG: usize = 480;
/// Normalized correlation above which the seam is taken as clean on any signal.
pub const MIN_CORRELATION: f64 = 0.5;
/// Mean square below which a frame is quiet enough to cut anywhere (about -50 dBFS).
const QUIET_POWER: f64 = 1e-5;

/// The lag (samples) over which `x` best repeats itself, with its normalized
/// correlation (-1..1): the best of `MIN_LAG..=MAX_LAG` comparing `x[..lag]` with
/// `x[lag..2 lag]`. `None` when `x` is shorter than two minimal lags.
pub fn best_lag(x: &[f32]) -> Option<(usize, f64)> {
    let max = MAX_LAG.min(x.len() / 2);
    (MIN_LAG..=max)
        .map(|lag| (lag, correlation(&x[..lag], &x[lag..2 * lag])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return if aa == bb { 1.0 } else { 0.0 };
    }
    ab / (aa * bb).sqrt()
}

fn mean_square(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64
}

/// The lag to cut or repeat in `x`, if the seam would be clean: a well-correlated
/// period, or any period of a quiet frame.
fn seam(x: &[f32]) -> Option<usize> {
    let (lag, corr) = best_lag(x)?;
    (corr >= MIN_CORRELATION || mean_square(x) < QUIET_POWER).then_some(lag)
}

/// Cross-fades `from` into `to` (same length) sample by sample onto `out`.
fn cross_fade(from: &[f32], to: &[f32], out: &mut VecDeque<f32>) {
    let n = from.len() as f32;
    out.extend(from.iter().zip(to).enumerate().map(|(i, (&a, &b))| {
        let w = (i as f32 + 0.5) / n;
        a * (1.0 - w) + b * w
    }));
}

/// Appends `x` shortened by one pitch period to `out`: the first two periods overlap
/// into one. Returns the samples removed (0 when no clean seam exists; then `x` is
/// appended whole).
pub fn accelerate(x: &[f32], out: &mut VecDeque<f32>) -> usize {
    let Some(lag) = seam(x) else {
        out.extend(x);
        return 0;
    };
    cross_fade(&x[..lag], &x[lag..2 * lag], out);
    out.extend(&x[2 * lag..]);
    lag
}

/// Appends `x` lengthened by one pitch period to `out`: after the first period comes a
/// period that starts as the second and ends as the first, then the rest from the
/// second on. Returns the samples added (0 when no clean seam exists).
pub fn expand(x: &[f32], out: &mut VecDeque<f32>) -> usize {
    let Some(lag) = seam(x) else {
        out.extend(x);
        return 0;
    };
    out.extend(&x[..lag]);
    cross_fade(&x[lag..2 * lag], &x[..lag], out);
    out.extend(&x[lag..]);
    lag
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::TAU;

    /// A 200 Hz tone with a harmonic (period 240 samples at 48 kHz), 20 ms.
    fn voiced() -> Vec<f32> {
        (0..960)
            .map(|n| {
                let t = n as f32 / 48_000.0;
                0.3 * (TAU * 200.0 * t).sin() + 0.1 * (TAU * 400.0 * t).sin()
            })
            .collect()
    }

    /// The largest step between neighbouring samples: a seam shows up as a jump.
    fn largest_step(x: &[f32]) -> f32 {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_pitch_period_is_found() {
        let (lag, corr) = best_lag(&voiced()).unwrap();
        assert_eq!(lag % 240, 0, "lag {lag}");
        assert!(corr > 0.99, "{corr}");
        assert_eq!(best_lag(&[0.0; 100]), None);
    }

    #[test]
    fn accelerate_removes_a_period_without_a_seam() {
        let x = voiced();
        let mut out = VecDeque::new();
        let removed = accelerate(&x, &mut out);
        assert_eq!(removed % 240, 0);
        assert!(removed >= MIN_LAG);
        assert_eq!(out.len(), 960 - removed);
        let out: Vec<f32> = out.into();
        assert!(largest_step(&out) <= largest_step(&x) * 1.05);
    }

    #[test]
    fn expand_adds_a_period_without_a_seam() {
        let x = voiced();
        let mut out = VecDeque::new();
        let added = expand(&x, &mut out);
        assert_eq!(added % 240, 0);
        assert_eq!(out.len(), 960 + added);
        let out: Vec<f32> = out.into();
        assert!(largest_step(&out) <= largest_step(&x) * 1.05);
        // The start and the end are the frame's own.
        assert_eq!(out[..10], x[..10]);
        assert_eq!(out[out.len() - 10..], x[950..]);
    }

    #[test]
    fn noise_is_left_alone_and_silence_is_cut_anywhere() {
        let mut state = 12345u32;
        let noise: Vec<f32> = (0..960)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let mut out = VecDeque::new();
        assert_eq!(accelerate(&noise, &mut out), 0);
        assert_eq!(out.len(), 960);
        out.clear();
        assert!(expand(&[0.0; 960], &mut out) >= MIN_LAG);
    }
}
