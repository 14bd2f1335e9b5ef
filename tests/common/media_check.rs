//! Checks of what a call carried: recorded video against its source frames (PSNR), and
//! reading recorded audio (matched against its source by [`super::audio_match`]).

use std::path::{Path, PathBuf};

use rtc_cli::media::audio::wav::read_mono;
use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::quality::psnr;
use rtc_cli::media::video::y4m::{FrameRate, Y4mReader, Y4mWriter};

use super::audio_match::match_windows;

/// The footage every media test sends: `tests/fixtures/clip_320x240.y4m`.
pub const CLIP: &str = "clip_320x240.y4m";
/// The speech every media test sends: `tests/fixtures/speech_48k_mono.wav`.
pub const SPEECH: &str = "speech_48k_mono.wav";

/// Samples at 48 kHz (0.5 s) in each window of speech aligned on its own. When the
/// jitter buffer stretches a frame, the rest of that window is shifted against the
/// source and its NCC drops (to 0.66 for a 1 s window in one CI run); half-second
/// windows keep such a shift to a smaller share of the measure.
pub const SPEECH_WINDOW: usize = 24_000;

/// The weighted NCC floor of a call's speech. On loopback, idle, calls measure 0.84-0.86; with two busy
/// loops competing for the two cores, 0.68-0.86 (the receiver conceals a few frames and
/// stretches others); a CI run measured 0.796. Noise or a broken path measures under 0.1,
/// so the floor sits at the loaded machine's low end, not at the idle figure. Through
/// coturn on two loaded cores, runs measure 0.70-0.85 (0.703 in one CI run).
pub const MIN_CALL_NCC: f64 = 0.65;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `file:<path of the fixture>`, the `--camera` / `--mic` source of a fixture.
pub fn file_source(name: &str) -> String {
    format!("file:{}", fixture(name).display())
}

/// Checks what one direction of a call carried, recorded at its receiver in `video`
/// (Y4M) and `audio` (WAV), against the [`CLIP`] and [`SPEECH`] the sender sent
/// (`sent`: the sender's `frames_sent`): at least 90 % of the frames arrived, none under
/// 32 dB PSNR against its best-matching source frame, at least 4 s of speech in
/// [`SPEECH_WINDOW`]s with a weighted NCC of at least [`MIN_CALL_NCC`].
/// Prints the figures under `what`.
pub fn check_received(what: &str, sent: u64, video: &Path, audio: &Path) {
    let source_frames = read_y4m(&fixture(CLIP));
    let recorded = read_y4m(video);
    let arrived = recorded.len() as f64 / sent as f64;
    eprintln!(
        "{what}: {} of {sent} frames arrived ({:.1} %)",
        recorded.len(),
        arrived * 100.0
    );
    assert!(
        arrived >= 0.9,
        "{what}: only {} of {sent} frames arrived",
        recorded.len()
    );
    let psnrs = best_match_psnrs(&recorded, &source_frames);
    let worst = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    eprintln!("{what}: PSNR worst {worst:.1} dB, mean {mean:.1} dB");
    assert!(
        worst >= 32.0,
        "{what}: a frame has PSNR {worst:.1} dB < 32 dB"
    );

    let speech = read_wav_48k(&fixture(SPEECH));
    let received = read_wav_48k(audio);
    // Speech sits around -20 dBFS RMS, so 0.01 skips the pauses.
    let matched = match_windows(&speech, &received, SPEECH_WINDOW, 0.01);
    let ncc = matched.weighted_ncc().unwrap_or(0.0);
    eprintln!("{what}: audio NCC {ncc:.3}\n{}", matched.describe(48_000));
    assert!(
        matched.windows.len() * SPEECH_WINDOW >= 4 * 48_000,
        "{what}: too little audio arrived: {matched:?}"
    );
    assert!(
        ncc >= MIN_CALL_NCC,
        "{what}: NCC {ncc:.3} < {MIN_CALL_NCC}: {}",
        matched.describe(48_000)
    );
}

/// Writes a 320x240 15 fps Y4M of 30 frames to `path`: a field of the Y'CbCr color
/// `yuv` with a light bar moving across, so each frame differs a little and each
/// member of a room can send a picture of its own color.
pub fn colored_clip(path: &Path, yuv: (u8, u8, u8)) {
    let rate = FrameRate::from_fps(15).unwrap();
    let mut out = Y4mWriter::create(path, 320, 240, rate).unwrap();
    for i in 0..30u32 {
        let mut frame = I420Frame::filled(320, 240, yuv).unwrap();
        let (y, _, _) = frame.planes_mut();
        for row in y.chunks_mut(320) {
            let x0 = (i * 10) as usize;
            row[x0..x0 + 20].fill(235);
        }
        out.write_frame(&frame).unwrap();
    }
    out.flush().unwrap();
}

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
