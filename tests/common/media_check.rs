//! Checks of what a call carried: recorded video against its source frames (PSNR), and
//! reading recorded audio (matched against its source by [`super::audio_match`]).

use std::path::Path;

use rtc_cli::media::audio::wav::read_mono;
use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::quality::psnr;
use rtc_cli::media::video::y4m::Y4mReader;

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
