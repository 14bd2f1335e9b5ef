//! Pixel conversions from what cameras deliver (YUYV, MJPEG, RGB) to I420.
//!
//! All output is ITU-R BT.601 limited range, the range [`I420Frame`] documents.
//! YUYV from V4L2 cameras is already BT.601 limited range, so its samples are copied;
//! JPEG (JFIF) is full range, so MJPEG is decoded to RGB and converted.

use image::ImageFormat;

use crate::media::video::I420Frame;
use crate::media::video::frame::FrameError;

/// Why camera bytes do not convert to an I420 frame.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// YUYV packs two pixels in four bytes (V4L2 `V4L2_PIX_FMT_YUYV`), so width must be even.
    #[error("YUYV needs an even width, got {0}")]
    OddWidth(u32),
    /// The buffer holds fewer bytes than the picture needs.
    #[error("a {format} {width}x{height} picture needs {expected} bytes, got {actual}")]
    ShortBuffer {
        /// Pixel format name, e.g. `YUYV`.
        format: &'static str,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The JPEG did not decode.
    #[error("MJPEG frame does not decode: {0}")]
    Jpeg(#[from] image::ImageError),
    /// Zero width or height.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Converts packed YUYV 4:2:2 (bytes `Y0 U Y1 V` per pixel pair, BT.601 limited range)
/// of `width x height` pixels to I420.
///
/// Chroma is halved vertically by averaging each pair of rows (an odd last row keeps its
/// own chroma). Bytes after `width * height * 2` are ignored (V4L2 buffers may be padded).
///
/// # Errors
/// [`ConvertError::OddWidth`], [`ConvertError::ShortBuffer`], or
/// [`ConvertError::Frame`] for a zero dimension.
pub fn yuyv_to_i420(data: &[u8], width: u32, height: u32) -> Result<I420Frame, ConvertError> {
    if width % 2 == 1 {
        return Err(ConvertError::OddWidth(width));
    }
    let mut frame = I420Frame::filled(width, height, (0, 128, 128))?;
    let (w, h) = (width as usize, height as usize);
    let stride = w * 2;
    let expected = stride * h;
    if data.len() < expected {
        return Err(ConvertError::ShortBuffer {
            format: "YUYV",
            width,
            height,
            expected,
            actual: data.len(),
        });
    }
    let cw = w / 2;
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (row, line) in data[..expected].chunks_exact(stride).enumerate() {
        let y_row = &mut y_plane[row * w..(row + 1) * w];
        for (pair, px) in line.chunks_exact(4).enumerate() {
            y_row[2 * pair] = px[0];
            y_row[2 * pair + 1] = px[2];
        }
    }
    for crow in 0..h.div_ceil(2) {
        let top = &data[2 * crow * stride..(2 * crow + 1) * stride];
        // An odd height's last chroma row has no row below it: use the top row twice.
        let bottom = data
            .get((2 * crow + 1) * stride..(2 * crow + 2) * stride)
            .unwrap_or(top);
        for col in 0..cw {
            let (a, b) = (&top[4 * col..4 * col + 4], &bottom[4 * col..4 * col + 4]);
            u_plane[crow * cw + col] = avg2(a[1], b[1]);
            v_plane[crow * cw + col] = avg2(a[3], b[3]);
        }
    }
    Ok(frame)
}

/// Decodes one MJPEG frame (a baseline JPEG; MJPEG without Huffman tables gets the
/// standard ones, ITU-T T.81 Annex K.3) and converts it to I420 at its own size.
///
/// # Errors
/// [`ConvertError::Jpeg`] when the bytes are not a decodable JPEG.
pub fn mjpeg_to_i420(jpeg: &[u8]) -> Result<I420Frame, ConvertError> {
    let rgb = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)?.into_rgb8();
    rgb_to_i420(rgb.as_raw(), rgb.width(), rgb.height())
}

/// Converts packed 8-bit RGB (`R G B` per pixel, full range) of `width x height` to
/// I420 with the BT.601 limited-range matrix (ITU-R BT.601-7 §2.5.3, integer form as
/// in libyuv). Chroma is taken from the average of each 2x2 block.
///
/// # Errors
/// [`ConvertError::ShortBuffer`], or [`ConvertError::Frame`] for a zero dimension.
pub fn rgb_to_i420(rgb: &[u8], width: u32, height: u32) -> Result<I420Frame, ConvertError> {
    let mut frame = I420Frame::filled(width, height, (0, 128, 128))?;
    let (w, h) = (width as usize, height as usize);
    let expected = w * h * 3;
    if rgb.len() < expected {
        return Err(ConvertError::ShortBuffer {
            format: "RGB",
            width,
            height,
            expected,
            actual: rgb.len(),
        });
    }
    let pixel = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        [
            i32::from(rgb[i]),
            i32::from(rgb[i + 1]),
            i32::from(rgb[i + 2]),
        ]
    };
    let cw = w.div_ceil(2);
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for y in 0..h {
        for x in 0..w {
            y_plane[y * w + x] = luma(pixel(x, y));
        }
    }
    for cy in 0..h.div_ceil(2) {
        for cx in 0..cw {
            let mut sum = [0i32; 3];
            let mut n = 0;
            for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (px, py) = (2 * cx + x, 2 * cy + y);
                if px < w && py < h {
                    let p = pixel(px, py);
                    (0..3).for_each(|c| sum[c] += p[c]);
                    n += 1;
                }
            }
            let avg = sum.map(|s| (s + n / 2) / n);
            let (u, v) = chroma(avg);
            u_plane[cy * cw + cx] = u;
            v_plane[cy * cw + cx] = v;
        }
    }
    Ok(frame)
}

/// BT.601 limited-range luma of a full-range RGB pixel: 16..=235.
fn luma([r, g, b]: [i32; 3]) -> u8 {
    clamp_u8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16)
}

/// BT.601 limited-range Cb, Cr of a full-range RGB pixel: 16..=240.
fn chroma([r, g, b]: [i32; 3]) -> (u8, u8) {
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp_u8(u), clamp_u8(v))
}

fn clamp_u8(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

fn avg2(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b)).div_ceil(2)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_copies_luma_and_averages_chroma_rows() {
        // 4x2: row 0 pairs (Y, U, Y, V) = (10,100,20,200), (30,50,40,60);
        // row 1 = (50,110,60,210), (70,70,80,80).
        let data = [
            10, 100, 20, 200, 30, 50, 40, 60, //
            50, 110, 60, 210, 70, 70, 80, 80,
        ];
        let f = yuyv_to_i420(&data, 4, 2).unwrap();
        assert_eq!(f.y(), &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(f.u(), &[105, 60]);
        assert_eq!(f.v(), &[205, 70]);
    }

    #[test]
    fn yuyv_odd_height_keeps_last_row_chroma() {
        let row = [1, 90, 2, 160];
        let data: Vec<u8> = row
            .iter()
            .chain(&row)
            .chain(&[3, 30, 4, 40])
            .copied()
            .collect();
        let f = yuyv_to_i420(&data, 2, 3).unwrap();
        assert_eq!(f.y(), &[1, 2, 1, 2, 3, 4]);
        assert_eq!(f.u(), &[90, 30]);
        assert_eq!(f.v(), &[160, 40]);
    }

    #[test]
    fn yuyv_rejects_odd_width_and_short_buffers() {
        assert!(matches!(
            yuyv_to_i420(&[0; 12], 3, 2),
            Err(ConvertError::OddWidth(3))
        ));
        assert!(matches!(
            yuyv_to_i420(&[0; 15], 4, 2),
            Err(ConvertError::ShortBuffer {
                expected: 16,
                actual: 15,
                ..
            })
        ));
        assert!(matches!(
            yuyv_to_i420(&[], 0, 2),
            Err(ConvertError::Frame(FrameError::Empty(0, 2)))
        ));
    }

    #[test]
    fn rgb_primaries_map_to_bt601_limited_range() {
        // White, black, red, blue in one 4x1 row: luma per pixel, chroma per pair.
        let rgb = [255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255];
        let f = rgb_to_i420(&rgb, 4, 1).unwrap();
        assert_eq!(f.y(), &[235, 16, 82, 41]);
        // Pair 1 is mid grey (chroma neutral); pair 2 averages red and blue to (128, 0, 128).
        assert_eq!(f.u()[0], 128);
        assert_eq!(f.v()[0], 128);
        assert!(
            f.u()[1] > 150 && f.v()[1] > 150,
            "magenta has high Cb and Cr"
        );
    }

    #[test]
    fn rgb_odd_sizes_and_short_buffers() {
        let f = rgb_to_i420(&[255; 27], 3, 3).unwrap();
        assert_eq!(f.chroma_size(), (2, 2));
        assert!(f.y().iter().all(|&y| y == 235));
        assert!(f.u().iter().chain(f.v()).all(|&c| c == 128));
        assert!(matches!(
            rgb_to_i420(&[0; 26], 3, 3),
            Err(ConvertError::ShortBuffer { .. })
        ));
    }

    fn jpeg_of(width: u32, height: u32, color: [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(width, height, image::Rgb(color));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn mjpeg_decodes_to_i420_colors_within_tolerance() {
        // (RGB, expected Y, Cb, Cr from the BT.601 limited-range matrix).
        let cases = [
            ([255, 0, 0], (82, 90, 240)),
            ([0, 255, 0], (144, 54, 34)),
            ([0, 0, 255], (41, 240, 110)),
            ([128, 128, 128], (126, 128, 128)),
        ];
        for (rgb, (y, u, v)) in cases {
            let f = mjpeg_to_i420(&jpeg_of(16, 8, rgb)).unwrap();
            assert_eq!((f.width(), f.height()), (16, 8));
            let close = |a: u8, b: u8| (i16::from(a) - i16::from(b)).abs() <= 6;
            assert!(
                f.y().iter().all(|&s| close(s, y)),
                "Y of {rgb:?}: {:?}",
                &f.y()[..4]
            );
            assert!(
                f.u().iter().all(|&s| close(s, u)),
                "Cb of {rgb:?}: {:?}",
                &f.u()[..4]
            );
            assert!(
                f.v().iter().all(|&s| close(s, v)),
                "Cr of {rgb:?}: {:?}",
                &f.v()[..4]
            );
        }
    }

    #[test]
    fn mjpeg_garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            mjpeg_to_i420(b"not a jpeg"),
            Err(ConvertError::Jpeg(_))
        ));
        let truncated = &jpeg_of(16, 16, [1, 2, 3])[..40];
        assert!(mjpeg_to_i420(truncated).is_err());
        assert!(mjpeg_to_i420(&[]).is_err());
    }
}
