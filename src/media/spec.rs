//! The one parser of `--camera`, `--mic` and `--speaker` values.
//!
//! Every source and sink has a device form and a file/synthetic form:
//! camera | `file:PATH.y4m` | `test` | `none`; mic | `file:PATH.wav` | `tone` | `none`;
//! speaker | `file:PATH.wav` | `none`. A device is `default`, an index (`0`), or a
//! case-insensitive name substring (`usb`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which device of a kind to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The system's default (for cameras: the first one).
    Default,
    /// Position in the list `rtc-cli devices` prints.
    Index(usize),
    /// Case-insensitive substring of the device name.
    Name(String),
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Index(i) => write!(f, "{i}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

impl DeviceSelector {
    fn parse(s: &str) -> Self {
        match s {
            "default" => Self::Default,
            _ => s
                .parse()
                .map_or_else(|_| Self::Name(s.to_owned()), Self::Index),
        }
    }
}

/// Where outgoing video comes from (`--camera`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VideoSourceSpec {
    /// The first camera, else the test pattern with a notice (`auto`, the default).
    #[default]
    Auto,
    /// A camera chosen by index or name.
    Device(DeviceSelector),
    /// A moving test pattern that carries a readable frame counter (`test`).
    TestPattern,
    /// A looped Y4M file paced at its frame rate (`file:PATH.y4m`).
    File(PathBuf),
    /// Send no video (`none`).
    None,
}

/// The frequency of `--mic tone`, Hz.
pub const DEFAULT_TONE_HZ: u32 = 440;

/// Where outgoing audio comes from (`--mic`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioSourceSpec {
    /// The default microphone, else a tone with a notice (`auto`, the default).
    #[default]
    Auto,
    /// A microphone chosen by index or name.
    Device(DeviceSelector),
    /// A sine of `hz` Hz: `tone` (440 Hz) or `tone:HZ` (20-20000), e.g. to tell the
    /// members of a room apart in a recording.
    Tone {
        /// The frequency, Hz.
        hz: u32,
    },
    /// A looped WAV file of any rate and channel count (`file:PATH.wav`).
    File(PathBuf),
    /// Send no audio (`none`).
    None,
}

/// Where incoming audio goes (`--speaker`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioSinkSpec {
    /// The default output device, else nothing with a notice (`auto`, the default).
    #[default]
    Auto,
    /// An output device chosen by index or name.
    Device(DeviceSelector),
    /// A 48 kHz mono WAV of what would have been played (`file:PATH.wav`).
    File(PathBuf),
    /// Play nothing (`none`).
    None,
}

/// A spec string that names no source or sink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

fn file_path(s: &str) -> Option<Result<PathBuf, SpecError>> {
    let path = s.strip_prefix("file:")?;
    Some(if path.is_empty() {
        Err(SpecError("`file:` needs a path, e.g. file:clip.y4m".into()))
    } else {
        Ok(PathBuf::from(path))
    })
}

fn non_empty(s: &str, what: &str) -> Result<(), SpecError> {
    if s.trim().is_empty() {
        Err(SpecError(format!("empty {what}; try `rtc-cli devices`")))
    } else {
        Ok(())
    }
}

impl FromStr for VideoSourceSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        non_empty(s, "camera")?;
        if let Some(path) = file_path(s) {
            return path.map(Self::File);
        }
        Ok(match s {
            "auto" => Self::Auto,
            "test" => Self::TestPattern,
            "none" => Self::None,
            _ => Self::Device(DeviceSelector::parse(s)),
        })
    }
}

impl FromStr for AudioSourceSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        non_empty(s, "microphone")?;
        if let Some(path) = file_path(s) {
            return path.map(Self::File);
        }
        if let Some(hz) = s.strip_prefix("tone:") {
            return match hz.parse::<u32>() {
                Ok(hz) if (20..=20_000).contains(&hz) => Ok(Self::Tone { hz }),
                _ => Err(SpecError(format!(
                    "`tone:{hz}`: the frequency is a whole number of Hz from 20 to 20000"
                ))),
            };
        }
        Ok(match s {
            "auto" => Self::Auto,
            "tone" => Self::Tone {
                hz: DEFAULT_TONE_HZ,
            },
            "none" => Self::None,
            _ => Self::Device(DeviceSelector::parse(s)),
        })
    }
}

impl FromStr for AudioSinkSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        non_empty(s, "speaker")?;
        if let Some(path) = file_path(s) {
            return path.map(Self::File);
        }
        Ok(match s {
            "auto" => Self::Auto,
            "none" => Self::None,
            _ => Self::Device(DeviceSelector::parse(s)),
        })
    }
}

macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_via_str!(VideoSourceSpec, AudioSourceSpec, AudioSinkSpec);

fn fmt_common(
    f: &mut fmt::Formatter<'_>,
    device: Option<&DeviceSelector>,
    file: Option<&PathBuf>,
    word: &str,
) -> fmt::Result {
    match (device, file) {
        (Some(d), _) => write!(f, "{d}"),
        (_, Some(p)) => write!(f, "file:{}", p.display()),
        _ => f.write_str(word),
    }
}

impl fmt::Display for VideoSourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Device(d) => fmt_common(f, Some(d), None, ""),
            Self::TestPattern => f.write_str("test"),
            Self::File(p) => fmt_common(f, None, Some(p), ""),
            Self::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for AudioSourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Device(d) => fmt_common(f, Some(d), None, ""),
            Self::Tone { hz } if *hz == DEFAULT_TONE_HZ => f.write_str("tone"),
            Self::Tone { hz } => write!(f, "tone:{hz}"),
            Self::File(p) => fmt_common(f, None, Some(p), ""),
            Self::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for AudioSinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Device(d) => fmt_common(f, Some(d), None, ""),
            Self::File(p) => fmt_common(f, None, Some(p), ""),
            Self::None => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_specs_parse_every_form() {
        let p = |s: &str| s.parse::<VideoSourceSpec>();
        assert_eq!(p("test"), Ok(VideoSourceSpec::TestPattern));
        assert_eq!(p("none"), Ok(VideoSourceSpec::None));
        assert_eq!(p("auto"), Ok(VideoSourceSpec::Auto));
        assert_eq!(
            p("file:a/b.y4m"),
            Ok(VideoSourceSpec::File("a/b.y4m".into()))
        );
        assert_eq!(
            p("2"),
            Ok(VideoSourceSpec::Device(DeviceSelector::Index(2)))
        );
        assert_eq!(
            p("default"),
            Ok(VideoSourceSpec::Device(DeviceSelector::Default))
        );
        assert_eq!(
            p("Logitech"),
            Ok(VideoSourceSpec::Device(DeviceSelector::Name(
                "Logitech".into()
            )))
        );
        assert!(p("file:").is_err());
        assert!(p(" ").is_err());
    }

    #[test]
    fn audio_specs_round_trip_through_display() {
        for s in [
            "tone",
            "tone:660",
            "none",
            "auto",
            "file:x.wav",
            "3",
            "pulse",
        ] {
            assert_eq!(s.parse::<AudioSourceSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "tone:440".parse::<AudioSourceSpec>(),
            Ok(AudioSourceSpec::Tone { hz: 440 })
        );
        for bad in [
            "tone:",
            "tone:0",
            "tone:19",
            "tone:20001",
            "tone:4.5",
            "tone:x",
        ] {
            let err = bad.parse::<AudioSourceSpec>().unwrap_err();
            assert!(err.to_string().contains("20 to 20000"), "{bad}: {err}");
        }
        for s in ["none", "auto", "file:out.wav", "0", "default"] {
            assert_eq!(s.parse::<AudioSinkSpec>().unwrap().to_string(), s);
        }
        // `tone` is not a sink: it names a device called "tone".
        assert_eq!(
            "tone".parse::<AudioSinkSpec>(),
            Ok(AudioSinkSpec::Device(DeviceSelector::Name("tone".into())))
        );
    }
}
