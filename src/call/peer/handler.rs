//! webrtc's event callbacks, turned into [`PeerEvent`]s and remote-track forwarding loops.
//!
//! The callbacks run on webrtc's driver task, so none of them waits: events go through an
//! unbounded internal channel (they are few: candidates and state changes) to a task that
//! forwards them to the caller's bounded channel, and remote tracks get their own loops.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::chat::{CHAT_LABEL, ChatSlot};
use super::codecs::{AUDIO_CLOCK_RATE_HZ, VIDEO_CLOCK_RATE_HZ};
use super::files::{self, FILE_LABEL, FilePolicy};
use super::media::{
    ReceivedCounters, RedPayloadType, RemoteTrackFormat, RtpPacket, forward_remote_track,
};
use super::{FailedStage, PeerEvent};
use crate::signaling::protocol::IceCandidate;
use webrtc::data_channel::DataChannel;

/// The remote video track, kept to send PLIs on.
pub(crate) struct RemoteVideo {
    pub(crate) track: Arc<dyn TrackRemote>,
    pub(crate) ssrc: u32,
}

/// State shared by the session, its handler and its background tasks.
pub(crate) struct Shared {
    events: mpsc::UnboundedSender<PeerEvent>,
    /// Latest PeerConnection state, for the connect deadline.
    pub(crate) state: watch::Sender<RTCPeerConnectionState>,
    /// Whether candidate gathering of the current ICE generation is complete.
    pub(crate) gathered: watch::Sender<bool>,
    /// Set once `Failed` was reported for the current connection attempt.
    failed_reported: AtomicBool,
    /// Whether ICE has reached `connected` (or `completed`) in this session, so a
    /// failure before the connection came up was DTLS's, not ICE's.
    ice_was_connected: AtomicBool,
    /// Whether the PeerConnection has been `connected` (ICE and DTLS) in this session.
    was_connected: AtomicBool,
    /// Set once something the peer sent under the DTLS keys reached us (its first RTP
    /// packet, or a DataChannel): the peer holds the keys and decrypts what we send.
    pub(crate) peer_secured: watch::Sender<bool>,
    /// Set by `close`; silences every later event.
    pub(crate) closed: AtomicBool,
    video_tx: mpsc::Sender<RtpPacket>,
    audio_tx: mpsc::Sender<RtpPacket>,
    pub(crate) video_in: Arc<ReceivedCounters>,
    pub(crate) audio_in: Arc<ReceivedCounters>,
    /// The payload type of the peer's RED audio, as the SDP negotiated it.
    pub(crate) audio_red: Arc<RedPayloadType>,
    pub(crate) remote_video: Mutex<Option<RemoteVideo>>,
    pub(crate) pli_sent: AtomicU64,
    /// The FIR sequence number of our next Full Intra Request (RFC 5104 §4.3.1.1).
    pub(crate) fir_sequence: AtomicU8,
    pub(crate) keyframe_requests: AtomicU64,
    /// `a=ice-ufrag` of our current local description, stamped on trickled candidates so
    /// the peer can tell ICE generations apart (RFC 8838 §4.1).
    pub(crate) local_ufrag: Mutex<Option<String>>,
    /// The connect deadline in milliseconds (`CONNECT_TIMEOUT` unless changed).
    pub(crate) connect_timeout_ms: AtomicU64,
    /// Background tasks, aborted on close.
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The chat DataChannel, once opened (offerer) or announced (answerer).
    pub(crate) chat: ChatSlot,
    /// What to do with files the peer sends.
    pub(crate) file_policy: FilePolicy,
}

impl Shared {
    pub(crate) fn new(
        events: mpsc::UnboundedSender<PeerEvent>,
        video_tx: mpsc::Sender<RtpPacket>,
        audio_tx: mpsc::Sender<RtpPacket>,
        file_policy: FilePolicy,
    ) -> Self {
        Self {
            events,
            state: watch::Sender::new(RTCPeerConnectionState::New),
            gathered: watch::Sender::new(false),
            failed_reported: AtomicBool::new(false),
            ice_was_connected: AtomicBool::new(false),
            was_connected: AtomicBool::new(false),
            peer_secured: watch::Sender::new(false),
            closed: AtomicBool::new(false),
            video_tx,
            audio_tx,
            video_in: Arc::default(),
            audio_in: Arc::default(),
            audio_red: Arc::default(),
            remote_video: Mutex::new(None),
            pli_sent: AtomicU64::new(0),
            fir_sequence: AtomicU8::new(0),
            keyframe_requests: AtomicU64::new(0),
            local_ufrag: Mutex::new(None),
            connect_timeout_ms: AtomicU64::new(super::CONNECT_TIMEOUT.as_millis() as u64),
            tasks: Mutex::new(Vec::new()),
            chat: ChatSlot::default(),
            file_policy,
        }
    }

    /// Emits an event unless the session is closed.
    pub(crate) fn emit(&self, event: PeerEvent) {
        if !self.closed.load(Ordering::Acquire) {
            // The receiver lives as long as the forwarding task; after that nobody listens.
            let _ = self.events.send(event);
        }
    }

    /// Records that the peer holds the DTLS keys (see [`Self::peer_secured`]).
    pub(crate) fn mark_peer_secured(&self) {
        self.peer_secured
            .send_if_modified(|secured| !std::mem::replace(secured, true));
    }

    /// Emits `Failed` once per connection attempt, with the stage it stopped at: DTLS
    /// when ICE had connected but the connection never came up.
    pub(crate) fn report_failed(&self, why: &str) {
        if !self.failed_reported.swap(true, Ordering::AcqRel) {
            let dtls = self.ice_was_connected.load(Ordering::Acquire)
                && !self.was_connected.load(Ordering::Acquire);
            let stage = if dtls {
                FailedStage::Dtls
            } else {
                FailedStage::Ice
            };
            tracing::warn!(why, ?stage, "peer connection failed");
            self.emit(PeerEvent::Failed(stage));
        }
    }

    /// Keeps a background task so `close` can abort it.
    pub(crate) fn keep(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }
}

/// The [`PeerConnectionEventHandler`] of one session.
pub(crate) struct PeerHandler {
    pub(crate) shared: Arc<Shared>,
}

impl PeerHandler {
    async fn start_remote_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
        let track_id = track.track_id().await;
        tracing::info!(%kind, ssrc, %track_id, "remote track");
        let shared = &self.shared;
        // Its first packet came through SRTP: the peer has the keys.
        shared.mark_peer_secured();
        let task = match kind {
            RtpCodecKind::Video => {
                if let Ok(mut slot) = shared.remote_video.lock() {
                    *slot = Some(RemoteVideo {
                        track: track.clone(),
                        ssrc,
                    });
                }
                let bye = shared.clone();
                tokio::spawn(forward_remote_track(
                    track,
                    RemoteTrackFormat {
                        clock_rate_hz: VIDEO_CLOCK_RATE_HZ,
                        frames_by_marker: true,
                        red: None,
                    },
                    shared.video_tx.clone(),
                    shared.video_in.clone(),
                    move || bye.emit(PeerEvent::Goodbye),
                ))
            }
            RtpCodecKind::Audio => {
                let bye = shared.clone();
                tokio::spawn(forward_remote_track(
                    track,
                    RemoteTrackFormat {
                        clock_rate_hz: AUDIO_CLOCK_RATE_HZ,
                        frames_by_marker: false,
                        red: Some(shared.audio_red.clone()),
                    },
                    shared.audio_tx.clone(),
                    shared.audio_in.clone(),
                    move || bye.emit(PeerEvent::Goodbye),
                ))
            }
            other => {
                tracing::warn!(kind = %other, "ignoring a remote track of unexpected kind");
                return;
            }
        };
        shared.keep(task);
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.shared.emit(PeerEvent::LocalCandidate(IceCandidate {
                candidate: init.candidate,
                // webrtc 0.21 leaves the mid empty; an empty `sdpMid` is invalid for
                // browsers, so send none and let `sdp_mline_index` place it.
                sdp_mid: init.sdp_mid.filter(|mid| !mid.is_empty()),
                sdp_mline_index: init.sdp_mline_index,
                username_fragment: init
                    .username_fragment
                    .or_else(|| self.shared.local_ufrag.lock().ok().and_then(|u| u.clone())),
            })),
            Err(e) => tracing::warn!(error = %e, "cannot serialize a local ICE candidate"),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        tracing::debug!(%state, "ICE gathering");
        self.shared
            .gathered
            .send_replace(state == RTCIceGatheringState::Complete);
        if state == RTCIceGatheringState::Complete {
            self.shared.emit(PeerEvent::EndOfCandidates);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(%state, "ICE connection state");
        if matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        ) {
            self.shared.ice_was_connected.store(true, Ordering::Release);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::info!(%state, "peer connection state");
        self.shared.state.send_replace(state);
        match state {
            RTCPeerConnectionState::Connected => {
                self.shared.failed_reported.store(false, Ordering::Release);
                self.shared.was_connected.store(true, Ordering::Release);
                self.shared.emit(PeerEvent::Connected);
            }
            // Never connected yet ICE had (only then can it drop): DTLS did not finish.
            // webrtc 0.21 leaves the state at `connecting` when the DTLS handshake gives
            // up ("invalid state machine transition"); the peer's ICE then goes quiet.
            RTCPeerConnectionState::Disconnected
                if !self.shared.was_connected.load(Ordering::Acquire) =>
            {
                self.shared
                    .report_failed("ICE dropped before the DTLS handshake completed");
            }
            RTCPeerConnectionState::Disconnected => self.shared.emit(PeerEvent::Disconnected),
            RTCPeerConnectionState::Failed => self.shared.report_failed("ICE or DTLS failed"),
            RTCPeerConnectionState::Closed => self.shared.emit(PeerEvent::Closed),
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.start_remote_track(track).await;
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        // The peer's DataChannel open came through SCTP over DTLS: it has the keys.
        self.shared.mark_peer_secured();
        match channel.label().await {
            Ok(label) if label == CHAT_LABEL => {
                self.shared
                    .chat
                    .adopt(channel, Arc::clone(&self.shared))
                    .await;
            }
            Ok(label) if label == FILE_LABEL => {
                let policy = self.shared.file_policy.clone();
                let task = tokio::spawn(files::receive(channel, policy, Arc::clone(&self.shared)));
                self.shared.keep(task);
            }
            Ok(label) => tracing::debug!(%label, "ignoring a DataChannel we do not speak"),
            Err(e) => tracing::debug!("a DataChannel without a label: {e}"),
        }
    }
}
