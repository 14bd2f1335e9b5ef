//! A sixel image's colors: a palette of up to 256 colors made for each frame from a
//! sample of its pixels (Wu's method, `quantette`), and every pixel mapped to it with
//! ordered dithering.
//!
//! Error diffusion (Floyd-Steinberg) walks the pixels one after another and moves its
//! noise from frame to frame; ordered dithering adds a fixed 4x4 Bayer offset per pixel
//! position before the lookup, so it is one table read per pixel and a still picture
//! stays still. The nearest palette entry of each color is kept in a table of 32x32x32
//! bins, filled only for the bins a frame uses.

use quantette::PaletteSize;
use quantette::deps::palette::Srgb;
use quantette::wu::{BinnerU8x3, WuU8x3};

use crate::ui::halfblock::{BAYER4, Rgb};

/// Every how many pixels, across and down, one goes into the palette's sample (1 in 16:
/// about 43 000 of a 960x720 image, enough for Wu's histogram).
const SAMPLE_STEP: usize = 4;

/// Dither amplitude, codes: two lookup bins (16 codes; offsets within ±7.5), the
/// spacing of neighbouring palette entries on a smooth gradient (Wu's histogram has 32
/// levels a channel), so a color between two entries mixes them instead of banding.
const DITHER: i16 = 16;

/// A bin of the lookup table not filled for the current palette.
const UNSET: u16 = u16::MAX;

/// Makes palettes and maps pixels to them, reusing its buffers between frames.
#[derive(Debug)]
pub struct Quantizer {
    sample: Vec<Srgb<u8>>,
    palette: Vec<Rgb>,
    /// Per 15-bit color bin (5 bits a channel), its nearest palette index, or [`UNSET`].
    nearest: Vec<u16>,
    indices: Vec<u8>,
}

impl Default for Quantizer {
    fn default() -> Self {
        Self {
            sample: Vec::new(),
            palette: Vec::new(),
            nearest: vec![UNSET; 1 << 15],
            indices: Vec::new(),
        }
    }
}

impl Quantizer {
    /// Quantizes a `width`-pixel-wide image (`pixels` row by row) to at most 256
    /// colors: returns the palette and one palette index per pixel. An empty image
    /// gives an empty palette.
    pub fn quantize(&mut self, pixels: &[Rgb], width: usize) -> (&[Rgb], &[u8]) {
        self.make_palette(pixels, width);
        self.nearest.fill(UNSET);
        self.indices.clear();
        if self.palette.is_empty() {
            return (&self.palette, &self.indices);
        }
        self.indices.reserve(pixels.len());
        for (y, row) in pixels.chunks(width.max(1)).enumerate() {
            let thresholds = &BAYER4[y % 4];
            for (x, &px) in row.iter().enumerate() {
                // (t - 7.5) / 16 of the amplitude: within ±15/32 of it.
                let offset = ((i16::from(thresholds[x % 4]) * 2 - 15) * DITHER) / 32;
                let index = self.index_of(dither(px, offset));
                self.indices.push(index);
            }
        }
        (&self.palette, &self.indices)
    }

    /// A palette of up to 256 colors for `pixels`, from every [`SAMPLE_STEP`]-th pixel
    /// of every [`SAMPLE_STEP`]-th row.
    fn make_palette(&mut self, pixels: &[Rgb], width: usize) {
        self.sample.clear();
        self.palette.clear();
        if width == 0 {
            return;
        }
        for row in pixels.chunks(width).step_by(SAMPLE_STEP) {
            self.sample.extend(
                row.iter()
                    .step_by(SAMPLE_STEP)
                    .map(|p| Srgb::new(p.r, p.g, p.b)),
            );
        }
        // Wu's method straight on the sRGB codes (32 levels a channel): the pipeline's
        // default works in Oklab, which costs a conversion of every sample each way.
        let Ok(wu) = WuU8x3::run_slice(&self.sample, BinnerU8x3::<32, 32, 32>::new()) else {
            return;
        };
        self.palette.extend(
            wu.palette(PaletteSize::MAX)
                .iter()
                .map(|c| Rgb::new(c.red, c.green, c.blue)),
        );
        // Sorted by green for the nearest-entry search (a sixel palette has no order).
        self.palette.sort_unstable_by_key(|c| c.g);
    }

    /// The palette index of `color`'s bin, looked up once per bin and frame.
    fn index_of(&mut self, color: Rgb) -> u8 {
        let bin = (usize::from(color.r >> 3) << 10)
            | (usize::from(color.g >> 3) << 5)
            | usize::from(color.b >> 3);
        let known = self.nearest[bin];
        if known != UNSET {
            // Indices are < 256.
            return known as u8;
        }
        // The bin's center.
        let center = |c: u8| (c & !7) + 4;
        let center = Rgb::new(center(color.r), center(color.g), center(color.b));
        let index = nearest(&self.palette, center);
        self.nearest[bin] = u16::from(index);
        index
    }
}

/// `px` with `offset` codes added to every channel, clamped.
fn dither(px: Rgb, offset: i16) -> Rgb {
    let shift = |c: u8| (i16::from(c) + offset).clamp(0, 255) as u8;
    Rgb::new(shift(px.r), shift(px.g), shift(px.b))
}

/// The index of the palette entry nearest to `color` (squared RGB distance, green
/// weighted double as the eye sees it); the palette holds 1 to 256 entries, sorted by
/// green. The search starts at the entries of the same green and walks outward both
/// ways, stopping where green alone is farther than the best found: a few dozen
/// distances instead of all 256.
fn nearest(palette: &[Rgb], color: Rgb) -> u8 {
    let distance = |p: &Rgb| {
        let d = |a: u8, b: u8| i32::from(a) - i32::from(b);
        let (r, g, b) = (d(p.r, color.r), d(p.g, color.g), d(p.b, color.b));
        r * r + 2 * g * g + b * b
    };
    let green_only = |p: &Rgb| {
        let g = i32::from(p.g) - i32::from(color.g);
        2 * g * g
    };
    let start = palette.partition_point(|p| p.g < color.g);
    let mut best = (i32::MAX, 0);
    let mut visit = |i: usize| {
        let p = &palette[i];
        if green_only(p) >= best.0 {
            return false;
        }
        let d = distance(p);
        if d < best.0 {
            best = (d, i);
        }
        true
    };
    for i in start..palette.len() {
        if !visit(i) {
            break;
        }
    }
    for i in (0..start).rev() {
        if !visit(i) {
            break;
        }
    }
    // At most 256 entries.
    best.1 as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_colors_keep_their_own_entries_and_every_pixel_gets_one() {
        let colors = [
            Rgb::new(200, 30, 30),
            Rgb::new(20, 180, 40),
            Rgb::new(10, 10, 10),
        ];
        let pixels: Vec<Rgb> = (0..64 * 48).map(|i| colors[(i / 7) % 3]).collect();
        let mut q = Quantizer::default();
        let (palette, indices) = q.quantize(&pixels, 64);
        assert!(
            palette.len() >= 3 && palette.len() <= 256,
            "{}",
            palette.len()
        );
        assert_eq!(indices.len(), pixels.len());
        for (px, &i) in pixels.iter().zip(indices) {
            let got = palette[usize::from(i)];
            let err = |a: u8, b: u8| a.abs_diff(b);
            assert!(
                err(got.r, px.r) <= 8 && err(got.g, px.g) <= 8 && err(got.b, px.b) <= 8,
                "{px:?} shown as {got:?}"
            );
        }
    }

    #[test]
    fn a_gradient_mixes_entries_so_block_means_follow_it() {
        // 256 gray levels across, 16 rows: far more levels than a 5-bit bin holds.
        let width = 256;
        let pixels: Vec<Rgb> = (0..width * 16)
            .map(|i| {
                let v = (i % width) as u8;
                Rgb::new(v, v, v)
            })
            .collect();
        let mut q = Quantizer::default();
        let (palette, indices) = q.quantize(&pixels, width);
        let (palette, indices) = (palette.to_vec(), indices.to_vec());
        // Averaged over each 4x4 block (as the eye sees it from afar), the dithered
        // picture follows the source more closely than the same lookup undithered.
        let (mut dithered, mut undithered) = (0.0, 0.0);
        for bx in 0..width / 4 {
            let (mut sum, mut plain) = (0.0, 0.0);
            for y in 0..4 {
                for x in 0..4 {
                    let i = y * width + bx * 4 + x;
                    sum += f64::from(palette[usize::from(indices[i])].g);
                    plain += f64::from(palette[usize::from(q.index_of(pixels[i]))].g);
                }
            }
            let source = (bx * 4) as f64 + 1.5;
            dithered += (sum / 16.0 - source).abs();
            undithered += (plain / 16.0 - source).abs();
        }
        // Measured 138 against 173 (the 5-bit lookup bins, 8 codes wide, are what is
        // left: each pixel's exact nearest entry would give 82).
        assert!(
            dithered < undithered * 0.9,
            "dithered {dithered:.0} vs undithered {undithered:.0}"
        );
    }

    #[test]
    fn the_search_from_green_finds_the_same_distance_as_trying_every_entry() {
        // A fixed pseudo-random sequence (LCG), so the test is the same every run.
        let mut state = 0x2545_f491_u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        let weighted = |a: Rgb, b: Rgb| {
            let d = |x: u8, y: u8| i32::from(x) - i32::from(y);
            d(a.r, b.r).pow(2) + 2 * d(a.g, b.g).pow(2) + d(a.b, b.b).pow(2)
        };
        for size in [1, 2, 17, 256] {
            let mut palette: Vec<Rgb> = (0..size)
                .map(|_| Rgb::new(next(), next(), next()))
                .collect();
            palette.sort_unstable_by_key(|c| c.g);
            for _ in 0..2000 {
                let color = Rgb::new(next(), next(), next());
                let found = palette[usize::from(nearest(&palette, color))];
                let best = palette.iter().map(|&p| weighted(p, color)).min().unwrap();
                assert_eq!(weighted(found, color), best, "{color:?} in {size} entries");
            }
        }
    }

    #[test]
    fn an_empty_image_has_no_palette() {
        let mut q = Quantizer::default();
        let (palette, indices) = q.quantize(&[], 0);
        assert!(palette.is_empty() && indices.is_empty());
    }
}
