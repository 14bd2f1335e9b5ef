//! `--record-video`: decoded remote frames to a Y4M file.

use std::path::PathBuf;

use anyhow::Context;
use tracing::warn;

use crate::media::video::I420Frame;
use crate::media::video::scale::Scaler;
use crate::media::video::y4m::{FrameRate, Y4mWriter};

/// Frames held back to measure the stream's frame rate before the Y4M header is written.
const RATE_PROBE_FRAMES: usize = 10;

/// The RTP clock of H.264 video, Hz (RFC 6184 §8.2.1).
const VIDEO_CLOCK_HZ: u32 = 90_000;

/// Writes decoded remote frames to a Y4M file. The header needs the frame rate, so
/// the first [`RATE_PROBE_FRAMES`] frames are held until their RTP timestamps give it
/// (the median interval, so a slow first frame does not skew it).
pub(super) struct VideoRecorder {
    path: PathBuf,
    /// Frames and RTP timestamps waiting for the header.
    pending: Vec<(I420Frame, u32)>,
    writer: Option<Y4mWriter>,
    /// Scales frames of another size to the recording's (Y4M has one size; the sender
    /// steps its size down and up with the bandwidth).
    scaler: Option<Scaler>,
    /// Set after an error: the recording stops, the call goes on.
    failed: bool,
}

impl VideoRecorder {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            pending: Vec::with_capacity(RATE_PROBE_FRAMES),
            writer: None,
            scaler: None,
            failed: false,
        }
    }

    /// Records one frame.
    ///
    /// # Errors
    /// The file cannot be created or written, or the frame size changed (Y4M has one
    /// size per file); later frames are then ignored.
    pub(super) fn write(&mut self, frame: &I420Frame, rtp_timestamp: u32) -> anyhow::Result<()> {
        if self.failed {
            return Ok(());
        }
        let result = self.try_write(frame, rtp_timestamp);
        self.failed = result.is_err();
        result
    }

    fn try_write(&mut self, frame: &I420Frame, rtp_timestamp: u32) -> anyhow::Result<()> {
        if let Some(writer) = &mut self.writer {
            let size = writer.size();
            if (frame.width(), frame.height()) == size {
                return Ok(writer.write_frame(frame)?);
            }
            if self.scaler.as_ref().is_none_or(|s| s.target() != size) {
                self.scaler = Some(Scaler::new(size.0, size.1)?);
            }
            let scaled = self.scaler.as_mut().map(|s| s.scale(frame));
            return Ok(writer.write_frame(scaled.as_ref().unwrap_or(frame))?);
        }
        self.pending.push((frame.clone(), rtp_timestamp));
        if self.pending.len() >= RATE_PROBE_FRAMES {
            self.open_and_flush()?;
        }
        Ok(())
    }

    /// Frames per second from the median RTP timestamp interval of the held frames;
    /// 30 when there are too few to tell.
    fn probed_fps(&self) -> u32 {
        let mut ticks: Vec<u32> = self
            .pending
            .windows(2)
            .map(|w| w[1].1.wrapping_sub(w[0].1))
            .filter(|&t| t > 0 && t < VIDEO_CLOCK_HZ * 10)
            .collect();
        ticks.sort_unstable();
        let Some(&median) = ticks.get(ticks.len() / 2) else {
            return 30;
        };
        ((VIDEO_CLOCK_HZ + median / 2) / median).clamp(1, 120)
    }

    fn open_and_flush(&mut self) -> anyhow::Result<()> {
        let Some((first, _)) = self.pending.first() else {
            return Ok(());
        };
        let rate = FrameRate::from_fps(self.probed_fps()).context("bad frame rate")?;
        let writer = Y4mWriter::create(&self.path, first.width(), first.height(), rate)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        self.writer = Some(writer);
        for (frame, rtp_timestamp) in std::mem::take(&mut self.pending) {
            self.try_write(&frame, rtp_timestamp)?;
        }
        Ok(())
    }

    /// Writes what is held and flushes the file (at the end of the call).
    pub(super) fn finish(&mut self) {
        if !self.failed
            && let Err(e) = self.open_and_flush()
        {
            warn!("recording: {e:#}");
        }
        if let Some(w) = &mut self.writer
            && let Err(e) = w.flush()
        {
            warn!("recording: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_first_frame_does_not_skew_the_recorded_rate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let mut r = VideoRecorder::new(path.clone());
        let f = I420Frame::filled(16, 8, (100, 128, 128)).unwrap();
        // The first interval is half a second (a browser warming up), then 30 fps.
        let mut ts = 0u32;
        for i in 0..25 {
            r.write(&f, ts).unwrap();
            ts = ts.wrapping_add(if i == 0 { 45_000 } else { 3_000 });
        }
        r.finish();
        let reader = crate::media::video::y4m::Y4mReader::open(&path).unwrap();
        assert_eq!(reader.header().frame_rate.fps(), 30.0);
    }

    #[test]
    fn frames_of_another_size_are_recorded_at_the_first_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let mut r = VideoRecorder::new(path.clone());
        let big = I420Frame::filled(32, 16, (100, 128, 128)).unwrap();
        let small = I420Frame::filled(16, 8, (100, 128, 128)).unwrap();
        for i in 0..24u32 {
            let frame = if i % 3 == 2 { &small } else { &big };
            r.write(frame, i * 3000).unwrap();
        }
        r.finish();
        drop(r);
        let mut reader = crate::media::video::y4m::Y4mReader::open(&path).unwrap();
        let mut n = 0;
        while let Some(f) = reader.read_frame().unwrap() {
            assert_eq!((f.width(), f.height()), (32, 16));
            n += 1;
        }
        assert_eq!(n, 24);
    }

    #[test]
    fn recorder_takes_the_frame_rate_from_rtp_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let mut r = VideoRecorder::new(path.clone());
        let f = I420Frame::filled(16, 8, (100, 128, 128)).unwrap();
        for i in 0..3u32 {
            r.write(&f, 1000 + i * 6000).unwrap();
        }
        r.finish();
        drop(r);
        let mut reader = crate::media::video::y4m::Y4mReader::open(&path).unwrap();
        assert_eq!(reader.header().frame_rate.fps(), 15.0);
        let mut n = 0;
        while reader.read_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }
}
