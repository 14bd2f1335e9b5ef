//! A moving test pattern whose frames carry a frame counter that survives H.264 and scaling.
//!
//! The counter sits in a strip across the top sixth of the frame: 2 rows of 16 large
//! black/white luma blocks (20x20 px at 320x240, always 1/16 of the width by 1/12 of the
//! height), read most significant bit first, row by row. The 32 bits are a 24-bit
//! counter and an 8-bit check (CRC-8 of the counter, XOR [`CHECK_XOR`] so an all-black
//! or all-white strip is not a valid word). Each block is read as the mean of its
//! central half, so codec ringing at block edges and scaling blur do not matter.
//!
//! Below the strip are 75% color bars (ITU-R BT.601 limited range), a box that moves
//! across them and a scrolling luma ramp, so the encoder sees motion every frame.

use super::frame::{FrameError, I420Frame};

/// Counters wrap at this value (24 bits).
pub const COUNTER_MODULUS: u32 = 1 << 24;
/// XORed into the CRC-8, so the strip of counter 0 is not all black.
pub const CHECK_XOR: u8 = 0xA5;
/// Blocks per strip row.
const COLUMNS: u32 = 16;
/// Strip rows.
const ROWS: u32 = 2;
/// Each block is this fraction of the frame height (the strip is `ROWS / 12`).
const HEIGHT_DIVISOR: u32 = 12;
/// Luma of a 0 bit and a 1 bit (BT.601 limited-range black and white).
const BLACK: u8 = 16;
const WHITE: u8 = 235;
/// A block's mean must be below this to read 0, or above `ONE_ABOVE` to read 1;
/// anything between is a damaged strip.
const ZERO_BELOW: u32 = 90;
const ONE_ABOVE: u32 = 160;
/// Neutral chroma.
const GREY_CHROMA: u8 = 128;

/// 75% color bars as (Y, U, V), BT.601 limited range: white, yellow, cyan, green,
/// magenta, red, blue (the 75% bars of ITU-R BT.801).
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

/// Draws test-pattern frames of one size.
#[derive(Clone, PartialEq, Eq)]
pub struct TestPattern {
    /// The static background (bars and the strip area), copied for each frame.
    background: I420Frame,
}

impl std::fmt::Debug for TestPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (w, h) = (self.background.width(), self.background.height());
        write!(f, "TestPattern({w}x{h})")
    }
}

impl TestPattern {
    /// A pattern of `width x height` pixels. Frames smaller than 16x12 cannot carry
    /// the counter ([`read_counter`] then returns `None`).
    ///
    /// # Errors
    /// [`FrameError::Empty`] for a zero side.
    pub fn new(width: u32, height: u32) -> Result<Self, FrameError> {
        let mut background = I420Frame::filled(width, height, (BLACK, GREY_CHROMA, GREY_CHROMA))?;
        let top = strip_height(height);
        for (i, &color) in BARS.iter().enumerate() {
            let (x0, x1) = span(i as u32, BARS.len() as u32, width);
            fill_rect(&mut background, (x0, top), (x1, height), color);
        }
        Ok(Self { background })
    }

    /// Frame number `counter` (taken modulo [`COUNTER_MODULUS`]): bars, the moving box
    /// and ramp at this frame's position, and the counter strip.
    pub fn render(&self, counter: u32) -> I420Frame {
        let mut frame = self.background.clone();
        let (w, h) = (frame.width(), frame.height());
        let top = strip_height(h);
        // A scrolling ramp across the bottom sixth.
        let ramp_top = h - h / 6;
        let shift = counter.wrapping_mul(4);
        let (y, _, _) = frame.planes_mut();
        for row in ramp_top..h {
            let line = &mut y[(row * w) as usize..((row + 1) * w) as usize];
            for (x, px) in line.iter_mut().enumerate() {
                *px = 16 + ((x as u32).wrapping_add(shift) % 220) as u8;
            }
        }
        // A box one sixth of the height moving right, one 60th of the width per frame.
        let side = (h / 6).max(1);
        let step = (w / 60).max(1);
        let x0 = (counter.wrapping_mul(step)) % w.max(1);
        let y0 = top + (ramp_top.saturating_sub(top).saturating_sub(side)) / 2;
        fill_rect(&mut frame, (x0, y0), (x0 + side, y0 + side), (235, 90, 30));
        stamp_counter(&mut frame, counter);
        frame
    }
}

/// Paints the counter strip of `counter` (modulo [`COUNTER_MODULUS`]) over the top of
/// `frame`, e.g. to number the frames of a file source. Does nothing on frames smaller
/// than 16x12.
pub fn stamp_counter(frame: &mut I420Frame, counter: u32) {
    let Some(blocks) = Blocks::of(frame) else {
        return;
    };
    let word = encode_word(counter % COUNTER_MODULUS);
    for (i, rect) in blocks.enumerate() {
        let bit = (word >> (31 - i)) & 1;
        let luma = if bit == 1 { WHITE } else { BLACK };
        fill_rect(frame, rect.0, rect.1, (luma, GREY_CHROMA, GREY_CHROMA));
    }
}

/// Reads the counter strip; `None` when the frame is too small, a block is neither
/// clearly black nor white, or the check does not match.
pub fn read_counter(frame: &I420Frame) -> Option<u32> {
    let blocks = Blocks::of(frame)?;
    let mut word = 0u32;
    for ((x0, y0), (x1, y1)) in blocks {
        // The central half of the block.
        let (dx, dy) = ((x1 - x0) / 4, (y1 - y0) / 4);
        let mean = mean_luma(frame, (x0 + dx, y0 + dy), (x1 - dx, y1 - dy));
        let bit = match mean {
            m if m < ZERO_BELOW => 0,
            m if m > ONE_ABOVE => 1,
            _ => return None,
        };
        word = (word << 1) | bit;
    }
    let counter = word >> 8;
    (encode_word(counter) == word).then_some(counter)
}

/// The 32-bit strip word: counter in the top 24 bits, check in the low 8.
fn encode_word(counter: u32) -> u32 {
    let bytes = counter.to_be_bytes();
    (counter << 8) | u32::from(crc8(&bytes[1..]) ^ CHECK_XOR)
}

/// CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07, as in ATM HEC / SMBus PEC): detects
/// every burst of up to 8 flipped bits.
fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// Height of the counter strip in rows of pixels.
fn strip_height(height: u32) -> u32 {
    height * ROWS / HEIGHT_DIVISOR
}

/// Pixel range `[start, end)` of part `i` of `parts` equal parts of `len`.
fn span(i: u32, parts: u32, len: u32) -> (u32, u32) {
    let at = |k: u32| (u64::from(k) * u64::from(len) / u64::from(parts)) as u32;
    (at(i), at(i + 1))
}

/// The 32 block rectangles `((x0, y0), (x1, y1))` of a frame, in bit order.
struct Blocks {
    width: u32,
    height: u32,
    next: u32,
}

impl Blocks {
    fn of(frame: &I420Frame) -> Option<Self> {
        (frame.width() >= COLUMNS && frame.height() >= HEIGHT_DIVISOR).then_some(Self {
            width: frame.width(),
            height: frame.height(),
            next: 0,
        })
    }
}

impl Iterator for Blocks {
    type Item = ((u32, u32), (u32, u32));
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= ROWS * COLUMNS {
            return None;
        }
        let (row, col) = (self.next / COLUMNS, self.next % COLUMNS);
        self.next += 1;
        let (x0, x1) = span(col, COLUMNS, self.width);
        let (y0, y1) = span(row, HEIGHT_DIVISOR, self.height);
        Some(((x0, y0), (x1, y1)))
    }
}

/// Mean luma of `[x0, x1) x [y0, y1)` (at least one pixel is read).
fn mean_luma(frame: &I420Frame, (x0, y0): (u32, u32), (x1, y1): (u32, u32)) -> u32 {
    let w = frame.width() as usize;
    let (x1, y1) = (x1.max(x0 + 1) as usize, y1.max(y0 + 1) as usize);
    let (x0, y0) = (x0 as usize, y0 as usize);
    let rows = frame.y()[y0 * w..y1 * w].chunks_exact(w);
    let sum: u32 = rows
        .map(|r| r[x0..x1].iter().map(|&v| u32::from(v)).sum::<u32>())
        .sum();
    sum / ((x1 - x0) * (y1 - y0)) as u32
}

/// Paints `[x0, x1) x [y0, y1)` (clipped to the frame) in `(y, u, v)`; chroma covers
/// every 2x2 cell the rectangle touches.
fn fill_rect(frame: &mut I420Frame, (x0, y0): (u32, u32), (x1, y1): (u32, u32), yuv: (u8, u8, u8)) {
    let (w, h) = (frame.width(), frame.height());
    let (x1, y1) = (x1.min(w), y1.min(h));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let (cw, _) = frame.chroma_size();
    let (y, u, v) = frame.planes_mut();
    for row in y0..y1 {
        y[(row * w + x0) as usize..(row * w + x1) as usize].fill(yuv.0);
    }
    for row in y0 / 2..y1.div_ceil(2) {
        let range = (row * cw + x0 / 2) as usize..(row * cw + x1.div_ceil(2)) as usize;
        u[range.clone()].fill(yuv.1);
        v[range].fill(yuv.2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::decode::H264Decoder;
    use crate::media::video::encode::{EncoderSettings, H264Encoder};
    use crate::media::video::scale::scale;

    #[test]
    fn counter_reads_back_from_raw_frames_of_many_sizes() {
        for (w, h) in [(320, 240), (640, 480), (16, 12), (33, 25), (1280, 720)] {
            let p = TestPattern::new(w, h).unwrap();
            for counter in [0, 1, 2, 255, 256, 65_535, 1_000_003, COUNTER_MODULUS - 1] {
                assert_eq!(read_counter(&p.render(counter)), Some(counter), "{w}x{h}");
            }
        }
        let p = TestPattern::new(64, 48).unwrap();
        assert_eq!(read_counter(&p.render(COUNTER_MODULUS + 5)), Some(5));
    }

    #[test]
    fn blank_and_tiny_frames_carry_no_counter() {
        for yuv in [(16, 128, 128), (235, 128, 128), (0, 0, 0), (255, 255, 255)] {
            assert_eq!(
                read_counter(&I420Frame::filled(320, 240, yuv).unwrap()),
                None
            );
        }
        let tiny = TestPattern::new(15, 11).unwrap().render(7);
        assert_eq!(read_counter(&tiny), None);
    }

    #[test]
    fn corrupted_strip_is_rejected() {
        let p = TestPattern::new(320, 240).unwrap();
        for counter in [0, 1, 77, 123_456] {
            let good = p.render(counter);
            let blocks: Vec<_> = Blocks::of(&good).unwrap().collect();
            for (i, &(a, b)) in blocks.iter().enumerate() {
                // Flip one block.
                let mut flipped = good.clone();
                let bit = (encode_word(counter) >> (31 - i)) & 1;
                let luma = if bit == 1 { BLACK } else { WHITE };
                fill_rect(&mut flipped, a, b, (luma, 128, 128));
                assert_eq!(read_counter(&flipped), None, "block {i} of {counter}");
            }
            // A grey smear over one block is ambiguous, not a guess.
            let mut smeared = good.clone();
            fill_rect(&mut smeared, blocks[5].0, blocks[5].1, (128, 128, 128));
            assert_eq!(read_counter(&smeared), None);
        }
    }

    #[test]
    fn pattern_moves_from_frame_to_frame() {
        let p = TestPattern::new(320, 240).unwrap();
        let (a, b) = (p.render(10), p.render(11));
        let below_strip = (40 * 320) as usize..(240 * 320) as usize;
        let differing = a.y()[below_strip.clone()]
            .iter()
            .zip(&b.y()[below_strip])
            .filter(|(x, y)| x != y)
            .count();
        assert!(differing > 1000, "only {differing} luma samples changed");
    }

    /// Encodes `count` pattern frames made at `made` size, scaled to `sent` size,
    /// decodes them and returns the counters read.
    fn counters_through_h264(
        made: (u32, u32),
        sent: (u32, u32),
        start: u32,
        count: u32,
    ) -> Vec<Option<u32>> {
        let pattern = TestPattern::new(made.0, made.1).unwrap();
        let mut encoder = H264Encoder::new(EncoderSettings {
            width: sent.0,
            height: sent.1,
            fps: 30,
            bitrate_kbps: 300,
        })
        .unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        (start..start + count)
            .map(|c| {
                let frame = scale(&pattern.render(c), sent.0, sent.1).unwrap();
                let encoded = encoder.encode(&frame, false).unwrap();
                let decoded = decoder.decode(&encoded.annexb).unwrap().unwrap();
                read_counter(&decoded)
            })
            .collect()
    }

    #[test]
    fn counter_survives_scale_encode_decode_at_640x480() {
        let start = 0xFF_FFF8; // crosses the 24-bit wrap back to 0
        let got = counters_through_h264((320, 240), (640, 480), start, 12);
        let want: Vec<_> = (start..start + 12)
            .map(|c| Some(c % COUNTER_MODULUS))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn counter_survives_scale_encode_decode_at_320x240() {
        let got = counters_through_h264((640, 480), (320, 240), 1000, 30);
        let want: Vec<_> = (1000..1030).map(Some).collect();
        assert_eq!(got, want);
        // And after scaling the decoded frame again, as the renderer might.
        let p = TestPattern::new(320, 240).unwrap();
        assert_eq!(
            read_counter(&scale(&p.render(4242), 97, 61).unwrap()),
            Some(4242)
        );
    }
}
