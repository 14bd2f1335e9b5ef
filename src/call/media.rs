//! The media pipeline of one call: sources → encoders → tracks, and tracks →
//! decoders → display, speaker and recordings, around one [`PeerSession`].
//!
//! Threads, not tasks, carry the real-time work (ARCHITECTURE): capture+encode per
//! kind, video assembly+decode, audio jitter buffer+decode+playout. They talk to the
//! async side only through lock-free flags, bounded channels and latest-frame slots,
//! and never wait on a slower consumer.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::CallStats;
use super::peer::{
    AudioTrackWriter, PeerConfig, PeerEvent, PeerSession, RemoteMedia, RtpPacket, TrackWriteError,
    VideoTrackWriter,
};
use crate::config::MediaSettings;
use crate::media::audio::{self, AudioFrame, AudioSink, AudioSource, FRAME_SAMPLES};
use crate::media::spec::VideoSourceSpec;
use crate::media::video::assemble::H264FrameAssembler;
use crate::media::video::decode::H264Decoder;
use crate::media::video::encode::{EncoderSettings, H264Encoder};
use crate::media::video::pattern::{COUNTER_MODULUS, read_counter, stamp_counter};
use crate::media::video::scale::Scaler;
use crate::media::video::source::open_video_source;
use crate::media::video::y4m::{FrameRate, Y4mReader, Y4mWriter};
use crate::media::video::{FrameSender, I420Frame, VideoSource};

/// The PeerConnection settings of a call's media: its ICE servers and bind addresses.
fn peer_config(settings: &MediaSettings) -> PeerConfig {
    PeerConfig {
        ice_servers: settings
            .ice_servers
            .iter()
            .cloned()
            .map(Into::into)
            .collect(),
        bind: settings.bind.clone(),
    }
}

/// Checks at start-up, before a call is placed or awaited, that the sources and sinks
/// the settings name exist: a named camera, microphone or speaker, readable Y4M and WAV
/// files, and recording paths in an existing directory. A typo fails at once instead
/// of at the first accepted call.
///
/// # Errors
/// The first problem found, naming the flag and what exists.
pub fn check_media(settings: &MediaSettings) -> anyhow::Result<()> {
    use crate::media::audio::device::{Direction, find_device};
    use crate::media::spec::{AudioSinkSpec, AudioSourceSpec};
    match &settings.camera {
        VideoSourceSpec::Device(selector) => {
            crate::media::video::camera::check_camera(selector).context("--camera")?;
        }
        VideoSourceSpec::File(path) => {
            Y4mReader::open(path).with_context(|| format!("--camera file:{}", path.display()))?;
        }
        VideoSourceSpec::Auto | VideoSourceSpec::TestPattern | VideoSourceSpec::None => {}
    }
    match &settings.mic {
        AudioSourceSpec::Device(selector) => {
            find_device(Direction::Input, selector).context("--mic")?;
        }
        AudioSourceSpec::File(path) => {
            audio::wav::read_mono(path)
                .with_context(|| format!("--mic file:{}", path.display()))?;
        }
        AudioSourceSpec::Auto | AudioSourceSpec::Tone | AudioSourceSpec::None => {}
    }
    if let AudioSinkSpec::Device(selector) = &settings.speaker {
        find_device(Direction::Output, selector).context("--speaker")?;
    }
    let recordings = [
        ("--record-video", &settings.record_video),
        ("--record-audio", &settings.record_audio),
    ];
    for (flag, path) in recordings {
        if let Some(path) = path {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                anyhow::bail!("{flag}: the directory of {} does not exist", path.display());
            }
        }
    }
    Ok(())
}

/// The latest-frame slots the view reads.
#[derive(Debug, Clone)]
pub struct VideoSlots {
    /// Decoded remote video.
    pub remote: FrameSender,
    /// Our own outgoing video (self-view).
    pub local: FrameSender,
}

impl VideoSlots {
    /// Two fresh slots; the receivers come from `remote.subscribe()` / `local.subscribe()`.
    pub fn new() -> Self {
        Self {
            remote: tokio::sync::watch::channel(None).0,
            local: tokio::sync::watch::channel(None).0,
        }
    }
}

impl Default for VideoSlots {
    fn default() -> Self {
        Self::new()
    }
}

/// What the media pipeline tells the controller.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// From the PeerConnection.
    Peer(PeerEvent),
    /// Once a second while the call is up.
    Stats(CallStats),
    /// A source fell back, a device failed, a file could not be written: the call goes on.
    Notice(String),
}

/// Flags the controller flips and the pipeline threads read.
#[derive(Debug)]
struct Controls {
    /// Microphone muted: capture goes on, nothing is sent.
    muted: AtomicBool,
    /// Camera on: video is sent.
    camera: AtomicBool,
    /// The peer asked for a keyframe (PLI/FIR), or video resumed.
    keyframe: AtomicBool,
    /// Drop the video decoder's state and start over from the next keyframe.
    restart_decoder: AtomicBool,
    /// Media threads end.
    stop: AtomicBool,
}

/// Figures only the pipeline knows, read by the stats task.
#[derive(Debug, Default)]
struct Counters {
    frames_decoded: AtomicU64,
    keyframes_sent: AtomicU64,
    /// Decoded size as `width << 32 | height`; 0 before the first frame.
    video_size_in: AtomicU64,
    /// dBFS as `f64::to_bits`.
    level_out: AtomicU64,
    level_in: AtomicU64,
    /// Latest glass-to-glass latency read from a test-pattern clock stamp, µs; 0 = none.
    glass_to_glass_us: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        let c = Self::default();
        c.level_out.store(SILENCE_DBFS.to_bits(), Ordering::Relaxed);
        c.level_in.store(SILENCE_DBFS.to_bits(), Ordering::Relaxed);
        c
    }
}

/// The level reported for silence or no audio, dBFS.
const SILENCE_DBFS: f64 = -127.0;

/// Shortest interval between two PLIs we send (the issue: at most one per 500 ms).
pub const PLI_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The sources and sinks of a call, opened before the connection so a bad path or
/// device fails the call at once.
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

/// Sources opened at the start, waiting for the connection.
struct PendingSend {
    video: Option<Box<dyn VideoSource>>,
    stamp_clock: bool,
    audio: Option<Box<dyn AudioSource>>,
}

/// The media of one call.
pub struct MediaCall {
    peer: Arc<PeerSession>,
    controls: Arc<Controls>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
    /// Sources waiting for the connection; taken by [`MediaCall::start_sending`].
    /// (In a mutex only so the call is `Sync`; it is touched once.)
    pending_send: std::sync::Mutex<Option<PendingSend>>,
    config: MediaSettings,
    local_slot: FrameSender,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MediaCall {
    /// Opens sources and sinks, builds the PeerConnection and starts the receive side.
    /// Sending starts with [`MediaCall::start_sending`] once connected.
    ///
    /// # Errors
    /// A source or sink that cannot be opened, a recording that cannot be created, or a
    /// PeerConnection that cannot be built.
    pub async fn start(
        config: &MediaSettings,
        slots: &VideoSlots,
        events: mpsc::Sender<MediaEvent>,
    ) -> anyhow::Result<Self> {
        let open_config = config.clone();
        let endpoints = tokio::task::spawn_blocking(move || open_endpoints(&open_config))
            .await
            .context("opening media panicked")??;
        for notice in &endpoints.notices {
            let _ = events.try_send(MediaEvent::Notice(notice.clone()));
        }
        let video_recorder = config.record_video.clone().map(VideoRecorder::new);
        let audio_recorder = match &config.record_audio {
            Some(path) => Some(
                audio::wav::WavWriter::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => None,
        };

        let (peer_tx, mut peer_rx) = mpsc::channel(64);
        let (peer, remote) = PeerSession::new(&peer_config(config), peer_tx).await?;
        let peer = Arc::new(peer);
        let controls = Arc::new(Controls {
            muted: AtomicBool::new(false),
            camera: AtomicBool::new(true),
            keyframe: AtomicBool::new(true),
            restart_decoder: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let counters = Arc::new(Counters::new());
        let mut call = Self {
            peer: Arc::clone(&peer),
            controls: Arc::clone(&controls),
            counters: Arc::clone(&counters),
            events: events.clone(),
            pending_send: std::sync::Mutex::new(Some(PendingSend {
                video: endpoints.video,
                stamp_clock: endpoints.stamp_clock,
                audio: endpoints.audio,
            })),
            config: config.clone(),
            local_slot: slots.local.clone(),
            threads: Vec::new(),
            tasks: Vec::new(),
        };

        // Peer events: keyframe requests go straight to the encoder flag.
        let forward_controls = Arc::clone(&controls);
        let forward_events = events.clone();
        call.tasks.push(tokio::spawn(async move {
            while let Some(ev) = peer_rx.recv().await {
                if ev == PeerEvent::KeyframeRequested {
                    forward_controls.keyframe.store(true, Ordering::Relaxed);
                    continue;
                }
                if forward_events.send(MediaEvent::Peer(ev)).await.is_err() {
                    return;
                }
            }
        }));
        call.start_receiving(
            remote,
            slots.remote.clone(),
            video_recorder,
            audio_recorder,
            endpoints.sink,
        );
        Ok(call)
    }

    /// The PeerConnection, for SDP and ICE.
    pub fn peer(&self) -> &PeerSession {
        &self.peer
    }

    fn spawn_thread(&mut self, name: &str, f: impl FnOnce() + Send + 'static) {
        match std::thread::Builder::new().name(name.to_owned()).spawn(f) {
            Ok(handle) => self.threads.push(handle),
            Err(e) => {
                let _ = self
                    .events
                    .try_send(MediaEvent::Notice(format!("cannot start {name}: {e}")));
            }
        }
    }

    fn start_receiving(
        &mut self,
        remote: RemoteMedia,
        remote_slot: FrameSender,
        recorder: Option<VideoRecorder>,
        audio_recorder: Option<audio::wav::WavWriter>,
        sink: Box<dyn AudioSink>,
    ) {
        let (pli_tx, pli_rx) = mpsc::unbounded_channel();
        self.tasks
            .push(tokio::spawn(send_plis(Arc::clone(&self.peer), pli_rx)));
        let receiver = VideoReceiver {
            packets: remote.video,
            remote_slot,
            recorder,
            pli: pli_tx,
            controls: Arc::clone(&self.controls),
            counters: Arc::clone(&self.counters),
            events: self.events.clone(),
            runtime: Handle::current(),
        };
        self.spawn_thread("video-receive", move || receiver.run());
        let playout = AudioPlayout {
            packets: remote.audio,
            sink,
            recorder: audio_recorder,
            controls: Arc::clone(&self.controls),
            counters: Arc::clone(&self.counters),
            events: self.events.clone(),
        };
        self.spawn_thread("audio-playout", move || playout.run());
        self.tasks.push(tokio::spawn(report_stats(
            Arc::clone(&self.peer),
            Arc::clone(&self.counters),
            self.events.clone(),
        )));
    }

    /// Starts capture and sending; called when the PeerConnection first connects, so the
    /// first frame (a keyframe) is not lost to a handshake in progress. Later calls do
    /// nothing.
    pub fn start_sending(&mut self) {
        let pending = self
            .pending_send
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(PendingSend {
            video,
            stamp_clock,
            audio,
        }) = pending
        else {
            return;
        };
        let runtime = Handle::current();
        if let Some(source) = video {
            // Files keep their own rate; the encoder's rate control must know it.
            let fps = source.fps().unwrap_or(self.config.fps).max(1);
            let settings = EncoderSettings {
                width: self.config.video_size.0,
                height: self.config.video_size.1,
                fps,
                bitrate_kbps: self.config.video_bitrate_kbps,
            };
            // OpenH264 prints a rate-control warning to stderr at creation (we keep every
            // frame on purpose: no frame skipping); keep it off the terminal.
            match crate::stderr::silenced(|| H264Encoder::new(settings)) {
                Ok(encoder) => {
                    let sender = VideoSender {
                        source,
                        encoder,
                        stamp_clock,
                        writer: self.peer.video_writer(),
                        local_slot: self.local_slot.clone(),
                        controls: Arc::clone(&self.controls),
                        counters: Arc::clone(&self.counters),
                        events: self.events.clone(),
                        runtime: runtime.clone(),
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
        if let Some(source) = audio {
            let settings = audio::opus::EncoderSettings {
                bitrate_bps: (self.config.audio_bitrate_kbps * 1000) as i32,
                ..Default::default()
            };
            match audio::opus::OpusEncoder::with_settings(settings) {
                Ok(encoder) => {
                    let sender = AudioSender {
                        source,
                        encoder,
                        writer: self.peer.audio_writer(),
                        controls: Arc::clone(&self.controls),
                        counters: Arc::clone(&self.counters),
                        events: self.events.clone(),
                        runtime,
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
    }

    /// The cumulative figures now (rates are zero): the last word on a call, taken
    /// just before it closes.
    pub async fn final_stats(&self) -> CallStats {
        let mut stats = CallStats::from_peer(&self.peer.stats().await, None);
        fill_pipeline_stats(&mut stats, &self.counters);
        stats
    }

    /// Throws away the video decoder's state, as after a decoder fault: the remote
    /// picture blanks and resumes with the next keyframe, which a PLI asks for at once.
    pub fn restart_video_decoder(&self) {
        self.controls.restart_decoder.store(true, Ordering::Relaxed);
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

    /// Stops every thread and task, closes the PeerConnection, and waits for the
    /// receive side to finish its recordings.
    pub async fn close(mut self) {
        self.controls.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.peer.close().await;
        let threads = std::mem::take(&mut self.threads);
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
        info!("media closed");
    }
}

/// Sends at most one PLI per [`PLI_MIN_INTERVAL`], however often the decoder asks.
async fn send_plis(peer: Arc<PeerSession>, mut requests: mpsc::UnboundedReceiver<()>) {
    let mut last: Option<tokio::time::Instant> = None;
    while requests.recv().await.is_some() {
        if let Some(at) = last {
            tokio::time::sleep_until(at + PLI_MIN_INTERVAL).await;
        }
        while requests.try_recv().is_ok() {}
        if let Err(e) = peer.send_pli().await {
            debug!("PLI not sent: {e}");
        }
        last = Some(tokio::time::Instant::now());
    }
}

/// Emits a [`MediaEvent::Stats`] once a second.
async fn report_stats(
    peer: Arc<PeerSession>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut prev = peer.stats().await;
    loop {
        tick.tick().await;
        let now = peer.stats().await;
        let mut stats = CallStats::from_peer(&now, Some(&prev));
        fill_pipeline_stats(&mut stats, &counters);
        prev = now;
        if events.send(MediaEvent::Stats(stats)).await.is_err() {
            return;
        }
    }
}

fn fill_pipeline_stats(stats: &mut CallStats, c: &Counters) {
    stats.frames_decoded = c.frames_decoded.load(Ordering::Relaxed);
    stats.keyframes_sent = c.keyframes_sent.load(Ordering::Relaxed);
    let size = c.video_size_in.load(Ordering::Relaxed);
    stats.video_size_in = (size != 0).then_some([(size >> 32) as u32, size as u32]);
    stats.audio_level_out_dbfs = f64::from_bits(c.level_out.load(Ordering::Relaxed));
    stats.audio_level_in_dbfs = f64::from_bits(c.level_in.load(Ordering::Relaxed));
    let g2g = c.glass_to_glass_us.load(Ordering::Relaxed);
    stats.glass_to_glass_ms = (g2g != 0).then(|| g2g as f64 / 1000.0);
}

/// Milliseconds of the wall clock modulo the test pattern's counter range: what the
/// test pattern stamps at capture and the receiver compares after decode (both ends on
/// one machine share the clock).
fn clock_stamp_ms(at: SystemTime) -> u32 {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    (ms % u128::from(COUNTER_MODULUS)) as u32
}

/// Glass-to-glass latency from a clock stamp read back at `now`; `None` when the stamp
/// is not plausible (not a test pattern, or a stale frame).
fn glass_to_glass(stamp: u32, now: SystemTime) -> Option<Duration> {
    let elapsed = clock_stamp_ms(now).wrapping_sub(stamp) % COUNTER_MODULUS;
    (elapsed < 10_000).then(|| Duration::from_millis(u64::from(elapsed)))
}

struct VideoSender {
    source: Box<dyn VideoSource>,
    encoder: H264Encoder,
    stamp_clock: bool,
    writer: VideoTrackWriter,
    local_slot: FrameSender,
    controls: Arc<Controls>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
    runtime: Handle,
    nominal_interval: Duration,
}

impl VideoSender {
    fn run(mut self) {
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

struct AudioSender {
    source: Box<dyn AudioSource>,
    encoder: audio::opus::OpusEncoder,
    writer: AudioTrackWriter,
    controls: Arc<Controls>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
    runtime: Handle,
}

impl AudioSender {
    fn run(mut self) {
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

/// Writes decoded remote frames to a Y4M file. The header needs the frame rate, so the
/// file is created at the second frame, from the RTP timestamps of the first two.
struct VideoRecorder {
    path: PathBuf,
    first: Option<(I420Frame, u32)>,
    writer: Option<Y4mWriter>,
    failed: bool,
}

impl VideoRecorder {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            first: None,
            writer: None,
            failed: false,
        }
    }

    fn write(&mut self, frame: &I420Frame, rtp_timestamp: u32) -> anyhow::Result<()> {
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

    fn finish(&mut self) {
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

struct VideoReceiver {
    packets: mpsc::Receiver<RtpPacket>,
    remote_slot: FrameSender,
    recorder: Option<VideoRecorder>,
    pli: mpsc::UnboundedSender<()>,
    controls: Arc<Controls>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
    runtime: Handle,
}

impl VideoReceiver {
    fn run(mut self) {
        let mut decoder = match H264Decoder::new() {
            Ok(d) => d,
            Err(e) => {
                let _ = self
                    .events
                    .try_send(MediaEvent::Notice(format!("cannot decode video: {e}")));
                return;
            }
        };
        let mut assembler = H264FrameAssembler::new();
        // Until a keyframe arrives (at the start, and after a loss) P-frames are skipped.
        let mut need_keyframe = true;
        while !self.controls.stop.load(Ordering::Relaxed) {
            let next = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), self.packets.recv()).await
            });
            if self.controls.restart_decoder.swap(false, Ordering::Relaxed) {
                match H264Decoder::new() {
                    Ok(fresh) => decoder = fresh,
                    Err(e) => warn!("cannot restart the video decoder: {e}"),
                }
                info!("video decoder restarted; requesting a keyframe");
                // Nothing decodes until the keyframe: the display blanks instead of freezing.
                self.remote_slot.send_replace(None);
                need_keyframe = true;
                let _ = self.pli.send(());
            }
            let packet = match next {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(p)) => p,
            };
            let assembled = assembler.push(
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
                &packet.payload,
            );
            if let Some(corruption) = assembled.corruption {
                debug!("video: {corruption}; requesting a keyframe");
                need_keyframe = true;
                let _ = self.pli.send(());
            }
            let Some(au) = assembled.access_unit else {
                continue;
            };
            if need_keyframe && !au.keyframe {
                let _ = self.pli.send(());
                continue;
            }
            match decoder.decode(&au.annexb) {
                Ok(Some(frame)) => {
                    need_keyframe = false;
                    self.on_decoded(frame, au.rtp_timestamp);
                }
                Ok(None) => {}
                Err(e) => {
                    debug!("video decode failed: {e}; requesting a keyframe");
                    need_keyframe = true;
                    let _ = self.pli.send(());
                }
            }
        }
        if let Some(r) = &mut self.recorder {
            r.finish();
        }
        self.remote_slot.send_replace(None);
    }

    fn on_decoded(&mut self, frame: I420Frame, rtp_timestamp: u32) {
        let c = &self.counters;
        c.frames_decoded.fetch_add(1, Ordering::Relaxed);
        c.video_size_in.store(
            (u64::from(frame.width()) << 32) | u64::from(frame.height()),
            Ordering::Relaxed,
        );
        if let Some(latency) =
            read_counter(&frame).and_then(|s| glass_to_glass(s, SystemTime::now()))
        {
            c.glass_to_glass_us
                .store((latency.as_micros() as u64).max(1), Ordering::Relaxed);
            debug!(
                latency_ms = latency.as_secs_f64() * 1000.0,
                "glass-to-glass"
            );
        }
        if let Some(r) = &mut self.recorder
            && let Err(e) = r.write(&frame, rtp_timestamp)
        {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "video recording stopped: {e:#}"
            )));
        }
        self.remote_slot.send_replace(Some(Arc::new(frame)));
    }
}

struct AudioPlayout {
    packets: mpsc::Receiver<RtpPacket>,
    sink: Box<dyn AudioSink>,
    recorder: Option<audio::wav::WavWriter>,
    controls: Arc<Controls>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
}

impl AudioPlayout {
    fn run(mut self) {
        let mut decoder = match audio::opus::OpusDecoder::new() {
            Ok(d) => d,
            Err(e) => {
                let _ = self
                    .events
                    .try_send(MediaEvent::Notice(format!("cannot decode audio: {e}")));
                return;
            }
        };
        let mut jitter = audio::jitter::JitterBuffer::new();
        let mut pacer = crate::media::video::pacer::Pacer::new(Duration::from_millis(20));
        let mut frame: AudioFrame = [0.0; FRAME_SAMPLES];
        let mut started = false;
        while !self.controls.stop.load(Ordering::Relaxed) {
            pacer.wait();
            let now = Instant::now();
            loop {
                match self.packets.try_recv() {
                    Ok(p) => {
                        started = true;
                        jitter.push(p.sequence_number, p.timestamp, p.payload.clone(), p.arrival);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.finish();
                        return;
                    }
                }
            }
            if !started {
                continue;
            }
            let decoded = match jitter.pop(now) {
                audio::jitter::Playout::Packet(p) => decoder.decode(&p, &mut frame),
                audio::jitter::Playout::Fec(next) => decoder.decode_fec(&next, &mut frame),
                audio::jitter::Playout::Conceal => decoder.conceal(&mut frame),
                audio::jitter::Playout::Empty => {
                    frame.fill(0.0);
                    Ok(())
                }
            };
            if let Err(e) = decoded {
                debug!("Opus decode failed: {e}; concealing");
                frame.fill(0.0);
            }
            self.play(&frame);
        }
        self.finish();
    }

    fn play(&mut self, frame: &AudioFrame) {
        self.counters
            .level_in
            .store(audio::level_dbfs(frame).to_bits(), Ordering::Relaxed);
        if let Err(e) = self.sink.write_frame(frame) {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "audio output failed ({}: {e:#}); playing to none",
                self.sink.describe()
            )));
            self.sink = Box::new(audio::sink::NullSink);
        }
        if let Some(r) = &mut self.recorder
            && let Err(e) = r.write(frame)
        {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "audio recording stopped: {e:#}"
            )));
            self.recorder = None;
        }
    }

    fn finish(&mut self) {
        if let Some(r) = self.recorder.take()
            && let Err(e) = r.finish()
        {
            warn!("audio recording: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_stamps_measure_latency_across_the_wrap() {
        let t0 = UNIX_EPOCH + Duration::from_millis(u64::from(COUNTER_MODULUS) * 7 - 5);
        let stamp = clock_stamp_ms(t0);
        let later = t0 + Duration::from_millis(12);
        assert_eq!(
            glass_to_glass(stamp, later),
            Some(Duration::from_millis(12))
        );
        assert_eq!(glass_to_glass(stamp, t0 + Duration::from_secs(60)), None);
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
