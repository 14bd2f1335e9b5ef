//! Video as sixel graphics (DEC VT340; xterm with `-ti vt340`, foot, WezTerm, mlterm,
//! Windows Terminal, mintty). A sixel image is drawn pixel for pixel at the cursor, so
//! the picture is scaled here to the pixels of the cells it covers (the same
//! area-averaging scaler as the cell modes), then quantized to a palette of its own
//! ([`palette`]: 256 colors by Wu's method from a sample, ordered dithering) and encoded
//! ([`bands`]). A new frame simply overwrites the last one; when the video area goes,
//! the view redraws the screen so no stale pixels stay.
//!
//! Encoding takes tens of milliseconds per frame, so it runs on a thread of its own
//! ([`Pipeline`]): the drawing thread hands it the latest frame, keeps drawing the rest
//! of the screen, and writes each image once it is ready. A frame that arrives while
//! another is being encoded replaces the one waiting, so a slow encoder skips frames
//! instead of falling behind.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::halfblock::{CellSize, Renderer, SubCells};
use super::kitty::CellRect;
use crate::media::video::I420Frame;

pub mod bands;
pub mod palette;

/// Asks the drawing thread to draw again (an encoded image is ready); called from the
/// encoding thread.
#[derive(Clone)]
pub struct Redraw(Arc<dyn Fn() + Send + Sync>);

impl Redraw {
    /// A request that calls `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A request that does nothing (a view drawn only on demand, as in tests).
    pub fn none() -> Self {
        Self::new(|| {})
    }

    /// Asks for the redraw.
    pub fn request(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for Redraw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redraw")
    }
}

/// Encodes sixel images, reusing its buffers between frames.
#[derive(Debug)]
pub struct Encoder {
    scaler: Renderer,
    quantizer: palette::Quantizer,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            scaler: Renderer::new(),
            quantizer: palette::Quantizer::default(),
        }
    }
}

impl Encoder {
    /// Appends to `out` the sixel image of `frame` fitted (aspect kept, centered) into
    /// `area` of cells shaped `cell`, with the cursor saved and restored around it.
    /// Nothing is appended for an empty area or picture.
    pub fn frame(&mut self, out: &mut Vec<u8>, frame: &I420Frame, area: CellRect, cell: CellSize) {
        // Pixels per cell, as sub-cells of the scaler (cells beyond 255 px are capped).
        let to_u8 = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
        let sub = SubCells {
            cols: to_u8(cell.width_px()),
            rows: to_u8(cell.height_px()),
        };
        let Some(p) = self.scaler.scale(frame, area.cols, area.rows, cell, sub) else {
            return;
        };
        let (w, h) = (usize::from(p.width), usize::from(p.height));
        let (colors, indices) = self.quantizer.quantize(self.scaler.pixels(), w);
        // The image starts at the cell holding the picture's top-left pixel.
        let col = area.x + p.x / u16::from(sub.cols);
        let row = area.y + p.y / u16::from(sub.rows);
        let _ = write!(out, "\x1b7\x1b[{};{}H", row + 1, col + 1);
        bands::encode(out, colors, indices, w, h);
        out.extend_from_slice(b"\x1b8");
    }
}

/// One picture to encode: the frame, where it goes and the cell size it is fitted to.
#[derive(Debug, Clone)]
struct Job {
    frame: Arc<I420Frame>,
    area: CellRect,
    cell: CellSize,
}

impl Job {
    fn same_as(&self, frame: &Arc<I420Frame>, area: CellRect, cell: CellSize) -> bool {
        Arc::ptr_eq(&self.frame, frame) && self.area == area && self.cell == cell
    }
}

/// A finished image: the bytes that draw it at its place (cursor saved, moved, the
/// sixel string, cursor restored), and the job it answers.
#[derive(Debug)]
struct Encoded {
    job: Job,
    bytes: Vec<u8>,
}

/// What the drawing and the encoding threads share.
#[derive(Debug, Default)]
struct Mailbox {
    /// The next frame to encode; a newer one replaces it.
    job: Option<Job>,
    /// The latest finished image not yet taken; a newer one replaces it.
    done: Option<Encoded>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    mailbox: Mutex<Mailbox>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The encoding thread of one video area; dropping it stops and joins the thread.
#[derive(Debug)]
struct Worker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(redraw: Redraw) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sixel-encode".into())
                .spawn(move || encode_jobs(&shared, &redraw))?
        };
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn submit(&self, job: Job) {
        self.shared.lock().job = Some(job);
        self.shared.changed.notify_one();
    }

    fn take_done(&self) -> Option<Encoded> {
        self.shared.lock().done.take()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            // An encoding in progress finishes first (tens of milliseconds).
            let _ = thread.join();
        }
    }
}

/// The encoding thread: takes the latest job, encodes it, leaves the image in the
/// mailbox and asks for a redraw; returns once the mailbox is closed.
fn encode_jobs(shared: &Shared, redraw: &Redraw) {
    let mut encoder = Encoder::default();
    loop {
        let job = {
            let mut mailbox = shared.lock();
            loop {
                if mailbox.closed {
                    return;
                }
                if let Some(job) = mailbox.job.take() {
                    break job;
                }
                mailbox = shared
                    .changed
                    .wait(mailbox)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut bytes = Vec::new();
        encoder.frame(&mut bytes, &job.frame, job.area, job.cell);
        shared.lock().done = Some(Encoded { job, bytes });
        redraw.request();
    }
}

/// What one draw of a [`Pipeline`] put on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// No image of this area is on screen (the first one is still being encoded).
    Nothing,
    /// The image written earlier is still on screen; nothing was written.
    Kept,
    /// An image was written now: the picture of this frame.
    Wrote(Arc<I420Frame>),
}

/// Sixel video for one area: frames are encoded on a thread of its own (started at
/// the first frame) and each finished image is written at the next draw; the last
/// image is written again when the screen under it was damaged.
#[derive(Debug)]
pub struct Pipeline {
    redraw: Redraw,
    worker: Option<Worker>,
    /// The last job handed to the worker (so one frame is encoded once).
    submitted: Option<Job>,
    /// The latest finished image, kept to repaint it.
    last: Option<Encoded>,
    /// Where the image last written is on screen, while nothing has covered it.
    on_screen: Option<CellRect>,
}

impl Pipeline {
    /// A pipeline that calls `redraw` whenever an encoded image is ready to be written.
    pub fn new(redraw: Redraw) -> Self {
        Self {
            redraw,
            worker: None,
            submitted: None,
            last: None,
            on_screen: None,
        }
    }

    /// Shows `frame` fitted into `area` (cells shaped `cell`): hands it to the encoder
    /// unless it already has it, and appends to `out` the newest finished image for this
    /// area and cell size, or the last one again when the screen under it was
    /// `damaged` (cleared, or drawn over by an image written before it in this draw).
    /// Images encoded for another area or cell size are dropped.
    pub fn draw(
        &mut self,
        out: &mut Vec<u8>,
        frame: &Arc<I420Frame>,
        area: CellRect,
        cell: CellSize,
        damaged: bool,
    ) -> Shown {
        self.submit(frame, area, cell);
        let fits = |e: &Encoded| e.job.area == area && e.job.cell == cell;
        if let Some(done) = self.worker.as_ref().and_then(Worker::take_done)
            && fits(&done)
        {
            self.last = Some(done);
        } else if self.on_screen == Some(area) && !damaged {
            return Shown::Kept;
        }
        match &self.last {
            Some(last) if fits(last) => {
                out.extend_from_slice(&last.bytes);
                self.on_screen = Some(area);
                Shown::Wrote(Arc::clone(&last.job.frame))
            }
            _ => {
                self.on_screen = None;
                Shown::Nothing
            }
        }
    }

    /// Notes that the area is not drawn this time (an overlay covers it), so its image
    /// is gone from the screen: the next draw writes it again.
    pub fn hide(&mut self) {
        self.on_screen = None;
    }

    fn submit(&mut self, frame: &Arc<I420Frame>, area: CellRect, cell: CellSize) {
        if self
            .submitted
            .as_ref()
            .is_some_and(|job| job.same_as(frame, area, cell))
        {
            return;
        }
        if self.worker.is_none() {
            match Worker::spawn(self.redraw.clone()) {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    tracing::error!("cannot start the sixel encoding thread: {e}");
                    return;
                }
            }
        }
        let job = Job {
            frame: Arc::clone(frame),
            area,
            cell,
        };
        if let Some(worker) = &self.worker {
            worker.submit(job.clone());
        }
        self.submitted = Some(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64x48 picture, 8x16 px cells, and a 10x4-cell area at (2, 1).
    fn setup() -> (I420Frame, CellSize, CellRect) {
        let area = CellRect {
            x: 2,
            y: 1,
            cols: 10,
            rows: 4,
        };
        let f = I420Frame::filled(64, 48, (120, 90, 200)).unwrap();
        (f, CellSize::new(8, 16).unwrap(), area)
    }

    #[test]
    fn a_frame_becomes_one_sixel_image_at_its_cell_sized_to_its_pixels() {
        let (f, cell, area) = setup();
        let mut out = Vec::new();
        Encoder::default().frame(&mut out, &f, area, cell);
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

    /// Draws until the pipeline writes an image, waiting for each redraw request
    /// (bounded: a few seconds in all).
    fn draw_until_written(
        p: &mut Pipeline,
        redraws: &std::sync::mpsc::Receiver<()>,
        frame: &Arc<I420Frame>,
        area: CellRect,
        cell: CellSize,
    ) -> Vec<u8> {
        for _ in 0..50 {
            let mut out = Vec::new();
            match p.draw(&mut out, frame, area, cell, false) {
                Shown::Wrote(shown) => {
                    assert!(Arc::ptr_eq(&shown, frame), "the frame asked for");
                    return out;
                }
                Shown::Kept => panic!("nothing was on screen to keep"),
                Shown::Nothing => assert!(out.is_empty()),
            }
            let _ = redraws.recv_timeout(std::time::Duration::from_millis(100));
        }
        panic!("no image in 5 s");
    }

    #[test]
    fn the_pipeline_writes_each_image_once_and_again_only_when_damaged_or_moved() {
        let (tx, redraws) = std::sync::mpsc::channel();
        let mut p = Pipeline::new(Redraw::new(move || {
            let _ = tx.send(());
        }));
        let (frame, cell, area) = setup();
        let frame = Arc::new(frame);
        let image = draw_until_written(&mut p, &redraws, &frame, area, cell);
        assert!(image.starts_with(b"\x1b7\x1b[2;3H"), "at its cell");

        // The same frame again: the image is still on screen, nothing is written.
        let mut out = Vec::new();
        assert_eq!(p.draw(&mut out, &frame, area, cell, false), Shown::Kept);
        assert!(out.is_empty());
        // Damaged (cleared, or drawn over): the same image again, not re-encoded.
        assert!(matches!(
            p.draw(&mut out, &frame, area, cell, true),
            Shown::Wrote(_)
        ));
        assert_eq!(out, image);
        // Covered by an overlay, then uncovered: written again.
        p.hide();
        out.clear();
        assert!(matches!(
            p.draw(&mut out, &frame, area, cell, false),
            Shown::Wrote(_)
        ));
        assert_eq!(out, image);

        // The area moved: the old image does not fit; the new one lands at its cell.
        let moved = CellRect { x: 5, ..area };
        out.clear();
        let first = p.draw(&mut out, &frame, moved, cell, false);
        if first == Shown::Nothing {
            assert!(out.is_empty(), "never the image of the old place");
            out = draw_until_written(&mut p, &redraws, &frame, moved, cell);
        }
        assert!(out.starts_with(b"\x1b7\x1b[2;6H"), "{:?}", &out[..12]);
    }
}
