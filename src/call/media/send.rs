//! The sending threads: capture, (scale,) encode and write to the track, per kind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::time::{Instant, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::clock::clock_stamp_ms;
use super::{Controls, Counters, MediaEvent, SILENCE_DBFS};
use crate::call::peer::{AudioTrackWriter, TrackWriteError, VideoTrackWriter};
use crate::media::audio::{self, AudioFrame, AudioSource, FRAME_SAMPLES};
use crate::media::video::encode::H264Encoder;
use crate::media::video::pattern::stamp_counter;
use crate::media::video::scale::Scaler;
use crate::media::video::{FrameSender, VideoSource};

pub(super) struct VideoSender {
    pub(super) source: Box<dyn VideoSource>,
    pub(super) encoder: H264Encoder,
    pub(super) stamp_clock: bool,
    pub(super) writer: VideoTrackWriter,
    pub(super) local_slot: FrameSender,
    pub(super) controls: Arc<Controls>,
    pub(super) counters: Arc<Counters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    pub(super) runtime: Handle,
    pub(super) nominal_interval: Duration,
}

impl VideoSender {
    pub(super) fn run(mut self) {
        let (w, h) = (
            self.encoder.settings().width,
            self.encoder.settings().height,
        );
        let mut scaler: Option<Scaler> = None;
        let mut last_capture: Option<Instant> = None;
        info!(source = %self.source.describe(), "video sending");
        while !self.controls.stop.load(Ordering::Relaxed) {
            let captured = match self.source.next_frame() {
                Ok(c) => c,
                Err(e) => {
                    let _ = self.events.try_send(MediaEvent::Notice(format!(
                        "video stopped: {}: {e:#}",
                        self.source.describe()
                    )));
                    return;
                }
            };
            if !self.controls.camera.load(Ordering::Relaxed) {
                last_capture = None;
                continue;
            }
            let mut frame = if (captured.frame.width(), captured.frame.height()) == (w, h) {
                captured.frame
            } else {
                let s =
                    scaler.get_or_insert_with(|| Scaler::new(w, h).expect("encoder size is valid"));
                s.scale(&captured.frame)
            };
            if self.stamp_clock {
                stamp_counter(&mut frame, clock_stamp_ms(SystemTime::now()));
            }
            let frame = Arc::new(frame);
            self.local_slot.send_replace(Some(Arc::clone(&frame)));
            let force = self.controls.keyframe.swap(false, Ordering::Relaxed);
            let encoded = match self.encoder.encode(&frame, force) {
                Ok(e) => e,
                Err(e) => {
                    warn!("H.264 encode failed: {e}");
                    continue;
                }
            };
            if encoded.keyframe {
                self.counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            }
            let duration = last_capture
                .map(|prev| captured.captured_at.saturating_duration_since(prev))
                .filter(|d| !d.is_zero() && *d < Duration::from_secs(1))
                .unwrap_or(self.nominal_interval);
            last_capture = Some(captured.captured_at);
            let write = self
                .writer
                .write_h264(&encoded.annexb, duration, captured.captured_at);
            match self.runtime.block_on(write) {
                Ok(()) => {}
                Err(TrackWriteError::NotNegotiated(_)) => {
                    self.controls.keyframe.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    debug!("video track closed: {e}");
                    return;
                }
            }
        }
    }
}

pub(super) struct AudioSender {
    pub(super) source: Box<dyn AudioSource>,
    pub(super) encoder: audio::opus::OpusEncoder,
    pub(super) writer: AudioTrackWriter,
    pub(super) controls: Arc<Controls>,
    pub(super) counters: Arc<Counters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    pub(super) runtime: Handle,
}

impl AudioSender {
    pub(super) fn run(mut self) {
        let mut frame: AudioFrame = [0.0; FRAME_SAMPLES];
        info!(source = %self.source.describe(), "audio sending");
        while !self.controls.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.source.read_frame(&mut frame) {
                let _ = self.events.try_send(MediaEvent::Notice(format!(
                    "microphone stopped: {}: {e:#}",
                    self.source.describe()
                )));
                return;
            }
            if self.controls.muted.load(Ordering::Relaxed) {
                self.counters
                    .level_out
                    .store(SILENCE_DBFS.to_bits(), Ordering::Relaxed);
                continue;
            }
            self.counters
                .level_out
                .store(audio::level_dbfs(&frame).to_bits(), Ordering::Relaxed);
            let packet = match self.encoder.encode(&frame) {
                Ok(p) => p,
                Err(e) => {
                    warn!("Opus encode failed: {e}");
                    continue;
                }
            };
            let write = self.writer.write_opus(&packet, Duration::from_millis(20));
            match self.runtime.block_on(write) {
                Ok(()) | Err(TrackWriteError::NotNegotiated(_)) => {}
                Err(e) => {
                    debug!("audio track closed: {e}");
                    return;
                }
            }
        }
    }
}
