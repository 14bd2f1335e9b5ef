//! The start-up check of the sources and sinks a call will use.

use anyhow::Context;

use crate::config::MediaSettings;
use crate::media::audio;
use crate::media::spec::VideoSourceSpec;
use crate::media::video::y4m::Y4mReader;

/// Checks at start-up, before a call is placed or awaited, that the sources and sinks
/// the settings name exist: a named camera, microphone or speaker, readable Y4M and WAV
/// files, and recording paths in an existing directory. A typo fails at once instead
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
            Y4mReader::open(path).with_context(|| format!("--camera file:{}", path.display()))?;
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
        AudioSourceSpec::Auto | AudioSourceSpec::Tone | AudioSourceSpec::None => {}
    }
    if let AudioSinkSpec::Device(selector) = &settings.speaker {
        find_device(Direction::Output, selector).context("--speaker")?;
    }
    let recordings = [
        ("--record-video", &settings.record_video),
        ("--record-audio", &settings.record_audio),
    ];
    for (flag, path) in recordings {
        if let Some(path) = path {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                anyhow::bail!("{flag}: the directory of {} does not exist", path.display());
            }
        }
    }
    Ok(())
}
