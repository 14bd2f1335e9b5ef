//! The media pipeline of one call: sources → encoders → tracks, and tracks →
//! decoders → display, speaker and recordings, around one [`PeerSession`].
//!
//! Threads, not tasks, carry the real-time work (ARCHITECTURE): capture+encode per
//! kind (`send`), video assembly+decode and audio jitter buffer+decode+playout
//! (`receive`). They talk to the async side only through lock-free flags, bounded
//! channels and latest-frame slots, and never wait on a slower consumer. `record`
//! writes the remote video to Y4M, `clock` turns test-pattern stamps into
//! glass-to-glass latency, and `check` vets the sources and sinks at start-up.

mod capacity;
mod check;
mod clock;
mod receive;
mod record;
mod send;

use capacity::CapacityMemory;
pub use check::check_media;
use receive::{AudioPlayout, VideoReceiver};
use record::VideoRecorder;
use send::{AudioSender, VideoSender};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::CallStats;
use super::peer::codecs::START_ESTIMATE_BPS;
use super::peer::{PeerConfig, PeerEvent, PeerSession, RemoteMedia};
use crate::config::MediaSettings;
use crate::media::audio::{self, AudioSink, AudioSource};
use crate::media::spec::VideoSourceSpec;
use crate::media::video::encode::{EncoderSettings, H264Encoder};
use crate::media::video::freeze::FreezeDetector;
use crate::media::video::jitter::{KeyframeRequest, VideoJitterStats};
use crate::media::video::ladder::SendTarget;
use crate::media::video::source::open_video_source;
use crate::media::video::{FrameSender, VideoSource};

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
        max_send_bitrate_kbps: send_budget_kbps(settings),
        ice_transport_policy: settings.ice_transport_policy,
    }
}

/// The RTP bitrate a call may use at most: the configured video and audio bitrates plus
/// [`HEADER_OVERHEAD`] for RTP, SRTP, UDP and IP headers.
fn send_budget_kbps(settings: &MediaSettings) -> u32 {
    let media = settings.video_bitrate_kbps + settings.audio_bitrate_kbps;
    (f64::from(media) * (1.0 + HEADER_OVERHEAD)).round() as u32
}

/// Header bytes per media byte, roughly: 50 Opus packets a second of ~80 bytes carry
/// ~40 bytes of headers each; video packets of ~1100 bytes, about 5 %.
const HEADER_OVERHEAD: f64 = 0.15;

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
    Stats(Box<CallStats>),
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
    /// The peer asked for a keyframe (PLI), or video resumed: the sender sends one once
    /// its last keyframe had time to arrive.
    keyframe: AtomicBool,
    /// The peer asked for a keyframe with a FIR: the sender sends one with its next frame.
    keyframe_now: AtomicBool,
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
    /// Audio frames the jitter buffer concealed (loss, underrun, or delay growth).
    audio_concealed: AtomicU64,
    /// Audio frames recovered from the next packet's in-band FEC.
    audio_fec_recovered: AtomicU64,
    /// Audio packets the jitter buffer dropped (late, duplicate, overflow, delay cut).
    audio_dropped: AtomicU64,
    /// The jitter buffer's target playout delay, µs.
    audio_playout_delay_us: AtomicU64,
    /// Round-trip time of the selected candidate pair, µs (0 before the first figure);
    /// written by the stats task, read by the video jitter buffer.
    rtt_us: AtomicU64,
    /// The video jitter buffer's figures (see [`VideoJitterStats`]).
    video_frames_skipped: AtomicU64,
    video_packets_recovered: AtomicU64,
    /// Mean W3C `jitterBufferDelay` per released frame, µs.
    video_jitter_buffer_delay_us: AtomicU64,
    /// The video playout delay in force, µs.
    video_playout_delay_us: AtomicU64,
    /// W3C `freezeCount` and `totalFreezesDuration` (µs) of the displayed video.
    freeze_count: AtomicU64,
    freezes_total_us: AtomicU64,
    /// What the congestion controller leaves for video, kbit/s (0: no estimate yet);
    /// written by the stats task, read by the video sender.
    video_budget_kbps: AtomicU64,
    /// What the video sender does now: bitrate (kbit/s), size (`width << 32 | height`)
    /// and frame rate.
    video_target_kbps: AtomicU64,
    video_size_out: AtomicU64,
    video_fps_target: AtomicU64,
}

impl Counters {
    /// Publishes the audio jitter buffer's figures (one store each, every 20 ms).
    fn record_playout(&self, jitter: &audio::jitter::JitterStats, target: Duration) {
        self.audio_concealed
            .store(jitter.concealed, Ordering::Relaxed);
        self.audio_fec_recovered
            .store(jitter.fec_recovered, Ordering::Relaxed);
        let dropped = jitter.late + jitter.duplicates + jitter.overflow_dropped;
        self.audio_dropped.store(dropped, Ordering::Relaxed);
        self.audio_playout_delay_us
            .store(target.as_micros() as u64, Ordering::Relaxed);
    }

    /// Publishes the video jitter buffer's and the display's figures.
    fn record_video_receive(&self, jitter: &VideoJitterStats, freezes: &FreezeDetector) {
        self.video_frames_skipped
            .store(jitter.frames_skipped, Ordering::Relaxed);
        self.video_packets_recovered
            .store(jitter.packets_recovered, Ordering::Relaxed);
        let mean_delay_s = jitter.jitter_buffer_delay_s / jitter.frames_released.max(1) as f64;
        self.video_jitter_buffer_delay_us
            .store((mean_delay_s * 1e6) as u64, Ordering::Relaxed);
        self.video_playout_delay_us
            .store((jitter.target_delay_ms * 1000.0) as u64, Ordering::Relaxed);
        self.freeze_count.store(freezes.count(), Ordering::Relaxed);
        self.freezes_total_us
            .store(freezes.total().as_micros() as u64, Ordering::Relaxed);
    }

    /// Publishes the video sender's current target.
    fn record_send_target(&self, target: SendTarget) {
        let rung = target.rung;
        self.video_target_kbps
            .store(u64::from(target.bitrate_kbps), Ordering::Relaxed);
        self.video_size_out.store(
            (u64::from(rung.width) << 32) | u64::from(rung.height),
            Ordering::Relaxed,
        );
        self.video_fps_target
            .store(u64::from(rung.fps), Ordering::Relaxed);
    }

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
            keyframe_now: AtomicBool::new(false),
            restart_decoder: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let counters = Arc::new(Counters::new());
        // Until the congestion controller reports, video gets what its start estimate leaves.
        counters.video_budget_kbps.store(
            video_budget_kbps(START_ESTIMATE_BPS, config.audio_bitrate_kbps),
            Ordering::Relaxed,
        );
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
                if let PeerEvent::KeyframeRequested(request) = ev {
                    debug!(?request, "the peer asked for a keyframe");
                    let flag = match request {
                        KeyframeRequest::Pli => &forward_controls.keyframe,
                        KeyframeRequest::Fir => &forward_controls.keyframe_now,
                    };
                    flag.store(true, Ordering::Relaxed);
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
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        self.tasks.push(tokio::spawn(send_keyframe_requests(
            Arc::clone(&self.peer),
            requests_rx,
        )));
        let receiver = VideoReceiver {
            packets: remote.video,
            remote_slot,
            recorder,
            keyframe_requests: requests_tx,
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
            self.config.audio_bitrate_kbps,
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
            // frame on purpose: no frame skipping); both views send stderr to the log.
            match H264Encoder::new(settings) {
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

/// Sends at most one keyframe request (PLI or FIR) per [`PLI_MIN_INTERVAL`], however
/// often the decoder asks; the latest request's kind goes out. Requests made while
/// waiting out the interval are dropped: the keyframe they asked for may have arrived
/// meanwhile, and a receiver still without one asks again with its next packet.
async fn send_keyframe_requests(
    peer: Arc<PeerSession>,
    mut requests: mpsc::UnboundedReceiver<KeyframeRequest>,
) {
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        if let Some(at) = last {
            tokio::time::sleep_until(at + PLI_MIN_INTERVAL).await;
            while requests.try_recv().is_ok() {}
        }
        let Some(mut request) = requests.recv().await else {
            return;
        };
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        match peer.send_keyframe_request(request).await {
            Ok(()) => debug!(?request, "keyframe request sent"),
            Err(e) => debug!("{request:?} not sent: {e}"),
        }
        last = Some(tokio::time::Instant::now());
    }
}

/// What a send-bandwidth estimate (bit/s of RTP, GCC) leaves for the video encoder,
/// kbit/s: audio keeps its share first (its bitrate plus ~50 headers a second), and
/// video pays [`HEADER_OVERHEAD`] on what remains.
fn video_budget_kbps(estimate_bps: f64, audio_kbps: u32) -> u64 {
    let audio = f64::from(audio_kbps) + AUDIO_HEADER_KBPS;
    let video = (estimate_bps / 1000.0 - audio) / (1.0 + HEADER_OVERHEAD);
    video.max(0.0) as u64
}

/// RTP, SRTP and UDP/IP headers of 50 Opus packets a second (about 40 bytes each).
const AUDIO_HEADER_KBPS: f64 = 16.0;

/// How often the congestion controller's estimate is handed to the video sender (and
/// the RTT to the jitter buffer): the encoder must follow a falling estimate before a
/// bottleneck's queue overflows.
const CONTROL_INTERVAL: Duration = Duration::from_millis(250);

/// Stats events go out every this many control intervals: once a second.
const STATS_EVERY: u64 = 4;

/// Hands the estimate (capped by the link capacity learnt from congestion, see
/// [`CapacityMemory`]) and the RTT on every [`CONTROL_INTERVAL`] and emits a
/// [`MediaEvent::Stats`] once a second.
async fn report_stats(
    peer: Arc<PeerSession>,
    counters: Arc<Counters>,
    events: mpsc::Sender<MediaEvent>,
    audio_kbps: u32,
) {
    let mut tick = tokio::time::interval(CONTROL_INTERVAL);
    tick.tick().await;
    let mut prev = peer.stats().await;
    let mut capacity = CapacityMemory::default();
    for n in 1u64.. {
        tick.tick().await;
        let now = peer.stats().await;
        if let Some(rtt) = now.rtt {
            counters
                .rtt_us
                .store(rtt.as_micros() as u64, Ordering::Relaxed);
        }
        if let Some(estimate) = now.estimate_bps {
            let allowed =
                capacity.allowed_kbps(estimate / 1000.0, now.rtt, std::time::Instant::now());
            counters.video_budget_kbps.store(
                video_budget_kbps(allowed * 1000.0, audio_kbps),
                Ordering::Relaxed,
            );
        }
        if n % STATS_EVERY != 0 {
            continue;
        }
        let mut stats = CallStats::from_peer(&now, Some(&prev));
        fill_pipeline_stats(&mut stats, &counters);
        prev = now;
        if events
            .send(MediaEvent::Stats(Box::new(stats)))
            .await
            .is_err()
        {
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
    stats.audio_concealed_frames = c.audio_concealed.load(Ordering::Relaxed);
    stats.audio_fec_recovered_frames = c.audio_fec_recovered.load(Ordering::Relaxed);
    stats.audio_dropped_packets = c.audio_dropped.load(Ordering::Relaxed);
    stats.audio_playout_delay_ms = c.audio_playout_delay_us.load(Ordering::Relaxed) as f64 / 1000.0;
    let ms = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64 / 1000.0;
    stats.video_frames_skipped = c.video_frames_skipped.load(Ordering::Relaxed);
    stats.video_packets_recovered = c.video_packets_recovered.load(Ordering::Relaxed);
    stats.video_jitter_buffer_delay_ms = ms(&c.video_jitter_buffer_delay_us);
    stats.video_playout_delay_ms = ms(&c.video_playout_delay_us);
    stats.freeze_count = c.freeze_count.load(Ordering::Relaxed);
    stats.video_target_kbps = c.video_target_kbps.load(Ordering::Relaxed) as f64;
    let size = c.video_size_out.load(Ordering::Relaxed);
    stats.video_size_out = (size != 0).then_some([(size >> 32) as u32, size as u32]);
    stats.video_fps_target = c.video_fps_target.load(Ordering::Relaxed) as u32;
    stats.total_freezes_duration_s = ms(&c.freezes_total_us) / 1000.0;
}
