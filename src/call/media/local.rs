//! Our side of the media: the camera and microphone, captured and encoded once and
//! sent to every connected peer ([`Fanout`]), and the speaker that plays every peer's
//! audio, mixed. One per call, or one per room however many members it has.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::warn;

use super::fanout::{Fanout, PathReport, PeerKey};
use super::receive::{PeerAudio, Speaker};
use super::send::{AudioSender, VideoSender};
use super::{MediaEvent, START_ESTIMATE_BPS, SendControls, SendCounters, video_budget_kbps};
use crate::call::peer::PeerSession;
use crate::config::MediaSettings;
use crate::media::audio::processing::{AudioProcessor, ReferenceReader, echo_reference};
use crate::media::audio::{self, AudioSink, AudioSource};
use crate::media::spec::VideoSourceSpec;
use crate::media::video::encode::{EncoderSettings, H264Encoder};
use crate::media::video::source::open_video_source;
use crate::media::video::{FrameSender, VideoSource};

/// The sources and sinks, opened before any connection so a bad path or device fails
/// at once.
struct Endpoints {
    video: Option<Box<dyn VideoSource>>,
    /// The video source is the test pattern: stamp the capture clock into its counter.
    stamp_clock: bool,
    audio: Option<Box<dyn AudioSource>>,
    sink: Box<dyn AudioSink>,
    notices: Vec<String>,
}

fn open_endpoints(config: &MediaSettings) -> anyhow::Result<Endpoints> {
    let mut notices = Vec::new();
    let video = open_video_source(&config.camera, config.video_size, config.fps)
        .context("cannot open the video source")?;
    let stamp_clock = match (&config.camera, &video) {
        (VideoSourceSpec::TestPattern, _) => true,
        (VideoSourceSpec::Auto, Some(opened)) => opened.notice.is_some(),
        _ => false,
    };
    let video = video.map(|opened| {
        notices.extend(opened.notice);
        opened.source
    });
    let audio = audio::open_audio_source(&config.mic).context("cannot open the audio source")?;
    notices.extend(audio.notice);
    let sink = audio::open_audio_sink(&config.speaker).context("cannot open the audio output")?;
    notices.extend(sink.notice);
    Ok(Endpoints {
        video,
        stamp_clock,
        audio: audio.media,
        sink: sink
            .media
            .unwrap_or_else(|| Box::new(audio::sink::NullSink)),
        notices,
    })
}

/// Sources opened at the start, waiting for the first connection.
struct PendingSend {
    video: Option<Box<dyn VideoSource>>,
    stamp_clock: bool,
    audio: Option<Box<dyn AudioSource>>,
    /// The far-end reference for the echo canceller, when it runs.
    reference: Option<ReferenceReader>,
}

/// Our camera, microphone and speaker, shared by every peer of a call or room.
pub struct LocalMedia {
    config: MediaSettings,
    controls: Arc<SendControls>,
    pub(super) counters: Arc<SendCounters>,
    fanout: Arc<Fanout>,
    /// Peers' audio on its way to the speaker thread.
    speaker: Mutex<std::sync::mpsc::Sender<PeerAudio>>,
    /// Sources waiting for the first connection; taken by `start_sending`.
    pending_send: Mutex<Option<PendingSend>>,
    events: mpsc::Sender<MediaEvent>,
    local_slot: FrameSender,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_key: AtomicU64,
}

impl LocalMedia {
    /// Opens the sources and the speaker (whose thread starts at once) and reports
    /// fallbacks as [`MediaEvent::Notice`]s on `events`. Sending starts with the first
    /// [`PeerMedia::start_sending`](super::PeerMedia::start_sending).
    ///
    /// # Errors
    /// A source or sink that cannot be opened.
    pub async fn open(
        config: &MediaSettings,
        local_slot: FrameSender,
        events: mpsc::Sender<MediaEvent>,
    ) -> anyhow::Result<Arc<Self>> {
        let open_config = config.clone();
        let endpoints = tokio::task::spawn_blocking(move || open_endpoints(&open_config))
            .await
            .context("opening media panicked")??;
        for notice in &endpoints.notices {
            let _ = events.try_send(MediaEvent::Notice(notice.clone()));
        }
        let controls = Arc::new(SendControls {
            muted: AtomicBool::new(false),
            camera: AtomicBool::new(true),
            keyframe: AtomicBool::new(true),
            keyframe_now: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (joins_tx, joins_rx) = std::sync::mpsc::channel();
        let (reference_in, reference_out) = match config.processing.echo_cancellation {
            true => {
                let (writer, reader) = echo_reference();
                (Some(writer), Some(reader))
            }
            false => (None, None),
        };
        let local = Arc::new(Self {
            config: config.clone(),
            controls: Arc::clone(&controls),
            counters: Arc::new(SendCounters::new()),
            fanout: Arc::new(Fanout::default()),
            speaker: Mutex::new(joins_tx),
            pending_send: Mutex::new(Some(PendingSend {
                video: endpoints.video,
                stamp_clock: endpoints.stamp_clock,
                audio: endpoints.audio,
                reference: reference_out,
            })),
            events: events.clone(),
            local_slot,
            threads: Mutex::new(Vec::new()),
            next_key: AtomicU64::new(1),
        });
        let speaker = Speaker {
            sink: endpoints.sink,
            reference: reference_in,
            joins: joins_rx,
            controls,
            events,
        };
        local.spawn_thread("speaker", move || speaker.run());
        Ok(local)
    }

    /// The media settings of this call or room.
    pub fn config(&self) -> &MediaSettings {
        &self.config
    }

    /// A key for a new peer.
    pub(super) fn new_key(&self) -> PeerKey {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands a peer's audio to the speaker.
    pub(super) fn play(&self, audio: PeerAudio) {
        let speaker = self.speaker.lock().unwrap_or_else(|e| e.into_inner());
        if speaker.send(audio).is_err() {
            warn!("the speaker thread is gone; that peer's audio is not played");
        }
    }

    /// Starts sending to a connected peer, starting capture and encode with the first:
    /// the next video frame is a keyframe (the peer has none yet).
    pub(super) fn attach(&self, key: PeerKey, peer: &PeerSession) {
        let budget = video_budget_kbps(START_ESTIMATE_BPS, self.config.audio_bitrate_kbps, peer);
        self.fanout
            .attach(key, peer.video_writer(), peer.audio_writer(), budget);
        self.controls.keyframe_now.store(true, Ordering::Relaxed);
        self.start_sending();
    }

    /// Stops sending to a peer.
    pub(super) fn detach(&self, key: PeerKey) {
        self.fanout.detach(key);
    }

    /// Records a peer's video budget, RTT and expected loss for the shared encoders.
    pub(super) fn report(&self, key: PeerKey, report: PathReport) {
        self.fanout.report(key, report);
    }

    /// Flags a keyframe request from a peer for the shared encoder.
    pub(super) fn request_keyframe(&self, now: bool) {
        let flag = if now {
            &self.controls.keyframe_now
        } else {
            &self.controls.keyframe
        };
        flag.store(true, Ordering::Relaxed);
    }

    /// Stops or resumes sending microphone audio.
    pub fn set_muted(&self, muted: bool) {
        self.controls.muted.store(muted, Ordering::Relaxed);
    }

    /// Stops or resumes sending video; resuming starts with a keyframe.
    pub fn set_camera(&self, on: bool) {
        let was = self.controls.camera.swap(on, Ordering::Relaxed);
        if on && !was {
            self.controls.keyframe.store(true, Ordering::Relaxed);
        }
        if !on {
            self.local_slot.send_replace(None);
        }
    }

    fn spawn_thread(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        match std::thread::Builder::new().name(name.to_owned()).spawn(f) {
            Ok(handle) => self
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle),
            Err(e) => {
                let _ = self
                    .events
                    .try_send(MediaEvent::Notice(format!("cannot start {name}: {e}")));
            }
        }
    }

    /// Starts capture and sending; later calls do nothing.
    fn start_sending(&self) {
        let pending = self
            .pending_send
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(PendingSend {
            video,
            stamp_clock,
            audio,
            reference,
        }) = pending
        else {
            return;
        };
        if let Some(source) = video {
            self.start_video(source, stamp_clock);
        }
        if let Some(source) = audio {
            self.start_audio(source, reference);
        }
    }

    fn start_video(&self, source: Box<dyn VideoSource>, stamp_clock: bool) {
        // Files keep their own rate; the encoder's rate control must know it.
        let fps = source.fps().unwrap_or(self.config.fps).max(1);
        let settings = EncoderSettings {
            width: self.config.video_size.0,
            height: self.config.video_size.1,
            fps,
            bitrate_kbps: self.config.video_bitrate_kbps,
        };
        // OpenH264 prints a rate-control warning to stderr at creation (we keep every
        // frame on purpose: no frame skipping); both views send stderr to the log.
        match H264Encoder::new(settings) {
            Ok(encoder) => {
                let sender = VideoSender {
                    source,
                    encoder,
                    stamp_clock,
                    fanout: Arc::clone(&self.fanout),
                    local_slot: self.local_slot.clone(),
                    controls: Arc::clone(&self.controls),
                    counters: Arc::clone(&self.counters),
                    events: self.events.clone(),
                    runtime: Handle::current(),
                    nominal_interval: Duration::from_secs(1) / fps,
                };
                self.spawn_thread("video-send", move || sender.run());
            }
            Err(e) => {
                let _ = self.events.try_send(MediaEvent::Notice(format!(
                    "video off: encoder failed: {e}"
                )));
            }
        }
    }

    fn start_audio(&self, source: Box<dyn AudioSource>, reference: Option<ReferenceReader>) {
        let settings = audio::opus::EncoderSettings {
            bitrate_bps: (self.config.audio_bitrate_kbps * 1000) as i32,
            ..Default::default()
        };
        match audio::opus::OpusEncoder::with_settings(settings) {
            Ok(encoder) => {
                let processor = AudioProcessor::new(self.config.processing, reference);
                let sender = AudioSender {
                    source,
                    processor,
                    encoder,
                    fanout: Arc::clone(&self.fanout),
                    controls: Arc::clone(&self.controls),
                    counters: Arc::clone(&self.counters),
                    events: self.events.clone(),
                    runtime: Handle::current(),
                };
                self.spawn_thread("audio-send", move || sender.run());
            }
            Err(e) => {
                let _ = self.events.try_send(MediaEvent::Notice(format!(
                    "audio off: encoder failed: {e}"
                )));
            }
        }
    }

    /// Stops capture, sending and the speaker (finishing the recordings of the peers
    /// still attached) and waits for their threads, at most 3 s.
    pub async fn close(&self) {
        self.controls.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                let name = t.thread().name().unwrap_or("media").to_owned();
                if t.join().is_err() {
                    warn!("{name} thread panicked");
                }
            }
        });
        if tokio::time::timeout(Duration::from_secs(3), joined)
            .await
            .is_err()
        {
            warn!("media threads did not stop within 3 s");
        }
        self.local_slot.send_replace(None);
    }
}
