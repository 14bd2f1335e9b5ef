//! The sources behind `--camera`: a camera, a looped Y4M file or the test pattern, opened
//! from a [`VideoSourceSpec`] in one place.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::frame::CapturedFrame;
use super::pattern::{COUNTER_MODULUS, TestPattern};
use super::scale::Scaler;
use super::y4m::{FrameRate, Y4mReader};
use super::{VideoSource, camera};
use crate::media::pacer::Pacer;
use crate::media::spec::{DeviceSelector, VideoSourceSpec};

/// A source as opened, with the notice to show when `auto` fell back.
pub struct OpenedSource {
    /// Delivers the frames.
    pub source: Box<dyn VideoSource>,
    /// Why the source is not what was asked for (e.g. no camera, so the test pattern),
    /// for the status line and the log; `None` when it is.
    pub notice: Option<String>,
}

impl std::fmt::Debug for OpenedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSource")
            .field("source", &self.source.describe())
            .field("notice", &self.notice)
            .finish()
    }
}

/// Opens the source `spec` names, delivering `size` (width, height in pixels) frames;
/// `fps` paces cameras and the test pattern (files keep their own rate). `Ok(None)` for
/// `none`. `auto` tries the default camera and falls back to the test pattern with a
/// notice (logged with `tracing::warn!` too).
///
/// # Errors
/// A zero size or fps, a camera that cannot be opened (when named), or a file that
/// cannot be read as 4:2:0 Y4M (the message names the path).
pub fn open_video_source(
    spec: &VideoSourceSpec,
    size: (u32, u32),
    fps: u32,
) -> anyhow::Result<Option<OpenedSource>> {
    let plain = |source: Box<dyn VideoSource>| {
        Some(OpenedSource {
            source,
            notice: None,
        })
    };
    Ok(match spec {
        VideoSourceSpec::None => None,
        VideoSourceSpec::TestPattern => plain(Box::new(TestPatternSource::new(size, fps)?)),
        VideoSourceSpec::File(path) => plain(Box::new(Y4mFileSource::open(path, size)?)),
        VideoSourceSpec::Device(selector) => plain(camera::open_camera(selector, size, fps)?),
        VideoSourceSpec::Auto => Some(fall_back_to_pattern(
            camera::open_camera(&DeviceSelector::Default, size, fps),
            size,
            fps,
        )?),
    })
}

/// `auto`: the camera if it opened, else the test pattern and a notice saying why.
fn fall_back_to_pattern(
    camera: anyhow::Result<Box<dyn VideoSource>>,
    size: (u32, u32),
    fps: u32,
) -> anyhow::Result<OpenedSource> {
    match camera {
        Ok(source) => Ok(OpenedSource {
            source,
            notice: None,
        }),
        Err(e) => {
            let notice = format!("no camera ({e:#}); sending the test pattern");
            tracing::warn!("{notice}");
            Ok(OpenedSource {
                source: Box::new(TestPatternSource::new(size, fps)?),
                notice: Some(notice),
            })
        }
    }
}

/// The moving test pattern, paced at `fps`, numbering its frames from 0 in the
/// counter strip ([`super::pattern::read_counter`]).
#[derive(Debug)]
pub struct TestPatternSource {
    pattern: TestPattern,
    pacer: Pacer,
    /// The number the next frame carries.
    counter: u32,
    size: (u32, u32),
    fps: u32,
}

impl TestPatternSource {
    /// A pattern of `size` (width, height in pixels) at `fps` frames per second.
    ///
    /// # Errors
    /// A zero side or a zero fps.
    pub fn new(size: (u32, u32), fps: u32) -> anyhow::Result<Self> {
        let rate = FrameRate::from_fps(fps).context("test pattern: fps must be at least 1")?;
        let pattern = TestPattern::new(size.0, size.1).context("test pattern")?;
        Ok(Self {
            pattern,
            pacer: Pacer::new(rate.frame_interval()),
            counter: 0,
            size,
            fps,
        })
    }
}

impl VideoSource for TestPatternSource {
    fn next_frame(&mut self) -> anyhow::Result<CapturedFrame> {
        let frame = self.pattern.render(self.counter);
        self.counter = (self.counter + 1) % COUNTER_MODULUS;
        let captured_at = self.pacer.wait();
        Ok(CapturedFrame { frame, captured_at })
    }

    fn describe(&self) -> String {
        format!("test pattern {}x{}@{}", self.size.0, self.size.1, self.fps)
    }
}

/// A Y4M clip looped forever at its own frame rate, scaled to the send size.
pub struct Y4mFileSource {
    path: PathBuf,
    reader: Y4mReader,
    scaler: Scaler,
    pacer: Pacer,
    rate: FrameRate,
}

impl std::fmt::Debug for Y4mFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mFileSource")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Y4mFileSource {
    /// Opens `path` and checks it holds at least one frame; frames come out as `size`.
    ///
    /// # Errors
    /// The file is missing, unreadable, not 4:2:0 Y4M or empty (naming the path), or
    /// `size` has a zero side.
    pub fn open(path: &Path, size: (u32, u32)) -> anyhow::Result<Self> {
        let context = || format!("video file {}", path.display());
        let mut reader = Y4mReader::open(path).with_context(context)?;
        if reader.read_frame().with_context(context)?.is_none() {
            anyhow::bail!("video file {}: holds no frames", path.display());
        }
        reader.rewind().with_context(context)?;
        let rate = reader.header().frame_rate;
        Ok(Self {
            path: path.to_owned(),
            reader,
            scaler: Scaler::new(size.0, size.1).with_context(context)?,
            pacer: Pacer::new(rate.frame_interval()),
            rate,
        })
    }
}

impl VideoSource for Y4mFileSource {
    fn next_frame(&mut self) -> anyhow::Result<CapturedFrame> {
        let context = || format!("video file {}", self.path.display());
        let frame = match self.reader.read_frame().with_context(context)? {
            Some(frame) => frame,
            None => {
                self.reader.rewind().with_context(context)?;
                self.reader
                    .read_frame()
                    .with_context(context)?
                    .with_context(|| format!("{}: no frames after rewinding", context()))?
            }
        };
        let frame = self.scaler.scale(&frame);
        let captured_at = self.pacer.wait();
        Ok(CapturedFrame { frame, captured_at })
    }

    fn describe(&self) -> String {
        let (w, h) = self.scaler.target();
        format!(
            "file {} {w}x{h}@{:.3}",
            self.path.display(),
            self.rate.fps()
        )
    }

    fn fps(&self) -> Option<u32> {
        Some((self.rate.fps().round() as u32).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::I420Frame;
    use crate::media::video::pattern::read_counter;
    use crate::media::video::y4m::Y4mWriter;

    fn write_clip(dir: &Path, frames: &[I420Frame]) -> PathBuf {
        let path = dir.join("clip.y4m");
        let (w, h) = (frames[0].width(), frames[0].height());
        let mut writer =
            Y4mWriter::create(&path, w, h, FrameRate::from_fps(1000).unwrap()).unwrap();
        for f in frames {
            writer.write_frame(f).unwrap();
        }
        path
    }

    #[test]
    fn test_pattern_source_numbers_its_frames_on_schedule() {
        let mut src = TestPatternSource::new((160, 120), 1000).unwrap();
        assert_eq!(src.describe(), "test pattern 160x120@1000");
        let frames: Vec<_> = (0..5).map(|_| src.next_frame().unwrap()).collect();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(read_counter(&f.frame), Some(i as u32));
            assert_eq!((f.frame.width(), f.frame.height()), (160, 120));
        }
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].captured_at > w[0].captured_at)
        );
    }

    #[test]
    fn file_source_loops_and_scales_to_the_send_size() {
        let dir = tempfile::tempdir().unwrap();
        let lumas = [40u8, 120, 200];
        let frames: Vec<_> = lumas
            .iter()
            .map(|&y| I420Frame::filled(8, 6, (y, 100, 150)).unwrap())
            .collect();
        let path = write_clip(dir.path(), &frames);
        let mut src = Y4mFileSource::open(&path, (4, 2)).unwrap();
        assert!(src.describe().contains("4x2@1000"), "{}", src.describe());
        for i in 0..7 {
            let f = src.next_frame().unwrap().frame;
            assert_eq!(
                f,
                I420Frame::filled(4, 2, (lumas[i % 3], 100, 150)).unwrap(),
                "frame {i}"
            );
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.y4m");
        let e = Y4mFileSource::open(&missing, (320, 240)).unwrap_err();
        assert!(format!("{e:#}").contains("missing.y4m"), "{e:#}");

        let empty = dir.path().join("empty.y4m");
        std::fs::write(&empty, "YUV4MPEG2 W4 H2 F15:1\n").unwrap();
        let e = Y4mFileSource::open(&empty, (320, 240)).unwrap_err();
        assert!(
            format!("{e:#}").contains("empty.y4m: holds no frames"),
            "{e:#}"
        );

        let wav = dir.path().join("speech.wav");
        std::fs::write(&wav, "RIFF\0\0\0\0WAVEfmt \n").unwrap();
        let e = Y4mFileSource::open(&wav, (320, 240)).unwrap_err();
        assert!(format!("{e:#}").contains("speech.wav"), "{e:#}");
    }

    #[test]
    fn specs_open_the_right_source() {
        assert!(
            open_video_source(&VideoSourceSpec::None, (320, 240), 30)
                .unwrap()
                .is_none()
        );
        let test = open_video_source(&VideoSourceSpec::TestPattern, (320, 240), 30)
            .unwrap()
            .unwrap();
        assert_eq!(test.source.describe(), "test pattern 320x240@30");
        assert_eq!(test.notice, None);
        let clip = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip_320x240.y4m"
        );
        let file = open_video_source(&VideoSourceSpec::File(clip.into()), (640, 480), 30)
            .unwrap()
            .unwrap();
        assert!(file.source.describe().contains("640x480@15.000"));
        assert!(open_video_source(&VideoSourceSpec::TestPattern, (320, 240), 0).is_err());
    }

    #[test]
    fn auto_without_a_camera_falls_back_to_the_pattern_with_a_notice() {
        let no_camera = Err(anyhow::anyhow!("V4L2: No such file or directory"));
        let opened = fall_back_to_pattern(no_camera, (320, 240), 15).unwrap();
        assert_eq!(opened.source.describe(), "test pattern 320x240@15");
        let notice = opened.notice.unwrap();
        assert!(notice.contains("No such file or directory") && notice.contains("test pattern"));

        let camera: Box<dyn VideoSource> = Box::new(TestPatternSource::new((8, 8), 5).unwrap());
        assert_eq!(
            fall_back_to_pattern(Ok(camera), (320, 240), 15)
                .unwrap()
                .notice,
            None
        );
    }
}
