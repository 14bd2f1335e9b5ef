//! One peer's media: its PeerConnection, the receive side (video jitter buffer and
//! decoder to its display slot and recording; its audio to the shared speaker), its
//! keyframe requests and stats. What we send it comes from the [`LocalMedia`] it is
//! attached to once connected.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::fanout::PeerKey;
use super::receive::{PeerAudio, VideoReceiver};
use super::record::VideoRecorder;
use super::{
    LocalMedia, MediaEvent, ReceiveControls, ReceiveCounters, fill_pipeline_stats, peer_config,
    report_stats, send_keyframe_requests, send_nacks,
};
use crate::call::CallStats;
use crate::call::peer::{PeerEvent, PeerSession};
use crate::config::IceServerConfig;
use crate::media::audio;
use crate::media::audio::FRAME_SAMPLES;
use crate::media::video::FrameSender;
use crate::media::video::jitter::KeyframeRequest;

/// How long sending waits, after the PeerConnection connects, for the peer to show it
/// holds the DTLS keys before it starts anyway (a peer that sends nothing, not even a
/// DataChannel): a few RTTs of a slow path, and short enough that such a peer sees our
/// video within a second of connecting.
const PEER_SECURED_WAIT: Duration = Duration::from_secs(1);

/// Where a peer's received media is recorded: its video as Y4M, its audio as WAV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// The Y4M file for the decoded video.
    pub video: Option<PathBuf>,
    /// The WAV file for the decoded audio (before mixing).
    pub audio: Option<PathBuf>,
}

/// The media of one peer of a call or room.
pub struct PeerMedia {
    key: PeerKey,
    peer: Arc<PeerSession>,
    local: Arc<LocalMedia>,
    controls: Arc<ReceiveControls>,
    counters: Arc<ReceiveCounters>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The task that starts sending once the peer can decrypt it ([`Self::start_sending`]).
    sending: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Closed by the speaker once this peer's audio recording is finished.
    audio_finished: Option<oneshot::Receiver<()>>,
}

impl PeerMedia {
    /// Builds the PeerConnection with `local`'s settings (and `extra_ice_servers`, such
    /// as the ones the server handed out) and starts the receive side;
    /// events (connection state, stats once a second, notices) go to `events`. Sending
    /// starts with [`PeerMedia::start_sending`] once connected.
    ///
    /// # Errors
    /// A recording that cannot be created, or a PeerConnection that cannot be built.
    pub async fn start(
        local: &Arc<LocalMedia>,
        extra_ice_servers: &[IceServerConfig],
        remote_slot: FrameSender,
        recording: Recording,
        events: mpsc::Sender<MediaEvent>,
    ) -> anyhow::Result<Self> {
        let audio_recorder = match &recording.audio {
            Some(path) => Some(
                audio::wav::WavWriter::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => None,
        };
        let (peer_tx, peer_rx) = mpsc::channel(64);
        let mut config = peer_config(local.config());
        config
            .ice_servers
            .extend(extra_ice_servers.iter().cloned().map(Into::into));
        let (peer, remote) = PeerSession::new(&config, peer_tx).await?;
        let peer = Arc::new(peer);
        let key = local.new_key();
        let controls = Arc::new(ReceiveControls::default());
        let counters = Arc::new(ReceiveCounters::new());
        let (finished_tx, finished_rx) = oneshot::channel();
        let mut media = Self {
            key,
            peer: Arc::clone(&peer),
            local: Arc::clone(local),
            controls: Arc::clone(&controls),
            counters: Arc::clone(&counters),
            threads: Vec::new(),
            tasks: Vec::new(),
            sending: std::sync::Mutex::new(None),
            audio_finished: Some(finished_rx),
        };
        media.tasks.push(tokio::spawn(forward_peer_events(
            peer_rx,
            Arc::clone(local),
            events.clone(),
        )));
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        media.tasks.push(tokio::spawn(send_keyframe_requests(
            Arc::clone(&peer),
            requests_rx,
        )));
        let (repairs_tx, repairs_rx) = mpsc::unbounded_channel();
        media
            .tasks
            .push(tokio::spawn(send_nacks(Arc::clone(&peer), repairs_rx)));
        let receiver = VideoReceiver {
            packets: remote.video,
            remote_slot,
            recorder: recording.video.map(VideoRecorder::new),
            keyframe_requests: requests_tx,
            start_repairs: repairs_tx,
            controls: Arc::clone(&controls),
            counters: Arc::clone(&counters),
            events: events.clone(),
            runtime: Handle::current(),
        };
        match std::thread::Builder::new()
            .name("video-receive".into())
            .spawn(move || receiver.run())
        {
            Ok(handle) => media.threads.push(handle),
            Err(e) => {
                let _ = events.try_send(MediaEvent::Notice(format!(
                    "cannot start video-receive: {e}"
                )));
            }
        }
        let decoder = audio::opus::OpusDecoder::new().context("cannot decode audio")?;
        local.play(PeerAudio {
            packets: remote.audio,
            recorder: audio_recorder,
            controls: Arc::clone(&controls),
            counters: Arc::clone(&counters),
            events: events.clone(),
            finished: Some(finished_tx),
            jitter: audio::jitter::JitterBuffer::new(),
            decoder,
            decoded: VecDeque::with_capacity(4 * FRAME_SAMPLES),
            started: false,
        });
        media.tasks.push(tokio::spawn(report_stats(
            Arc::clone(&peer),
            Arc::clone(local),
            key,
            counters,
            events,
        )));
        Ok(media)
    }

    /// The PeerConnection, for SDP and ICE.
    pub fn peer(&self) -> &PeerSession {
        &self.peer
    }

    /// Starts sending our media to this peer (and capture with the first peer); called
    /// when its PeerConnection connects. Sending begins once the peer can decrypt it
    /// ([`PeerSession::wait_peer_secured`], at most `PEER_SECURED_WAIT`, 1 s), so the first
    /// frame, a keyframe, is not dropped by a peer still finishing its DTLS handshake.
    /// Calling it again (a reconnection) only asks for a keyframe.
    pub fn start_sending(&self) {
        let (local, peer, key) = (Arc::clone(&self.local), Arc::clone(&self.peer), self.key);
        let task = tokio::spawn(async move {
            if !peer.wait_peer_secured(PEER_SECURED_WAIT).await {
                debug!("nothing from the peer under the DTLS keys yet; sending anyway");
            }
            local.attach(key, &peer);
        });
        let mut sending = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(earlier) = sending.replace(task) {
            earlier.abort();
        }
    }

    /// The level of this peer's audio as played, dBFS (-127 for silence): the speaking
    /// indicator.
    pub fn audio_level_dbfs(&self) -> f64 {
        self.counters.level_in_dbfs()
    }

    /// The cumulative figures now (rates are zero): the last word on a call, taken
    /// just before it closes.
    pub async fn final_stats(&self) -> CallStats {
        let mut stats = CallStats::from_peer(&self.peer.stats().await, None);
        fill_pipeline_stats(&mut stats, &self.local.counters, &self.counters);
        stats
    }

    /// Throws away the video decoder's state, as after a decoder fault: the remote
    /// picture blanks and resumes with the next keyframe, which a PLI asks for at once.
    pub fn restart_video_decoder(&self) {
        self.controls.restart_decoder.store(true, Ordering::Relaxed);
    }

    /// Stops sending to this peer, stops its receive threads and tasks, closes the
    /// PeerConnection, and waits (at most 3 s) for its recordings to be finished.
    pub async fn close(mut self) {
        let sending = self.sending.lock().map(|mut s| s.take()).ok().flatten();
        if let Some(task) = sending {
            // Finished, not only aborted, before the detach: it must not attach after.
            task.abort();
            let _ = task.await;
        }
        self.local.detach(self.key);
        self.controls.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.peer.close().await;
        let threads = std::mem::take(&mut self.threads);
        let audio_finished = self.audio_finished.take();
        let joined = async move {
            let threads = tokio::task::spawn_blocking(move || {
                for t in threads {
                    if t.join().is_err() {
                        warn!("video-receive thread panicked");
                    }
                }
            });
            let _ = threads.await;
            if let Some(done) = audio_finished {
                // An error only says the speaker let the sender go: finished either way.
                let _ = done.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(3), joined)
            .await
            .is_err()
        {
            warn!("a peer's media did not stop within 3 s");
        }
        debug!(key = self.key, "peer media closed");
    }
}

/// Keyframe requests go straight to the shared encoder; every other event of the
/// PeerConnection goes on to the controller.
async fn forward_peer_events(
    mut peer_rx: mpsc::Receiver<PeerEvent>,
    local: Arc<LocalMedia>,
    events: mpsc::Sender<MediaEvent>,
) {
    while let Some(ev) = peer_rx.recv().await {
        if let PeerEvent::KeyframeRequested(request) = ev {
            debug!(?request, "the peer asked for a keyframe");
            local.request_keyframe(request == KeyframeRequest::Fir);
            continue;
        }
        if events.send(MediaEvent::Peer(ev)).await.is_err() {
            return;
        }
    }
}
