//! The start-up check of the sources and sinks a call will use.

use std::path::Path;

use anyhow::Context;

use crate::config::MediaSettings;
use crate::media::audio;
use crate::media::spec::VideoSourceSpec;
use crate::media::video::y4m::Y4mReader;

/// Checks at start-up, before a call is placed or awaited, that the sources and sinks
/// the settings name exist: a named camera, microphone or speaker, Y4M files with a
/// whole first frame of the header's size, readable WAV files, and an existing
/// directory for every file sink (`--speaker file:`, `--record-video`, `--record-audio`). A typo fails at once instead
/// of at the first accepted call.
///
/// # Errors
/// The first problem found, naming the flag and what exists.
pub fn check_media(settings: &MediaSettings) -> anyhow::Result<()> {
    use crate::media::audio::device::{Direction, find_device};
    use crate::media::spec::{AudioSinkSpec, AudioSourceSpec};
    match &settings.camera {
        VideoSourceSpec::Device(selector) => {
            crate::media::video::camera::check_camera(selector).context("--camera")?;
        }
        VideoSourceSpec::File(path) => {
            check_y4m(path).with_context(|| format!("--camera file:{}", path.display()))?;
        }
        VideoSourceSpec::Auto | VideoSourceSpec::TestPattern | VideoSourceSpec::None => {}
    }
    match &settings.mic {
        AudioSourceSpec::Device(selector) => {
            find_device(Direction::Input, selector).context("--mic")?;
        }
        AudioSourceSpec::File(path) => {
            audio::wav::read_mono(path)
                .with_context(|| format!("--mic file:{}", path.display()))?;
        }
        AudioSourceSpec::Auto | AudioSourceSpec::Tone { .. } | AudioSourceSpec::None => {}
    }
    if let AudioSinkSpec::Device(selector) = &settings.speaker {
        find_device(Direction::Output, selector).context("--speaker")?;
    }
    let speaker_file = match &settings.speaker {
        AudioSinkSpec::File(path) => Some(path),
        _ => None,
    };
    let file_sinks = [
        ("--speaker", speaker_file),
        ("--record-video", settings.record_video.as_ref()),
        ("--record-audio", settings.record_audio.as_ref()),
    ];
    for (flag, path) in file_sinks {
        if let Some(path) = path {
            check_target_dir(flag, path)?;
        }
    }
    Ok(())
}

/// Checks that a Y4M file has a valid header and at least one whole frame, and that
/// the frame is the size the header says (what follows it is the next `FRAME` or the
/// end of the file).
///
/// # Errors
/// The file cannot be opened, or its header, first frame or frame size is wrong.
fn check_y4m(path: &Path) -> anyhow::Result<()> {
    let mut reader = Y4mReader::open(path)?;
    if reader.read_frame()?.is_none() {
        anyhow::bail!("the Y4M file has no frames");
    }
    reader.check_next_frame_start()?;
    Ok(())
}

/// Checks that the directory a file sink writes `path` into exists.
///
/// # Errors
/// Names `flag` and the path when the directory is missing.
fn check_target_dir(flag: &str, path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(dir) if !dir.is_dir() => {
            anyhow::bail!("{flag}: the directory of {} does not exist", path.display())
        }
        _ => Ok(()),
    }
}
