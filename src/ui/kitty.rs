//! Video through the kitty graphics protocol
//! (<https://sw.kovidgoyal.net/kitty/graphics-protocol/>): real pixels in kitty,
//! Ghostty, WezTerm and Konsole.
//!
//! Each video area has its own image id. A frame is transmitted and placed in one
//! command (`a=T`) under that id, which replaces the previous frame in place: no
//! flicker, and the terminal holds one image per area however long the call. The
//! picture goes at its own resolution ([`Transmission`]): on a local terminal that
//! answered the shared-memory query, as raw 24-bit RGB in a POSIX shared-memory object
//! that the terminal reads and unlinks (`t=s`, [`super::shm`]: nothing but the name
//! crosses the pty); on another local terminal, raw RGB (`f=24`) base64 in the command,
//! in chunks of at most 4096 bytes (`m=1` … `m=0`), where bytes are cheap (640x480:
//! 2.2 ms); and as a PNG (`f=100`) over SSH, where bytes are not: each row predicted
//! from its neighbours (PNG's adaptive filters) and deflated by the `png` crate's fast
//! mode (fdeflate), 3.7 ms and about half the bytes of zlib on the raw RGB (`o=z`:
//! 6.8 ms). The terminal scales it into the
//! cells given (`c`, `r`), which keep the picture's aspect ([`place`]). A negative `z`
//! puts it under text, so overlays (stats, help, chat) stay readable; `q=2` silences replies;
//! `C=1` leaves the cursor alone. Images are deleted when their area goes and, with
//! [`DELETE_ALL`], whenever the terminal is restored.

use std::io::Write;

use base64::Engine;

use super::halfblock::{CellSize, SubCells, fit_in, i420_to_rgb};
use super::shm::FrameObjects;
use crate::media::video::I420Frame;

/// Largest base64 payload of one graphics command (the protocol's chunk size).
const CHUNK: usize = 4096;

/// Deletes every image placement this client made, and frees their data (`a=d,d=A`).
pub const DELETE_ALL: &[u8] = b"\x1b_Ga=d,d=A,q=2\x1b\\";

/// Where a picture goes: its top-left cell and size in cells, inside an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellRect {
    /// Column of the top-left cell (0-based, screen coordinates).
    pub x: u16,
    /// Row of the top-left cell.
    pub y: u16,
    /// Width in cells (≥ 1).
    pub cols: u16,
    /// Height in cells (≥ 1).
    pub rows: u16,
}

impl CellRect {
    /// Whether the two rectangles share a cell.
    pub fn overlaps(self, other: Self) -> bool {
        let (x, y) = (u32::from(self.x), u32::from(self.y));
        let (ox, oy) = (u32::from(other.x), u32::from(other.y));
        x < ox + u32::from(other.cols)
            && ox < x + u32::from(self.cols)
            && y < oy + u32::from(other.rows)
            && oy < y + u32::from(self.rows)
    }
}

/// The cells a `width x height` picture covers when fitted, centered and with its
/// aspect kept, into the `area` (screen cells) of cells shaped `cell`; `None` for an
/// empty area or picture. The size is rounded to whole cells.
pub fn place(width: u32, height: u32, area: CellRect, cell: CellSize) -> Option<CellRect> {
    let p = fit_in(
        width,
        height,
        area.cols,
        area.rows,
        cell,
        SubCells { cols: 1, rows: 1 },
    )?;
    Some(CellRect {
        x: area.x + p.x,
        y: area.y + p.y,
        cols: p.width,
        rows: p.height,
    })
}

/// How a frame's pixels reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transmission {
    /// Raw RGB, base64 in the command (`t=d,f=24`).
    #[default]
    Direct,
    /// A PNG, base64 in the command (`t=d,f=100`): for a terminal over SSH.
    Png,
    /// Raw RGB in a POSIX shared-memory object (`t=s,f=24`): for a terminal on this
    /// machine that read the probe's object ([`super::probe::Probe::kitty_shared_memory`]).
    SharedMemory,
}

impl Transmission {
    /// PNGs when the terminal is reached over SSH (`SSH_TTY`, `SSH_CONNECTION` or
    /// `SSH_CLIENT` set); else shared memory if the terminal showed it reads it
    /// (`shared_memory`), else raw pixels in the command.
    pub fn for_this_terminal(shared_memory: bool) -> Self {
        let remote = ["SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        let chosen = if remote {
            Self::Png
        } else if shared_memory {
            Self::SharedMemory
        } else {
            Self::Direct
        };
        tracing::info!(transmission = ?chosen, remote, "kitty images");
        chosen
    }
}

/// Encodes kitty graphics commands, reusing its buffers between frames.
#[derive(Debug, Default)]
pub struct Encoder {
    rgb: Vec<u8>,
    png: Vec<u8>,
    base64: String,
    transmission: Transmission,
    /// The shared-memory objects sent ([`Transmission::SharedMemory`]).
    objects: FrameObjects,
}

impl Encoder {
    /// An encoder sending frames by `transmission`.
    pub fn new(transmission: Transmission) -> Self {
        Self {
            transmission,
            ..Self::default()
        }
    }

    /// Appends to `out` the commands that show `frame` as image `id` over the cells
    /// `at` at depth `z` (negative: below text), replacing what image `id` showed
    /// before.
    pub fn frame(&mut self, out: &mut Vec<u8>, id: u32, z: i32, frame: &I420Frame, at: CellRect) {
        i420_to_rgb(frame, &mut self.rgb);
        let format = self.encode_pixels(frame.width(), frame.height());
        let payload = self.base64.as_bytes();
        // Cursor to the top-left cell (1-based); the image is placed there.
        let _ = write!(out, "\x1b7\x1b[{};{}H", at.y + 1, at.x + 1);
        let chunks = payload.chunks(CHUNK);
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.enumerate() {
            let more = u8::from(i < last);
            if i == 0 {
                let _ = write!(
                    out,
                    "\x1b_Ga=T,{format},s={},v={},i={id},p=1,c={},r={},C=1,z={z},q=2,m={more};",
                    frame.width(),
                    frame.height(),
                    at.cols,
                    at.rows,
                );
            } else {
                let _ = write!(out, "\x1b_Gm={more};");
            }
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\x1b\\");
        }
        out.extend_from_slice(b"\x1b8");
    }

    /// Puts the pixels of `self.rgb` (`width x height`) in `self.base64` as the transmission wants them
    /// (the object's name for shared memory) and returns the command's format keys. A
    /// PNG the encoder refuses (it cannot for some sizes) or an object that cannot be
    /// made goes as raw pixels instead.
    fn encode_pixels(&mut self, width: u32, height: u32) -> Format {
        self.base64.clear();
        let engine = &base64::engine::general_purpose::STANDARD;
        match self.transmission {
            Transmission::SharedMemory => {
                match self.objects.put(&self.rgb, std::time::Instant::now()) {
                    Ok(name) => {
                        engine.encode_string(name, &mut self.base64);
                        return Format::Object(self.rgb.len());
                    }
                    Err(e) => tracing::debug!("no shared-memory object for a frame: {e}"),
                }
            }
            Transmission::Png => {
                if encode_png(&self.rgb, width, height, &mut self.png).is_ok() {
                    engine.encode_string(&self.png, &mut self.base64);
                    return Format::Png;
                }
            }
            Transmission::Direct => {}
        }
        engine.encode_string(&self.rgb, &mut self.base64);
        Format::Raw
    }
}

/// What a command's payload is, written as its format keys.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// Raw RGB, base64 (`f=24`).
    Raw,
    /// A PNG, base64 (`f=100`).
    Png,
    /// The name of a shared-memory object holding this many bytes of raw RGB
    /// (`f=24,t=s,S=`).
    Object(usize),
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Raw => f.write_str("f=24"),
            Self::Png => f.write_str("f=100"),
            Self::Object(bytes) => write!(f, "f=24,t=s,S={bytes}"),
        }
    }
}

/// `rgb` (`width x height` packed 8-bit RGB) as a PNG in `out` (replaced): adaptive
/// row filters, fast deflate (fdeflate).
///
/// # Errors
/// The `png` crate's, for sizes PNG cannot hold or a buffer of the wrong length.
fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
    out: &mut Vec<u8>,
) -> Result<(), png::EncodingError> {
    out.clear();
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}

/// Appends to `out` the command that deletes image `id` and frees its data.
pub fn delete(out: &mut Vec<u8>, id: u32) {
    let _ = write!(out, "\x1b_Ga=d,d=I,i={id},q=2\x1b\\");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands in `out`: (control data, payload) of each `ESC _G … ESC \`.
    fn commands(out: &[u8]) -> Vec<(String, String)> {
        let text = String::from_utf8(out.to_vec()).unwrap();
        text.split("\x1b_G")
            .skip(1)
            .map(|c| {
                let body = c.split("\x1b\\").next().unwrap();
                let (control, payload) = body.split_once(';').unwrap_or((body, ""));
                (control.to_owned(), payload.to_owned())
            })
            .collect()
    }

    #[test]
    fn a_frame_goes_as_a_chunked_png_under_its_id_and_decodes_back() {
        // A frame of noise (so it compresses poorly and needs several chunks): the
        // payload must decode to its RGB.
        let mut f = I420Frame::filled(64, 48, (16, 128, 128)).unwrap();
        let mut seed = 1u32;
        for p in f.planes_mut().0.iter_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *p = 16 + (seed >> 24) as u8 % 200;
        }
        let mut out = Vec::new();
        let at = CellRect {
            x: 3,
            y: 2,
            cols: 16,
            rows: 6,
        };
        Encoder::new(Transmission::Png).frame(&mut out, 7, -1, &f, at);
        assert!(
            out.starts_with(b"\x1b7\x1b[3;4H"),
            "cursor to row 3, column 4"
        );
        assert!(out.ends_with(b"\x1b8"));
        let cmds = commands(&out);
        assert!(cmds.len() > 1, "more than one chunk for 9 KB of RGB");
        let first = &cmds[0].0;
        for field in [
            "a=T", "f=100", "s=64", "v=48", "i=7", "c=16", "r=6", "z=-1", "m=1",
        ] {
            assert!(first.split(',').any(|f| f == field), "{field} in {first}");
        }
        assert_eq!(cmds.last().unwrap().0, "m=0");
        assert!(cmds.iter().all(|(_, p)| p.len() <= CHUNK));
        let payload: String = cmds.iter().map(|(_, p)| p.as_str()).collect();
        let file = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(file))
            .read_info()
            .unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (64, 48, png::ColorType::Rgb)
        );
        let mut want = Vec::new();
        i420_to_rgb(&f, &mut want);
        assert_eq!(rgb, want);
        assert_eq!(rgb.len(), 64 * 48 * 3);
    }

    /// An 8x6 flat frame and the 2x1 cells it goes to.
    fn small_frame() -> (I420Frame, CellRect) {
        let f = I420Frame::filled(8, 6, (120, 90, 200)).unwrap();
        let at = CellRect {
            x: 0,
            y: 0,
            cols: 2,
            rows: 1,
        };
        (f, at)
    }

    #[test]
    fn a_local_terminal_gets_raw_pixels() {
        let (f, at) = small_frame();
        let mut out = Vec::new();
        Encoder::new(Transmission::Direct).frame(&mut out, 1, -2, &f, at);
        let cmds = commands(&out);
        assert!(cmds[0].0.split(',').any(|f| f == "f=24"), "{}", cmds[0].0);
        let rgb = base64::engine::general_purpose::STANDARD
            .decode(&cmds[0].1)
            .unwrap();
        let mut want = Vec::new();
        i420_to_rgb(&f, &mut want);
        assert_eq!(rgb, want);
    }

    #[test]
    fn a_terminal_reading_shared_memory_gets_the_objects_name_and_the_object_the_pixels() {
        let (f, at) = small_frame();
        let mut encoder = Encoder::new(Transmission::SharedMemory);
        let mut out = Vec::new();
        encoder.frame(&mut out, 3, -2, &f, at);
        let cmds = commands(&out);
        assert_eq!(cmds.len(), 1, "one command: the name is short");
        for field in ["a=T", "f=24", "t=s", "S=144", "s=8", "v=6", "i=3", "m=0"] {
            assert!(
                cmds[0].0.split(',').any(|f| f == field),
                "{field} in {}",
                cmds[0].0
            );
        }
        let name = base64::engine::general_purpose::STANDARD
            .decode(&cmds[0].1)
            .unwrap();
        let name = String::from_utf8(name).unwrap();
        assert!(name.starts_with("/rtc-cli-"), "{name}");
        // What the terminal reads (and would unlink).
        let object = std::path::Path::new("/dev/shm").join(&name[1..]);
        let mut want = Vec::new();
        i420_to_rgb(&f, &mut want);
        assert_eq!(std::fs::read(&object).unwrap(), want);
        // No terminal read it here: the encoder removes it when it goes.
        drop(encoder);
        assert!(!object.exists());
    }

    #[test]
    fn a_picture_keeps_its_aspect_in_whole_cells() {
        let cell = CellSize::new(8, 16).unwrap();
        let area = CellRect {
            x: 0,
            y: 1,
            cols: 160,
            rows: 45,
        };
        // 4:3 into 1280x720 pixels: 960x720, i.e. 120x45 cells, centered.
        assert_eq!(
            place(640, 480, area, cell),
            Some(CellRect {
                x: 20,
                y: 1,
                cols: 120,
                rows: 45
            })
        );
        assert_eq!(place(0, 480, area, cell), None);
    }

    #[test]
    fn delete_names_the_image() {
        let mut out = Vec::new();
        delete(&mut out, 3);
        assert_eq!(out, b"\x1b_Ga=d,d=I,i=3,q=2\x1b\\");
    }
}
