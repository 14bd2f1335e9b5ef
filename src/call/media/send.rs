//! The sending threads: capture, (scale,) encode once and write to every connected
//! peer's track ([`Fanout`]), per kind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::time::{Instant, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::clock::clock_stamp_ms;
use super::fanout::Fanout;
use super::{MediaEvent, SILENCE_DBFS, SendControls, SendCounters};
use crate::call::peer::TrackWriteError;
use crate::media::audio::processing::AudioProcessor;
use crate::media::audio::{self, AudioFrame, AudioSource, FRAME_SAMPLES};
use crate::media::video::encode::{EncoderSettings, H264Encoder};
use crate::media::video::ladder::{Rung, SendLadder, SendTarget};
use crate::media::video::pattern::stamp_counter;
use crate::media::video::scale::Scaler;
use crate::media::video::{FrameSender, VideoSource};

pub(super) struct VideoSender {
    pub(super) source: Box<dyn VideoSource>,
    pub(super) encoder: H264Encoder,
    pub(super) stamp_clock: bool,
    pub(super) fanout: Arc<Fanout>,
    pub(super) local_slot: FrameSender,
    pub(super) controls: Arc<SendControls>,
    pub(super) counters: Arc<SendCounters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    pub(super) runtime: Handle,
    pub(super) nominal_interval: Duration,
}

impl VideoSender {
    pub(super) fn run(mut self) {
        let configured = self.encoder.settings();
        let mut ladder = SendLadder::new(
            Rung {
                width: configured.width,
                height: configured.height,
                fps: configured.fps,
            },
            configured.bitrate_kbps,
        );
        let mut scaler: Option<Scaler> = None;
        let mut last_capture: Option<Instant> = None;
        let mut last_keyframe: Option<Instant> = None;
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
            let Some(budget) = self.fanout.budget_kbps() else {
                // Nobody to send to (a room between members): the self-view goes on.
                self.local_slot.send_replace(Some(Arc::new(captured.frame)));
                last_capture = None;
                continue;
            };
            let budget = u32::try_from(budget).unwrap_or(u32::MAX);
            let target = ladder.update(budget, captured.captured_at);
            if !self.follow(target) {
                continue;
            }
            // A lower rate than the source's: drop frames that come sooner than it allows
            // (with 10 % slack for a source's own timing jitter).
            let min_gap = Duration::from_secs(1) / target.rung.fps * 9 / 10;
            let too_soon = last_capture
                .is_some_and(|prev| captured.captured_at.saturating_duration_since(prev) < min_gap);
            if target.rung.fps < configured.fps && too_soon {
                continue;
            }
            let (w, h) = (target.rung.width, target.rung.height);
            let mut frame = if (captured.frame.width(), captured.frame.height()) == (w, h) {
                captured.frame
            } else {
                let fresh = scaler.as_ref().is_none_or(|s| s.target() != (w, h));
                if fresh {
                    scaler = Scaler::new(w, h).ok();
                }
                match scaler.as_mut() {
                    Some(s) => s.scale(&captured.frame),
                    None => continue,
                }
            };
            if self.stamp_clock {
                stamp_counter(&mut frame, clock_stamp_ms(SystemTime::now()));
            }
            let frame = Arc::new(frame);
            self.local_slot.send_replace(Some(Arc::clone(&frame)));
            // A keyframe request soon after the last keyframe waits (it stays set): the
            // last one may still be crossing, and NACK repairs it more cheaply than a new
            // one in the same full queue. A FIR is answered at once: that receiver never
            // had a start to repair.
            let rtt = self.fanout.rtt();
            let due = last_keyframe
                .is_none_or(|at: Instant| at.elapsed() >= KEYFRAME_MIN_INTERVAL.max(rtt * 2));
            let force = if self.controls.keyframe_now.swap(false, Ordering::Relaxed) {
                self.controls.keyframe.store(false, Ordering::Relaxed);
                true
            } else {
                due && self.controls.keyframe.swap(false, Ordering::Relaxed)
            };
            let encoded = match self.encoder.encode(&frame, force) {
                Ok(e) => e,
                Err(e) => {
                    warn!("H.264 encode failed: {e}");
                    continue;
                }
            };
            self.counters.frames_encoded.fetch_add(1, Ordering::Relaxed);
            if encoded.keyframe {
                self.counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
                debug!(
                    forced = force,
                    bytes = encoded.annexb.len(),
                    "keyframe encoded"
                );
                last_keyframe = Some(Instant::now());
            }
            let duration = last_capture
                .map(|prev| captured.captured_at.saturating_duration_since(prev))
                .filter(|d| !d.is_zero() && *d < Duration::from_secs(1))
                .unwrap_or(self.nominal_interval);
            last_capture = Some(captured.captured_at);
            for writer in self.fanout.video_writers() {
                let write = writer.write_h264(&encoded.annexb, duration, captured.captured_at);
                match self.runtime.block_on(write) {
                    Ok(()) => {}
                    Err(TrackWriteError::NotNegotiated(_)) => {
                        self.controls.keyframe.store(true, Ordering::Relaxed);
                    }
                    // That peer is leaving; its outlet goes with it.
                    Err(e) => debug!("video track closed: {e}"),
                }
            }
        }
    }

    /// Brings the encoder to `target`: a new encoder (starting with a keyframe) for a new
    /// size or frame rate, a run-time bitrate change otherwise (when it moved by more than
    /// [`BITRATE_STEP`]). False if the encoder could not follow; the frame is skipped.
    fn follow(&mut self, target: SendTarget) -> bool {
        let current = self.encoder.settings();
        let rung = target.rung;
        self.counters.record_send_target(target);
        if (current.width, current.height, current.fps) != (rung.width, rung.height, rung.fps) {
            let settings = EncoderSettings {
                width: rung.width,
                height: rung.height,
                fps: rung.fps,
                bitrate_kbps: target.bitrate_kbps,
            };
            info!(
                ?settings,
                "video send size or rate changed for the available bitrate"
            );
            return match crate::stderr::silenced(|| H264Encoder::new(settings)) {
                Ok(encoder) => {
                    self.encoder = encoder;
                    true
                }
                Err(e) => {
                    warn!("cannot make a {settings:?} encoder: {e}");
                    false
                }
            };
        }
        let change = f64::from(target.bitrate_kbps) / f64::from(current.bitrate_kbps.max(1));
        if (change - 1.0).abs() > BITRATE_STEP
            && let Err(e) = self.encoder.set_bitrate(target.bitrate_kbps)
        {
            warn!("{e}");
        }
        true
    }
}

/// Relative bitrate change below which the encoder is left alone.
const BITRATE_STEP: f64 = 0.05;

/// Keyframe requests (PLI/FIR) closer than this, or two RTTs if longer, to the last
/// keyframe wait until it has passed. At a call's start on a 300 kbit/s link, answering
/// each at once sent 3 keyframes in the first 0.75 s into a 100 ms queue.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(300);

/// Audio frames between two updates of the canceller's figures (1 s).
const STATS_EVERY_FRAMES: u64 = 50;

pub(super) struct AudioSender {
    pub(super) source: Box<dyn AudioSource>,
    /// Echo cancellation, noise suppression and gain control, when any is on.
    pub(super) processor: Option<AudioProcessor>,
    pub(super) encoder: audio::opus::OpusEncoder,
    pub(super) fanout: Arc<Fanout>,
    pub(super) controls: Arc<SendControls>,
    pub(super) counters: Arc<SendCounters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    pub(super) runtime: Handle,
}

impl AudioSender {
    pub(super) fn run(mut self) {
        let mut frame: AudioFrame = [0.0; FRAME_SAMPLES];
        let processing = self.processor.as_ref().map(AudioProcessor::settings);
        info!(source = %self.source.describe(), ?processing, "audio sending");
        let mut frames = 0u64;
        while !self.controls.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.source.read_frame(&mut frame) {
                let _ = self.events.try_send(MediaEvent::Notice(format!(
                    "microphone stopped: {}: {e:#}",
                    self.source.describe()
                )));
                return;
            }
            // Also while muted: the canceller keeps following the echo path.
            if let Some(processor) = self.processor.as_mut() {
                processor.process(&mut frame);
                frames += 1;
                if frames.is_multiple_of(STATS_EVERY_FRAMES) {
                    self.counters.record_echo(processor.stats());
                }
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
            let writers = self.fanout.audio_writers();
            if writers.is_empty() {
                continue;
            }
            self.plan_fec();
            let packet = match self.encoder.encode(&frame) {
                Ok(p) => p,
                Err(e) => {
                    warn!("Opus encode failed: {e}");
                    continue;
                }
            };
            for writer in writers {
                let write = writer.write_opus(&packet, Duration::from_millis(20));
                match self.runtime.block_on(write) {
                    Ok(()) | Err(TrackWriteError::NotNegotiated(_)) => {}
                    Err(e) => debug!("audio track closed: {e}"),
                }
            }
        }
    }

    /// Plans the encoder's in-band FEC for the loss the peers report.
    fn plan_fec(&mut self) {
        let percent = self.fanout.expected_loss_percent();
        if percent == self.encoder.expected_loss() {
            return;
        }
        match self.encoder.set_expected_loss(percent) {
            Ok(()) => debug!(percent, "Opus FEC planned for the reported loss"),
            Err(e) => warn!("{e}"),
        }
        self.counters
            .audio_fec_planned_percent
            .store(u64::from(self.encoder.expected_loss()), Ordering::Relaxed);
    }
}
