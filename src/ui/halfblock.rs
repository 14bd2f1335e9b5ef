//! The half-block renderer: scales an I420 frame straight onto a grid of terminal
//! cells, two picture pixels per cell (`▀`: top pixel = foreground, bottom = background).
//!
//! How it scales, and why:
//! - **Fit and letterbox** ([`fit`]): the picture keeps its aspect ratio on a grid of
//!   `cols x 2*rows` "half-cell pixels", using the terminal's cell size in pixels when
//!   it reports one (else a cell is taken as twice as tall as wide), centered with
//!   black bars. The picture is never taller than the grid.
//! - **Area averaging** with per-axis weights precomputed once per geometry
//!   (`Taps`): every output pixel is the exact area-weighted mean of the source
//!   pixels it covers (a box filter), read straight from the Y, U and V planes. There
//!   is no intermediate full-size RGB copy: luma is read at full resolution, chroma at
//!   half.
//! - **Gamma-aware**: luma is averaged in linear light (sRGB transfer curve through
//!   lookup tables), so a fine black/white pattern becomes the mid-gray the eye sees
//!   (sRGB ≈ 188), not the too-dark 128 of averaging gamma-coded values. Chroma is
//!   averaged as coded (the usual constant-luminance approximation: it keeps the cost
//!   at about one table lookup and two multiply-adds per source pixel).
//! - **BT.601 limited range** YUV to sRGB after scaling, once per output pixel.
//! - **Temporal hysteresis** ([`Renderer::set_hysteresis`]): a pixel whose new color is
//!   within a few codes of what the grid already shows keeps the old color, so camera
//!   noise does not make ratatui re-send every cell of every frame.

use std::sync::OnceLock;

use crate::media::video::I420Frame;

/// An sRGB color, 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Rgb {
    /// Red, 0-255.
    pub r: u8,
    /// Green, 0-255.
    pub g: u8,
    /// Blue, 0-255.
    pub b: u8,
}

impl Rgb {
    /// Black, the color of the letterbox bars.
    pub const BLACK: Rgb = Rgb::new(0, 0, 0);

    /// A color from its channels.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }

    /// The largest per-channel difference to `other` (Chebyshev distance).
    pub fn max_diff(self, other: Rgb) -> u8 {
        self.r
            .abs_diff(other.r)
            .max(self.g.abs_diff(other.g))
            .max(self.b.abs_diff(other.b))
    }
}

/// One terminal cell: the two picture pixels a `▀` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HalfBlock {
    /// Upper pixel, drawn as the foreground of `▀`.
    pub top: Rgb,
    /// Lower pixel, drawn as the background.
    pub bottom: Rgb,
}

/// The size of one terminal cell in screen pixels, which sets the shape of a
/// half-cell pixel. [`CellSize::default`] is the common 1:2 cell (square half-cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSize {
    /// Cell width in pixels (> 0).
    width_px: u16,
    /// Cell height in pixels (> 0).
    height_px: u16,
}

impl Default for CellSize {
    fn default() -> Self {
        Self {
            width_px: 1,
            height_px: 2,
        }
    }
}

impl CellSize {
    /// A cell of `width_px x height_px`; `None` if either is zero.
    pub fn new(width_px: u16, height_px: u16) -> Option<Self> {
        (width_px > 0 && height_px > 0).then_some(Self {
            width_px,
            height_px,
        })
    }

    /// The cell size from a window's size in cells and in pixels (as `TIOCGWINSZ`
    /// reports it); `None` when the terminal does not report pixels (zeros), so the
    /// caller falls back to the default.
    pub fn from_window(cols: u16, rows: u16, width_px: u16, height_px: u16) -> Option<Self> {
        if cols == 0 || rows == 0 {
            return None;
        }
        Self::new(width_px / cols, height_px / rows)
    }

    /// Cell width in pixels.
    pub fn width_px(self) -> u16 {
        self.width_px
    }

    /// Cell height in pixels.
    pub fn height_px(self) -> u16 {
        self.height_px
    }
}

/// How a cell is divided into picture pixels: `cols x rows` sub-cells (half-blocks
/// 1x2; the symbol blitters of [`super::symbols`] 2x2, 2x3 and 2x4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubCells {
    /// Picture pixels across one cell (1-2).
    pub cols: u8,
    /// Picture pixels down one cell (1-4).
    pub rows: u8,
}

impl SubCells {
    /// Two pixels per cell, one above the other: `▀`.
    pub const HALF_BLOCK: SubCells = SubCells { cols: 1, rows: 2 };
}

/// Where a picture lands on a cell grid, in sub-cell pixels ([`SubCells`]; half-cell
/// pixels for [`fit`]): `x` and `width` count pixel columns, `y` and `height` pixel
/// rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First picture column.
    pub x: u16,
    /// First picture half-row.
    pub y: u16,
    /// Picture width in columns (≥ 1).
    pub width: u16,
    /// Picture height in half-rows (≥ 1).
    pub height: u16,
}

/// Fits a `frame_w x frame_h` picture into `cols x rows` cells (`cols x 2*rows`
/// half-cell pixels of the shape `cell` gives), keeping its aspect ratio, centered.
///
/// Returns `None` when there is nothing to draw on or nothing to draw (a zero size).
/// The result always lies inside the grid: `x + width ≤ cols`, `y + height ≤ 2*rows`.
pub fn fit(frame_w: u32, frame_h: u32, cols: u16, rows: u16, cell: CellSize) -> Option<Placement> {
    fit_in(frame_w, frame_h, cols, rows, cell, SubCells::HALF_BLOCK)
}

/// [`fit`] on a grid of `sub` pixels per cell: the result is in those pixels, and lies
/// inside `cols * sub.cols` by `rows * sub.rows` of them.
pub fn fit_in(
    frame_w: u32,
    frame_h: u32,
    cols: u16,
    rows: u16,
    cell: CellSize,
    sub: SubCells,
) -> Option<Placement> {
    if frame_w == 0 || frame_h == 0 || cols == 0 || rows == 0 || sub.cols == 0 || sub.rows == 0 {
        return None;
    }
    let (sw, sh) = (u64::from(sub.cols), u64::from(sub.rows));
    let (max_w, max_h) = (sw * u64::from(cols), sh * u64::from(rows));
    // A pixel is cell_w/sw wide and cell_h/sh tall, so the picture needs
    // width * (cell_w / sw) * frame_h == height * (cell_h / sh) * frame_w.
    let horizontal = sh * u64::from(cell.width_px) * u64::from(frame_h);
    let vertical = sw * u64::from(cell.height_px) * u64::from(frame_w);
    let rounded_div = |num: u64, den: u64| (num + den / 2) / den;
    let mut height = max_h;
    let mut width = rounded_div(height * vertical, horizontal);
    if width > max_w {
        width = max_w;
        height = rounded_div(width * horizontal, vertical).min(max_h);
    }
    let (width, height) = (width.clamp(1, max_w), height.clamp(1, max_h));
    // Both are bounded by the pixel grid; past u16::MAX pixels (far beyond any
    // terminal) they are capped.
    let to_u16 = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    Some(Placement {
        x: to_u16((max_w - width) / 2),
        y: to_u16((max_h - height) / 2),
        width: to_u16(width),
        height: to_u16(height),
    })
}

/// A grid of half-block cells, row-major, with the picture's placement in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CellGrid {
    cols: u16,
    rows: u16,
    cells: Vec<HalfBlock>,
    placement: Option<Placement>,
}

impl CellGrid {
    /// An all-black grid of `cols x rows` cells.
    pub fn new(cols: u16, rows: u16) -> Self {
        let mut grid = Self::default();
        grid.reset(cols, rows);
        grid
    }

    /// Width in cells.
    pub fn cols(&self) -> u16 {
        self.cols
    }

    /// Height in cells.
    pub fn rows(&self) -> u16 {
        self.rows
    }

    /// Where the picture is, in half-cell pixels; `None` for an empty grid.
    pub fn placement(&self) -> Option<Placement> {
        self.placement
    }

    /// The cell at column `col`, row `row`, or `None` outside the grid.
    pub fn get(&self, col: u16, row: u16) -> Option<HalfBlock> {
        (col < self.cols && row < self.rows)
            .then(|| self.cells[usize::from(row) * usize::from(self.cols) + usize::from(col)])
    }

    /// The cells of one row, left to right (empty outside the grid).
    pub fn row(&self, row: u16) -> &[HalfBlock] {
        if row >= self.rows {
            return &[];
        }
        let start = usize::from(row) * usize::from(self.cols);
        &self.cells[start..start + usize::from(self.cols)]
    }

    /// What a terminal whose `▀` exactly fills the upper half of its cell shows for this
    /// grid with cells of `cell` pixels: `cols * width x rows * height` pixels,
    /// row-major. For measuring fidelity against the source picture.
    pub fn rasterize(&self, cell: CellSize) -> Vec<Rgb> {
        let (cw, ch) = (usize::from(cell.width_px), usize::from(cell.height_px));
        let width = usize::from(self.cols) * cw;
        let mut out = vec![Rgb::BLACK; width * usize::from(self.rows) * ch];
        for (y, line) in out.chunks_exact_mut(width).enumerate() {
            let (row, lower) = (y / ch, (y % ch) * 2 >= ch);
            for (x, px) in line.iter_mut().enumerate() {
                let block = self.cells[row * usize::from(self.cols) + x / cw];
                *px = if lower { block.bottom } else { block.top };
            }
        }
        out
    }

    fn reset(&mut self, cols: u16, rows: u16) {
        self.cols = cols;
        self.rows = rows;
        self.placement = None;
        self.cells.clear();
        self.cells
            .resize(usize::from(cols) * usize::from(rows), HalfBlock::default());
    }

    /// Copies the picture's pixels (`placement.width x placement.height`, row-major)
    /// into the cells under the placement; see [`CellGrid::set_pixel`].
    fn fill(&mut self, placement: Placement, pixels: &[Rgb], hysteresis: u8) {
        let width = usize::from(placement.width);
        for (dy, row) in pixels.chunks_exact(width).enumerate() {
            for (dx, &color) in row.iter().enumerate() {
                // dx < width and dy < height, both u16 by construction.
                let (x, y) = (placement.x + dx as u16, placement.y + dy as u16);
                self.set_pixel(x, y, color, hysteresis);
            }
        }
    }

    /// Sets the pixel at column `x`, half-row `y`; with `hysteresis > 0` a color
    /// within that many codes of the current one is left as is.
    fn set_pixel(&mut self, x: u16, y: u16, color: Rgb, hysteresis: u8) {
        let index = usize::from(y / 2) * usize::from(self.cols) + usize::from(x);
        let cell = &mut self.cells[index];
        let slot = if y.is_multiple_of(2) {
            &mut cell.top
        } else {
            &mut cell.bottom
        };
        if hysteresis == 0 || slot.max_diff(color) > hysteresis {
            *slot = color;
        }
    }
}

/// Area-averaging weights along one axis: for each output pixel, the run of source
/// pixels it covers and the share of each (the shares of one output sum to 1).
#[derive(Debug, Clone, Default, PartialEq)]
struct Taps {
    /// Per output pixel: first source index, and range into `weights`.
    spans: Vec<(usize, std::ops::Range<usize>)>,
    weights: Vec<f32>,
    /// The same weights as [`Pair`]s when no output takes more than two source pixels
    /// (always when enlarging): the branch-free form [`Taps::apply_row`] runs.
    pairs: Option<Vec<Pair>>,
}

/// One output pixel's two neighbouring source pixels and their shares (`second` is
/// `first` again, at share 0, for an output inside one source pixel or at the edge).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    first: u32,
    second: u32,
    w_first: f32,
    w_second: f32,
}

impl Taps {
    /// Whether output pixels `a` and `b` take the same source pixels with the same
    /// weights (neighbours inside one source pixel when enlarging).
    fn same(&self, a: usize, b: usize) -> bool {
        let ((first_a, range_a), (first_b, range_b)) = (&self.spans[a], &self.spans[b]);
        first_a == first_b && self.weights[range_a.clone()] == self.weights[range_b.clone()]
    }

    /// Weights mapping `outputs` pixels onto a source extent of `extent` pixels
    /// (fractional for a chroma plane seen in luma coordinates) stored in a plane
    /// of `plane_len` samples.
    fn area(extent: f64, outputs: usize, plane_len: usize) -> Self {
        let mut taps = Self::default();
        let step = extent / outputs as f64;
        for i in 0..outputs {
            let (start, end) = (i as f64 * step, (i + 1) as f64 * step);
            let first = (start.floor() as usize).min(plane_len - 1);
            let last = (end.ceil() as usize).clamp(first + 1, plane_len);
            let from = taps.weights.len();
            for j in first..last {
                let overlap = (end.min((j + 1) as f64) - start.max(j as f64)).max(0.0);
                taps.weights.push((overlap / step) as f32);
            }
            let total: f32 = taps.weights[from..].iter().sum();
            if total > 0.0 {
                taps.weights[from..].iter_mut().for_each(|w| *w /= total);
            } else {
                // Only reachable through float rounding at the very edge: sample it.
                taps.weights[from] = 1.0;
            }
            taps.spans.push((first, from..taps.weights.len()));
        }
        taps.pairs = taps.as_pairs();
        taps
    }

    /// The weights as [`Pair`]s, when no output takes more than two source pixels.
    fn as_pairs(&self) -> Option<Vec<Pair>> {
        self.spans
            .iter()
            .map(|(first, range)| {
                let weights = &self.weights[range.clone()];
                let index = |i: usize| u32::try_from(i).ok();
                match *weights {
                    [w] => Some(Pair {
                        first: index(*first)?,
                        second: index(*first)?,
                        w_first: w,
                        w_second: 0.0,
                    }),
                    [w_first, w_second] => Some(Pair {
                        first: index(*first)?,
                        second: index(first + 1)?,
                        w_first,
                        w_second,
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every output of the axis from `samples`, into `out` (one per output pixel).
    #[inline]
    fn apply_row(&self, samples: &[f32], out: &mut [f32]) {
        match &self.pairs {
            Some(pairs) => {
                for (o, p) in out.iter_mut().zip(pairs) {
                    *o = samples[p.first as usize] * p.w_first
                        + samples[p.second as usize] * p.w_second;
                }
            }
            None => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = self.apply(i, samples);
                }
            }
        }
    }

    /// The weighted sum of `samples` for output `i`.
    #[inline]
    fn apply(&self, i: usize, samples: &[f32]) -> f32 {
        let (first, range) = &self.spans[i];
        let weights = &self.weights[range.clone()];
        samples[*first..*first + weights.len()]
            .iter()
            .zip(weights)
            .map(|(s, w)| s * w)
            .sum()
    }
}

/// Scaling weights for one (frame size, placement) pair; rebuilt only when it changes.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    frame_size: (u32, u32),
    placement: Placement,
    luma_x: Taps,
    luma_y: Taps,
    chroma_x: Taps,
    chroma_y: Taps,
}

impl Plan {
    fn new(frame: &I420Frame, placement: Placement) -> Self {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let (cw, ch) = frame.chroma_size();
        let (out_w, out_h) = (usize::from(placement.width), usize::from(placement.height));
        Self {
            frame_size: (frame.width(), frame.height()),
            placement,
            luma_x: Taps::area(w as f64, out_w, w),
            luma_y: Taps::area(h as f64, out_h, h),
            chroma_x: Taps::area(w as f64 / 2.0, out_w, cw as usize),
            chroma_y: Taps::area(h as f64 / 2.0, out_h, ch as usize),
        }
    }
}

/// Entries of the linear-light to sRGB table; 8192 keeps the round trip within a
/// fraction of a code even near black, where the sRGB curve is steepest.
const LINEAR_STEPS: usize = 8192;

/// Lookup tables for the sRGB transfer curve (IEC 61966-2-1).
struct GammaTables {
    /// Limited-range luma code (16-235) → linear light, 0.0-1.0.
    luma_to_linear: [f32; 256],
    /// Linear light quantized to `LINEAR_STEPS` → sRGB-coded value scaled to 0-255.
    linear_to_srgb255: Vec<f32>,
}

fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

fn gamma_tables() -> &'static GammaTables {
    static TABLES: OnceLock<GammaTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut luma_to_linear = [0.0; 256];
        for (code, slot) in luma_to_linear.iter_mut().enumerate() {
            let normalized = ((code as f64 - 16.0) / 219.0).clamp(0.0, 1.0);
            *slot = srgb_to_linear(normalized) as f32;
        }
        let linear_to_srgb255 = (0..LINEAR_STEPS)
            .map(|i| (255.0 * linear_to_srgb(i as f64 / (LINEAR_STEPS - 1) as f64)) as f32)
            .collect();
        GammaTables {
            luma_to_linear,
            linear_to_srgb255,
        }
    })
}

/// BT.601 limited-range Y'CbCr to sRGB: `luma255` is `1.164 * (Y - 16)` (luma
/// already scaled to 0-255), `u` and `v` the chroma codes.
#[inline]
fn yuv_to_rgb(luma255: f32, u: f32, v: f32) -> Rgb {
    // ITU-R BT.601: Kr = 0.299, Kb = 0.114, chroma scaled by 255/224.
    let (cb, cr) = (u - 128.0, v - 128.0);
    let clamp = |x: f32| (x + 0.5).clamp(0.0, 255.0) as u8;
    Rgb {
        r: clamp(luma255 + 1.596_027 * cr),
        g: clamp(luma255 - 0.391_762 * cb - 0.812_968 * cr),
        b: clamp(luma255 + 2.017_232 * cb),
    }
}

/// `frame` as packed 8-bit RGB (`width * height * 3` bytes, row-major) in `out`
/// (cleared first), BT.601 limited range, each chroma sample shared by its 2x2 luma
/// block: the picture a graphics protocol shows pixel for pixel.
pub fn i420_to_rgb(frame: &I420Frame, out: &mut Vec<u8>) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let cw = frame.chroma_size().0 as usize;
    let (y, u, v) = (frame.y(), frame.u(), frame.v());
    out.clear();
    out.reserve(w * h * 3);
    for row in 0..h {
        let (luma, chroma) = (&y[row * w..(row + 1) * w], (row / 2) * cw);
        for (col, &l) in luma.iter().enumerate() {
            let c = chroma + col / 2;
            let rgb = yuv_to_rgb(
                1.164 * (f32::from(l) - 16.0),
                f32::from(u[c]),
                f32::from(v[c]),
            );
            out.extend_from_slice(&[rgb.r, rgb.g, rgb.b]);
        }
    }
}

/// Renders frames into a reusable [`CellGrid`], keeping its buffers and scaling
/// weights between frames so that steady-state rendering does not allocate.
#[derive(Debug, Default)]
pub struct Renderer {
    grid: CellGrid,
    plan: Option<Plan>,
    /// The scaled picture, `placement.width x placement.height`, row-major.
    pixels: Vec<Rgb>,
    /// One output row of vertically averaged linear luma, full frame width.
    luma_row: Vec<f32>,
    /// One output row of vertically averaged U and V, chroma width.
    u_row: Vec<f32>,
    v_row: Vec<f32>,
    /// Those rows scaled across, one value per output pixel: luma (linear, then
    /// sRGB-coded in place), U and V.
    luma_out: Vec<f32>,
    u_out: Vec<f32>,
    v_out: Vec<f32>,
    /// Max per-channel change (codes) that leaves a shown pixel as is; 0 = off.
    hysteresis: u8,
}

impl Renderer {
    /// A renderer with no hysteresis (every pixel shows exactly the new frame).
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a shown pixel's color when the new one differs by at most `codes` in
    /// every channel: fewer changed cells per frame for a noisy camera, at the cost
    /// of that much color error. 0 turns it off; the call screen uses a few codes.
    pub fn set_hysteresis(&mut self, codes: u8) {
        self.hysteresis = codes;
    }

    /// Renders `frame` into a `cols x rows` grid with the picture fitted and centered
    /// ([`fit`]), black elsewhere, and returns the grid. An empty area gives an empty
    /// grid. The grid is reused: a change of size or placement clears it first.
    pub fn render(&mut self, frame: &I420Frame, cols: u16, rows: u16, cell: CellSize) -> &CellGrid {
        let Some(placement) = self.scale(frame, cols, rows, cell, SubCells::HALF_BLOCK) else {
            self.grid.reset(cols, rows);
            return &self.grid;
        };
        let grid_fits = self.grid.cols == cols
            && self.grid.rows == rows
            && self.grid.placement == Some(placement);
        // A new layout starts from black, so hysteresis never keeps stale pixels.
        let hysteresis = if grid_fits { self.hysteresis } else { 0 };
        if !grid_fits {
            self.grid.reset(cols, rows);
            self.grid.placement = Some(placement);
        }
        self.grid.fill(placement, &self.pixels, hysteresis);
        &self.grid
    }

    /// Scales `frame` to fit `cols x rows` cells of `sub` pixels each ([`fit_in`]);
    /// where the picture lands, its pixels then in [`Renderer::pixels`]. `None` when
    /// there is nothing to draw on or nothing to draw.
    pub fn scale(
        &mut self,
        frame: &I420Frame,
        cols: u16,
        rows: u16,
        cell: CellSize,
        sub: SubCells,
    ) -> Option<Placement> {
        let placement = fit_in(frame.width(), frame.height(), cols, rows, cell, sub)?;
        let frame_size = (frame.width(), frame.height());
        let plan_fits = self
            .plan
            .as_ref()
            .is_some_and(|p| p.frame_size == frame_size && p.placement == placement);
        if !plan_fits {
            self.plan = Some(Plan::new(frame, placement));
        }
        if let Some(plan) = self.plan.take() {
            self.scale_with(frame, &plan);
            self.plan = Some(plan);
        }
        Some(placement)
    }

    /// The picture as last scaled ([`Renderer::scale`]): `width x height` of its
    /// placement, row-major.
    pub fn pixels(&self) -> &[Rgb] {
        &self.pixels
    }

    /// The grid as last rendered.
    pub fn grid(&self) -> &CellGrid {
        &self.grid
    }

    fn scale_with(&mut self, frame: &I420Frame, plan: &Plan) {
        let tables = gamma_tables();
        let width = frame.width() as usize;
        let chroma_width = frame.chroma_size().0 as usize;
        self.luma_row.resize(width, 0.0);
        self.u_row.resize(chroma_width, 0.0);
        self.v_row.resize(chroma_width, 0.0);
        let p = plan.placement;
        let out_width = usize::from(p.width);
        for row in [&mut self.luma_out, &mut self.u_out, &mut self.v_out] {
            row.resize(out_width, 0.0);
        }
        let top = (LINEAR_STEPS - 1) as f32;
        self.pixels
            .resize(out_width * usize::from(p.height), Rgb::BLACK);
        for out_y in 0..usize::from(p.height) {
            if out_y > 0
                && plan.luma_y.same(out_y, out_y - 1)
                && plan.chroma_y.same(out_y, out_y - 1)
            {
                // Enlarging: this row is the one above again (two of three at 3x).
                let above = (out_y - 1) * out_width;
                self.pixels
                    .copy_within(above..above + out_width, above + out_width);
                continue;
            }
            accumulate_rows(
                &plan.luma_y,
                out_y,
                frame.y(),
                width,
                &mut self.luma_row,
                |s| tables.luma_to_linear[usize::from(s)],
            );
            accumulate_rows(
                &plan.chroma_y,
                out_y,
                frame.u(),
                chroma_width,
                &mut self.u_row,
                f32::from,
            );
            accumulate_rows(
                &plan.chroma_y,
                out_y,
                frame.v(),
                chroma_width,
                &mut self.v_row,
                f32::from,
            );
            plan.luma_x.apply_row(&self.luma_row, &mut self.luma_out);
            plan.chroma_x.apply_row(&self.u_row, &mut self.u_out);
            plan.chroma_x.apply_row(&self.v_row, &mut self.v_out);
            // Linear light back to sRGB codes (a table read each), then to RGB in a
            // loop of plain arithmetic the compiler vectorizes.
            for linear in &mut self.luma_out {
                let index = (*linear * top + 0.5).clamp(0.0, top) as usize;
                *linear = tables.linear_to_srgb255[index];
            }
            let row = &mut self.pixels[out_y * out_width..(out_y + 1) * out_width];
            let columns = self.luma_out.iter().zip(&self.u_out).zip(&self.v_out);
            for (px, ((&luma255, &u), &v)) in row.iter_mut().zip(columns) {
                *px = yuv_to_rgb(luma255, u, v);
            }
        }
    }
}

/// Fills `out` with the `taps`-weighted sum of the source rows that output row
/// `out_y` covers, each sample mapped through `sample`.
#[inline]
fn accumulate_rows(
    taps: &Taps,
    out_y: usize,
    plane: &[u8],
    stride: usize,
    out: &mut [f32],
    sample: impl Fn(u8) -> f32,
) {
    let (first, range) = &taps.spans[out_y];
    out.iter_mut().for_each(|v| *v = 0.0);
    for (k, &weight) in taps.weights[range.clone()].iter().enumerate() {
        let row = &plane[(first + k) * stride..(first + k + 1) * stride];
        for (acc, &s) in out.iter_mut().zip(row) {
            *acc += weight * sample(s);
        }
    }
}

/// Renders `frame` into a new `cols x rows` grid (see [`Renderer::render`]); for a
/// stream of frames keep a [`Renderer`] instead, which reuses its buffers.
pub fn render(frame: &I420Frame, cols: u16, rows: u16, cell: CellSize) -> CellGrid {
    let mut renderer = Renderer::new();
    renderer.render(frame, cols, rows, cell);
    renderer.grid
}

/// The 4x4 Bayer matrix (ordered dithering thresholds 0-15), indexed `[y % 4][x % 4]`.
pub(crate) const BAYER4: [[u8; 4]; 4] =
    [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// The color cube's levels per channel (entries 16-231: 16 + 36·r + 6·g + b).
const CUBE_LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The gray levels of the palette in order: black (entry 16), the ramp (232-255: 8,
/// 18, … 238) and white (231).
const GRAY_LEVELS: [u8; 26] = [
    0, 8, 18, 28, 38, 48, 58, 68, 78, 88, 98, 108, 118, 128, 138, 148, 158, 168, 178, 188, 198,
    208, 218, 228, 238, 255,
];

/// Channel spread (max - min, codes) under which a color counts as a near-gray, drawn
/// from the gray levels (26 steps, finer than the cube's six).
const NEAR_GRAY: u8 = 16;

/// The xterm 256-color palette entry (16-255: the 6x6x6 color cube, then 24 grays)
/// for pixel (`x`, `y`) of a picture colored `color`, ordered-dithered: each channel
/// lies between two palette levels, and the 4x4 Bayer threshold of the pixel picks the
/// upper one in proportion to how far up the channel lies (one threshold for all three
/// channels, so the pattern is coherent). Near-grays use the gray levels. A gradient
/// thus mixes neighbouring entries in proportion instead of banding, the pattern is
/// fixed in place (a still picture does not shimmer from frame to frame), and a color
/// on a palette level stays that entry.
pub fn to_ansi256_dithered(color: Rgb, x: u16, y: u16) -> u8 {
    let threshold = (f32::from(BAYER4[usize::from(y % 4)][usize::from(x % 4)]) + 0.5) / 16.0;
    ansi256_at(color, threshold)
}

/// The palette entry of `color` with each channel taken up to the next level when it
/// lies more than `threshold` (0-1) of the way there (0.5: the nearest level).
fn ansi256_at(color: Rgb, threshold: f32) -> u8 {
    let (max, min) = (
        color.r.max(color.g).max(color.b),
        color.r.min(color.g).min(color.b),
    );
    if max - min < NEAR_GRAY {
        let mean = (u16::from(color.r) + u16::from(color.g) + u16::from(color.b)) / 3;
        // mean ≤ 255.
        return match dither_level(&GRAY_LEVELS, mean as u8, threshold) {
            0 => 16,
            25 => 231,
            // 1..=24: the ramp.
            ramp => 231 + ramp as u8,
        };
    }
    let level = |c: u8| dither_level(&CUBE_LEVELS, c, threshold) as u8;
    16 + 36 * level(color.r) + 6 * level(color.g) + level(color.b)
}

/// The index in `levels` (ascending, first 0, last 255) that `value` dithers to under
/// `threshold` (0-1): the level at or below it, or the next one up when the value lies
/// more than `threshold` of the way there.
fn dither_level(levels: &[u8], value: u8, threshold: f32) -> usize {
    let above = levels.partition_point(|&l| l <= value);
    if above >= levels.len() {
        return levels.len() - 1;
    }
    let (low, high) = (levels[above - 1], levels[above]);
    let fraction = f32::from(value - low) / f32::from(high - low);
    if fraction > threshold {
        above
    } else {
        above - 1
    }
}

/// The sRGB color of xterm palette entry `index` (16-255); `None` for the 16 system
/// colors, whose look each terminal theme chooses.
pub fn ansi256_color(index: u8) -> Option<Rgb> {
    match index {
        0..=15 => None,
        16..=231 => {
            let i = usize::from(index - 16);
            Some(Rgb::new(
                CUBE_LEVELS[i / 36],
                CUBE_LEVELS[(i / 6) % 6],
                CUBE_LEVELS[i % 6],
            ))
        }
        232..=255 => {
            let level = 8 + 10 * (index - 232);
            Some(Rgb::new(level, level, level))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose every pixel is set by `pixel(x, y) -> (Y, U, V)`; chroma is taken
    /// from the top-left pixel of each 2x2 block.
    fn frame_from(width: u32, height: u32, pixel: impl Fn(u32, u32) -> (u8, u8, u8)) -> I420Frame {
        let mut frame = I420Frame::filled(width, height, (16, 128, 128)).unwrap();
        let chroma_w = frame.chroma_size().0;
        let (y, u, v) = frame.planes_mut();
        for row in 0..height {
            for col in 0..width {
                let (py, pu, pv) = pixel(col, row);
                y[(row * width + col) as usize] = py;
                if row % 2 == 0 && col % 2 == 0 {
                    let c = ((row / 2) * chroma_w + col / 2) as usize;
                    u[c] = pu;
                    v[c] = pv;
                }
            }
        }
        frame
    }

    #[test]
    fn a_row_pass_gives_each_output_its_weighted_sum_enlarging_or_shrinking() {
        let samples: Vec<f32> = (0..640).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        // 1.5x and 3x up take pairs; 4x and 1.3x down take wider spans.
        for outputs in [960, 1920, 160, 490] {
            let taps = Taps::area(640.0, outputs, 640);
            assert_eq!(taps.pairs.is_some(), outputs > 640, "{outputs}");
            let mut row = vec![0.0; outputs];
            taps.apply_row(&samples, &mut row);
            for (i, &got) in row.iter().enumerate() {
                let want = taps.apply(i, &samples);
                assert!(
                    (got - want).abs() < 1e-6,
                    "{outputs}: output {i}: {got} vs {want}"
                );
            }
        }
    }

    fn close(a: Rgb, b: Rgb, tolerance: u8) -> bool {
        a.max_diff(b) <= tolerance
    }

    const BLACK: (u8, u8, u8) = (16, 128, 128);
    const WHITE: (u8, u8, u8) = (235, 128, 128);
    /// BT.601 limited-range codes of pure red, green and blue.
    const RED: (u8, u8, u8) = (81, 90, 240);
    const GREEN: (u8, u8, u8) = (145, 54, 34);
    const BLUE: (u8, u8, u8) = (41, 240, 110);

    #[test]
    fn solid_colors_fill_every_picture_cell() {
        for (yuv, expected) in [
            (BLACK, Rgb::new(0, 0, 0)),
            (WHITE, Rgb::new(255, 255, 255)),
            (RED, Rgb::new(255, 0, 0)),
            (GREEN, Rgb::new(0, 255, 0)),
            (BLUE, Rgb::new(0, 0, 255)),
        ] {
            let frame = I420Frame::filled(64, 32, yuv).unwrap();
            let grid = render(&frame, 16, 4, CellSize::default());
            // 64x32 is 2:1, so 16 columns x 8 half-rows fill the grid exactly.
            assert_eq!(
                grid.placement(),
                Some(Placement {
                    x: 0,
                    y: 0,
                    width: 16,
                    height: 8
                })
            );
            for row in 0..4 {
                for cell in grid.row(row) {
                    assert!(
                        close(cell.top, expected, 2),
                        "{yuv:?}: {cell:?} vs {expected:?}"
                    );
                    assert!(
                        close(cell.bottom, expected, 2),
                        "{yuv:?}: {cell:?} vs {expected:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn known_quadrant_image_gives_expected_cells() {
        // Four 4x4 quadrants: red | green over blue | white, scaled to 2x2 pixels.
        let frame = frame_from(8, 8, |x, y| match (x < 4, y < 4) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        });
        let grid = render(&frame, 2, 1, CellSize::default());
        let left = grid.get(0, 0).unwrap();
        let right = grid.get(1, 0).unwrap();
        assert!(close(left.top, Rgb::new(255, 0, 0), 2), "{left:?}");
        assert!(close(left.bottom, Rgb::new(0, 0, 255), 2), "{left:?}");
        assert!(close(right.top, Rgb::new(0, 255, 0), 2), "{right:?}");
        assert!(close(right.bottom, Rgb::new(255, 255, 255), 2), "{right:?}");
    }

    #[test]
    fn horizontal_gradient_stays_monotonic_and_spans_the_range() {
        let frame = frame_from(256, 64, |x, _| ((16 + x * 219 / 255) as u8, 128, 128));
        let grid = render(&frame, 32, 4, CellSize::default());
        let tops: Vec<u8> = grid.row(1).iter().map(|c| c.top.r).collect();
        assert!(tops.windows(2).all(|w| w[0] <= w[1]), "{tops:?}");
        assert!(tops[0] < 20 && tops[31] > 235, "{tops:?}");
        // Gray stays gray.
        assert!(
            grid.row(1)
                .iter()
                .all(|c| c.top.r == c.top.g && c.top.g == c.top.b)
        );
    }

    #[test]
    fn fine_black_white_pattern_averages_in_linear_light() {
        // One-pixel stripes averaged 2:1 are half the light: sRGB ≈ 188, not 128.
        let frame = frame_from(64, 32, |x, _| if x % 2 == 0 { BLACK } else { WHITE });
        let grid = render(&frame, 32, 8, CellSize::default());
        let gray = grid.get(10, 3).unwrap().top;
        assert!((183..=193).contains(&gray.r), "{gray:?}");
    }

    #[test]
    fn fit_keeps_aspect_and_centers_with_bars() {
        let square = CellSize::default();
        // 4:3 into 80x24 cells = 80x48 square pixels: pillarboxed to 64 columns.
        assert_eq!(
            fit(640, 480, 80, 24, square),
            Some(Placement {
                x: 8,
                y: 0,
                width: 64,
                height: 48
            })
        );
        // 16:9 into 200x60 cells = 200x120: letterboxed to 200x113 (112.5 rounded).
        assert_eq!(
            fit(1280, 720, 200, 60, square),
            Some(Placement {
                x: 0,
                y: 3,
                width: 200,
                height: 113
            })
        );
        // A reported 10x20 px cell is the same shape as the default.
        assert_eq!(
            fit(1280, 720, 200, 60, CellSize::new(10, 20).unwrap()),
            fit(1280, 720, 200, 60, square)
        );
        // A 9x24 px cell has half-cells 9x12 (taller than wide): fewer half-rows.
        let tall = fit(640, 480, 80, 24, CellSize::new(9, 24).unwrap()).unwrap();
        assert_eq!((tall.width, tall.height), (80, 45));
        assert_eq!(tall.y, 1);
    }

    #[test]
    fn fit_never_exceeds_the_grid_and_rejects_empty_areas() {
        assert_eq!(fit(640, 480, 0, 10, CellSize::default()), None);
        assert_eq!(fit(640, 480, 10, 0, CellSize::default()), None);
        assert_eq!(fit(0, 480, 10, 10, CellSize::default()), None);
        for (fw, fh) in [(1, 1000), (1000, 1), (641, 479), (3, 5)] {
            for (cols, rows) in [(1, 1), (7, 3), (200, 60), (13, 101)] {
                let p = fit(fw, fh, cols, rows, CellSize::default()).unwrap();
                assert!(p.width >= 1 && p.height >= 1);
                assert!(p.x + p.width <= cols, "{fw}x{fh} in {cols}x{rows}: {p:?}");
                assert!(
                    p.y + p.height <= 2 * rows,
                    "{fw}x{fh} in {cols}x{rows}: {p:?}"
                );
            }
        }
    }

    #[test]
    fn letterbox_bars_are_black_and_the_picture_is_not() {
        let frame = I420Frame::filled(64, 16, WHITE).unwrap();
        // 4:1 into 16x4 cells = 16x8 half-cells: picture 16x4 half-rows at y = 2.
        let grid = render(&frame, 16, 4, CellSize::default());
        assert_eq!(
            grid.placement(),
            Some(Placement {
                x: 0,
                y: 2,
                width: 16,
                height: 4
            })
        );
        let white = Rgb::new(255, 255, 255);
        for col in 0..16 {
            assert_eq!(grid.get(col, 0).unwrap(), HalfBlock::default());
            assert!(close(grid.get(col, 1).unwrap().top, white, 1));
            assert!(close(grid.get(col, 2).unwrap().bottom, white, 1));
            assert_eq!(grid.get(col, 3).unwrap(), HalfBlock::default());
        }
    }

    #[test]
    fn odd_frame_and_grid_sizes_render_without_panicking() {
        for (fw, fh) in [(1, 1), (5, 3), (3, 7), (321, 241)] {
            let frame = frame_from(fw, fh, |x, y| {
                ((16 + (x * 7 + y * 3) % 219) as u8, 100, 150)
            });
            for (cols, rows) in [(1, 1), (3, 2), (17, 5), (400, 3)] {
                let grid = render(&frame, cols, rows, CellSize::default());
                assert_eq!((grid.cols(), grid.rows()), (cols, rows));
                assert!(grid.placement().is_some());
            }
        }
        let frame = I420Frame::filled(5, 3, WHITE).unwrap();
        let empty = render(&frame, 0, 0, CellSize::default());
        assert_eq!(empty.placement(), None);
        assert!(empty.row(0).is_empty());
    }

    #[test]
    fn hysteresis_ignores_small_changes_but_follows_large_ones() {
        let mut renderer = Renderer::new();
        renderer.set_hysteresis(4);
        let gray = |y| I420Frame::filled(32, 16, (y, 128, 128)).unwrap();
        let first = renderer
            .render(&gray(120), 16, 4, CellSize::default())
            .clone();
        let nudged = renderer
            .render(&gray(122), 16, 4, CellSize::default())
            .clone();
        assert_eq!(first, nudged, "a 2-code change is below the threshold");
        let moved = renderer
            .render(&gray(140), 16, 4, CellSize::default())
            .clone();
        assert!(moved.get(0, 1).unwrap().top.r > first.get(0, 1).unwrap().top.r + 10);
    }

    #[test]
    fn renderer_relayouts_when_the_area_changes() {
        let mut renderer = Renderer::new();
        let frame = I420Frame::filled(64, 32, WHITE).unwrap();
        renderer.render(&frame, 16, 4, CellSize::default());
        let grid = renderer.render(&frame, 8, 8, CellSize::default());
        assert_eq!((grid.cols(), grid.rows()), (8, 8));
        // 2:1 in 8x16 half-cells: 8x4 centered vertically.
        assert_eq!(
            grid.placement(),
            Some(Placement {
                x: 0,
                y: 6,
                width: 8,
                height: 4
            })
        );
        assert_eq!(grid.get(0, 0).unwrap(), HalfBlock::default());
    }

    #[test]
    fn ansi256_palette_matches_xterm() {
        assert_eq!(ansi256_color(7), None);
        assert_eq!(ansi256_color(16), Some(Rgb::new(0, 0, 0)));
        assert_eq!(ansi256_color(196), Some(Rgb::new(255, 0, 0)));
        assert_eq!(ansi256_color(231), Some(Rgb::new(255, 255, 255)));
        assert_eq!(ansi256_color(232), Some(Rgb::new(8, 8, 8)));
        assert_eq!(ansi256_color(255), Some(Rgb::new(238, 238, 238)));
    }

    #[test]
    fn enlarging_repeats_rows_that_take_the_same_source_row() {
        // Gray (no chroma to blend), a different luma per pixel.
        let frame = frame_from(8, 6, |x, y| (16 + (y * 8 + x) as u8 * 4, 128, 128));
        let mut identity = Renderer::new();
        let sub = |c: CellSize| SubCells {
            cols: c.width_px() as u8,
            rows: c.height_px() as u8,
        };
        let one = CellSize::new(8, 6).unwrap();
        identity.scale(&frame, 1, 1, one, sub(one)).unwrap();
        let mut enlarged = Renderer::new();
        let cell = CellSize::new(8, 9).unwrap();
        let p = enlarged.scale(&frame, 3, 2, cell, sub(cell)).unwrap();
        assert_eq!((p.width, p.height), (24, 18), "3x");
        // Every enlarged pixel is its source pixel, rows repeated or computed alike.
        for y in 0..18 {
            for x in 0..24 {
                assert_eq!(
                    enlarged.pixels()[y * 24 + x],
                    identity.pixels()[(y / 3) * 8 + x / 3],
                    "pixel ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn dithering_keeps_palette_colors_and_mixes_a_gradient_in_proportion() {
        // Palette entries stay themselves at every position.
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(to_ansi256_dithered(Rgb::new(175, 215, 95), x, y), 149);
                assert_eq!(to_ansi256_dithered(Rgb::new(255, 0, 0), x, y), 196);
                assert_eq!(to_ansi256_dithered(Rgb::new(128, 128, 128), x, y), 244);
                assert_eq!(to_ansi256_dithered(Rgb::new(0, 0, 0), x, y), 16);
                assert_eq!(to_ansi256_dithered(Rgb::new(255, 255, 255), x, y), 231);
            }
        }
        // A gray between two ramp entries (123 between 118 and 128) mixes them.
        let mixed: std::collections::BTreeSet<u8> = (0..16)
            .map(|i| to_ansi256_dithered(Rgb::new(123, 123, 123), i % 4, i / 4))
            .collect();
        assert_eq!(mixed.into_iter().collect::<Vec<_>>(), [243, 244]);
        // A red ramp between two cube levels: averaged over each 4x4 block, the
        // dithered output follows the source; each channel's nearest level steps.
        let red = |index: u8| f64::from(ansi256_color(index).unwrap().r);
        let (mut dithered_error, mut nearest_error) = (0.0, 0.0);
        for r in (140..=210).step_by(5) {
            let c = Rgb::new(r, 20, 20);
            let mean = (0..16)
                .map(|i| red(to_ansi256_dithered(c, i % 4, i / 4)))
                .sum::<f64>()
                / 16.0;
            dithered_error += (mean - f64::from(r)).abs();
            nearest_error += (red(ansi256_at(c, 0.5)) - f64::from(r)).abs();
        }
        assert!(
            dithered_error < nearest_error / 2.0,
            "block means off by {dithered_error:.0} in all, nearest by {nearest_error:.0}"
        );
    }
}
