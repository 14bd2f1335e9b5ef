//! `--record-video`: decoded remote frames to a Y4M file.

use std::path::PathBuf;

use anyhow::Context;
use tracing::warn;

use crate::media::video::I420Frame;
use crate::media::video::y4m::{FrameRate, Y4mWriter};

/// Writes decoded remote frames to a Y4M file. The header needs the frame rate, so the
/// file is created at the second frame, from the RTP timestamps of the first two.
pub(super) struct VideoRecorder {
    pub(super) path: PathBuf,
    pub(super) first: Option<(I420Frame, u32)>,
    pub(super) writer: Option<Y4mWriter>,
    pub(super) failed: bool,
}

impl VideoRecorder {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            first: None,
            writer: None,
            failed: false,
        }
    }

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
            return Ok(writer.write_frame(frame)?);
        }
        match self.first.take() {
            None => {
                self.first = Some((frame.clone(), rtp_timestamp));
                Ok(())
            }
            Some((first, first_ts)) => {
                let ticks = rtp_timestamp.wrapping_sub(first_ts);
                // 90 kHz RTP clock (RFC 6184 §8.2.1); rounded to whole frames per second.
                let fps = (90_000 + ticks / 2).checked_div(ticks).unwrap_or(30);
                self.open(&first, fps.clamp(1, 120))?;
                let writer = self.writer.as_mut().expect("just opened");
                writer.write_frame(&first)?;
                writer.write_frame(frame)?;
                Ok(())
            }
        }
    }

    fn open(&mut self, first: &I420Frame, fps: u32) -> anyhow::Result<()> {
        let rate = FrameRate::from_fps(fps).context("bad frame rate")?;
        let writer = Y4mWriter::create(&self.path, first.width(), first.height(), rate)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        self.writer = Some(writer);
        Ok(())
    }

    pub(super) fn finish(&mut self) {
        if let Some((first, _)) = self.first.take() {
            if let Err(e) = self.open(&first, 30).and_then(|()| {
                let w = self.writer.as_mut().expect("just opened");
                w.write_frame(&first)?;
                Ok(())
            }) {
                warn!("recording: {e:#}");
            }
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
