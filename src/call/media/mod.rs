//! The media pipeline: sources → encoders → every peer's tracks ([`LocalMedia`], one
//! per call or room), and each peer's tracks → decoders → display, speaker and
//! recordings ([`PeerMedia`], one per [`PeerSession`]). [`MediaCall`] is the pair a 1:1
//! call uses.
//!
//! Threads, not tasks, carry the real-time work (ARCHITECTURE): capture+encode per
//! kind (`send`), per peer video assembly+decode, and one speaker thread that runs each
//! peer's audio jitter buffer+decode and mixes them (`receive`). They talk to the async side only through lock-free flags, bounded
//! channels and latest-frame slots, and never wait on a slower consumer. `record`
//! writes the remote video to Y4M, `clock` turns test-pattern stamps into
//! glass-to-glass latency, and `check` vets the sources and sinks at start-up.

mod capacity;
mod check;
pub(crate) mod clock;
mod fanout;
mod local;
mod peer_media;
mod preview;
mod receive;
mod record;
mod send;

use capacity::CapacityMemory;
pub use check::check_media;
use fanout::PathReport;
pub use fanout::PeerKey;
pub use local::LocalMedia;
pub use peer_media::{PeerMedia, Recording};
pub use preview::Preview;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info};

use super::CallStats;
use super::peer::codecs::START_ESTIMATE_BPS;
use super::peer::{PeerConfig, PeerEvent, PeerSession};
use crate::config::MediaSettings;
use crate::media::audio;
use crate::media::audio::opus::ExpectedLoss;
use crate::media::audio::processing::EchoStats;
use crate::media::video::FrameSender;
use crate::media::video::freeze::FreezeDetector;
use crate::media::video::jitter::{KeyframeRequest, VideoJitterStats};
use crate::media::video::ladder::SendTarget;

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
        files: settings.files.clone(),
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

/// Flags the controller flips and the send threads read: one set per [`LocalMedia`].
#[derive(Debug)]
struct SendControls {
    /// Microphone muted: capture goes on, nothing is sent.
    muted: AtomicBool,
    /// Camera on: video is sent.
    camera: AtomicBool,
    /// A peer asked for a keyframe (PLI), or video resumed: the sender sends one once
    /// its last keyframe had time to arrive.
    keyframe: AtomicBool,
    /// A peer asked for a keyframe with a FIR, or a peer was attached: the sender sends
    /// one with its next frame.
    keyframe_now: AtomicBool,
    /// Send threads and the speaker end.
    stop: AtomicBool,
}

/// Flags of one peer's receive side.
#[derive(Debug, Default)]
struct ReceiveControls {
    /// Drop the video decoder's state and start over from the next keyframe.
    restart_decoder: AtomicBool,
    /// The peer's receive threads end, and the speaker lets its audio go.
    stop: AtomicBool,
}

/// Figures only the send threads know, read by every peer's stats task.
#[derive(Debug, Default)]
struct SendCounters {
    keyframes_sent: AtomicU64,
    /// Access units the shared encoder produced.
    frames_encoded: AtomicU64,
    /// dBFS as `f64::to_bits`.
    level_out: AtomicU64,
    /// What the video sender does now: bitrate (kbit/s), size (`width << 32 | height`)
    /// and frame rate.
    video_target_kbps: AtomicU64,
    video_size_out: AtomicU64,
    video_fps_target: AtomicU64,
    /// The echo canceller's ERLE (dB) and residual echo likelihood as `f64::to_bits`,
    /// NaN when it has none; its delay estimate in ms, `i64::MIN` when none.
    echo_erle_db: AtomicU64,
    echo_residual: AtomicU64,
    echo_delay_ms: AtomicI64,
    /// The loss the Opus encoder plans in-band FEC for, percent.
    audio_fec_planned_percent: AtomicU64,
}

impl SendCounters {
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

    /// Publishes the echo canceller's figures.
    fn record_echo(&self, echo: EchoStats) {
        let bits = |v: Option<f64>| v.unwrap_or(f64::NAN).to_bits();
        self.echo_erle_db
            .store(bits(echo.erle_db), Ordering::Relaxed);
        self.echo_residual
            .store(bits(echo.residual_echo_likelihood), Ordering::Relaxed);
        self.echo_delay_ms
            .store(echo.delay_ms.map_or(i64::MIN, i64::from), Ordering::Relaxed);
    }

    /// The echo canceller's figures as last published.
    fn echo(&self) -> EchoStats {
        let value =
            |v: &AtomicU64| Some(f64::from_bits(v.load(Ordering::Relaxed))).filter(|f| !f.is_nan());
        let delay = self.echo_delay_ms.load(Ordering::Relaxed);
        EchoStats {
            erle_db: value(&self.echo_erle_db),
            residual_echo_likelihood: value(&self.echo_residual),
            delay_ms: (delay != i64::MIN).then_some(delay as i32),
        }
    }

    fn new() -> Self {
        let c = Self::default();
        c.level_out.store(SILENCE_DBFS.to_bits(), Ordering::Relaxed);
        c.record_echo(EchoStats::default());
        c
    }
}

/// Figures only one peer's receive side knows, read by its stats task.
#[derive(Debug, Default)]
struct ReceiveCounters {
    frames_decoded: AtomicU64,
    /// Decoded size as `width << 32 | height`; 0 before the first frame.
    video_size_in: AtomicU64,
    /// dBFS as `f64::to_bits`: the level of this peer's audio as played (the speaking
    /// indicator).
    level_in: AtomicU64,
    /// Latest glass-to-glass latency read from a test-pattern clock stamp, µs; 0 = none.
    glass_to_glass_us: AtomicU64,
    /// Audio frames the jitter buffer concealed (loss, underrun, or delay growth).
    audio_concealed: AtomicU64,
    /// Audio frames recovered from the next packet's in-band FEC.
    audio_fec_recovered: AtomicU64,
    /// Audio frames played from a later packet's RED copy.
    audio_red_recovered: AtomicU64,
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
}

impl ReceiveCounters {
    /// Publishes the audio jitter buffer's figures (one store each, every 20 ms).
    fn record_playout(&self, jitter: &audio::jitter::JitterStats, target: Duration) {
        self.audio_concealed
            .store(jitter.concealed, Ordering::Relaxed);
        self.audio_fec_recovered
            .store(jitter.fec_recovered, Ordering::Relaxed);
        self.audio_red_recovered
            .store(jitter.red_recovered, Ordering::Relaxed);
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

    fn new() -> Self {
        let c = Self::default();
        c.level_in.store(SILENCE_DBFS.to_bits(), Ordering::Relaxed);
        c
    }

    /// The level of this peer's audio as played, dBFS.
    fn level_in_dbfs(&self) -> f64 {
        f64::from_bits(self.level_in.load(Ordering::Relaxed))
    }
}

/// The level reported for silence or no audio, dBFS.
const SILENCE_DBFS: f64 = -127.0;

/// Shortest interval between two PLIs we send (the issue: at most one per 500 ms).
pub const PLI_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The media of a 1:1 call: our sources and speaker ([`LocalMedia`]) and the one peer
/// ([`PeerMedia`]), opened and closed together.
pub struct MediaCall {
    local: Arc<LocalMedia>,
    peer: PeerMedia,
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
        let local = LocalMedia::open(config, slots.local.clone(), events.clone()).await?;
        let recording = Recording {
            video: config.record_video.clone(),
            audio: config.record_audio.clone(),
        };
        let peer =
            match PeerMedia::start(&local, &[], slots.remote.clone(), recording, events).await {
                Ok(peer) => peer,
                Err(e) => {
                    local.close().await;
                    return Err(e);
                }
            };
        Ok(Self { local, peer })
    }

    /// The PeerConnection, for SDP and ICE.
    pub fn peer(&self) -> &PeerSession {
        self.peer.peer()
    }

    /// Starts capture and sending; called when the PeerConnection first connects, so the
    /// first frame (a keyframe) is not lost to a handshake in progress. Later calls do
    /// nothing.
    pub fn start_sending(&mut self) {
        self.peer.start_sending();
    }

    /// The cumulative figures now (rates are zero): the last word on a call, taken
    /// just before it closes.
    pub async fn final_stats(&self) -> CallStats {
        self.peer.final_stats().await
    }

    /// Throws away the video decoder's state, as after a decoder fault: the remote
    /// picture blanks and resumes with the next keyframe, which a PLI asks for at once.
    pub fn restart_video_decoder(&self) {
        self.peer.restart_video_decoder();
    }

    /// Stops or resumes sending microphone audio.
    pub fn set_muted(&self, muted: bool) {
        self.local.set_muted(muted);
    }

    /// Stops or resumes sending video; resuming starts with a keyframe.
    pub fn set_camera(&self, on: bool) {
        self.local.set_camera(on);
    }

    /// Stops every thread and task, closes the PeerConnection, and waits for the
    /// receive side to finish its recordings.
    pub async fn close(self) {
        self.peer.close().await;
        self.local.close().await;
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

/// Sends each list of sequence numbers the video receiver asks for as one NACK, at once.
async fn send_nacks(peer: Arc<PeerSession>, mut requests: mpsc::UnboundedReceiver<Vec<u16>>) {
    while let Some(sequence_numbers) = requests.recv().await {
        if let Err(e) = peer.send_nack(&sequence_numbers).await {
            debug!("NACK not sent: {e:#}");
        }
    }
}

/// What a send-bandwidth estimate (bit/s of RTP, GCC) leaves for the video encoder,
/// kbit/s, when the audio goes to `peer` at Opus' `opus_kbps`: audio keeps its share
/// first (its bitrate, times [`audio::red::DISTANCE`] + 1 when it goes as RED, plus ~50
/// headers a second), and video pays [`HEADER_OVERHEAD`] on what remains.
fn video_budget_kbps(estimate_bps: f64, opus_kbps: u32, peer: &PeerSession) -> u64 {
    let copies = if peer.sends_red() {
        audio::red::DISTANCE as u32 + 1
    } else {
        1
    };
    let audio = f64::from(opus_kbps * copies) + AUDIO_HEADER_KBPS;
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
    local: Arc<LocalMedia>,
    key: PeerKey,
    counters: Arc<ReceiveCounters>,
    events: mpsc::Sender<MediaEvent>,
) {
    let audio_kbps = local.config().audio_bitrate_kbps;
    let mut tick = tokio::time::interval(CONTROL_INTERVAL);
    tick.tick().await;
    let mut prev = peer.stats().await;
    let mut capacity = CapacityMemory::default();
    let mut expected_loss = ExpectedLoss::default();
    for n in 1u64.. {
        tick.tick().await;
        let now = peer.stats().await;
        if let Some(rtt) = now.rtt {
            counters
                .rtt_us
                .store(rtt.as_micros() as u64, Ordering::Relaxed);
        }
        if let Some(loss) = now.uplink_loss {
            expected_loss.add(now.at, loss);
        }
        if let Some(estimate) = now.estimate_bps {
            let allowed = capacity.allowed_kbps(estimate / 1000.0, now.rtt, now.at);
            local.report(
                key,
                PathReport {
                    budget_kbps: video_budget_kbps(allowed * 1000.0, audio_kbps, &peer),
                    rtt: now.rtt,
                    expected_loss_percent: expected_loss.percent(),
                },
            );
        }
        if n % STATS_EVERY != 0 {
            continue;
        }
        let mut stats = CallStats::from_peer(&now, Some(&prev));
        fill_pipeline_stats(&mut stats, &local.counters, &counters);
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

/// Our send side's figures (shared by every peer) and one peer's receive side's.
fn fill_pipeline_stats(stats: &mut CallStats, s: &SendCounters, c: &ReceiveCounters) {
    stats.frames_decoded = c.frames_decoded.load(Ordering::Relaxed);
    stats.keyframes_sent = s.keyframes_sent.load(Ordering::Relaxed);
    stats.video_frames_encoded = s.frames_encoded.load(Ordering::Relaxed);
    let size = c.video_size_in.load(Ordering::Relaxed);
    stats.video_size_in = (size != 0).then_some([(size >> 32) as u32, size as u32]);
    stats.audio_level_out_dbfs = f64::from_bits(s.level_out.load(Ordering::Relaxed));
    let echo = s.echo();
    stats.echo_erle_db = echo.erle_db;
    stats.residual_echo_likelihood = echo.residual_echo_likelihood;
    stats.echo_delay_ms = echo.delay_ms;
    stats.audio_level_in_dbfs = c.level_in_dbfs();
    let g2g = c.glass_to_glass_us.load(Ordering::Relaxed);
    stats.glass_to_glass_ms = (g2g != 0).then(|| g2g as f64 / 1000.0);
    stats.audio_concealed_frames = c.audio_concealed.load(Ordering::Relaxed);
    stats.audio_fec_recovered_frames = c.audio_fec_recovered.load(Ordering::Relaxed);
    stats.audio_fec_planned_percent = s.audio_fec_planned_percent.load(Ordering::Relaxed) as u8;
    stats.audio_red_recovered_frames = c.audio_red_recovered.load(Ordering::Relaxed);
    stats.audio_dropped_packets = c.audio_dropped.load(Ordering::Relaxed);
    stats.audio_playout_delay_ms = c.audio_playout_delay_us.load(Ordering::Relaxed) as f64 / 1000.0;
    let ms = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64 / 1000.0;
    stats.video_frames_skipped = c.video_frames_skipped.load(Ordering::Relaxed);
    stats.video_packets_recovered = c.video_packets_recovered.load(Ordering::Relaxed);
    stats.video_jitter_buffer_delay_ms = ms(&c.video_jitter_buffer_delay_us);
    stats.video_playout_delay_ms = ms(&c.video_playout_delay_us);
    stats.freeze_count = c.freeze_count.load(Ordering::Relaxed);
    stats.video_target_kbps = s.video_target_kbps.load(Ordering::Relaxed) as f64;
    let size = s.video_size_out.load(Ordering::Relaxed);
    stats.video_size_out = (size != 0).then_some([(size >> 32) as u32, size as u32]);
    stats.video_fps_target = s.video_fps_target.load(Ordering::Relaxed) as u32;
    stats.total_freezes_duration_s = ms(&c.freezes_total_us) / 1000.0;
}
