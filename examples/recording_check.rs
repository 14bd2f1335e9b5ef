//! Analyses a call's recordings against their sources for scripts/bench-network.sh,
//! with the same code the media tests use (tests/common): prints one JSON object.
//!
//! ```text
//! cargo run --example recording_check -- \
//!     [--video REC.y4m [--source-video SRC.y4m]] [--audio REC.wav --source-audio SRC.wav]
//! ```
//!
//! - `frames`: frames in the recorded Y4M (the frames the receiver displayed);
//! - `psnr_median_db`, `psnr_min_db`: each recorded frame against its best-matching
//!   source frame (given `--source-video`), at the recording's `size` (the source scaled
//!   to it when the recording began smaller: the sender's ladder had stepped down);
//! - `audio_ncc`: the energy-weighted normalized cross-correlation of 1 s windows of the
//!   recorded audio against the looped source (speech windows only), `audio_windows`
//!   how many windows carried speech.
//!
//! Bad paths or files are errors with the path named (exit 1).

#[path = "../tests/common/audio_match.rs"]
#[allow(dead_code)]
mod audio_match;
#[path = "../tests/common/media_check.rs"]
#[allow(dead_code)]
mod media_check;

use std::path::PathBuf;

use anyhow::{Context, bail};
use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::scale;

/// Window length of the audio match, samples (1 s at 48 kHz, as the media tests use).
const AUDIO_WINDOW: usize = 48_000;

/// RMS below which a window is a pause, not speech (speech sits around -20 dBFS).
const SPEECH_RMS: f64 = 0.01;

#[derive(Default)]
struct Args {
    video: Option<PathBuf>,
    source_video: Option<PathBuf>,
    audio: Option<PathBuf>,
    source_audio: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .map(PathBuf::from)
            .with_context(|| format!("{flag} needs a path"))?;
        let slot = match flag.as_str() {
            "--video" => &mut args.video,
            "--source-video" => &mut args.source_video,
            "--audio" => &mut args.audio,
            "--source-audio" => &mut args.source_audio,
            _ => bail!("unknown argument {flag:?}"),
        };
        *slot = Some(value);
    }
    if args.audio.is_some() != args.source_audio.is_some() {
        bail!("--audio and --source-audio go together");
    }
    Ok(args)
}

/// The source frames at the recording's `size`: a recording is written at its first
/// frame's size, which the sender's ladder may have stepped down from the source's.
fn source_at(source: &[I420Frame], size: (u32, u32)) -> anyhow::Result<Vec<I420Frame>> {
    source
        .iter()
        .map(|frame| {
            if (frame.width(), frame.height()) == size {
                return Ok(frame.clone());
            }
            scale::scale(frame, size.0, size.1)
                .with_context(|| format!("scaling the source to {}x{}", size.0, size.1))
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut fields = Vec::new();
    if let Some(video) = &args.video {
        // A receiver that decoded nothing writes no file.
        let recorded = if video.exists() {
            media_check::read_y4m(video)
        } else {
            Vec::new()
        };
        fields.push(format!("\"frames\":{}", recorded.len()));
        if let Some(source) = &args.source_video
            && !recorded.is_empty()
        {
            let size = (recorded[0].width(), recorded[0].height());
            let source = source_at(&media_check::read_y4m(source), size)?;
            fields.push(format!("\"size\":\"{}x{}\"", size.0, size.1));
            let mut psnrs = media_check::best_match_psnrs(&recorded, &source);
            psnrs.sort_by(f64::total_cmp);
            fields.push(format!("\"psnr_median_db\":{:.2}", psnrs[psnrs.len() / 2]));
            fields.push(format!("\"psnr_min_db\":{:.2}", psnrs[0]));
        }
    }
    if let (Some(audio), Some(source)) = (&args.audio, &args.source_audio) {
        let received = if audio.exists() {
            media_check::read_wav_48k(audio)
        } else {
            Vec::new()
        };
        let matched = audio_match::match_windows(
            &media_check::read_wav_48k(source),
            &received,
            AUDIO_WINDOW,
            SPEECH_RMS,
        );
        let ncc = matched
            .weighted_ncc()
            .map_or("null".to_owned(), |n| format!("{n:.3}"));
        fields.push(format!(
            "\"audio_ncc\":{ncc},\"audio_windows\":{}",
            matched.windows.len()
        ));
    }
    println!("{{{}}}", fields.join(","));
    Ok(())
}
