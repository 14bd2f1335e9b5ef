//! YUV4MPEG2 (Y4M) files: a reader for 4:2:0 clips and a writer for recordings.
//!
//! The format (as written by ffmpeg and read by Chromium's fake camera) is a text header
//! line `YUV4MPEG2 W320 H240 F15:1 Ip A1:1 C420jpeg` followed by frames, each a line
//! starting with `FRAME` and then the raw planar Y, U, V bytes. Only 8-bit 4:2:0 is
//! accepted, because that is what [`I420Frame`] holds.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::frame::I420Frame;

/// The magic word a Y4M stream starts with.
const MAGIC: &str = "YUV4MPEG2";
/// The word each frame header line starts with.
const FRAME_MAGIC: &[u8] = b"FRAME";
/// Longest header or frame-header line accepted, so a file that is not Y4M is rejected
/// quickly instead of being read whole looking for a newline.
const MAX_LINE: usize = 4096;
/// Largest width or height accepted (H.264 level 5.2 tops out at 4096; this leaves room).
const MAX_DIMENSION: u32 = 16_384;
/// Bytes reserved for a frame before reading it (a 1080p I420 frame is 3 MiB).
const PREALLOCATE_LIMIT: usize = 8 << 20;

/// A frame rate as an exact ratio (`F30000:1001` is 29.97 fps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    num: u32,
    den: u32,
}

impl FrameRate {
    /// `num / den` frames per second; `None` when either is zero.
    pub fn new(num: u32, den: u32) -> Option<Self> {
        (num > 0 && den > 0).then_some(Self { num, den })
    }

    /// A whole number of frames per second; `None` for zero.
    pub fn from_fps(fps: u32) -> Option<Self> {
        Self::new(fps, 1)
    }

    /// Numerator (frames).
    pub fn num(&self) -> u32 {
        self.num
    }

    /// Denominator (seconds).
    pub fn den(&self) -> u32 {
        self.den
    }

    /// Frames per second as a float, e.g. 29.97.
    pub fn fps(&self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Time between two frames, rounded to the nanosecond.
    pub fn frame_interval(&self) -> Duration {
        let nanos = u128::from(self.den) * 1_000_000_000 / u128::from(self.num);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.num, self.den)
    }
}

/// What the stream header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Picture width in pixels (`W`).
    pub width: u32,
    /// Picture height in pixels (`H`).
    pub height: u32,
    /// Frame rate (`F`).
    pub frame_rate: FrameRate,
}

/// Why a Y4M stream cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The file could not be opened or created.
    #[error("cannot open {path}")]
    Open {
        /// The file named.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Reading or writing failed after opening.
    #[error("Y4M I/O")]
    Io(#[from] io::Error),
    /// The stream header is malformed or misses `W`, `H` or `F`.
    #[error("bad Y4M header: {0}")]
    BadHeader(String),
    /// The `C` tag names a layout other than 8-bit 4:2:0.
    #[error(
        "unsupported Y4M colorspace `C{0}`: only 8-bit 4:2:0 (C420, C420jpeg, C420paldv, C420mpeg2) is read"
    )]
    UnsupportedColorspace(String),
    /// A frame does not start with a `FRAME` line.
    #[error("bad Y4M frame header at frame {index}: {reason}")]
    BadFrameHeader {
        /// 0-based frame number.
        index: u64,
        /// What was wrong.
        reason: String,
    },
    /// The file ends inside a frame.
    #[error("Y4M file truncated inside frame {index}: {got} of {expected} bytes")]
    Truncated {
        /// 0-based frame number.
        index: u64,
        /// Bytes read of the frame's pictures.
        got: usize,
        /// Bytes an I420 frame of the header's size takes.
        expected: usize,
    },
    /// A frame given to the writer has another size than the stream.
    #[error("frame is {got:?}, but the Y4M stream is {expected:?}")]
    FrameSize {
        /// The stream's (width, height).
        expected: (u32, u32),
        /// The frame's (width, height).
        got: (u32, u32),
    },
}

/// Reads I420 frames from a Y4M stream, one `FRAME` at a time.
pub struct Y4mReader<R = BufReader<File>> {
    inner: R,
    header: Y4mHeader,
    /// Byte offset of the first `FRAME`, where [`Y4mReader::rewind`] goes back to.
    data_start: u64,
    /// Frames read since the start or the last rewind (names frames in errors).
    index: u64,
}

impl Y4mReader<BufReader<File>> {
    /// Opens a Y4M file and parses its header.
    ///
    /// # Errors
    /// [`Y4mError::Open`] naming the path, or any header error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Y4mError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Y4mError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::new(BufReader::new(file))
    }
}

impl<R: BufRead + Seek> Y4mReader<R> {
    /// Parses the header of a Y4M stream positioned at its start.
    ///
    /// # Errors
    /// [`Y4mError::BadHeader`], [`Y4mError::UnsupportedColorspace`] or I/O errors.
    pub fn new(mut inner: R) -> Result<Self, Y4mError> {
        let line =
            read_line(&mut inner)?.ok_or_else(|| Y4mError::BadHeader("empty stream".into()))?;
        let header = parse_header(&line)?;
        let data_start = inner.stream_position()?;
        Ok(Self {
            inner,
            header,
            data_start,
            index: 0,
        })
    }

    /// The stream header.
    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// Reads the next frame; `Ok(None)` at the clean end of the stream.
    ///
    /// # Errors
    /// [`Y4mError::BadFrameHeader`], [`Y4mError::Truncated`] or I/O errors.
    pub fn read_frame(&mut self) -> Result<Option<I420Frame>, Y4mError> {
        let index = self.index;
        let Some(line) = read_line(&mut self.inner)? else {
            return Ok(None);
        };
        if !line.starts_with(FRAME_MAGIC) {
            let start = String::from_utf8_lossy(&line[..line.len().min(16)]).into_owned();
            return Err(Y4mError::BadFrameHeader {
                index,
                reason: format!("expected `FRAME`, found `{start}`"),
            });
        }
        let (width, height) = (self.header.width, self.header.height);
        let expected = I420Frame::buffer_len(width, height);
        // Grow with the data rather than trusting the header's size up front, so a
        // truncated file with a huge header size does not allocate it all.
        let mut data = Vec::with_capacity(expected.min(PREALLOCATE_LIMIT));
        let got = (&mut self.inner)
            .take(expected as u64)
            .read_to_end(&mut data)?;
        if got < expected {
            return Err(Y4mError::Truncated {
                index,
                got,
                expected,
            });
        }
        self.index += 1;
        let frame = I420Frame::from_buffer(width, height, data)
            .map_err(|e| Y4mError::BadHeader(e.to_string()))?;
        Ok(Some(frame))
    }

    /// Checks that the stream goes on with a `FRAME` header or ends here, without
    /// consuming anything: after a frame, this catches a file whose frames are not the
    /// size its header says.
    ///
    /// # Errors
    /// [`Y4mError::BadFrameHeader`] naming the frame that does not start where the
    /// header's size puts it, or I/O errors.
    pub fn check_next_frame_start(&mut self) -> Result<(), Y4mError> {
        let start = self.inner.stream_position()?;
        let mut head = Vec::with_capacity(FRAME_MAGIC.len());
        (&mut self.inner)
            .take(FRAME_MAGIC.len() as u64)
            .read_to_end(&mut head)?;
        self.inner.seek(SeekFrom::Start(start))?;
        if head.is_empty() || head == FRAME_MAGIC {
            return Ok(());
        }
        Err(Y4mError::BadFrameHeader {
            index: self.index,
            reason: format!(
                "expected `FRAME` after {} bytes of frame data ({}x{} I420, from the header), \
                 found `{}`: the frames are not the size the header says",
                I420Frame::buffer_len(self.header.width, self.header.height),
                self.header.width,
                self.header.height,
                String::from_utf8_lossy(&head)
            ),
        })
    }

    /// Goes back to the first frame (for looping a clip).
    ///
    /// # Errors
    /// The seek failed.
    pub fn rewind(&mut self) -> Result<(), Y4mError> {
        self.inner.seek(SeekFrom::Start(self.data_start))?;
        self.index = 0;
        Ok(())
    }
}

/// Reads one `\n`-terminated line (without the newline); `None` at end of stream. A
/// final line without newline is returned as is.
fn read_line<R: BufRead>(r: &mut R) -> Result<Option<Vec<u8>>, Y4mError> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_LINE {
        return Err(Y4mError::BadHeader(format!(
            "no newline in the first {MAX_LINE} bytes of a header line"
        )));
    }
    Ok(Some(line))
}

/// Parses `YUV4MPEG2 W.. H.. F..:.. [I.] [A..:..] [C...] [X...]`.
fn parse_header(line: &[u8]) -> Result<Y4mHeader, Y4mError> {
    let bad = |m: String| Y4mError::BadHeader(m);
    let text = std::str::from_utf8(line).map_err(|_| bad("header is not ASCII".into()))?;
    let mut tags = text.split(' ').filter(|t| !t.is_empty());
    if tags.next() != Some(MAGIC) {
        return Err(bad(format!("does not start with `{MAGIC}`")));
    }
    let (mut width, mut height, mut rate) = (None, None, None);
    for tag in tags {
        let mut chars = tag.chars();
        let key = chars.next();
        let value = chars.as_str();
        match key.unwrap_or(' ') {
            'W' => width = Some(parse_dimension("W", value)?),
            'H' => height = Some(parse_dimension("H", value)?),
            'F' => rate = Some(parse_ratio(value).ok_or_else(|| bad(format!("bad F`{value}`")))?),
            'C' => check_colorspace(value)?,
            // Interlacing, pixel aspect and extensions do not change how planes are read.
            'I' | 'A' | 'X' => {}
            _ => return Err(bad(format!("unknown tag `{tag}`"))),
        }
    }
    Ok(Y4mHeader {
        width: width.ok_or_else(|| bad("no W (width) tag".into()))?,
        height: height.ok_or_else(|| bad("no H (height) tag".into()))?,
        frame_rate: rate.ok_or_else(|| bad("no F (frame rate) tag".into()))?,
    })
}

fn parse_dimension(tag: &str, value: &str) -> Result<u32, Y4mError> {
    match value.parse::<u32>() {
        Ok(v) if (1..=MAX_DIMENSION).contains(&v) => Ok(v),
        _ => Err(Y4mError::BadHeader(format!(
            "{tag}`{value}` is not a size in 1..={MAX_DIMENSION}"
        ))),
    }
}

fn parse_ratio(value: &str) -> Option<FrameRate> {
    let (num, den) = value.split_once(':')?;
    FrameRate::new(num.parse().ok()?, den.parse().ok()?)
}

fn check_colorspace(value: &str) -> Result<(), Y4mError> {
    match value {
        "420" | "420jpeg" | "420paldv" | "420mpeg2" => Ok(()),
        other => Err(Y4mError::UnsupportedColorspace(other.to_owned())),
    }
}

/// Writes I420 frames of one size to a Y4M stream with the header
/// `YUV4MPEG2 W.. H.. F num:den Ip A1:1 C420jpeg`. Buffered output is flushed on drop.
pub struct Y4mWriter<W: Write = BufWriter<File>> {
    inner: W,
    width: u32,
    height: u32,
}

impl Y4mWriter<BufWriter<File>> {
    /// Creates (or truncates) a Y4M file for frames of `width x height`.
    ///
    /// # Errors
    /// [`Y4mError::Open`] naming the path, or the header could not be written.
    pub fn create(
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
        frame_rate: FrameRate,
    ) -> Result<Self, Y4mError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| Y4mError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::new(BufWriter::new(file), width, height, frame_rate)
    }
}

impl<W: Write> Y4mWriter<W> {
    /// The frame size of the stream, (width, height) in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Writes the stream header to `inner`.
    ///
    /// # Errors
    /// [`Y4mError::BadHeader`] for a zero or oversized dimension, or an I/O error.
    pub fn new(
        mut inner: W,
        width: u32,
        height: u32,
        frame_rate: FrameRate,
    ) -> Result<Self, Y4mError> {
        parse_dimension("W", &width.to_string())?;
        parse_dimension("H", &height.to_string())?;
        writeln!(
            inner,
            "{MAGIC} W{width} H{height} F{frame_rate} Ip A1:1 C420jpeg"
        )?;
        Ok(Self {
            inner,
            width,
            height,
        })
    }

    /// Appends one frame.
    ///
    /// # Errors
    /// [`Y4mError::FrameSize`] when the frame is not the stream's size, or an I/O error.
    pub fn write_frame(&mut self, frame: &I420Frame) -> Result<(), Y4mError> {
        let got = (frame.width(), frame.height());
        if got != (self.width, self.height) {
            return Err(Y4mError::FrameSize {
                expected: (self.width, self.height),
                got,
            });
        }
        self.inner.write_all(FRAME_MAGIC)?;
        self.inner.write_all(b"\n")?;
        self.inner.write_all(frame.as_bytes())?;
        Ok(())
    }

    /// Flushes buffered frames to the underlying writer.
    ///
    /// # Errors
    /// The underlying flush failed.
    pub fn flush(&mut self) -> Result<(), Y4mError> {
        Ok(self.inner.flush()?)
    }
}

impl<W: Write> Drop for Y4mWriter<W> {
    fn drop(&mut self) {
        if let Err(e) = self.inner.flush() {
            tracing::warn!("flushing a Y4M recording failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn gradient(width: u32, height: u32, seed: u8) -> I420Frame {
        let len = I420Frame::buffer_len(width, height);
        let data = (0..len)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect();
        I420Frame::from_buffer(width, height, data).unwrap()
    }

    fn reader(bytes: &[u8]) -> Result<Y4mReader<Cursor<Vec<u8>>>, Y4mError> {
        Y4mReader::new(Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn written_frames_read_back_identically_and_rewind_loops() {
        let frames: Vec<_> = (0..3).map(|s| gradient(5, 3, s)).collect();
        let mut bytes = Vec::new();
        {
            let rate = FrameRate::new(30000, 1001).unwrap();
            let mut w = Y4mWriter::new(&mut bytes, 5, 3, rate).unwrap();
            for f in &frames {
                w.write_frame(f).unwrap();
            }
        }
        assert!(bytes.starts_with(b"YUV4MPEG2 W5 H3 F30000:1001 Ip A1:1 C420jpeg\nFRAME\n"));

        let mut r = reader(&bytes).unwrap();
        assert_eq!(r.header().width, 5);
        assert_eq!(r.header().frame_rate, FrameRate::new(30000, 1001).unwrap());
        for f in &frames {
            assert_eq!(r.read_frame().unwrap().as_ref(), Some(f));
        }
        assert!(r.read_frame().unwrap().is_none());
        r.rewind().unwrap();
        assert_eq!(r.read_frame().unwrap().as_ref(), Some(&frames[0]));
    }

    #[test]
    fn header_accepts_every_420_tag_and_optional_fields() {
        for c in ["", " C420", " C420jpeg", " C420paldv", " C420mpeg2"] {
            let h = format!("YUV4MPEG2 W4 H2 F15:1 It A10:11{c} XYSCSS=420JPEG\n");
            let r = reader(h.as_bytes()).unwrap();
            assert_eq!((r.header().width, r.header().height), (4, 2), "{c}");
        }
    }

    #[test]
    fn header_rejects_other_colorspaces_and_missing_tags() {
        let err = |h: &str| reader(h.as_bytes()).err().unwrap().to_string();
        assert!(err("YUV4MPEG2 W4 H2 F15:1 C444\n").contains("C444"));
        assert!(err("YUV4MPEG2 W4 H2 F15:1 C420p10\n").contains("C420p10"));
        assert!(err("YUV4MPEG2 W4 F15:1\n").contains("H (height)"));
        assert!(err("YUV4MPEG2 W4 H2\n").contains("F (frame rate)"));
        assert!(err("YUV4MPEG2 W4 H2 F15:0\n").contains("F`15:0`"));
        assert!(err("YUV4MPEG2 W0 H2 F15:1\n").contains("W`0`"));
        assert!(err("RIFF....WAVE\n").contains("YUV4MPEG2"));
        assert!(err("").contains("empty"));
        assert!(err(&"YUV4MPEG2 ".repeat(1000)).contains("newline"));
    }

    #[test]
    fn the_next_frame_start_check_catches_frames_of_another_size_than_the_header() {
        // Two whole 4x2 frames (12 bytes each): the check passes after each, consuming nothing.
        let mut good = b"YUV4MPEG2 W4 H2 F15:1\nFRAME\n".to_vec();
        good.extend([1; 12]);
        good.extend(b"FRAME\n");
        good.extend([2; 12]);
        let mut r = reader(&good).unwrap();
        r.read_frame().unwrap().unwrap();
        r.check_next_frame_start().unwrap();
        r.read_frame().unwrap().unwrap();
        r.check_next_frame_start().unwrap();
        assert!(r.read_frame().unwrap().is_none());

        // 4x1 frames (6 bytes) under a 4x2 header: frame 0 swallows the next FRAME line.
        let mut wrong = b"YUV4MPEG2 W4 H2 F15:1\n".to_vec();
        for _ in 0..4 {
            wrong.extend(b"FRAME\n");
            wrong.extend([3; 6]);
        }
        let mut r = reader(&wrong).unwrap();
        r.read_frame().unwrap().unwrap();
        assert!(matches!(
            r.check_next_frame_start(),
            Err(Y4mError::BadFrameHeader { index: 1, .. })
        ));
    }

    #[test]
    fn truncated_frame_and_bad_frame_header_are_errors() {
        let mut bytes = b"YUV4MPEG2 W4 H2 F15:1\nFRAME\n".to_vec();
        bytes.extend([0; 11]); // a 4x2 frame needs 12 bytes
        let mut r = reader(&bytes).unwrap();
        assert!(matches!(
            r.read_frame(),
            Err(Y4mError::Truncated {
                index: 0,
                got: 11,
                expected: 12
            })
        ));

        let mut r = reader(b"YUV4MPEG2 W4 H2 F15:1\nFRAMX\n").unwrap();
        assert!(matches!(
            r.read_frame(),
            Err(Y4mError::BadFrameHeader { index: 0, .. })
        ));
    }

    #[test]
    fn writer_rejects_frames_of_another_size() {
        let mut sink = Vec::new();
        let mut w = Y4mWriter::new(&mut sink, 4, 2, FrameRate::from_fps(15).unwrap()).unwrap();
        assert!(matches!(
            w.write_frame(&gradient(2, 2, 0)),
            Err(Y4mError::FrameSize { .. })
        ));
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let e = Y4mReader::open("/nonexistent/clip.y4m").err().unwrap();
        assert!(e.to_string().contains("/nonexistent/clip.y4m"), "{e}");
    }

    #[test]
    fn fixture_clip_has_75_frames_of_320x240_at_15_fps() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip_320x240.y4m"
        );
        let mut r = Y4mReader::open(path).unwrap();
        assert_eq!((r.header().width, r.header().height), (320, 240));
        assert_eq!(
            r.header().frame_rate.frame_interval(),
            Duration::from_nanos(66_666_666)
        );
        let mut n = 0;
        while r.read_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 75);
    }

    #[test]
    fn frame_rate_rejects_zero_and_gives_the_interval() {
        assert!(FrameRate::new(0, 1).is_none());
        assert!(FrameRate::new(1, 0).is_none());
        assert_eq!(
            FrameRate::from_fps(30).unwrap().frame_interval(),
            Duration::from_nanos(33_333_333)
        );
        assert_eq!(
            FrameRate::new(30000, 1001).unwrap().to_string(),
            "30000:1001"
        );
    }
}
