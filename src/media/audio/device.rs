//! cpal device lookup for microphones and speakers, and silencing ALSA's (and JACK's)
//! stderr noise: the one place every cpal user goes through ([`quiet_alsa`],
//! [`quietly`]).
//!
//! Indexes are positions in `host.input_devices()` / `host.output_devices()` of cpal's
//! default host, the same order `rtc-cli devices` lists.

use std::fmt;

use cpal::traits::{DeviceTrait, HostTrait};

use crate::media::spec::DeviceSelector;

/// Which way sound flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Capture: microphones.
    Input,
    /// Playback: speakers.
    Output,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Input => "microphone",
            Self::Output => "speaker",
        })
    }
}

/// Errors finding an audio device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The host could not list its devices.
    #[error("cannot list {direction}s: {detail}")]
    Enumerate {
        /// Microphones or speakers.
        direction: Direction,
        /// cpal's reason.
        detail: String,
    },
    /// The host has no default device of this direction.
    #[error("no default {direction}; {}", listing(.available))]
    NoDefault {
        /// Microphones or speakers.
        direction: Direction,
        /// The names that exist, in index order.
        available: Vec<String>,
    },
    /// No device matches the selector.
    #[error("no {direction} matches `{selector}`; {}", listing(.available))]
    NotFound {
        /// Microphones or speakers.
        direction: Direction,
        /// What was asked for.
        selector: DeviceSelector,
        /// The names that exist, in index order.
        available: Vec<String>,
    },
}

/// "available: 0 `a`, 1 `b`" or "none available", for error messages.
fn listing(names: &[String]) -> String {
    if names.is_empty() {
        return "none available (see `rtc-cli devices`)".into();
    }
    let items: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} `{n}`"))
        .collect();
    format!("available: {}", items.join(", "))
}

/// Installs a quiet ALSA error handler once, before any cpal use, so ALSA's messages
/// (e.g. `ALSA lib confmisc.c… cannot find card '0'`) go to the trace log instead of
/// stderr, where they would tear the TUI. Safe to call any number of times; does
/// nothing on other platforms.
pub fn quiet_alsa() {
    #[cfg(target_os = "linux")]
    alsa_quiet::install();
}

#[cfg(target_os = "linux")]
mod alsa_quiet {
    use std::ffi::{CStr, c_char, c_int};
    use std::sync::Once;

    static INSTALL: Once = Once::new();

    /// The fixed arguments of ALSA's variadic `snd_lib_error_handler_t`; the format
    /// arguments after `fmt` are ignored.
    unsafe extern "C" fn handler(
        file: *const c_char,
        line: c_int,
        function: *const c_char,
        err: c_int,
        fmt: *const c_char,
    ) {
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: ALSA passes NUL-terminated static strings or null.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        tracing::trace!(
            file = %text(file),
            line,
            function = %text(function),
            err,
            format = %text(fmt),
            "ALSA library message"
        );
    }

    pub(super) fn install() {
        INSTALL.call_once(|| {
            type Fixed =
                unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char);
            type Variadic = unsafe extern "C" fn(
                *const c_char,
                c_int,
                *const c_char,
                c_int,
                *const c_char,
                ...
            );
            // SAFETY: stable Rust cannot define a C-variadic function. On the C ABIs of
            // Linux targets (x86-64 SysV, AArch64 AAPCS64, …) the named arguments of a
            // variadic call are passed exactly as in a non-variadic call, and the callee
            // never reads the variadic ones, so this handler is sound to call through
            // the variadic pointer type (the usual technique for this ALSA hook).
            let handler: alsa_sys::snd_lib_error_handler_t =
                Some(unsafe { std::mem::transmute::<Fixed, Variadic>(handler as Fixed) });
            // SAFETY: sets a process-global function pointer; called once.
            let rc = unsafe { alsa_sys::snd_lib_error_set_handler(handler) };
            if rc != 0 {
                tracing::debug!(rc, "could not install the ALSA error handler");
            }
        });
    }
}

/// Runs `f` (a cpal enumeration or device query) with ALSA's handler installed
/// ([`quiet_alsa`]) and fd 2 pointed at `/dev/null`: ALSA's JACK plugin loads libjack,
/// which prints (`jack server is not running or cannot be started`) past ALSA's
/// handler, and cpal opens every PCM to enumerate. Output of other threads to stderr
/// in that window is lost too, so hold it only around enumeration, never around a
/// stream's lifetime.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    quiet_alsa();
    crate::stderr::silenced(f)
}

fn devices(direction: Direction) -> Result<Vec<cpal::Device>, DeviceError> {
    let enumerate = |e: cpal::DevicesError| DeviceError::Enumerate {
        direction,
        detail: e.to_string(),
    };
    quietly(|| {
        let host = cpal::default_host();
        let list: Vec<cpal::Device> = match direction {
            Direction::Input => host.input_devices().map_err(enumerate)?.collect(),
            Direction::Output => host.output_devices().map_err(enumerate)?.collect(),
        };
        Ok(list)
    })
}

fn device_name(device: &cpal::Device) -> String {
    device.name().unwrap_or_else(|e| format!("(unnamed: {e})"))
}

/// Names of the capture devices, in index order.
///
/// # Errors
/// [`DeviceError::Enumerate`] when the host cannot list devices.
pub fn input_device_names() -> Result<Vec<String>, DeviceError> {
    Ok(devices(Direction::Input)?.iter().map(device_name).collect())
}

/// Names of the playback devices, in index order.
///
/// # Errors
/// [`DeviceError::Enumerate`] when the host cannot list devices.
pub fn output_device_names() -> Result<Vec<String>, DeviceError> {
    Ok(devices(Direction::Output)?
        .iter()
        .map(device_name)
        .collect())
}

/// Finds the device `selector` names: `Default` is the host's default, `Index(i)` the
/// i-th in list order, `Name(s)` the first whose name contains `s` (case-insensitive).
///
/// # Errors
/// [`DeviceError::NotFound`] / [`DeviceError::NoDefault`] listing what exists, or
/// [`DeviceError::Enumerate`].
pub fn find_device(
    direction: Direction,
    selector: &DeviceSelector,
) -> Result<cpal::Device, DeviceError> {
    quiet_alsa();
    if *selector == DeviceSelector::Default {
        let host = cpal::default_host();
        let default = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return match default {
            Some(device) => Ok(device),
            None => Err(DeviceError::NoDefault {
                direction,
                available: names_or_empty(direction),
            }),
        };
    }
    let list = devices(direction)?;
    let names: Vec<String> = list.iter().map(device_name).collect();
    let position = match selector {
        DeviceSelector::Index(i) => (*i < list.len()).then_some(*i),
        DeviceSelector::Name(s) => {
            let wanted = s.to_lowercase();
            names
                .iter()
                .position(|n| n.to_lowercase().contains(&wanted))
        }
        DeviceSelector::Default => None,
    };
    position
        .and_then(|i| list.into_iter().nth(i))
        .ok_or_else(|| DeviceError::NotFound {
            direction,
            selector: selector.clone(),
            available: names,
        })
}

fn names_or_empty(direction: Direction) -> Vec<String> {
    devices(direction)
        .map(|l| l.iter().map(device_name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_past_the_list_is_an_error_that_lists_the_devices() {
        let names = input_device_names().unwrap_or_default();
        let err = find_device(Direction::Input, &DeviceSelector::Index(99))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no microphone matches `99`"), "{err}");
        for name in &names {
            assert!(err.contains(name.as_str()), "{err} lacks {name}");
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it() {
        let err = find_device(
            Direction::Output,
            &DeviceSelector::Name("no-such-speaker-xyz".into()),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("no speaker matches `no-such-speaker-xyz`"),
            "{err}"
        );
    }

    #[test]
    fn listing_names_each_index_or_says_none() {
        assert_eq!(
            listing(&["pulse".into(), "default".into()]),
            "available: 0 `pulse`, 1 `default`"
        );
        assert!(listing(&[]).starts_with("none available"));
    }
}
