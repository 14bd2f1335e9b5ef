//! Video in cells: the render modes (`--render`), the renderer of one video area in
//! the chosen mode, and the ratatui widgets that put a half-block [`CellGrid`] or a
//! [`SymbolGrid`] on screen, in truecolor or in the 256-color palette.

use std::sync::Arc;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Clear, Widget};

use super::halfblock::{CellGrid, CellSize, Renderer, Rgb, to_ansi256_dithered};
use super::kitty::{self, CellRect};
use super::passthrough::Passthrough;
use super::sixel::{self, Redraw};
use super::symbols::{Blitter, SymbolGrid, SymbolRenderer};
use crate::media::video::I420Frame;

/// How video is drawn (`--render`, config `render`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RenderMode {
    /// The best mode the terminal shows ([`RenderMode::resolve_with`]: kitty graphics,
    /// sixel, else half-blocks; octant and sextant glyphs need fonts that have them, so
    /// they are never chosen for the user).
    #[default]
    Auto,
    /// `▀` with two colors: two pixels per cell, in every font.
    Halfblock,
    /// Quadrant blocks: 2x2 pixels per cell, in every font with block elements.
    Quadrant,
    /// Sextants (Unicode 13, U+1FB00): 2x3 pixels per cell.
    Sextant,
    /// Octants (Unicode 16, U+1CD00): 2x4 pixels per cell.
    Octant,
    /// Real pixels through the kitty graphics protocol (kitty, Ghostty, WezTerm,
    /// Konsole).
    Kitty,
    /// Real pixels as sixel images, 256 colors per frame (xterm `-ti vt340`, foot,
    /// WezTerm, mlterm, Windows Terminal). While the help or the network panel is up,
    /// the video under it is not drawn (sixel pixels would cover the text).
    Sixel,
}

impl RenderMode {
    /// The mode `Auto` stands for in this terminal, from the environment alone (see
    /// [`RenderMode::detect`]).
    pub fn resolve(self) -> Self {
        self.resolve_with(None, None)
    }

    /// The mode `Auto` stands for given what the terminal answered (`probe`) and, inside
    /// tmux, its graphics passthrough: kitty graphics if the terminal answered the kitty
    /// query or tmux passes graphics through to kitty, else sixel if the terminal's
    /// attributes list it, else half-blocks; without an answer, [`RenderMode::detect`].
    pub fn resolve_with(
        self,
        probe: Option<&super::probe::Probe>,
        passthrough: Option<&Passthrough>,
    ) -> Self {
        match (self, probe) {
            (Self::Auto, _) if passthrough.is_some_and(Passthrough::outer_is_kitty) => Self::Kitty,
            (Self::Auto, Some(p)) if p.answered => {
                if p.kitty {
                    Self::Kitty
                } else if p.sixel {
                    Self::Sixel
                } else {
                    Self::Halfblock
                }
            }
            (Self::Auto, _) => Self::detect(),
            (mode, _) => mode,
        }
    }

    /// The best mode the environment announces: kitty graphics in kitty itself
    /// (`TERM=xterm-kitty` or `KITTY_WINDOW_ID`, and not inside tmux or screen, which
    /// do not pass graphics through by default: see [`RenderMode::resolve_with`]),
    /// half-blocks everywhere else.
    pub fn detect() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        Self::from_env(
            var("TERM").as_deref(),
            var("KITTY_WINDOW_ID").is_some(),
            var("TMUX").is_some() || var("STY").is_some(),
        )
    }

    fn from_env(term: Option<&str>, kitty_window: bool, multiplexer: bool) -> Self {
        let kitty = term == Some("xterm-kitty") || kitty_window;
        if kitty && !multiplexer {
            Self::Kitty
        } else {
            Self::Halfblock
        }
    }

    /// The mode's name, as the status bar shows it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Halfblock => "half-blocks",
            Self::Quadrant => "quadrants",
            Self::Sextant => "sextants",
            Self::Octant => "octants",
            Self::Kitty => "kitty graphics",
            Self::Sixel => "sixel",
        }
    }

    fn blitter(self) -> Option<Blitter> {
        match self.resolve() {
            Self::Quadrant => Some(Blitter::Quadrant),
            Self::Sextant => Some(Blitter::Sextant),
            Self::Octant => Some(Blitter::Octant),
            Self::Auto | Self::Halfblock | Self::Kitty | Self::Sixel => None,
        }
    }
}

/// Graphics-protocol output of one drawn frame, and which images are on screen.
#[derive(Debug, Default)]
pub struct Graphics {
    /// Commands to write after the frame's cells.
    out: Vec<u8>,
    /// Kitty image ids placed in this frame, and in the one before.
    placed: Vec<u32>,
    shown: Vec<u32>,
    /// Where sixel images went in this frame, and in the one before.
    sixels_placed: Vec<CellRect>,
    sixels_shown: Vec<CellRect>,
    /// Sixel images written in this frame, in drawing order: an image written later
    /// over one of them must be written again.
    sixels_written: Vec<CellRect>,
    /// An overlay covers the video: sixel images are not drawn.
    pub covered: bool,
    /// The screen was cleared before this frame: every sixel image is written again.
    repaint: bool,
    /// Sixel pixels are left where no image goes now: the screen must be redrawn.
    clear: bool,
}

impl Graphics {
    /// The commands for the frame just drawn, including deletions of kitty images whose
    /// area is gone; empty when no graphics are involved.
    pub fn take(&mut self) -> Vec<u8> {
        for id in &self.shown {
            if !self.placed.contains(id) {
                kitty::delete(&mut self.out, *id);
            }
        }
        self.shown = std::mem::take(&mut self.placed);
        let stale = self
            .sixels_shown
            .iter()
            .any(|r| !self.sixels_placed.contains(r));
        self.clear |= stale;
        self.sixels_shown = std::mem::take(&mut self.sixels_placed);
        self.sixels_written.clear();
        self.repaint = false;
        std::mem::take(&mut self.out)
    }

    /// Notes that the screen was cleared: the next frame writes every sixel image again.
    pub fn screen_cleared(&mut self) {
        self.repaint = true;
    }

    /// Whether the sixel image at `area` must be written again: the screen was cleared
    /// or an image written earlier in this frame overlaps it.
    fn sixel_damaged(&self, area: CellRect) -> bool {
        self.repaint || self.sixels_written.iter().any(|r| r.overlaps(area))
    }

    /// Whether the screen must be cleared and drawn again (sixel pixels of an image
    /// that moved or went would stay otherwise); asking resets it.
    pub fn take_clear(&mut self) -> bool {
        std::mem::take(&mut self.clear)
    }
}

/// Codes of per-channel change a shown pixel or cell ignores (see
/// [`Renderer::set_hysteresis`]): small enough to be invisible, large enough to
/// absorb camera and codec noise, which keeps the bytes per frame low.
const VIDEO_HYSTERESIS: u8 = 4;

/// The renderer of one video area, in one [`RenderMode`]; it keeps its buffers
/// between frames.
#[derive(Debug)]
pub enum VideoRenderer {
    /// Half-blocks, with hysteresis.
    HalfBlock(Renderer),
    /// A symbol blitter.
    Symbols(SymbolRenderer),
    /// Kitty graphics.
    Kitty {
        /// The image this area shows (one per area, replaced each frame).
        id: u32,
        /// Its depth: negative is below text; a higher one covers a lower one.
        z: i32,
        /// The encoder's buffers.
        encoder: kitty::Encoder,
    },
    /// Sixel images, encoded on a thread of their own.
    Sixel(Box<sixel::Pipeline>),
}

impl VideoRenderer {
    /// A renderer for `mode` (resolved: see [`RenderMode::resolve`]); with kitty
    /// graphics it shows image `id` at depth `z` (a higher `z` covers a lower one), its
    /// frames sent by `kitty`; with sixel it calls `redraw` when an encoded image is
    /// ready to be written.
    pub fn new(
        mode: RenderMode,
        id: u32,
        z: i32,
        kitty: kitty::Transmission,
        redraw: &Redraw,
    ) -> Self {
        match mode.resolve() {
            RenderMode::Kitty => {
                return Self::Kitty {
                    id,
                    z,
                    encoder: kitty::Encoder::new(kitty),
                };
            }
            RenderMode::Sixel => {
                return Self::Sixel(Box::new(sixel::Pipeline::new(redraw.clone())));
            }
            _ => {}
        }
        match mode.blitter() {
            Some(blitter) => {
                let mut r = SymbolRenderer::new(blitter);
                r.set_hysteresis(VIDEO_HYSTERESIS);
                Self::Symbols(r)
            }
            None => {
                let mut r = Renderer::new();
                r.set_hysteresis(VIDEO_HYSTERESIS);
                Self::HalfBlock(r)
            }
        }
    }

    /// Sends kitty frames by `transmission` from now on (other modes: nothing changes).
    pub fn set_kitty_transmission(&mut self, transmission: kitty::Transmission) {
        if let Self::Kitty { encoder, .. } = self {
            *encoder = kitty::Encoder::new(transmission);
        }
    }

    /// Renders `picture` into `area` of `frame` (fitted, centered, black bars); kitty
    /// and sixel images go to `graphics`. Returns the frame whose picture this draw put
    /// on screen: `picture` itself, except in sixel mode, which writes the latest image
    /// encoded so far (or nothing new).
    pub fn draw(
        &mut self,
        frame: &mut Frame,
        picture: &Arc<I420Frame>,
        area: Rect,
        cell: CellSize,
        colors: ColorMode,
        graphics: &mut Graphics,
    ) -> Option<Arc<I420Frame>> {
        match self {
            Self::Sixel(pipeline) => {
                frame.render_widget(Clear, area);
                if graphics.covered {
                    pipeline.hide();
                    return None;
                }
                let area = CellRect {
                    x: area.x,
                    y: area.y,
                    cols: area.width,
                    rows: area.height,
                };
                let damaged = graphics.sixel_damaged(area);
                match pipeline.draw(&mut graphics.out, picture, area, cell, damaged) {
                    sixel::Shown::Nothing => None,
                    sixel::Shown::Kept => {
                        graphics.sixels_placed.push(area);
                        None
                    }
                    sixel::Shown::Wrote(shown) => {
                        graphics.sixels_placed.push(area);
                        graphics.sixels_written.push(area);
                        Some(shown)
                    }
                }
            }
            Self::Kitty { id, z, encoder } => {
                // Blank cells under the image: nothing of the last mode shows through.
                frame.render_widget(Clear, area);
                let area = CellRect {
                    x: area.x,
                    y: area.y,
                    cols: area.width,
                    rows: area.height,
                };
                let at = kitty::place(picture.width(), picture.height(), area, cell)?;
                tracing::debug!(id = *id, ?at, ?cell, "kitty placement");
                encoder.frame(&mut graphics.out, *id, *z, picture, at);
                graphics.placed.push(*id);
                super::terminal::kitty_images_shown();
                Some(Arc::clone(picture))
            }
            Self::HalfBlock(r) => {
                let grid = r.render(picture, area.width, area.height, cell);
                frame.render_widget(VideoWidget::new(grid, colors), area);
                Some(Arc::clone(picture))
            }
            Self::Symbols(r) => {
                let grid = r.render(picture, area.width, area.height, cell);
                frame.render_widget(SymbolWidget::new(grid, colors), area);
                Some(Arc::clone(picture))
            }
        }
    }
}

/// The upper half block: its foreground paints the top pixel of a cell, its
/// background the bottom pixel.
pub const UPPER_HALF_BLOCK: &str = "▀";

/// How many colors the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// 24-bit color (`COLORTERM=truecolor` or `24bit`).
    #[default]
    TrueColor,
    /// The xterm 256-color palette; pictures use entries 16-255.
    Ansi256,
}

impl ColorMode {
    /// The mode a `COLORTERM` value announces: truecolor for `truecolor` or `24bit`
    /// (the de-facto convention; terminfo has no reliable flag), else 256 colors.
    pub fn from_colorterm(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit") => {
                Self::TrueColor
            }
            _ => Self::Ansi256,
        }
    }

    /// The mode of the terminal this process runs in, from the `COLORTERM` variable.
    pub fn detect() -> Self {
        Self::from_colorterm(std::env::var("COLORTERM").ok().as_deref())
    }

    /// The ratatui color for pixel (`x`, `y`) of a picture colored `rgb`: in 256 colors
    /// ordered-dithered ([`to_ansi256_dithered`]), so gradients do not band.
    pub fn pixel(self, rgb: Rgb, x: u16, y: u16) -> Color {
        match self {
            Self::TrueColor => Color::Rgb(rgb.r, rgb.g, rgb.b),
            Self::Ansi256 => Color::Indexed(to_ansi256_dithered(rgb, x, y)),
        }
    }
}

/// Draws a [`CellGrid`] at the top-left of the area it is given (clipped to it):
/// each cell is `▀` with the top pixel as foreground and the bottom as background.
#[derive(Debug, Clone, Copy)]
pub struct VideoWidget<'a> {
    grid: &'a CellGrid,
    colors: ColorMode,
}

impl<'a> VideoWidget<'a> {
    /// A widget showing `grid` in `colors`.
    pub fn new(grid: &'a CellGrid, colors: ColorMode) -> Self {
        Self { grid, colors }
    }
}

impl Widget for VideoWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let rows = area.height.min(self.grid.rows());
        let cols = area.width.min(self.grid.cols());
        for row in 0..rows {
            for (col, block) in self
                .grid
                .row(row)
                .iter()
                .take(usize::from(cols))
                .enumerate()
            {
                // col < cols ≤ u16::MAX.
                let col = col as u16;
                if let Some(cell) = buf.cell_mut(Position::new(area.x + col, area.y + row)) {
                    // The top and bottom pixels of the cell: rows 2·row and 2·row + 1
                    // (the dither pattern repeats every 4 rows).
                    let y = 2 * (row % 2);
                    cell.set_symbol(UPPER_HALF_BLOCK)
                        .set_fg(self.colors.pixel(block.top, col, y))
                        .set_bg(self.colors.pixel(block.bottom, col, y + 1));
                }
            }
        }
    }
}

/// Draws a [`SymbolGrid`] at the top-left of the area it is given (clipped to it):
/// each cell is its pattern's glyph in the foreground color over the background.
#[derive(Debug, Clone, Copy)]
pub struct SymbolWidget<'a> {
    grid: &'a SymbolGrid,
    colors: ColorMode,
}

impl<'a> SymbolWidget<'a> {
    /// A widget showing `grid` in `colors`.
    pub fn new(grid: &'a SymbolGrid, colors: ColorMode) -> Self {
        Self { grid, colors }
    }
}

impl Widget for SymbolWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let blitter = self.grid.blitter();
        for row in 0..area.height.min(self.grid.rows()) {
            let cells = self.grid.row(row).iter().take(usize::from(area.width));
            for (col, c) in cells.enumerate() {
                // col < area.width ≤ u16::MAX.
                let col = col as u16;
                if let Some(cell) = buf.cell_mut(Position::new(area.x + col, area.y + row)) {
                    // The two colors dither as the two pixels of a half-block cell.
                    let y = 2 * (row % 2);
                    cell.set_char(blitter.glyph(c.pattern))
                        .set_fg(self.colors.pixel(c.fg, col, y))
                        .set_bg(self.colors.pixel(c.bg, col, y + 1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::I420Frame;
    use crate::ui::halfblock::{CellSize, render};

    #[test]
    fn auto_takes_kitty_graphics_only_in_kitty_outside_multiplexers() {
        assert_eq!(
            RenderMode::from_env(Some("xterm-kitty"), false, false),
            RenderMode::Kitty
        );
        assert_eq!(
            RenderMode::from_env(Some("xterm-256color"), true, false),
            RenderMode::Kitty,
            "KITTY_WINDOW_ID set"
        );
        assert_eq!(
            RenderMode::from_env(Some("xterm-kitty"), true, true),
            RenderMode::Halfblock,
            "inside tmux: no passthrough by default"
        );
        assert_eq!(
            RenderMode::from_env(Some("xterm-256color"), false, false),
            RenderMode::Halfblock
        );
    }

    #[test]
    fn auto_inside_tmux_takes_kitty_graphics_only_through_passthrough_to_kitty() {
        // tmux answers the attributes itself and drops the kitty query.
        let tmux = crate::ui::probe::Probe {
            answered: true,
            ..Default::default()
        };
        let to_kitty = Passthrough::parse_for_test("0 0 xterm-kitty");
        let to_xterm = Passthrough::parse_for_test("0 0 xterm-256color");
        let auto = RenderMode::Auto;
        assert_eq!(auto.resolve_with(Some(&tmux), None), RenderMode::Halfblock);
        assert_eq!(
            auto.resolve_with(Some(&tmux), Some(&to_kitty)),
            RenderMode::Kitty
        );
        assert_eq!(
            auto.resolve_with(Some(&tmux), Some(&to_xterm)),
            RenderMode::Halfblock
        );
        // A mode the user chose stays.
        assert_eq!(
            RenderMode::Quadrant.resolve_with(Some(&tmux), Some(&to_kitty)),
            RenderMode::Quadrant
        );
    }

    #[test]
    fn colorterm_values_select_the_mode() {
        assert_eq!(
            ColorMode::from_colorterm(Some("truecolor")),
            ColorMode::TrueColor
        );
        assert_eq!(
            ColorMode::from_colorterm(Some("24bit")),
            ColorMode::TrueColor
        );
        assert_eq!(ColorMode::from_colorterm(Some("")), ColorMode::Ansi256);
        assert_eq!(ColorMode::from_colorterm(None), ColorMode::Ansi256);
    }

    #[test]
    fn widget_paints_half_blocks_with_top_as_foreground() {
        // White above black: each cell's top pixel white, bottom black.
        let mut frame = I420Frame::filled(4, 4, (16, 128, 128)).unwrap();
        frame.planes_mut().0[..8].fill(235);
        let grid = render(&frame, 2, 1, CellSize::default());
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 2));
        VideoWidget::new(&grid, ColorMode::TrueColor).render(Rect::new(1, 1, 2, 1), &mut buf);
        let cell = &buf[(1, 1)];
        assert_eq!(cell.symbol(), UPPER_HALF_BLOCK);
        assert_eq!(cell.fg, Color::Rgb(255, 255, 255));
        assert_eq!(cell.bg, Color::Rgb(0, 0, 0));
        // Outside the given area nothing is drawn.
        assert_eq!(buf[(0, 0)].symbol(), " ");

        VideoWidget::new(&grid, ColorMode::Ansi256).render(Rect::new(0, 0, 2, 1), &mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(231));
        assert_eq!(buf[(0, 0)].bg, Color::Indexed(16));
    }
}
