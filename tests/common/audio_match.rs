//! Matching a recording of a call against the speech that was sent, window by window.
//!
//! A call's audio path shifts timing: the speaker starts 0.5-1.5 s late, the jitter
//! buffer moves playout in 20 ms steps, and a looped source (`--mic file:…`) wraps. So
//! one global alignment does not fit a whole recording. Instead each window of the
//! recording that carries speech is aligned on its own against the looped source, and
//! the windows' best normalized cross-correlations are averaged, weighted by energy. A
//! window may hold one playout step, so it is also tried split in two, each side
//! aligned on its own.
//!
//! Alignment is coarse to fine, cheap enough for a debug build: a 5 ms RMS envelope
//! finds a few candidate offsets over the whole loop, then
//! [`normalized_cross_correlation`] refines each on a 4x decimated signal and finally
//! at full rate.

use rtc_cli::media::audio::quality::normalized_cross_correlation;

/// Envelope hop, samples (5 ms at 48 kHz): the coarse search's resolution.
const HOP: usize = 240;

/// Envelope candidates refined per window: speech repeats its shapes, so the best
/// envelope match is not always the true one.
const CANDIDATES: usize = 3;

/// Search half-width around a coarse candidate, samples: two hops covers the envelope's
/// error.
const COARSE_MARGIN: usize = 2 * HOP;

/// The shortest active span worth aligning on its own, samples (0.25 s at 48 kHz).
const MIN_ACTIVE: usize = 50 * HOP;

/// A window may hold a playout step: it is also tried split at each `k / SPLITS` of
/// its length, for `k` in `1..SPLITS`.
const SPLITS: usize = 4;

/// Decimation factor of the middle stage.
const DECIMATE: usize = 4;

/// Search half-width of the full-rate stage, samples: one decimated step plus slack.
const FINE_MARGIN: usize = 2 * DECIMATE;

/// How one window of the recording matched the source.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowMatch {
    /// First sample of the window in the recording.
    pub start: usize,
    /// RMS level of the recording in the window, linear (1.0 = full scale).
    pub rms: f64,
    /// Best normalized cross-correlation found, in [-1, 1].
    pub ncc: f64,
    /// Where in the (looped) source the window lines up, samples in `0..source.len()`.
    pub source_offset: usize,
}

/// The windows of one recording that carried speech, and how each matched.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioMatch {
    /// Window length, samples.
    pub window: usize,
    /// One entry per window whose RMS reached the threshold, in recording order.
    pub windows: Vec<WindowMatch>,
}

impl AudioMatch {
    /// The energy-weighted mean NCC of the windows (weights RMS²), or `None` when no
    /// window carried speech.
    pub fn weighted_ncc(&self) -> Option<f64> {
        let energy: f64 = self.windows.iter().map(|w| w.rms * w.rms).sum();
        (energy > 0.0).then(|| {
            self.windows
                .iter()
                .map(|w| w.ncc * w.rms * w.rms)
                .sum::<f64>()
                / energy
        })
    }

    /// One line per window (`t=1.0s rms -22.3 dBFS ncc 0.93 at 2.34s`) for failure
    /// messages and reports.
    pub fn describe(&self, sample_rate_hz: u32) -> String {
        let secs = |n: usize| n as f64 / f64::from(sample_rate_hz);
        self.windows
            .iter()
            .map(|w| {
                format!(
                    "t={:.1}s rms {:.1} dBFS ncc {:.3} at {:.3}s",
                    secs(w.start),
                    20.0 * w.rms.log10(),
                    w.ncc,
                    secs(w.source_offset)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Splits `recording` into windows of `window` samples, keeps those whose RMS is at
/// least `min_rms` (linear), and aligns each on its own against `source` played in a
/// loop (a window's silent edges are left out of its alignment). Both signals are mono
/// at the same rate.
///
/// # Panics
/// When `source` is shorter than a window or `window` is not a whole number of
/// envelope hops (test setup errors).
pub fn match_windows(source: &[f32], recording: &[f32], window: usize, min_rms: f64) -> AudioMatch {
    assert!(
        source.len() >= window && window.is_multiple_of(HOP) && window > 0,
        "source of {} samples, window of {window}",
        source.len()
    );
    let source_env = envelope(source);
    let windows = recording
        .chunks_exact(window)
        .enumerate()
        .filter_map(|(i, chunk)| {
            let rms = rms(chunk);
            (rms >= min_rms).then(|| {
                let (skipped, active) = active_span(chunk, rms);
                let (ncc, offset) = align_across_a_step(source, &source_env, active);
                WindowMatch {
                    start: i * window,
                    rms,
                    ncc,
                    // Where the window's first sample lines up.
                    source_offset: (offset + source.len() - skipped % source.len()) % source.len(),
                }
            })
        })
        .collect();
    AudioMatch { window, windows }
}

/// The part of `chunk` from its first to its last hop louder than a tenth of its RMS
/// `level`, and how many samples were cut before it: a window where the speaker only
/// starts (or a pause begins) is aligned on the sound it holds, not on the silence. A
/// span under [`MIN_ACTIVE`] is too short to align, so the whole chunk is kept.
fn active_span(chunk: &[f32], level: f64) -> (usize, &[f32]) {
    let env = envelope(chunk);
    let loud = |e: &f64| *e >= level / 10.0;
    match (env.iter().position(loud), env.iter().rposition(loud)) {
        (Some(first), Some(last)) if (last + 1 - first) * HOP >= MIN_ACTIVE => {
            (first * HOP, &chunk[first * HOP..(last + 1) * HOP])
        }
        _ => (0, chunk),
    }
}

/// Aligns `span` as a whole and split in two at a quarter, half and three quarters of
/// its length (each side aligned on its own, their NCCs weighted by energy, sides
/// shorter than [`MIN_ACTIVE`] not tried); returns the best fit as (NCC, source offset
/// of the span's first sample). A jitter buffer's playout step inside a window leaves
/// no single offset that fits all of it, but each side of the step fits one: without
/// this, one step in a loud window costs the recording's score much of that window.
fn align_across_a_step(source: &[f32], source_env: &[f64], span: &[f32]) -> (f64, usize) {
    let whole = align(source, source_env, span);
    (1..SPLITS)
        .map(|k| span.len() * k / SPLITS / HOP * HOP)
        .filter(|&at| at >= MIN_ACTIVE && span.len() - at >= MIN_ACTIVE)
        .map(|at| {
            let (first, second) = span.split_at(at);
            let (ncc_first, offset) = align(source, source_env, first);
            let (ncc_second, _) = align(source, source_env, second);
            let (e_first, e_second) = (energy(first), energy(second));
            let total = (e_first + e_second).max(f64::MIN_POSITIVE);
            (
                (ncc_first * e_first + ncc_second * e_second) / total,
                offset,
            )
        })
        .fold(whole, |best, c| if c.0 > best.0 { c } else { best })
}

/// Sum of squares of `x`.
fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

/// The best NCC of `chunk` against the looped `source`, and the source offset.
fn align(source: &[f32], source_env: &[f64], chunk: &[f32]) -> (f64, usize) {
    let chunk_env = envelope(chunk);
    coarse_candidates(source_env, &chunk_env)
        .into_iter()
        .map(|hop| refine(source, chunk, hop * HOP))
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

/// Hop offsets into the looped source where the envelopes correlate best, best first,
/// at least three hops apart.
fn coarse_candidates(source_env: &[f64], chunk_env: &[f64]) -> Vec<usize> {
    let n = source_env.len();
    let mut scores: Vec<(f64, usize)> = (0..n)
        .map(|offset| {
            let shifted: Vec<f64> = (0..chunk_env.len())
                .map(|j| source_env[(offset + j) % n])
                .collect();
            (pearson(chunk_env, &shifted), offset)
        })
        .collect();
    scores.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut picked: Vec<usize> = Vec::with_capacity(CANDIDATES);
    for (_, offset) in scores {
        let far = |p: &usize| {
            let d = offset.abs_diff(*p);
            d.min(n - d) >= 3
        };
        if picked.iter().all(far) {
            picked.push(offset);
            if picked.len() == CANDIDATES {
                break;
            }
        }
    }
    picked
}

/// Refines a coarse source offset: decimated, then full rate. Returns (NCC, offset).
fn refine(source: &[f32], chunk: &[f32], coarse: usize) -> (f64, usize) {
    let len = source.len();
    // Decimated stage: the source segment starts COARSE_MARGIN early, so lags
    // 0..=2·COARSE_MARGIN (decimated: /DECIMATE) span the candidate's neighbourhood.
    let start = (coarse + len - COARSE_MARGIN % len) % len;
    let segment = looped(source, start, chunk.len() + 2 * COARSE_MARGIN);
    let (_, lag) = normalized_cross_correlation(
        &decimate(chunk),
        &decimate(&segment),
        2 * COARSE_MARGIN / DECIMATE,
    );
    let mid = (start + lag.max(0).unsigned_abs() * DECIMATE) % len;
    // Full-rate stage around the decimated answer.
    let start = (mid + len - FINE_MARGIN % len) % len;
    let segment = looped(source, start, chunk.len() + 2 * FINE_MARGIN);
    let (ncc, lag) = normalized_cross_correlation(chunk, &segment, 2 * FINE_MARGIN);
    (ncc, (start + lag.max(0).unsigned_abs()) % len)
}

/// `len` samples of `source` played in a loop, from `start`.
fn looped(source: &[f32], start: usize, len: usize) -> Vec<f32> {
    source
        .iter()
        .copied()
        .cycle()
        .skip(start)
        .take(len)
        .collect()
}

/// Box-filter decimation by [`DECIMATE`]: a crude low-pass, enough for alignment.
fn decimate(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(DECIMATE)
        .map(|c| c.iter().sum::<f32>() / DECIMATE as f32)
        .collect()
}

/// RMS per [`HOP`] samples.
fn envelope(x: &[f32]) -> Vec<f64> {
    x.chunks_exact(HOP).map(rms).collect()
}

/// Root mean square, linear.
pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (energy(x) / x.len() as f64).sqrt()
}

/// Pearson correlation of two equally long series; 0 when either is constant.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}
