//! Camera capture through nokhwa: format choice, capture thread, conversion to I420.

use crate::media::spec::DeviceSelector;
use crate::media::video::VideoSource;

/// Opens the camera `selector` names, capturing on its own thread at the format
/// closest to `size` (width, height in pixels) and `fps`, delivering I420.
///
/// # Errors
/// No such camera (the message lists the cameras that exist), or the device failed
/// to open.
pub fn open_camera(
    selector: &DeviceSelector,
    size: (u32, u32),
    fps: u32,
) -> anyhow::Result<Box<dyn VideoSource>> {
    let _ = (size, fps);
    anyhow::bail!("camera {selector}: camera capture is not built yet")
}
