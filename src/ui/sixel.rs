//! Video as sixel graphics (DEC VT340; xterm with `-ti vt340`, foot, WezTerm, mlterm,
//! Windows Terminal, mintty). A sixel image is drawn pixel for pixel at the cursor, so
//! the picture is scaled here to the pixels of the cells it covers (the same
//! area-averaging scaler as the cell modes), then quantized to a palette of its own
//! (256 colors, Wu's method with Floyd-Steinberg dithering: `icy_sixel` on
//! `quantette`) and encoded. A new frame simply overwrites the last one; when the video
//! area goes, the view redraws the screen so no stale pixels stay.

use std::io::Write;

use icy_sixel::{EncodeOptions, sixel_encode};

use super::halfblock::{CellSize, Renderer, SubCells};
use super::kitty::CellRect;
use crate::media::video::I420Frame;

/// Encodes sixel images, reusing its buffers between frames.
#[derive(Debug)]
pub struct Encoder {
    scaler: Renderer,
    rgba: Vec<u8>,
    options: EncodeOptions,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            scaler: Renderer::new(),
            rgba: Vec::new(),
            // 256 colors, Wu's quantizer, Floyd-Steinberg at 7/8 strength.
            options: EncodeOptions::default(),
        }
    }
}

impl Encoder {
    /// Appends to `out` the sixel image of `frame` fitted (aspect kept, centered) into
    /// `area` of cells shaped `cell`, with the cursor saved and restored around it.
    /// Nothing is appended for an empty area or picture.
    ///
    /// # Errors
    /// The encoder refused the picture (a message to log; the frame is skipped).
    pub fn frame(
        &mut self,
        out: &mut Vec<u8>,
        frame: &I420Frame,
        area: CellRect,
        cell: CellSize,
    ) -> Result<(), String> {
        // Pixels per cell, as sub-cells of the scaler (cells beyond 255 px are capped).
        let to_u8 = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
        let sub = SubCells {
            cols: to_u8(cell.width_px()),
            rows: to_u8(cell.height_px()),
        };
        let Some(p) = self.scaler.scale(frame, area.cols, area.rows, cell, sub) else {
            return Ok(());
        };
        self.rgba.clear();
        for px in self.scaler.pixels() {
            self.rgba.extend_from_slice(&[px.r, px.g, px.b, 255]);
        }
        let (w, h) = (usize::from(p.width), usize::from(p.height));
        let sixel = sixel_encode(&self.rgba, w, h, &self.options).map_err(|e| e.to_string())?;
        // The image starts at the cell holding the picture's top-left pixel.
        let col = area.x + p.x / u16::from(sub.cols);
        let row = area.y + p.y / u16::from(sub.rows);
        let _ = write!(out, "\x1b7\x1b[{};{}H", row + 1, col + 1);
        out.extend_from_slice(sixel.as_bytes());
        out.extend_from_slice(b"\x1b8");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_becomes_one_sixel_image_at_its_cell_sized_to_its_pixels() {
        let f = I420Frame::filled(64, 48, (120, 90, 200)).unwrap();
        let cell = CellSize::new(8, 16).unwrap();
        let area = CellRect {
            x: 2,
            y: 1,
            cols: 10,
            rows: 4,
        };
        let mut out = Vec::new();
        Encoder::default().frame(&mut out, &f, area, cell).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\x1b7\x1b["), "{:?}", &text[..20]);
        let dcs = text.find("\x1bP").expect("a DCS sixel string");
        assert!(text[dcs..].contains('q'), "sixel introducer");
        assert!(text.ends_with("\x1b\\\x1b8"), "ST then cursor restored");
        // 4:3 into 80x64 px: 80 wide is the limit, 60 tall, centered: row 1 + 0.
        assert!(text.starts_with("\x1b7\x1b[2;3H"), "{:?}", &text[..12]);
        let decoded = icy_sixel::SixelImage::decode(&text.as_bytes()[dcs..text.len() - 2]).unwrap();
        assert_eq!((decoded.width, decoded.height), (80, 60));
    }
}
