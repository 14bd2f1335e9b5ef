//! The raw video frame every stage passes around: planar I420 (YUV 4:2:0).

use std::time::Instant;

/// A planar I420 picture (ITU-R BT.601 limited range, as cameras, Y4M `C420jpeg`
/// and openh264 use): a full-size Y plane, then U and V planes of
/// `ceil(width/2) x ceil(height/2)`, each tightly packed (stride = plane width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    /// Y, U and V planes back to back.
    data: Vec<u8>,
}

/// Why planes do not make a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Width or height is zero.
    #[error("a frame must be at least 1x1, got {0}x{1}")]
    Empty(u32, u32),
    /// The buffer does not have `width*height + 2*ceil(w/2)*ceil(h/2)` bytes.
    #[error("an I420 {width}x{height} frame has {expected} bytes, got {actual}")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes the size needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl I420Frame {
    /// Bytes an I420 frame of `width x height` takes.
    pub fn buffer_len(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
    }

    /// A frame of one color, given as Y, U, V (e.g. `(16, 128, 128)` is black).
    ///
    /// # Errors
    /// [`FrameError::Empty`] for a zero dimension.
    pub fn filled(width: u32, height: u32, yuv: (u8, u8, u8)) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::Empty(width, height));
        }
        let luma = width as usize * height as usize;
        let chroma = (Self::buffer_len(width, height) - luma) / 2;
        let mut data = vec![yuv.0; luma];
        data.extend(std::iter::repeat_n(yuv.1, chroma));
        data.extend(std::iter::repeat_n(yuv.2, chroma));
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Wraps a packed Y+U+V buffer.
    ///
    /// # Errors
    /// [`FrameError`] when the dimensions are zero or the length does not match.
    pub fn from_buffer(width: u32, height: u32, data: Vec<u8>) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::Empty(width, height));
        }
        let expected = Self::buffer_len(width, height);
        if data.len() != expected {
            return Err(FrameError::Size {
                width,
                height,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width and height of the U and V planes.
    pub fn chroma_size(&self) -> (u32, u32) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// The Y plane, `width * height` bytes, row-major.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The U (Cb) plane, row-major with stride `chroma_size().0`.
    pub fn u(&self) -> &[u8] {
        let (l, c) = (self.luma_len(), self.chroma_len());
        &self.data[l..l + c]
    }

    /// The V (Cr) plane, row-major with stride `chroma_size().0`.
    pub fn v(&self) -> &[u8] {
        let (l, c) = (self.luma_len(), self.chroma_len());
        &self.data[l + c..]
    }

    /// Mutable Y, U and V planes at once.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (l, c) = (self.luma_len(), self.chroma_len());
        let (y, uv) = self.data.split_at_mut(l);
        let (u, v) = uv.split_at_mut(c);
        (y, u, v)
    }

    /// The packed Y+U+V buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the frame, returning the packed Y+U+V buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn chroma_len(&self) -> usize {
        let (cw, ch) = self.chroma_size();
        cw as usize * ch as usize
    }
}

/// A frame as a source delivers it, with the moment it was captured (for
/// glass-to-glass latency and RTP timestamps).
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The picture.
    pub frame: I420Frame,
    /// When the picture was taken (or, for files and patterns, when it was due).
    pub captured_at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_round_chroma_up() {
        let f = I420Frame::filled(5, 3, (1, 2, 3)).unwrap();
        assert_eq!(f.chroma_size(), (3, 2));
        assert_eq!(f.as_bytes().len(), 15 + 2 * 6);
        assert!(f.y().iter().all(|&b| b == 1));
        assert!(f.u().iter().all(|&b| b == 2) && f.u().len() == 6);
        assert!(f.v().iter().all(|&b| b == 3) && f.v().len() == 6);
    }

    #[test]
    fn from_buffer_checks_length_and_size() {
        assert!(matches!(
            I420Frame::from_buffer(4, 4, vec![0; 23]),
            Err(FrameError::Size { expected: 24, .. })
        ));
        assert_eq!(
            I420Frame::from_buffer(0, 4, vec![]),
            Err(FrameError::Empty(0, 4))
        );
        assert!(I420Frame::from_buffer(4, 4, vec![0; 24]).is_ok());
    }
}
