//! Area-average scaling of I420 frames to any size, up or down, each plane on its own.
//!
//! Every output sample is the mean of the source area it covers, weighted by overlap
//! (a box filter): exact for flat colors and for integer downscales, and free of the
//! aliasing nearest-neighbour gives the counter strip of the test pattern. Weights are
//! precomputed per axis (separable), so a frame costs two passes of multiply-adds and
//! no allocation besides the output.

use super::frame::I420Frame;

/// Fixed-point scale of one axis' weights: they sum to exactly `1 << WEIGHT_BITS`.
const WEIGHT_BITS: u32 = 14;
/// The horizontal pass keeps 8 fractional bits, so its output fits a `u16` and the
/// vertical pass fits a `u32` (255 * 2^8 * 2^14 < 2^32).
const MID_SHIFT: u32 = WEIGHT_BITS - 8;
/// Shift taking the vertical pass back to 8-bit samples.
const OUT_SHIFT: u32 = 8 + WEIGHT_BITS;

/// A target size that holds no pixels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot scale to {0}x{1}: both sides must be at least 1")]
pub struct ScaleError(pub u32, pub u32);

/// Scales frames of any size to one target size, keeping the weights of the last
/// source size (a camera or decoder rarely changes size, so they are reused).
#[derive(Debug, Clone)]
pub struct Scaler {
    target: (u32, u32),
    /// Weights for the last source size seen, with the buffers the passes use.
    plan: Option<Plan>,
}

impl Scaler {
    /// A scaler to `width x height` pixels.
    ///
    /// # Errors
    /// [`ScaleError`] when a side is zero.
    pub fn new(width: u32, height: u32) -> Result<Self, ScaleError> {
        if width == 0 || height == 0 {
            return Err(ScaleError(width, height));
        }
        Ok(Self {
            target: (width, height),
            plan: None,
        })
    }

    /// The target (width, height) in pixels.
    pub fn target(&self) -> (u32, u32) {
        self.target
    }

    /// Returns `frame` scaled to the target size (a copy when it already has that size).
    pub fn scale(&mut self, frame: &I420Frame) -> I420Frame {
        let source = (frame.width(), frame.height());
        if source == self.target {
            return frame.clone();
        }
        let target = self.target;
        let plan = match &mut self.plan {
            Some(plan) if plan.source == source => plan,
            slot => slot.insert(Plan::new(source, target)),
        };
        plan.run(frame)
    }
}

/// Scales one frame to `width x height` (builds the weights each call; keep a
/// [`Scaler`] for a stream of frames).
///
/// # Errors
/// [`ScaleError`] when a side is zero.
pub fn scale(frame: &I420Frame, width: u32, height: u32) -> Result<I420Frame, ScaleError> {
    Ok(Scaler::new(width, height)?.scale(frame))
}

/// The weights and scratch buffers for one source size.
#[derive(Debug, Clone)]
struct Plan {
    source: (u32, u32),
    target: (u32, u32),
    luma: PlaneScaler,
    chroma: PlaneScaler,
}

impl Plan {
    fn new(source: (u32, u32), target: (u32, u32)) -> Self {
        let half = |(w, h): (u32, u32)| (w.div_ceil(2), h.div_ceil(2));
        Self {
            source,
            target,
            luma: PlaneScaler::new(source, target),
            chroma: PlaneScaler::new(half(source), half(target)),
        }
    }

    fn run(&mut self, frame: &I420Frame) -> I420Frame {
        let (w, h) = self.target;
        let mut out = vec![0; I420Frame::buffer_len(w, h)];
        let luma_len = w as usize * h as usize;
        let (y, uv) = out.split_at_mut(luma_len);
        let (u, v) = uv.split_at_mut(uv.len() / 2);
        self.luma.run(frame.y(), y);
        self.chroma.run(frame.u(), u);
        self.chroma.run(frame.v(), v);
        // The buffer length is buffer_len(w, h) and w, h >= 1 by construction.
        I420Frame::from_buffer(w, h, out).expect("scaled buffer has the I420 length")
    }
}

/// Scales one plane: a horizontal pass into `rows`, then a vertical pass.
#[derive(Debug, Clone)]
struct PlaneScaler {
    src_width: usize,
    dst_width: usize,
    /// The source is exactly twice the target each way: each output sample is the mean
    /// of a 2x2 block ([`halve`]), what the weights give, without them.
    halves: bool,
    x: AxisWeights,
    y: AxisWeights,
    /// Source rows scaled horizontally, 8 fractional bits (`src_height x dst_width`).
    rows: Vec<u16>,
    /// One output row being accumulated by the vertical pass.
    acc: Vec<u32>,
}

impl PlaneScaler {
    fn new((sw, sh): (u32, u32), (dw, dh): (u32, u32)) -> Self {
        let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
        Self {
            src_width: sw,
            dst_width: dw,
            halves: sw == 2 * dw && sh == 2 * dh,
            x: AxisWeights::new(sw, dw),
            y: AxisWeights::new(sh, dh),
            rows: vec![0; sh * dw],
            acc: vec![0; dw],
        }
    }

    fn run(&mut self, src: &[u8], dst: &mut [u8]) {
        let (sw, dw) = (self.src_width, self.dst_width);
        if self.halves {
            halve(src, sw, dst, dw);
            return;
        }
        // Tap counts the scaler meets at call sizes get a loop the compiler unrolls: the
        // ladder's 3/4 rung has 2, 2x up 1, 1/4 of the size 4 or 5.
        match self.x.taps {
            1 => self.horizontal::<1>(src),
            2 => self.horizontal::<2>(src),
            3 => self.horizontal::<3>(src),
            4 => self.horizontal::<4>(src),
            5 => self.horizontal::<5>(src),
            _ => self.horizontal_any(src),
        }
        match self.y.taps {
            1 => self.vertical::<1>(dst),
            2 => self.vertical::<2>(dst),
            3 => self.vertical::<3>(dst),
            4 => self.vertical::<4>(dst),
            5 => self.vertical::<5>(dst),
            _ => self.vertical_any(dst),
        }
    }

    /// The horizontal pass for `N` taps per output sample, into `rows`.
    fn horizontal<const N: usize>(&mut self, src: &[u8]) {
        let (sw, dw) = (self.src_width, self.dst_width);
        for (src_row, mid_row) in src.chunks_exact(sw).zip(self.rows.chunks_exact_mut(dw)) {
            for ((mid, &start), weights) in mid_row
                .iter_mut()
                .zip(&self.x.starts)
                .zip(self.x.weights.chunks_exact(N))
            {
                let taps: &[u8; N] = src_row[start..start + N]
                    .try_into()
                    .expect("N source samples");
                let weights: &[u16; N] = weights.try_into().expect("N weights");
                *mid = to_mid(tap_sum(taps, weights));
            }
        }
    }

    /// The horizontal pass for any tap count (large downscales), into `rows`.
    fn horizontal_any(&mut self, src: &[u8]) {
        let (sw, dw, n) = (self.src_width, self.dst_width, self.x.taps);
        for (src_row, mid_row) in src.chunks_exact(sw).zip(self.rows.chunks_exact_mut(dw)) {
            for ((mid, &start), weights) in mid_row
                .iter_mut()
                .zip(&self.x.starts)
                .zip(self.x.weights.chunks_exact(n))
            {
                *mid = to_mid(tap_sum(&src_row[start..start + n], weights));
            }
        }
    }

    /// The vertical pass for `N` taps per output row, from `rows` into `dst`.
    fn vertical<const N: usize>(&mut self, dst: &mut [u8]) {
        let dw = self.dst_width;
        for ((dst_row, &start), weights) in dst
            .chunks_exact_mut(dw)
            .zip(&self.y.starts)
            .zip(self.y.weights.chunks_exact(N))
        {
            let weights: &[u16; N] = weights.try_into().expect("N weights");
            // Each row cut to the output row's length: the loop then needs no bounds checks.
            let rows: [&[u16]; N] =
                std::array::from_fn(|k| &self.rows[(start + k) * dw..][..dst_row.len()]);
            for (x, d) in dst_row.iter_mut().enumerate() {
                let mut sum = 0u32;
                for k in 0..N {
                    sum += u32::from(rows[k][x]) * u32::from(weights[k]);
                }
                *d = to_sample(sum);
            }
        }
    }

    /// The vertical pass for any tap count (large downscales), from `rows` into `dst`.
    fn vertical_any(&mut self, dst: &mut [u8]) {
        let (dw, n) = (self.dst_width, self.y.taps);
        for ((dst_row, &start), weights) in dst
            .chunks_exact_mut(dw)
            .zip(&self.y.starts)
            .zip(self.y.weights.chunks_exact(n))
        {
            self.acc.fill(0);
            for (k, &w) in weights.iter().enumerate().filter(|(_, w)| **w != 0) {
                let mid_row = &self.rows[(start + k) * dw..(start + k + 1) * dw];
                for (a, &m) in self.acc.iter_mut().zip(mid_row) {
                    *a += u32::from(m) * u32::from(w);
                }
            }
            for (d, &a) in dst_row.iter_mut().zip(&self.acc) {
                *d = to_sample(a);
            }
        }
    }
}

/// A vertical sum back to an 8-bit sample.
fn to_sample(sum: u32) -> u8 {
    ((sum + (1 << (OUT_SHIFT - 1))) >> OUT_SHIFT).min(255) as u8
}

/// The weighted sum of one output sample's source samples.
#[inline(always)]
fn tap_sum(samples: &[u8], weights: &[u16]) -> u32 {
    samples
        .iter()
        .zip(weights)
        .map(|(&s, &w)| u32::from(s) * u32::from(w))
        .sum()
}

/// A horizontal sum back to 8 fractional bits: at most 255 << 8, so it fits a `u16` (the
/// weights sum to 1 << WEIGHT_BITS).
fn to_mid(sum: u32) -> u16 {
    ((sum + (1 << (MID_SHIFT - 1))) >> MID_SHIFT) as u16
}

/// Halves a plane of `src_width` samples a row into `dst` (`dst_width` a row): each
/// output sample is the rounded mean of its 2x2 source block. The send ladder's half-size
/// rung (640x480 to 320x240) takes this path every frame: 110-145 µs a frame against
/// about 395 µs through the fixed-tap weighted passes (criterion, back to back).
fn halve(src: &[u8], src_width: usize, dst: &mut [u8], dst_width: usize) {
    for (pair, out) in src
        .chunks_exact(2 * src_width)
        .zip(dst.chunks_exact_mut(dst_width))
    {
        let (top, bottom) = pair.split_at(src_width);
        for ((o, t), b) in out
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            let sum = u16::from(t[0]) + u16::from(t[1]) + u16::from(b[0]) + u16::from(b[1]);
            *o = ((sum + 2) >> 2) as u8;
        }
    }
}

/// Area-average weights of one axis, the same number of taps for every output sample:
/// output `i` is the sum of `weights[i * taps..(i + 1) * taps]` over source samples
/// `starts[i]..starts[i] + taps`. Outputs that cover fewer source samples than `taps`
/// are padded with zero weights, so the passes run fixed-length loops.
#[derive(Debug, Clone)]
struct AxisWeights {
    /// Taps per output sample: the most source samples any output sample covers.
    taps: usize,
    /// First source sample of each output sample's taps (`starts[i] + taps <= src`).
    starts: Vec<usize>,
    /// Fixed-point weights, `taps` per output sample, summing to `1 << WEIGHT_BITS`.
    weights: Vec<u16>,
}

impl AxisWeights {
    /// Output `i` covers source interval `[i*src/dst, (i+1)*src/dst)`; counted in units
    /// of `1/dst` source samples, that is `[i*src, (i+1)*src)`, and source sample `j` is
    /// `[j*dst, (j+1)*dst)`. Weights are rounded cumulatively so each set sums exactly.
    fn new(src: usize, dst: usize) -> Self {
        let sets: Vec<(usize, Vec<u16>)> = (0..dst).map(|i| Self::covering(i, src, dst)).collect();
        let taps = sets.iter().map(|(_, w)| w.len()).max().unwrap_or(1);
        let mut starts = Vec::with_capacity(dst);
        let mut weights = Vec::with_capacity(dst * taps);
        for (first, set) in sets {
            // A set near the end starts early, with leading zeros, to stay inside the row.
            let start = first.min(src - taps);
            starts.push(start);
            let lead = first - start;
            weights.extend(std::iter::repeat_n(0, lead));
            weights.extend(&set);
            weights.extend(std::iter::repeat_n(0, taps - lead - set.len()));
        }
        Self {
            taps,
            starts,
            weights,
        }
    }

    /// The first source sample output `i` covers, and the weights of the samples it
    /// covers from there.
    fn covering(i: usize, src: usize, dst: usize) -> (usize, Vec<u16>) {
        let one = 1u64 << WEIGHT_BITS;
        let (i, src64, dst64) = (i as u64, src as u64, dst as u64);
        let (lo, hi) = (i * src64, (i + 1) * src64);
        let (first, last) = (lo / dst64, hi.div_ceil(dst64));
        let (mut covered, mut assigned) = (0u64, 0u64);
        let weights = (first..last)
            .map(|j| {
                covered += hi.min((j + 1) * dst64) - lo.max(j * dst64);
                let cumulative = (covered * one + src64 / 2) / src64;
                let w = (cumulative - assigned) as u16;
                assigned = cumulative;
                w
            })
            .collect();
        (first as usize, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output `i`'s first source sample and its `taps` weights.
    fn set(a: &AxisWeights, i: usize) -> (usize, &[u16]) {
        (a.starts[i], &a.weights[i * a.taps..(i + 1) * a.taps])
    }

    fn frame_from_luma(width: u32, height: u32, luma: impl Fn(u32, u32) -> u8) -> I420Frame {
        let mut f = I420Frame::filled(width, height, (0, 128, 128)).unwrap();
        let (y, _, _) = f.planes_mut();
        for row in 0..height {
            for col in 0..width {
                y[(row * width + col) as usize] = luma(col, row);
            }
        }
        f
    }

    #[test]
    fn flat_colors_stay_flat_at_any_size() {
        let src = I420Frame::filled(320, 240, (81, 90, 240)).unwrap();
        for (w, h) in [
            (640, 480),
            (160, 120),
            (33, 17),
            (1, 1),
            (321, 239),
            (1000, 3),
        ] {
            let out = scale(&src, w, h).unwrap();
            assert_eq!((out.width(), out.height()), (w, h));
            assert_eq!(
                out,
                I420Frame::filled(w, h, (81, 90, 240)).unwrap(),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn halving_averages_each_2x2_block() {
        // Luma 0, 100, 200, 40 in each 2x2 block: the mean is 85.
        let src = frame_from_luma(8, 6, |x, y| {
            [[0, 100], [200, 40]][(y % 2) as usize][(x % 2) as usize]
        });
        let out = scale(&src, 4, 3).unwrap();
        assert!(out.y().iter().all(|&v| v == 85), "{:?}", out.y());
        assert!(out.u().iter().all(|&v| v == 128));
    }

    /// The 2x2 path gives what the weights give (within rounding) on real footage.
    #[test]
    fn halving_matches_the_weighted_path() {
        let clip = crate::media::video::y4m::Y4mReader::open(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip_320x240.y4m"
        )))
        .unwrap()
        .read_frame()
        .unwrap()
        .unwrap();
        let half = scale(&clip, 160, 120).unwrap();
        let mut weighted = PlaneScaler::new((320, 240), (160, 120));
        weighted.halves = false;
        let mut y = vec![0; 160 * 120];
        weighted.run(clip.y(), &mut y);
        let worst = y
            .iter()
            .zip(half.y())
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(worst <= 1, "largest difference {worst}");
        assert!(PlaneScaler::new((640, 480), (320, 240)).halves);
        assert!(!PlaneScaler::new((640, 480), (480, 360)).halves);
    }

    #[test]
    fn odd_sizes_weigh_partial_pixels() {
        // 3 -> 2 columns: output 0 covers source 0 fully and half of 1.
        let src = frame_from_luma(3, 1, |x, _| [0, 90, 180][x as usize]);
        let out = scale(&src, 2, 1).unwrap();
        assert_eq!(out.y(), &[30, 150]); // (0 + 45) / 1.5, (45 + 180) / 1.5
        assert_eq!(out.chroma_size(), (1, 1));
    }

    #[test]
    fn a_short_last_set_is_padded_inside_the_row() {
        // 5 -> 3 columns: the middle output covers 3 source samples, the last one 2 (3 and
        // 4), read from sample 2 with a zero weight first.
        let src = frame_from_luma(5, 1, |x, _| [0, 30, 60, 90, 120][x as usize]);
        let out = scale(&src, 3, 1).unwrap();
        assert_eq!(out.y(), &[12, 60, 108]); // (0 + 20) / (5/3), (10 + 60 + 30) / .., (60 + 120) / ..
        let weights = AxisWeights::new(5, 3);
        assert_eq!(weights.taps, 3);
        assert_eq!(set(&weights, 2).0, 2);
        assert_eq!(set(&weights, 2).1[0], 0);
    }

    #[test]
    fn doubling_repeats_each_pixel() {
        let src = frame_from_luma(3, 3, |x, y| (x * 50 + y * 10) as u8);
        let out = scale(&src, 6, 6).unwrap();
        for y in 0..6 {
            for x in 0..6 {
                assert_eq!(
                    out.y()[(y * 6 + x) as usize],
                    ((x / 2) * 50 + (y / 2) * 10) as u8
                );
            }
        }
    }

    #[test]
    fn scaler_follows_a_change_of_source_size() {
        let mut s = Scaler::new(4, 4).unwrap();
        let a = s.scale(&I420Frame::filled(8, 8, (50, 60, 70)).unwrap());
        let b = s.scale(&I420Frame::filled(3, 5, (90, 60, 70)).unwrap());
        assert_eq!(a, I420Frame::filled(4, 4, (50, 60, 70)).unwrap());
        assert_eq!(b, I420Frame::filled(4, 4, (90, 60, 70)).unwrap());
    }

    #[test]
    fn zero_target_is_an_error() {
        assert_eq!(Scaler::new(0, 10).err(), Some(ScaleError(0, 10)));
    }

    #[test]
    fn axis_weights_sum_to_one_for_extreme_ratios() {
        for (src, dst) in [(4000, 3), (3, 4000), (7, 5), (1, 1)] {
            let a = AxisWeights::new(src, dst);
            for i in 0..dst {
                let (start, w) = set(&a, i);
                assert!(start + w.len() <= src);
                assert_eq!(
                    w.iter().map(|&w| u32::from(w)).sum::<u32>(),
                    1 << WEIGHT_BITS
                );
            }
        }
    }
}
