//! Video renderer benchmarks, for every `--render` mode that draws in cells: time to
//! turn an I420 frame into a cell grid (per frame and, through criterion's throughput,
//! per cell), and the bytes the call screen writes per frame of the test clip against
//! a naive 39 bytes per cell.
//!
//! Targets: half-blocks 1280x720 → 200x60 cells under 1 ms per frame and, on the clip,
//! under 40 % of the naive bytes (issue "Call screen"); every symbol mode 640x480 →
//! 160x45 cells (a 1280x720-pixel view) under 2 ms per frame (issue "Real pixels").
//! The clip is `tests/fixtures/clip_320x240.y4m` (or the file `RTC_CLIP` names);
//! without it a moving synthetic gradient stands in.

use std::cell::Cell;
use std::hint::black_box;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use rtc_cli::call::{AppEvent, CallId, CallState, Direction, UserId};
use rtc_cli::media::video::I420Frame;
use rtc_cli::ui::app::{Model, Msg, Role, update};
use rtc_cli::ui::halfblock::{CellSize, Renderer, SubCells};
use rtc_cli::ui::kitty::{self, CellRect};
use rtc_cli::ui::symbols::{Blitter, SymbolRenderer, psnr};
use rtc_cli::ui::terminal::draw_synchronized;
use rtc_cli::ui::video::{ColorMode, RenderMode};
use rtc_cli::ui::view::{Frames, View};

/// A naive renderer's bytes per cell: `ESC[38;2;r;g;bm` + `ESC[48;2;r;g;bm` + `▀`
/// with three-digit channels, as the issue counts it.
const NAIVE_BYTES_PER_CELL: f64 = 39.0;

/// A smooth diagonal gradient shifted by `t`, with chroma varying across the picture.
fn gradient(width: u32, height: u32, t: u32) -> I420Frame {
    let mut frame = I420Frame::filled(width, height, (16, 128, 128)).expect("nonzero size");
    let (cw, _) = frame.chroma_size();
    let (y, u, v) = frame.planes_mut();
    for (i, p) in y.iter_mut().enumerate() {
        let (col, row) = (i as u32 % width, i as u32 / width);
        *p = (16 + (col + row + t) % 220) as u8;
    }
    for (i, (pu, pv)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
        let (col, row) = (i as u32 % cw, i as u32 / cw);
        *pu = (64 + (col + t) % 128) as u8;
        *pv = (64 + (row + t) % 128) as u8;
    }
    frame
}

/// The frames of a `C420` Y4M file (minimal parse: header W/H, then `FRAME` lines).
fn read_y4m(path: &PathBuf) -> io::Result<Vec<I420Frame>> {
    let data = std::fs::read(path)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("y4m: {what}"));
    let header_end = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header"))?;
    let header = std::str::from_utf8(&data[..header_end]).map_err(|_| bad("header not text"))?;
    let field = |tag: char| {
        header
            .split_whitespace()
            .find_map(|f| f.strip_prefix(tag).and_then(|v| v.parse::<u32>().ok()))
            .ok_or_else(|| bad("missing size"))
    };
    let (width, height) = (field('W')?, field('H')?);
    let frame_len = I420Frame::buffer_len(width, height);
    let mut frames = Vec::new();
    let mut pos = header_end + 1;
    while pos < data.len() {
        let line_end = pos
            + data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| bad("frame header"))?;
        let start = line_end + 1;
        let end = start + frame_len;
        let body = data.get(start..end).ok_or_else(|| bad("truncated frame"))?;
        frames.push(
            I420Frame::from_buffer(width, height, body.to_vec())
                .map_err(|e| bad(&e.to_string()))?,
        );
        pos = end;
    }
    Ok(frames)
}

fn clip_frames() -> (String, Vec<I420Frame>) {
    let path = std::env::var_os("RTC_CLIP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_320x240.y4m")
        });
    match read_y4m(&path) {
        Ok(frames) if !frames.is_empty() => (path.display().to_string(), frames),
        _ => (
            "synthetic 320x240 gradient".into(),
            (0..75).map(|t| gradient(320, 240, t * 3)).collect(),
        ),
    }
}

/// Counts bytes instead of keeping them; clones share the count, so the bench can
/// read it while the backend owns the writer.
#[derive(Clone, Default)]
struct ByteCounter(Rc<Cell<u64>>);

impl Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.set(self.0.get() + buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A model of a connected call, as the call screen shows it during video.
fn connected_model() -> Model {
    let mut model = Model::new(Role::Call, Instant::now());
    model.self_view = false;
    update(
        &mut model,
        Msg::Event(AppEvent::State {
            call_id: CallId::parse("bench").expect("valid id"),
            peer: UserId::parse("tom").expect("valid id"),
            direction: Direction::Outgoing,
            state: CallState::Connected,
            reason: None,
        }),
    );
    model
}

/// Draws every clip frame through the real view in `mode` into a byte counter and
/// prints the bytes per frame (after the first full paint) against the naive figure.
fn report_bytes_per_frame(cols: u16, rows: u16, colors: ColorMode, mode: RenderMode) {
    let (source, frames) = clip_frames();
    let viewport = Viewport::Fixed(Rect::new(0, 0, cols, rows));
    let counter = ByteCounter::default();
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(counter.clone()),
        TerminalOptions { viewport },
    )
    .expect("a fixed viewport needs no terminal");
    let mut view = View::new(mode, colors, rtc_cli::ui::sixel::Redraw::none());
    let model = connected_model();
    let mut per_frame = Vec::with_capacity(frames.len());
    for frame in &frames {
        let start = counter.0.get();
        let shown = Frames {
            remote: Some(std::sync::Arc::new(frame.clone())),
            ..Frames::default()
        };
        draw_synchronized(&mut terminal, |f| view.draw(f, &model, &shown))
            .expect("writing to a counter");
        per_frame.push(counter.0.get() - start);
    }
    // The video area: everything above the status and help lines.
    let video_cells = f64::from(cols) * f64::from(rows - 2);
    let naive = NAIVE_BYTES_PER_CELL * video_cells;
    let steady: Vec<u64> = per_frame.iter().skip(1).copied().collect();
    let mean = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    println!(
        "bytes/frame {mode:?} {colors:?} {cols}x{rows} ({source}, {} frames): first {} B, then mean {:.0} B = {:.1} % of naive {:.0} B ({:.2} B/cell)",
        frames.len(),
        per_frame.first().copied().unwrap_or(0),
        mean,
        100.0 * mean / naive,
        naive,
        mean / video_cells,
    );
}

/// Prints each cell mode's PSNR on the clip as an ideal terminal would show it (glyphs
/// exactly filling their sub-cells), 80x30 cells of 8x16 pixels (640x480: the clip's
/// 4:3 with no bars), against the clip scaled to those pixels by the same scaler.
fn report_fidelity() {
    let (source, frames) = clip_frames();
    let cell = CellSize::new(8, 16).expect("nonzero");
    let (cols, rows) = (80u16, 30u16);
    let mut reference = Renderer::new();
    let mut half = Renderer::new();
    let mut blitters: Vec<(Blitter, SymbolRenderer)> =
        [Blitter::Quadrant, Blitter::Sextant, Blitter::Octant]
            .into_iter()
            .map(|b| (b, SymbolRenderer::new(b)))
            .collect();
    let mut sums = [0.0f64; 4];
    for frame in &frames {
        let full = SubCells { cols: 8, rows: 16 };
        reference
            .scale(frame, cols, rows, cell, full)
            .expect("a picture");
        let truth = reference.pixels().to_vec();
        sums[0] += psnr(
            &half.render(frame, cols, rows, cell).rasterize(cell),
            &truth,
        );
        for (i, (_, r)) in blitters.iter_mut().enumerate() {
            sums[i + 1] += psnr(&r.render(frame, cols, rows, cell).rasterize(cell), &truth);
        }
    }
    let n = frames.len().max(1) as f64;
    println!(
        "fidelity ({source}, {} frames, 640x480 px): half-block {:.2} dB, quadrant {:.2} dB, sextant {:.2} dB, octant {:.2} dB",
        frames.len(),
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        sums[3] / n
    );
}

fn bench_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("halfblock");
    for (width, height, cols, rows) in [(640u32, 480u32, 160u16, 45u16), (1280, 720, 200, 60)] {
        let frame = gradient(width, height, 7);
        let mut renderer = Renderer::new();
        group.throughput(Throughput::Elements(u64::from(cols) * u64::from(rows)));
        group.bench_function(format!("{width}x{height}->{cols}x{rows} cells"), |b| {
            b.iter(|| {
                renderer
                    .render(black_box(&frame), cols, rows, CellSize::default())
                    .cols()
            })
        });
    }
    group.finish();
    // The symbol blitters at 640x480 into 160x45 cells of 8x16 pixels (1280x720).
    let mut group = c.benchmark_group("symbols");
    let (cols, rows) = (160u16, 45u16);
    let cell = CellSize::new(8, 16).expect("nonzero");
    let frame = gradient(640, 480, 7);
    group.throughput(Throughput::Elements(u64::from(cols) * u64::from(rows)));
    let mut half = Renderer::new();
    group.bench_function("halfblock 640x480->160x45 cells", |b| {
        b.iter(|| half.render(black_box(&frame), cols, rows, cell).cols())
    });
    for blitter in [Blitter::Quadrant, Blitter::Sextant, Blitter::Octant] {
        let mut renderer = SymbolRenderer::new(blitter);
        group.bench_function(format!("{blitter:?} 640x480->160x45 cells"), |b| {
            b.iter(|| renderer.render(black_box(&frame), cols, rows, cell).cols())
        });
    }
    group.finish();
    // Kitty graphics: one frame to RGB, (PNG,) base64 and commands.
    let mut group = c.benchmark_group("kitty");
    let mut raw = kitty::Encoder::new(kitty::Transmission::Direct);
    let mut encoder = kitty::Encoder::new(kitty::Transmission::Png);
    let at = CellRect {
        x: 20,
        y: 0,
        cols: 120,
        rows: 45,
    };
    let mut out = Vec::new();
    group.bench_function("640x480 frame raw (gradient)", |b| {
        b.iter(|| {
            out.clear();
            raw.frame(&mut out, 1, -2, black_box(&frame), at);
            out.len()
        })
    });
    group.bench_function("640x480 frame png (gradient)", |b| {
        b.iter(|| {
            out.clear();
            encoder.frame(&mut out, 1, -2, black_box(&frame), at);
            out.len()
        })
    });
    // Shared memory: the object written, its name in the command; each is unlinked
    // after, as the terminal would (else they would pile up in /dev/shm).
    let mut shared = kitty::Encoder::new(kitty::Transmission::SharedMemory);
    group.bench_function("640x480 frame shared memory (gradient)", |b| {
        b.iter(|| {
            out.clear();
            shared.frame(&mut out, 1, -2, black_box(&frame), at);
            unlink_named_object(&out);
            out.len()
        })
    });
    let (_, clip) = clip_frames();
    let clip_frame = clip[clip.len() / 2].clone();
    group.bench_function("320x240 frame png (the clip)", |b| {
        b.iter(|| {
            out.clear();
            encoder.frame(&mut out, 1, -2, black_box(&clip_frame), at);
            out.len()
        })
    });
    group.finish();
    // Sixel: the same frames scaled to the pixels of 120x45 cells of 8x16 (960x720),
    // quantized to 256 colors with ordered dithering and encoded.
    let mut group = c.benchmark_group("sixel");
    group.sample_size(20);
    let mut sixel = rtc_cli::ui::sixel::Encoder::default();
    for (name, f) in [("640x480 gradient", &frame), ("320x240 clip", &clip_frame)] {
        group.bench_function(format!("{name} -> 960x720 px"), |b| {
            b.iter(|| {
                out.clear();
                sixel.frame(&mut out, black_box(f), at, cell);
                out.len()
            })
        });
    }
    group.finish();
    out.clear();
    encoder.frame(&mut out, 1, -2, &frame, at);
    let gradient_bytes = out.len();
    out.clear();
    encoder.frame(&mut out, 1, -2, &clip_frame, at);
    println!(
        "kitty bytes/frame: 640x480 gradient {gradient_bytes} B, 320x240 clip frame {} B",
        out.len()
    );
}

fn main() {
    for colors in [ColorMode::TrueColor, ColorMode::Ansi256] {
        report_bytes_per_frame(160, 47, colors, RenderMode::Halfblock);
    }
    for mode in [
        RenderMode::Quadrant,
        RenderMode::Sextant,
        RenderMode::Octant,
    ] {
        report_bytes_per_frame(160, 47, ColorMode::TrueColor, mode);
    }
    report_fidelity();
    let mut criterion = Criterion::default().configure_from_args();
    bench_render(&mut criterion);
    criterion.final_summary();
}

/// Unlinks the shared-memory object a kitty `t=s` command in `out` names, as the
/// terminal does once it has read it.
fn unlink_named_object(out: &[u8]) {
    use base64::Engine;
    let text = String::from_utf8_lossy(out);
    let name = text
        .split_once("t=s")
        .and_then(|(_, rest)| rest.split_once(';'))
        .and_then(|(_, rest)| rest.split_once('\x1b'))
        .and_then(|(b64, _)| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    if let Some(name) = name.and_then(|n| String::from_utf8(n).ok()) {
        rtc_cli::ui::shm::unlink(&name);
    }
}
