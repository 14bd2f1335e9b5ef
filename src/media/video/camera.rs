//! Camera capture through nokhwa (V4L2 on Linux): enumeration, format choice, a
//! capture thread, and conversion to I420.
//!
//! - [`format`](mod@format): what a camera offers and [`choose_format`].
//! - [`convert`]: YUYV, MJPEG and RGB to I420.
//! - `capture`: the capture thread and the one-frame hand-over to the reader.

mod capture;
pub mod convert;
pub mod format;

use nokhwa::utils::CameraIndex;
use serde::Serialize;

pub use capture::CaptureError;
pub use convert::{ConvertError, mjpeg_to_i420, rgb_to_i420, yuyv_to_i420};
pub use format::{CameraFormatInfo, CaptureFormat, ChosenFormat, PixelFormat, choose_format};

use crate::devices::Openable;
use crate::media::spec::DeviceSelector;
use crate::media::video::VideoSource;

/// A camera as `rtc-cli devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraInfo {
    /// Position in the list; what `--camera N` selects.
    pub index: usize,
    /// The name the driver gives (V4L2 `card`), matched by `--camera NAME`.
    pub name: String,
    /// Where the backend found it, e.g. `Video4Linux Device @ /dev/video0`.
    pub description: String,
    /// Sizes, frame rates and pixel formats it offers (empty when it did not open).
    pub formats: Vec<CameraFormatInfo>,
    /// Whether it opened to list its formats, and why not.
    #[serde(flatten)]
    pub openable: Openable,
}

/// Why a camera could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// `--camera` names no camera; `available` is what exists, as `index `name``.
    #[error("no camera matches `{wanted}`; cameras: {}", list_or_none(available))]
    NoMatch {
        /// The selector as given.
        wanted: String,
        /// The cameras that exist, e.g. ``0 `HD Webcam` ``.
        available: Vec<String>,
    },
    /// The backend could not list cameras at all.
    #[error("cannot list cameras: {0}")]
    Query(String),
    /// The device exists but did not open or start streaming.
    #[error("camera {name} does not open: {reason}")]
    Open {
        /// Index and name of the camera.
        name: String,
        /// The backend's reason.
        reason: String,
    },
    /// The camera offers only formats rtc-cli cannot convert.
    #[error("camera {name} offers no MJPEG or YUYV format (it offers: {offered})")]
    NoCaptureFormat {
        /// Index and name of the camera.
        name: String,
        /// The formats it offers.
        offered: String,
    },
}

fn list_or_none(available: &[String]) -> String {
    if available.is_empty() {
        "none found".into()
    } else {
        available.join(", ")
    }
}

/// A camera the backend reports, before it is opened.
#[derive(Debug, Clone)]
struct CameraNode {
    name: String,
    description: String,
    index: CameraIndex,
}

impl CameraNode {
    fn label(&self, position: usize) -> String {
        format!("{position} `{}`", self.name)
    }
}

/// The cameras the native backend reports, in its order (V4L2: by /dev/videoN).
fn query_cameras() -> Result<Vec<CameraNode>, CameraError> {
    // The native backend by name: `ApiBackend::Auto` would `dbg!` to stderr where
    // there is none.
    let Some(backend) = nokhwa::native_api_backend() else {
        return Ok(Vec::new());
    };
    let found = nokhwa::query(backend).map_err(|e| CameraError::Query(e.to_string()))?;
    Ok(found
        .into_iter()
        .map(|c| CameraNode {
            name: c.human_name(),
            description: c.description().to_owned(),
            index: c.index().clone(),
        })
        .collect())
}

/// Lists cameras with the formats each offers. Each camera is opened briefly to ask;
/// one that does not open is listed with [`Openable::No`] rather than failing the list.
///
/// # Errors
/// The backend could not enumerate devices at all. No camera is an empty list.
pub fn list_cameras() -> anyhow::Result<Vec<CameraInfo>> {
    let nodes = query_cameras()?;
    Ok(nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            let (formats, openable) = match capture::probe_formats(&node.index) {
                Ok(formats) => (formats, Openable::Yes),
                Err(e) => (Vec::new(), Openable::No(e.to_string())),
            };
            CameraInfo {
                index,
                name: node.name,
                description: node.description,
                formats,
                openable,
            }
        })
        .collect())
}

/// Finds the position `selector` names among camera `names`: the first for
/// [`DeviceSelector::Default`], a position, or the first name containing the
/// selector case-insensitively.
///
/// # Errors
/// [`CameraError::NoMatch`] listing every camera as ``index `name` ``.
pub fn select_camera(names: &[String], selector: &DeviceSelector) -> Result<usize, CameraError> {
    let found = match selector {
        DeviceSelector::Default => (!names.is_empty()).then_some(0),
        DeviceSelector::Index(i) => (*i < names.len()).then_some(*i),
        DeviceSelector::Name(wanted) => {
            let wanted = wanted.to_lowercase();
            names
                .iter()
                .position(|n| n.to_lowercase().contains(&wanted))
        }
    };
    found.ok_or_else(|| CameraError::NoMatch {
        wanted: selector.to_string(),
        available: names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i} `{n}`"))
            .collect(),
    })
}

/// Checks that `selector` names a camera that exists, without opening it (for a
/// start-up check of `--camera`).
///
/// # Errors
/// As [`select_camera`], or the camera list cannot be read.
pub fn check_camera(selector: &DeviceSelector) -> anyhow::Result<()> {
    let names: Vec<String> = query_cameras()?.into_iter().map(|n| n.name).collect();
    select_camera(&names, selector)?;
    Ok(())
}

/// Opens the camera `selector` names, capturing on its own thread at the format
/// closest to `size` (width, height in pixels) and `fps` (see [`choose_format`]),
/// delivering I420 at the camera's size. `next_frame` fails with a [`CaptureError`]
/// once the camera goes away; the caller stops video with a notice.
///
/// # Errors
/// No such camera (the message lists the cameras that exist), or the device failed
/// to open (a [`CameraError`] inside the `anyhow::Error`).
pub fn open_camera(
    selector: &DeviceSelector,
    size: (u32, u32),
    fps: u32,
) -> anyhow::Result<Box<dyn VideoSource>> {
    let nodes = query_cameras()?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let position = select_camera(&names, selector)?;
    let node = &nodes[position];
    let source = capture::spawn(node.index.clone(), node.label(position), size, fps)?;
    Ok(Box::new(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["Integrated Camera".into(), "HD Pro Webcam C920".into()]
    }

    #[test]
    fn selection_by_default_index_and_name() {
        assert_eq!(select_camera(&names(), &DeviceSelector::Default), Ok(0));
        assert_eq!(select_camera(&names(), &DeviceSelector::Index(1)), Ok(1));
        assert_eq!(
            select_camera(&names(), &DeviceSelector::Name("c920".into())),
            Ok(1)
        );
        assert_eq!(
            select_camera(&names(), &DeviceSelector::Name("CAMERA".into())),
            Ok(0)
        );
    }

    #[test]
    fn unknown_camera_error_lists_what_exists() {
        let err = select_camera(&names(), &DeviceSelector::Index(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no camera matches `2`; cameras: 0 `Integrated Camera`, 1 `HD Pro Webcam C920`"
        );
        let err = select_camera(&[], &DeviceSelector::Default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no camera matches `default`; cameras: none found"
        );
    }
}
