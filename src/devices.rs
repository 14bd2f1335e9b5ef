//! Camera, microphone and speaker enumeration for `rtc-cli devices`.
//!
//! Audio devices come from cpal's default host (ALSA on Linux) in its order: the index
//! printed here is the position in `host.input_devices()` / `host.output_devices()`,
//! the same order `--mic N` and `--speaker N` select from. Cameras come from
//! [`crate::media::video::camera::list_cameras`].

use std::io::{self, Write};

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{SampleFormat, SupportedStreamConfig, SupportedStreamConfigRange};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::media::audio::device;
use crate::media::video::camera::{self, CameraInfo};

/// Whether a listed device could be opened. Serialized flat into its device as
/// `"openable": bool` plus `"error": "..."` when it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Openable {
    /// It opened and answered the query.
    Yes,
    /// The backend lists it but it failed to open; the backend's reason.
    No(String),
}

impl Serialize for Openable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Self::Yes => map.serialize_entry("openable", &true)?,
            Self::No(error) => {
                map.serialize_entry("openable", &false)?;
                map.serialize_entry("error", error)?;
            }
        }
        map.end()
    }
}

/// An inclusive range of sample rates, in Hz.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateRangeHz {
    /// Lowest rate offered, Hz.
    pub min: u32,
    /// Highest rate offered, Hz.
    pub max: u32,
}

/// The configuration a device uses when asked for its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioConfig {
    /// Interleaved channels.
    pub channels: u16,
    /// Frames per second, Hz.
    pub sample_rate_hz: u32,
    /// Sample type, as cpal names it (`f32`, `i16`, ...).
    pub format: String,
}

/// A microphone or speaker as `rtc-cli devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioDeviceInfo {
    /// Position in cpal's input (or output) device list; what `--mic N` selects.
    pub index: usize,
    /// The backend's name (ALSA PCM names such as `default`, `pulse`), matched by
    /// `--mic NAME` and `--speaker NAME`.
    pub name: String,
    /// Whether this is the host's default device of its direction.
    pub is_default: bool,
    /// Channel counts offered, ascending.
    pub channels: Vec<u16>,
    /// Sample rates offered across all configurations; `None` when none are.
    pub sample_rates_hz: Option<RateRangeHz>,
    /// Sample types offered (`f32`, `i16`, ...), in the backend's order.
    pub formats: Vec<String>,
    /// What the device opens with by default; `None` when it would not say.
    pub default_config: Option<AudioConfig>,
    /// Whether the device answered its default configuration, and why not.
    #[serde(flatten)]
    pub openable: Openable,
}

/// Everything `rtc-cli devices --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceList {
    /// Cameras, by position.
    pub cameras: Vec<CameraInfo>,
    /// Audio inputs (microphones, monitors), by position.
    pub inputs: Vec<AudioDeviceInfo>,
    /// Audio outputs (speakers, sinks), by position.
    pub outputs: Vec<AudioDeviceInfo>,
    /// Kinds that could not be listed at all, with the reason (omitted when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioDirection {
    /// Capture: microphones.
    Input,
    /// Playback: speakers.
    Output,
}

/// Lists cameras, audio inputs and audio outputs. Never fails: a kind whose backend
/// cannot enumerate is empty and its reason goes to [`DeviceList::errors`]; a device
/// that is listed but does not open is marked [`Openable::No`].
pub fn list() -> DeviceList {
    let mut errors = Vec::new();
    let cameras = or_note(&mut errors, "cameras", camera::list_cameras());
    let inputs = or_note(
        &mut errors,
        "audio inputs",
        list_audio(AudioDirection::Input),
    );
    let outputs = or_note(
        &mut errors,
        "audio outputs",
        list_audio(AudioDirection::Output),
    );
    DeviceList {
        cameras,
        inputs,
        outputs,
        errors,
    }
}

/// The list, or an empty one with the reason noted in `errors`.
fn or_note<T>(errors: &mut Vec<String>, what: &str, result: anyhow::Result<Vec<T>>) -> Vec<T> {
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list {what}");
        errors.push(format!("{what}: {e:#}"));
        Vec::new()
    })
}

/// Lists the audio devices of one direction on cpal's default host.
///
/// # Errors
/// The host cannot enumerate devices at all.
pub fn list_audio(direction: AudioDirection) -> anyhow::Result<Vec<AudioDeviceInfo>> {
    // cpal opens every PCM to enumerate and to describe it: keep ALSA's and JACK's
    // messages off the terminal for all of it.
    device::quietly(|| enumerate_audio(direction))
}

fn enumerate_audio(direction: AudioDirection) -> anyhow::Result<Vec<AudioDeviceInfo>> {
    let host = cpal::default_host();
    let (devices, default) = match direction {
        AudioDirection::Input => (
            host.input_devices()?.collect::<Vec<_>>(),
            host.default_input_device(),
        ),
        AudioDirection::Output => (
            host.output_devices()?.collect::<Vec<_>>(),
            host.default_output_device(),
        ),
    };
    let default_name = default.and_then(|d| d.name().ok());
    Ok(devices
        .iter()
        .enumerate()
        .map(|(index, device)| describe_audio(index, device, direction, default_name.as_deref()))
        .collect())
}

fn describe_audio(
    index: usize,
    device: &cpal::Device,
    direction: AudioDirection,
    default_name: Option<&str>,
) -> AudioDeviceInfo {
    let name = device
        .name()
        .unwrap_or_else(|e| format!("(unnamed device: {e})"));
    let (ranges, default) = match direction {
        AudioDirection::Input => (
            device
                .supported_input_configs()
                .map(Iterator::collect::<Vec<_>>)
                .map_err(|e| e.to_string()),
            device.default_input_config().map_err(|e| e.to_string()),
        ),
        AudioDirection::Output => (
            device
                .supported_output_configs()
                .map(Iterator::collect::<Vec<_>>)
                .map_err(|e| e.to_string()),
            device.default_output_config().map_err(|e| e.to_string()),
        ),
    };
    let summary = ranges.as_deref().map(summarize).unwrap_or_default();
    let openable = match (&ranges, &default) {
        (Err(e), _) | (_, Err(e)) => Openable::No(e.clone()),
        (Ok(_), Ok(_)) => Openable::Yes,
    };
    AudioDeviceInfo {
        index,
        is_default: default_name == Some(name.as_str()),
        name,
        channels: summary.channels,
        sample_rates_hz: summary.sample_rates_hz,
        formats: summary.formats,
        default_config: default.ok().as_ref().map(audio_config),
        openable,
    }
}

/// What a device's configuration ranges add up to.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConfigSummary {
    channels: Vec<u16>,
    sample_rates_hz: Option<RateRangeHz>,
    formats: Vec<String>,
}

fn summarize(ranges: &[SupportedStreamConfigRange]) -> ConfigSummary {
    let mut channels: Vec<u16> = ranges.iter().map(|r| r.channels()).collect();
    channels.sort_unstable();
    channels.dedup();
    let sample_rates_hz = ranges
        .iter()
        .map(|r| (r.min_sample_rate().0, r.max_sample_rate().0))
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .map(|(min, max)| RateRangeHz { min, max });
    let mut formats: Vec<SampleFormat> = Vec::new();
    for r in ranges {
        if !formats.contains(&r.sample_format()) {
            formats.push(r.sample_format());
        }
    }
    ConfigSummary {
        channels,
        sample_rates_hz,
        formats: formats.iter().map(ToString::to_string).collect(),
    }
}

fn audio_config(c: &SupportedStreamConfig) -> AudioConfig {
    AudioConfig {
        channels: c.channels(),
        sample_rate_hz: c.sample_rate().0,
        format: c.sample_format().to_string(),
    }
}

/// Runs `rtc-cli devices`: lists every kind and writes it to `out`, as one pretty JSON
/// document (`cameras`, `inputs`, `outputs` arrays) when `json`, else as text with
/// one section per kind. Empty kinds are said to be empty; the command still succeeds.
///
/// # Errors
/// Writing to `out` failed.
pub fn run_devices_command(json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let list = list();
    if json {
        serde_json::to_writer_pretty(&mut *out, &list)?;
        writeln!(out)?;
    } else {
        write_text(&list, out)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `list` as human-readable text: `Cameras`, `Audio inputs`, `Audio outputs`.
///
/// # Errors
/// Writing to `out` failed.
pub fn write_text(list: &DeviceList, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Cameras:")?;
    if list.cameras.is_empty() {
        writeln!(out, "  no cameras found")?;
    }
    for cam in &list.cameras {
        writeln!(out, "  {}  {}  ({})", cam.index, cam.name, cam.description)?;
        if let Openable::No(e) = &cam.openable {
            writeln!(out, "       cannot open: {e}")?;
        }
        for f in &cam.formats {
            let fps: Vec<String> = f.fps.iter().map(u32::to_string).collect();
            writeln!(
                out,
                "       {:<5} {}x{} @ {} fps",
                f.pixel_format.name(),
                f.width,
                f.height,
                fps.join(", ")
            )?;
        }
    }
    write_audio_section(out, "Audio inputs", "no audio inputs found", &list.inputs)?;
    write_audio_section(
        out,
        "Audio outputs",
        "no audio outputs found",
        &list.outputs,
    )?;
    for e in &list.errors {
        writeln!(out, "could not list {e}")?;
    }
    Ok(())
}

fn write_audio_section(
    out: &mut impl Write,
    title: &str,
    empty: &str,
    devices: &[AudioDeviceInfo],
) -> io::Result<()> {
    writeln!(out, "{title}:")?;
    if devices.is_empty() {
        writeln!(out, "  {empty}")?;
    }
    for d in devices {
        let default = if d.is_default { "  (default)" } else { "" };
        writeln!(out, "  {}  {}{default}", d.index, d.name)?;
        let channels = compress_runs(&d.channels);
        let rates = d
            .sample_rates_hz
            .map_or_else(|| "?".into(), |r| format!("{}-{} Hz", r.min, r.max));
        writeln!(
            out,
            "       channels {channels}, {rates}, formats {}",
            d.formats.join(" ")
        )?;
        match (&d.openable, &d.default_config) {
            (Openable::No(e), _) => writeln!(out, "       cannot open: {e}")?,
            (Openable::Yes, Some(c)) => writeln!(
                out,
                "       default {} ch, {} Hz, {}",
                c.channels, c.sample_rate_hz, c.format
            )?,
            (Openable::Yes, None) => {}
        }
    }
    Ok(())
}

/// Writes ascending numbers with runs collapsed: `[1, 2, 3, 6]` is `1-3, 6`.
fn compress_runs(values: &[u16]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let start = values[i];
        let mut end = start;
        while i + 1 < values.len() && values[i + 1] == end.saturating_add(1) {
            i += 1;
            end = values[i];
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    if parts.is_empty() {
        "?".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::{SampleRate, SupportedBufferSize};

    fn range(channels: u16, min: u32, max: u32, f: SampleFormat) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            SampleRate(min),
            SampleRate(max),
            SupportedBufferSize::Unknown,
            f,
        )
    }

    #[test]
    fn channel_runs_collapse() {
        assert_eq!(compress_runs(&(1..=32).collect::<Vec<_>>()), "1-32");
        assert_eq!(compress_runs(&[1, 2, 4, 6, 7]), "1-2, 4, 6-7");
        assert_eq!(compress_runs(&[2]), "2");
        assert_eq!(compress_runs(&[]), "?");
    }

    #[test]
    fn config_ranges_summarize_to_channels_rates_and_formats() {
        let s = summarize(&[
            range(2, 8_000, 48_000, SampleFormat::I16),
            range(1, 44_100, 192_000, SampleFormat::F32),
            range(2, 8_000, 48_000, SampleFormat::F32),
        ]);
        assert_eq!(s.channels, vec![1, 2]);
        assert_eq!(
            s.sample_rates_hz,
            Some(RateRangeHz {
                min: 8_000,
                max: 192_000
            })
        );
        assert_eq!(s.formats, vec!["i16", "f32"]);
        assert_eq!(summarize(&[]), ConfigSummary::default());
    }

    fn input(index: usize, name: &str, openable: Openable) -> AudioDeviceInfo {
        AudioDeviceInfo {
            index,
            name: name.into(),
            is_default: name == "default",
            channels: vec![1, 2],
            sample_rates_hz: Some(RateRangeHz {
                min: 1,
                max: 384_000,
            }),
            formats: vec!["f32".into()],
            default_config: Some(AudioConfig {
                channels: 2,
                sample_rate_hz: 48_000,
                format: "f32".into(),
            }),
            openable,
        }
    }

    #[test]
    fn json_has_the_three_arrays_and_flat_openable() {
        let list = DeviceList {
            cameras: vec![],
            inputs: vec![
                input(0, "default", Openable::Yes),
                input(1, "hw:1", Openable::No("busy".into())),
            ],
            outputs: vec![],
            errors: vec![],
        };
        let v = serde_json::to_value(&list).unwrap();
        assert_eq!(v["cameras"], serde_json::json!([]));
        assert_eq!(v["outputs"], serde_json::json!([]));
        assert_eq!(v["inputs"][0]["openable"], true);
        assert!(v["inputs"][0].get("error").is_none());
        assert_eq!(v["inputs"][0]["is_default"], true);
        assert_eq!(v["inputs"][0]["sample_rates_hz"]["max"], 384_000);
        assert_eq!(v["inputs"][1]["openable"], false);
        assert_eq!(v["inputs"][1]["error"], "busy");
        assert!(v.get("errors").is_none(), "no errors, no key");
    }

    #[test]
    fn text_says_so_for_each_empty_kind() {
        let list = DeviceList {
            cameras: vec![],
            inputs: vec![],
            outputs: vec![],
            errors: vec![],
        };
        let mut out = Vec::new();
        write_text(&list, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("no cameras found"), "{text}");
        assert!(text.contains("no audio inputs found"), "{text}");
        assert!(text.contains("no audio outputs found"), "{text}");
    }

    #[test]
    fn text_marks_default_and_unopenable_devices() {
        let list = DeviceList {
            cameras: vec![],
            inputs: vec![
                input(0, "default", Openable::Yes),
                input(1, "hw:1", Openable::No("Device or resource busy".into())),
            ],
            outputs: vec![],
            errors: vec!["cameras: backend exploded".into()],
        };
        let mut out = Vec::new();
        write_text(&list, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  0  default  (default)"), "{text}");
        assert!(text.contains("default 2 ch, 48000 Hz, f32"), "{text}");
        assert!(text.contains("  1  hw:1\n"), "{text}");
        assert!(
            text.contains("cannot open: Device or resource busy"),
            "{text}"
        );
        assert!(
            text.contains("could not list cameras: backend exploded"),
            "{text}"
        );
    }
}
