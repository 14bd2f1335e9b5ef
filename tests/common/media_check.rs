//! Checks of what a call carried: recorded video against its source frames (PSNR) and
//! recorded audio against its source speech (normalized cross-correlation after
//! aligning each window, since a jitter buffer may shift playout in 20 ms steps).

use std::path::Path;
use std::sync::Arc;

use rtc_cli::media::audio::wav::read_mono;
use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::quality::psnr;
use rtc_cli::media::video::y4m::Y4mReader;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Every frame of a Y4M file.
pub fn read_y4m(path: &Path) -> Vec<I420Frame> {
    let mut reader = Y4mReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    while let Some(f) = reader.read_frame().unwrap() {
        frames.push(f);
    }
    frames
}

/// The PSNR of each recorded frame against its best-matching source frame. After the
/// first frame (searched in full) the search follows playback: the next few source
/// frames after the previous match, wrapping (sources loop).
pub fn best_match_psnrs(recorded: &[I420Frame], source: &[I420Frame]) -> Vec<f64> {
    let n = source.len();
    let mut prev: Option<usize> = None;
    recorded
        .iter()
        .map(|frame| {
            let candidates: Vec<usize> = match prev {
                None => (0..n).collect(),
                Some(p) => (0..12).map(|d| (p + n - 2 + d) % n).collect(),
            };
            let (best, idx) = candidates
                .into_iter()
                .map(|i| (psnr(frame, &source[i]).unwrap_or(0.0), i))
                .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a });
            // A frame that matches nothing near the expected place: search everything.
            let (best, idx) = if best < 32.0 && prev.is_some() {
                (0..n)
                    .map(|i| (psnr(frame, &source[i]).unwrap_or(0.0), i))
                    .fold((best, idx), |a, b| if b.0 > a.0 { b } else { a })
            } else {
                (best, idx)
            };
            prev = Some(idx);
            best
        })
        .collect()
}

/// Mono samples of a WAV file at 48 kHz.
pub fn read_wav_48k(path: &Path) -> Vec<f32> {
    let clip = read_mono(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(clip.sample_rate_hz, 48_000, "{}", path.display());
    clip.samples
}

/// How one window of a recording matched the source.
#[derive(Debug, Clone, Copy)]
pub struct WindowMatch {
    /// Start of the window in the recording, in samples.
    pub start: usize,
    /// Normalized cross-correlation at the best alignment.
    pub ncc: f64,
    /// Window energy (sum of squares), the weight of this window.
    pub energy: f64,
}

/// Aligns each voiced `window`-sample window of `recording` with the (looped) `source`
/// and returns the matches; windows quieter than 1 % of the loudest are skipped.
pub fn windowed_matches(recording: &[f32], source: &[f32], window: usize) -> Vec<WindowMatch> {
    let looped: Vec<f32> = source.iter().chain(source.iter()).copied().collect();
    let correlator = Correlator::new(&looped, window);
    let energies: Vec<(usize, f64)> = (0..recording.len().saturating_sub(window))
        .step_by(window)
        .map(|start| (start, energy(&recording[start..start + window])))
        .collect();
    let loudest = energies.iter().map(|e| e.1).fold(0.0, f64::max);
    energies
        .into_iter()
        .filter(|(_, e)| *e > loudest * 0.01 && *e > 0.0)
        .map(|(start, e)| {
            let win = &recording[start..start + window];
            let offset = correlator.best_offset(win);
            let ncc = ncc_at(win, &looped[offset..offset + window]);
            WindowMatch {
                start,
                ncc,
                energy: e,
            }
        })
        .collect()
}

/// Energy-weighted mean NCC of the matches (0 when there are none).
pub fn weighted_ncc(matches: &[WindowMatch]) -> f64 {
    let total: f64 = matches.iter().map(|m| m.energy).sum();
    if total == 0.0 {
        return 0.0;
    }
    matches.iter().map(|m| m.ncc * m.energy).sum::<f64>() / total
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

fn ncc_at(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let denom = (energy(a) * energy(b)).sqrt();
    if denom == 0.0 { 0.0 } else { dot / denom }
}

/// FFT cross-correlation of windows against one long reference.
struct Correlator {
    reference: Vec<f32>,
    reference_spectrum: Vec<Complex32>,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    /// Prefix sums of squares of the reference, for normalizing each offset.
    energy_prefix: Vec<f64>,
    window: usize,
}

impl Correlator {
    fn new(reference: &[f32], window: usize) -> Self {
        let size = (reference.len() + window).next_power_of_two();
        let mut planner = FftPlanner::new();
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        let mut reference_spectrum: Vec<Complex32> = reference
            .iter()
            .map(|&s| Complex32::new(s, 0.0))
            .chain(std::iter::repeat(Complex32::new(0.0, 0.0)))
            .take(size)
            .collect();
        forward.process(&mut reference_spectrum);
        let mut energy_prefix = vec![0.0; reference.len() + 1];
        for (i, &s) in reference.iter().enumerate() {
            energy_prefix[i + 1] = energy_prefix[i] + f64::from(s) * f64::from(s);
        }
        Self {
            reference: reference.to_vec(),
            reference_spectrum,
            forward,
            inverse,
            energy_prefix,
            window,
        }
    }

    /// The offset into the reference where `win` correlates best (normalized).
    fn best_offset(&self, win: &[f32]) -> usize {
        let size = self.reference_spectrum.len();
        let mut spectrum: Vec<Complex32> = win
            .iter()
            .map(|&s| Complex32::new(s, 0.0))
            .chain(std::iter::repeat(Complex32::new(0.0, 0.0)))
            .take(size)
            .collect();
        self.forward.process(&mut spectrum);
        for (w, r) in spectrum.iter_mut().zip(&self.reference_spectrum) {
            *w = r * w.conj();
        }
        self.inverse.process(&mut spectrum);
        let last = self.reference.len() - self.window;
        (0..=last)
            .max_by(|&a, &b| {
                let score = |o: usize| {
                    let e = self.energy_prefix[o + self.window] - self.energy_prefix[o];
                    f64::from(spectrum[o].re) / e.max(1e-12).sqrt()
                };
                score(a).total_cmp(&score(b))
            })
            .unwrap_or(0)
    }
}
