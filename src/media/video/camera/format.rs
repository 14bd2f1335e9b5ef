//! Camera formats: what a camera offers, and the choice of the one to capture.

use std::cmp::Reverse;
use std::fmt;

use nokhwa::utils::{CameraFormat, FrameFormat};
use serde::Serialize;

/// A pixel format a camera offers, named as V4L2 FourCCs are commonly written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PixelFormat {
    /// Motion JPEG: one JPEG per frame (`MJPG`).
    #[serde(rename = "MJPEG")]
    Mjpeg,
    /// Packed YUV 4:2:2, `Y0 U Y1 V` (`YUYV`).
    #[serde(rename = "YUYV")]
    Yuyv,
    /// Semi-planar YUV 4:2:0 (`NV12`).
    #[serde(rename = "NV12")]
    Nv12,
    /// 8-bit luma only (`GREY`).
    #[serde(rename = "GRAY")]
    Gray,
    /// Packed 8-bit RGB (`RGB3`).
    #[serde(rename = "RGB24")]
    Rgb24,
    /// Packed 8-bit BGR (`BGR3`).
    #[serde(rename = "BGR24")]
    Bgr24,
}

impl PixelFormat {
    /// The name `rtc-cli devices` prints (same as the JSON form).
    pub fn name(self) -> &'static str {
        match self {
            Self::Mjpeg => "MJPEG",
            Self::Yuyv => "YUYV",
            Self::Nv12 => "NV12",
            Self::Gray => "GRAY",
            Self::Rgb24 => "RGB24",
            Self::Bgr24 => "BGR24",
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<FrameFormat> for PixelFormat {
    fn from(f: FrameFormat) -> Self {
        match f {
            FrameFormat::MJPEG => Self::Mjpeg,
            FrameFormat::YUYV => Self::Yuyv,
            FrameFormat::NV12 => Self::Nv12,
            FrameFormat::GRAY => Self::Gray,
            FrameFormat::RAWRGB => Self::Rgb24,
            FrameFormat::RAWBGR => Self::Bgr24,
        }
    }
}

/// The pixel formats rtc-cli captures and converts to I420: the two every UVC webcam
/// offers (USB Video Class 1.1 payloads: uncompressed YUY2 and MJPEG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptureFormat {
    /// Packed YUV 4:2:2; cheapest to convert, so preferred when all else is equal.
    Yuyv,
    /// Motion JPEG; decoded with the `image` crate.
    Mjpeg,
}

impl CaptureFormat {
    /// The capture format for a pixel format, if rtc-cli can convert it.
    pub fn from_pixel_format(p: PixelFormat) -> Option<Self> {
        match p {
            PixelFormat::Yuyv => Some(Self::Yuyv),
            PixelFormat::Mjpeg => Some(Self::Mjpeg),
            _ => None,
        }
    }

    pub(super) fn frame_format(self) -> FrameFormat {
        match self {
            Self::Yuyv => FrameFormat::YUYV,
            Self::Mjpeg => FrameFormat::MJPEG,
        }
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yuyv => "YUYV",
            Self::Mjpeg => "MJPEG",
        })
    }
}

/// One size and pixel format a camera offers, with the frame rates it offers at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraFormatInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates in frames per second, highest first.
    pub fps: Vec<u32>,
    /// How the pixels are packed.
    pub pixel_format: PixelFormat,
}

/// The format a camera is opened with: one size, one frame rate, a convertible format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// MJPEG or YUYV.
    pub format: CaptureFormat,
}

impl fmt::Display for ChosenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}@{} {}",
            self.width, self.height, self.fps, self.format
        )
    }
}

/// Picks the format closest to `want_size` (width, height in pixels) at `want_fps`
/// among the MJPEG and YUYV entries of `available`.
///
/// Order of preference: the exact size; else the size with the closest pixel count;
/// then the closest frame rate (the higher one on a tie); then YUYV over MJPEG (no
/// JPEG decode). Returns `None` when no MJPEG or YUYV entry has a frame rate.
pub fn choose_format(
    available: &[CameraFormatInfo],
    want_size: (u32, u32),
    want_fps: u32,
) -> Option<ChosenFormat> {
    let want_area = u64::from(want_size.0) * u64::from(want_size.1);
    available
        .iter()
        .filter_map(|f| Some((f, CaptureFormat::from_pixel_format(f.pixel_format)?)))
        .flat_map(|(f, format)| {
            f.fps.iter().map(move |&fps| ChosenFormat {
                width: f.width,
                height: f.height,
                fps,
                format,
            })
        })
        .min_by_key(|c| {
            let area = u64::from(c.width) * u64::from(c.height);
            (
                (c.width, c.height) != want_size,
                area.abs_diff(want_area),
                c.fps.abs_diff(want_fps),
                Reverse(c.fps),
                c.format,
            )
        })
}

/// Groups nokhwa's one-entry-per-rate formats into one entry per size and pixel
/// format, sorted by pixel format then largest size first.
pub(super) fn group_formats(formats: &[CameraFormat]) -> Vec<CameraFormatInfo> {
    let mut grouped: Vec<CameraFormatInfo> = Vec::new();
    for f in formats {
        let pixel_format = PixelFormat::from(f.format());
        let entry = grouped
            .iter_mut()
            .find(|g| (g.width, g.height, g.pixel_format) == (f.width(), f.height(), pixel_format));
        match entry {
            Some(g) => g.fps.push(f.frame_rate()),
            None => grouped.push(CameraFormatInfo {
                width: f.width(),
                height: f.height(),
                fps: vec![f.frame_rate()],
                pixel_format,
            }),
        }
    }
    for g in &mut grouped {
        g.fps.sort_unstable_by(|a, b| b.cmp(a));
        g.fps.dedup();
    }
    grouped.sort_by_key(|g| {
        (
            g.pixel_format,
            Reverse(u64::from(g.width) * u64::from(g.height)),
        )
    });
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(w: u32, h: u32, fps: &[u32], p: PixelFormat) -> CameraFormatInfo {
        CameraFormatInfo {
            width: w,
            height: h,
            fps: fps.to_vec(),
            pixel_format: p,
        }
    }

    fn chosen(width: u32, height: u32, fps: u32, format: CaptureFormat) -> ChosenFormat {
        ChosenFormat {
            width,
            height,
            fps,
            format,
        }
    }

    /// A typical UVC webcam: YUYV is slow at large sizes, MJPEG is fast everywhere.
    fn webcam() -> Vec<CameraFormatInfo> {
        use PixelFormat::*;
        vec![
            fmt(1280, 720, &[30, 15], Mjpeg),
            fmt(640, 480, &[30, 15], Mjpeg),
            fmt(1280, 720, &[10], Yuyv),
            fmt(640, 480, &[30, 15], Yuyv),
            fmt(320, 240, &[30], Yuyv),
        ]
    }

    #[test]
    fn exact_size_wins_and_yuyv_breaks_ties() {
        assert_eq!(
            choose_format(&webcam(), (640, 480), 30),
            Some(chosen(640, 480, 30, CaptureFormat::Yuyv))
        );
    }

    #[test]
    fn closest_fps_picks_mjpeg_when_yuyv_is_too_slow() {
        assert_eq!(
            choose_format(&webcam(), (1280, 720), 30),
            Some(chosen(1280, 720, 30, CaptureFormat::Mjpeg))
        );
        assert_eq!(
            choose_format(&webcam(), (1280, 720), 10),
            Some(chosen(1280, 720, 10, CaptureFormat::Yuyv))
        );
    }

    #[test]
    fn missing_size_falls_back_to_closest_area() {
        // 800x600 (480,000 px) is closer to 640x480 (307,200) than to 1280x720 (921,600).
        assert_eq!(
            choose_format(&webcam(), (800, 600), 15),
            Some(chosen(640, 480, 15, CaptureFormat::Yuyv))
        );
        assert_eq!(
            choose_format(&webcam(), (1920, 1080), 30),
            Some(chosen(1280, 720, 30, CaptureFormat::Mjpeg))
        );
    }

    #[test]
    fn fps_tie_prefers_the_higher_rate() {
        let f = [fmt(640, 480, &[20, 30], PixelFormat::Mjpeg)];
        assert_eq!(choose_format(&f, (640, 480), 25).map(|c| c.fps), Some(30));
    }

    #[test]
    fn unconvertible_formats_are_never_chosen() {
        let only_nv12 = [
            fmt(640, 480, &[30], PixelFormat::Nv12),
            fmt(640, 480, &[30], PixelFormat::Gray),
        ];
        assert_eq!(choose_format(&only_nv12, (640, 480), 30), None);
        let mixed = [
            fmt(640, 480, &[30], PixelFormat::Nv12),
            fmt(320, 240, &[30], PixelFormat::Yuyv),
        ];
        assert_eq!(
            choose_format(&mixed, (640, 480), 30),
            Some(chosen(320, 240, 30, CaptureFormat::Yuyv))
        );
        assert_eq!(choose_format(&[], (640, 480), 30), None);
        assert_eq!(
            choose_format(&[fmt(640, 480, &[], PixelFormat::Yuyv)], (640, 480), 30),
            None
        );
    }

    #[test]
    fn nokhwa_formats_group_by_size_and_pixel_format() {
        let raw = [
            CameraFormat::new_from(640, 480, FrameFormat::YUYV, 15),
            CameraFormat::new_from(1280, 720, FrameFormat::MJPEG, 30),
            CameraFormat::new_from(640, 480, FrameFormat::YUYV, 30),
            CameraFormat::new_from(640, 480, FrameFormat::YUYV, 30),
            CameraFormat::new_from(320, 240, FrameFormat::MJPEG, 30),
        ];
        assert_eq!(
            group_formats(&raw),
            vec![
                fmt(1280, 720, &[30], PixelFormat::Mjpeg),
                fmt(320, 240, &[30], PixelFormat::Mjpeg),
                fmt(640, 480, &[30, 15], PixelFormat::Yuyv),
            ]
        );
    }
}
