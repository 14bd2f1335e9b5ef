//! One call's WebRTC PeerConnection (webrtc 0.21): tracks, SDP offer/answer, trickle ICE,
//! ICE restart, keyframe requests and stats.
//!
//! The caller creates the SDP offer, the callee answers; ICE candidates trickle both ways
//! through the signaling server (RFC 8838). Media is DTLS-SRTP over one bundled ICE
//! transport (RFC 8829). Each session sends one H.264 video track and one Opus audio track,
//! each with a UUID track id, and hands the peer's RTP to the media pipeline through
//! [`RemoteMedia`].
//!
//! - [`config`]: ICE servers and bind addresses.
//! - [`codecs`]: the codec table that makes offers and answers a browser accepts.
//! - [`rtcp`]: the interceptor that delivers PLI/FIR to us.
//! - [`media`]: sample writers, remote RTP forwarding, RFC 3550 reception statistics.
//! - `handler`: webrtc's callbacks turned into [`PeerEvent`]s.

pub mod chat;
pub mod codecs;
pub mod config;
pub mod dtls_role;
pub mod files;
mod handler;
pub mod link_rate;
pub mod loss_based;
pub mod media;
pub mod nack;
pub mod pacing;
pub mod packet_map;
mod path;
#[cfg(test)]
mod report_fixture;
pub mod rtcp;
pub mod start_ramp;
pub mod turn_check;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{Mutex, mpsc};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCIceCandidateInit, RTCPeerConnectionState, RTCSdpType,
    RTCSessionDescription, SettingEngineBuilder, StatsSelector,
};

pub use config::{IceServer, IceTransportPolicy, PeerConfig, PeerConfigError};
pub use media::{AudioTrackWriter, RemoteMedia, RtpPacket, TrackWriteError, VideoTrackWriter};

use crate::call::stats::{PeerStats, ReceivedStats, SentStats, TrackStats};
use crate::media::video::jitter::KeyframeRequest;
use crate::signaling::protocol::IceCandidate;
use handler::{PeerHandler, Shared};
use loss_based::LossCell;
use media::{LocalTrack, ReceivedCounters};
use nack::RttCell;

/// How long after ICE starts the controlling side may nominate a pair whose less
/// preferred end is server-reflexive, peer-reflexive or relayed (host pairs: at once).
///
/// The nomination in webrtc 0.21 is final, so these give better pairs a head start; its
/// defaults (pion's: 500 ms, 1 s, 2 s) made a relayed call take 3.0 s to connect and a
/// srflx one 0.8 s in the NAT lab (BENCHMARKS "Calls across NATs"). A host pair on a LAN
/// answers within milliseconds and a srflx pair within one round trip, so shorter waits
/// keep the better path in practice and take the relay when it is the only one.
pub const ACCEPTANCE_MIN_WAIT: AcceptanceWaits = AcceptanceWaits {
    srflx: Duration::from_millis(150),
    prflx: Duration::from_millis(300),
    relay: Duration::from_millis(500),
};

/// Minimum waits before nominating a pair by candidate type (see [`ACCEPTANCE_MIN_WAIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptanceWaits {
    /// Server-reflexive (STUN) candidates.
    pub srflx: Duration,
    /// Peer-reflexive candidates (learnt from an incoming check).
    pub prflx: Duration,
    /// Relayed (TURN) candidates.
    pub relay: Duration,
}

/// How long ICE and DTLS may take to connect (or reconnect after an ICE restart) before
/// the call ends with `ice-failed` (the requirement).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest wait for local candidate gathering before an SDP offer or answer goes out
/// without the candidates still missing (they trickle after it). Host candidates take
/// a few milliseconds; STUN ones may take longer and simply trickle.
pub const GATHER_WAIT: Duration = Duration::from_millis(100);

/// Longest wait for the RTCP BYE to be queued when the call ends.
pub const GOODBYE_WAIT: Duration = Duration::from_millis(100);
/// Time left for the queued BYE to leave before the connection closes.
const GOODBYE_FLUSH: Duration = Duration::from_millis(20);

/// Bytes a DataChannel may hold unsent before `send` waits: the flow control of file
/// transfers (1 MiB, the high-water mark of webrtc's flow-control example and pion's).
const DATA_CHANNEL_SEND_BUFFER_BYTES: usize = 1 << 20;

/// Remote video RTP packets buffered for the pipeline: about two keyframes at 720p.
pub const REMOTE_VIDEO_QUEUE: usize = 512;
/// Remote audio RTP packets buffered for the pipeline: 2.56 s of 20 ms Opus packets.
pub const REMOTE_AUDIO_QUEUE: usize = 128;

/// Where a connection attempt stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStage {
    /// ICE never found a working candidate pair (no path between the peers).
    Ice,
    /// ICE connected but the DTLS handshake did not complete: rtc-dtls gives up after
    /// 7 retransmissions of a flight (`DEFAULT_MAXIMUM_RETRANSMIT_NUMBER`, not
    /// configurable in 0.21), which heavy loss can exhaust.
    Dtls,
}

/// What the PeerConnection tells the call controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A local ICE candidate, to trickle to the peer through the server.
    LocalCandidate(IceCandidate),
    /// Local candidate gathering finished for this ICE generation (RFC 8838 §4.4).
    EndOfCandidates,
    /// ICE and DTLS are up: media flows.
    Connected,
    /// Connectivity was lost; the controller shows `reconnecting` and calls
    /// [`PeerSession::restart_ice`] (the offerer does; see there).
    Disconnected,
    /// ICE/DTLS failed, or did not (re)connect within [`CONNECT_TIMEOUT`]; where it
    /// stopped. The controller ends the call `ice-failed`, or, for a DTLS handshake that
    /// gave up before the call ever connected, starts over with a fresh connection.
    Failed(FailedStage),
    /// The connection was closed.
    Closed,
    /// The peer asked for a keyframe (PLI or FIR) on our video track.
    KeyframeRequested(KeyframeRequest),
    /// The chat DataChannel opened: [`PeerSession::send_chat`] works from now on.
    ChatOpen,
    /// A chat message from the peer (UTF-8, at most [`chat::CHAT_MAX_BYTES`]).
    Chat(String),
    /// A chat message from the peer was dropped; why.
    ChatDropped(String),
    /// News of a file transfer, either way.
    File(files::TransferUpdate),
    /// The peer left the call: its RTCP BYE (RFC 3550 §6.6) came over the media path,
    /// which works while the signaling server is away.
    Goodbye,
}

/// Negotiation state, behind one lock so offer/answer and candidate handling never race.
#[derive(Default)]
struct Negotiation {
    /// Our tracks have been added to the PeerConnection.
    tracks_added: bool,
    /// We opened the chat DataChannel (the offerer does, before its first offer).
    chat_opened: bool,
    /// Remote candidates that arrived before the description they belong to.
    pending_candidates: Vec<RTCIceCandidateInit>,
}

/// The WebRTC side of one call. Dropping it without [`close`](Self::close) leaves webrtc
/// to tear the connection down on its own; call `close` for a prompt, clean end.
pub struct PeerSession {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    video: Arc<LocalTrack>,
    audio: Arc<LocalTrack>,
    negotiation: Mutex<Negotiation>,
    /// The selected pair's RTT, for the NACK generator's retry pacing.
    rtt: RttCell,
    /// RTP packets retransmitted on the peer's NACKs.
    retransmissions: Arc<AtomicU64>,
    /// The share of our packets the peer's TWCC feedback reports lost.
    uplink_loss: LossCell,
}

impl PeerSession {
    /// Builds the PeerConnection: our codecs, the default interceptors plus the keyframe
    /// request forwarder, mDNS off (never needed, and it fails where there is no multicast
    /// interface: FIELD-NOTES), host candidates on `config.bind`.
    ///
    /// Events go to `events`; remote RTP to the returned [`RemoteMedia`].
    ///
    /// # Errors
    /// A bad ICE server ([`PeerConfigError`]), or webrtc failing to bind the sockets.
    pub async fn new(
        config: &PeerConfig,
        events: mpsc::Sender<PeerEvent>,
    ) -> anyhow::Result<(Self, RemoteMedia)> {
        config.validate()?;
        let rtt = RttCell::default();
        let retransmissions = Arc::new(AtomicU64::new(0));
        let uplink_loss = LossCell::default();
        let (media_engine, registry) = codecs::media_engine(
            Registry::new(),
            f64::from(config.max_send_bitrate_kbps) * 1000.0,
            rtt.clone(),
            Arc::clone(&retransmissions),
            uplink_loss.clone(),
        )?;
        let registry = registry.with(
            rtcp::KEYFRAME_REQUEST_FORWARDER_SLOT,
            rtcp::keyframe_request_forwarder(),
        );
        let waits = ACCEPTANCE_MIN_WAIT;
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_srflx_acceptance_min_wait(Some(waits.srflx))
            .with_prflx_acceptance_min_wait(Some(waits.prflx))
            .with_relay_acceptance_min_wait(Some(waits.relay))
            .build();

        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let (video_tx, video_rx) = mpsc::channel(REMOTE_VIDEO_QUEUE);
        let (audio_tx, audio_rx) = mpsc::channel(REMOTE_AUDIO_QUEUE);
        let shared = Arc::new(Shared::new(
            internal_tx,
            video_tx,
            audio_tx,
            config.files.clone(),
        ));
        shared.keep(tokio::spawn(forward_events(internal_rx, events)));

        let pc = PeerConnectionBuilder::new()
            .with_configuration(config.rtc_configuration())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(PeerHandler {
                shared: shared.clone(),
            }))
            .with_udp_addrs(config.udp_addrs())
            .with_data_channel_send_buffer_limit(DATA_CHANNEL_SEND_BUFFER_BYTES)
            .build()
            .await
            .with_context(|| format!("building the peer connection on {:?}", config.udp_addrs()))?;

        let stream_id = uuid::Uuid::new_v4().to_string();
        let video = LocalTrack::new(&stream_id, RtpCodecKind::Video, codecs::h264_codec())
            .context("creating the video track")?;
        let audio = LocalTrack::new(&stream_id, RtpCodecKind::Audio, codecs::opus_codec())
            .context("creating the audio track")?;
        let session = Self {
            pc: Arc::new(pc),
            shared,
            video: Arc::new(video),
            audio: Arc::new(audio),
            negotiation: Mutex::new(Negotiation::default()),
            rtt,
            retransmissions,
            uplink_loss,
        };
        let remote = RemoteMedia {
            video: video_rx,
            audio: audio_rx,
        };
        Ok((session, remote))
    }

    /// Caller: adds our tracks, creates the SDP offer and sets it as the local description.
    /// Candidates then trickle as [`PeerEvent::LocalCandidate`]. Starts the connect deadline.
    ///
    /// # Errors
    /// webrtc refusing the offer (e.g. in the wrong signaling state).
    pub async fn create_offer(&self) -> anyhow::Result<String> {
        let mut negotiation = self.negotiation.lock().await;
        if !negotiation.tracks_added {
            self.add_tracks(&mut negotiation).await?;
            self.prefer_red().await?;
        }
        if !negotiation.chat_opened {
            let channel = self
                .pc
                .create_data_channel(chat::CHAT_LABEL, None)
                .await
                .context("opening the chat DataChannel")?;
            self.shared
                .chat
                .adopt(channel, Arc::clone(&self.shared))
                .await;
            negotiation.chat_opened = true;
        }
        let sdp = self.offer(None).await?;
        self.arm_connect_deadline();
        Ok(sdp)
    }

    /// Callee (or either side on a renegotiation such as an ICE restart): applies the
    /// peer's SDP offer, adds our tracks if not yet added (after the remote description and
    /// before the answer, so the offer's transceivers are reused: FIELD-NOTES), and returns
    /// the SDP answer, already set as the local description.
    ///
    /// # Errors
    /// Unparseable SDP, or an offer with nothing we can negotiate.
    pub async fn accept_offer(&self, sdp: &str) -> anyhow::Result<String> {
        codecs::check_common_codecs(sdp)?;
        let mut negotiation = self.negotiation.lock().await;
        let offer =
            RTCSessionDescription::offer(sdp.to_owned()).context("parsing the SDP offer")?;
        self.pc
            .set_remote_description(offer)
            .await
            .context("applying the remote SDP offer")?;
        self.shared.audio_red.set(codecs::red_payload_type(sdp));
        self.add_tracks(&mut negotiation).await?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .context("creating the SDP answer")?;
        let sdp = answer.sdp.clone();
        self.remember_local_ufrag(&sdp);
        self.shared.gathered.send_replace(false);
        self.pc
            .set_local_description(answer)
            .await
            .context("setting the local SDP answer")?;
        self.renegotiated().await;
        self.flush_candidates(&mut negotiation).await;
        self.arm_connect_deadline();
        Ok(self.with_gathered_candidates(sdp).await)
    }

    /// Caller: applies the peer's SDP answer to our offer.
    ///
    /// # Errors
    /// Unparseable SDP, or an answer that does not fit our offer.
    pub async fn accept_answer(&self, sdp: &str) -> anyhow::Result<()> {
        codecs::check_common_codecs(sdp)?;
        let mut negotiation = self.negotiation.lock().await;
        let answer =
            RTCSessionDescription::answer(sdp.to_owned()).context("parsing the SDP answer")?;
        self.pc
            .set_remote_description(answer)
            .await
            .context("applying the remote SDP answer")?;
        self.shared.audio_red.set(codecs::red_payload_type(sdp));
        self.renegotiated().await;
        self.flush_candidates(&mut negotiation).await;
        Ok(())
    }

    /// Adds a candidate trickled by the peer. One that arrives before the description it
    /// belongs to (the answer, when candidates overtake it) is kept until that arrives.
    ///
    /// # Errors
    /// A candidate line webrtc cannot parse or use.
    pub async fn add_remote_candidate(&self, candidate: &IceCandidate) -> anyhow::Result<()> {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate.clone(),
            sdp_mid: candidate.sdp_mid.clone(),
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment.clone(),
            url: None,
        };
        let mut negotiation = self.negotiation.lock().await;
        if self.awaiting_remote_description().await {
            negotiation.pending_candidates.push(init);
            return Ok(());
        }
        if self.is_stale(&init).await {
            tracing::debug!(candidate = %init.candidate, "ignoring a candidate of an earlier ICE generation");
            return Ok(());
        }
        self.pc
            .add_ice_candidate(init)
            .await
            .with_context(|| format!("adding remote ICE candidate {:?}", candidate.candidate))
    }

    /// Starts an ICE restart (RFC 8445 §9): returns a new SDP offer with fresh ICE
    /// credentials, set as the local description; send it like the first offer and apply
    /// the answer with [`accept_answer`](Self::accept_answer). Re-arms the connect deadline.
    ///
    /// Only one side should restart (the original caller), or the two offers collide.
    ///
    /// # Errors
    /// webrtc refusing the offer (e.g. while another offer is outstanding).
    pub async fn restart_ice(&self) -> anyhow::Result<String> {
        let _negotiation = self.negotiation.lock().await;
        self.pc.restart_ice().await.context("restarting ICE")?;
        let sdp = self
            .offer(Some(RTCOfferOptions { ice_restart: true }))
            .await?;
        self.arm_connect_deadline();
        Ok(sdp)
    }

    /// The writer for our H.264 video track.
    pub fn video_writer(&self) -> VideoTrackWriter {
        VideoTrackWriter(self.video.clone())
    }

    /// True when our audio goes out as RED (RFC 2198): the SDP negotiated it first. The
    /// audio then takes [`crate::media::audio::red::DISTANCE`] + 1 times Opus' bitrate.
    pub fn sends_red(&self) -> bool {
        self.audio.sends_red()
    }

    /// The writer for our Opus audio track.
    pub fn audio_writer(&self) -> AudioTrackWriter {
        AudioTrackWriter(self.audio.clone())
    }

    /// Asks the peer for a keyframe: an RTCP PLI (RFC 4585 §6.3.1) for its video track.
    ///
    /// # Errors
    /// No remote video track yet, or the connection is gone.
    pub async fn send_keyframe_request(&self, request: KeyframeRequest) -> anyhow::Result<()> {
        let (track, media_ssrc) = self.remote_video()?;
        let packet: Box<dyn rtc::rtcp::Packet> = match request {
            KeyframeRequest::Pli => Box::new(PictureLossIndication {
                sender_ssrc: self.video.ssrc,
                media_ssrc,
            }),
            KeyframeRequest::Fir => Box::new(FullIntraRequest {
                sender_ssrc: self.video.ssrc,
                media_ssrc,
                fir: vec![FirEntry {
                    ssrc: media_ssrc,
                    // RFC 5104 §4.3.1.1: one more for each new request.
                    sequence_number: self.shared.fir_sequence.fetch_add(1, Ordering::Relaxed),
                }],
            }),
        };
        track
            .write_rtcp(vec![packet])
            .await
            .with_context(|| format!("sending a {request:?}"))?;
        self.shared.pli_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Asks the peer to send the packets of its video stream with these sequence numbers
    /// again: one RTCP Generic NACK (RFC 4585 §6.2.1).
    ///
    /// # Errors
    /// No remote video track yet, or the connection is gone.
    pub async fn send_nack(&self, sequence_numbers: &[u16]) -> anyhow::Result<()> {
        let (track, media_ssrc) = self.remote_video()?;
        let nack = TransportLayerNack {
            sender_ssrc: self.video.ssrc,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(sequence_numbers),
        };
        track
            .write_rtcp(vec![Box::new(nack)])
            .await
            .context("sending a NACK")
    }

    /// The remote video track and its SSRC.
    fn remote_video(&self) -> anyhow::Result<(Arc<dyn TrackRemote>, u32)> {
        let slot = self
            .shared
            .remote_video
            .lock()
            .map_err(|_| anyhow!("remote video slot poisoned"))?;
        let remote = slot
            .as_ref()
            .ok_or_else(|| anyhow!("no remote video track yet"))?;
        Ok((remote.track.clone(), remote.ssrc))
    }

    /// Starts sending the file at `path` on a DataChannel of its own; its progress and
    /// outcome come as [`PeerEvent::File`].
    ///
    /// # Errors
    /// The DataChannel could not be opened (the connection is gone).
    pub async fn send_file(&self, path: PathBuf) -> anyhow::Result<()> {
        let channel = self
            .pc
            .create_data_channel(files::FILE_LABEL, None)
            .await
            .context("opening a file DataChannel")?;
        let task = tokio::spawn(files::send(channel, path, Arc::clone(&self.shared)));
        self.shared.keep(task);
        Ok(())
    }

    /// Sends a chat message over the chat DataChannel.
    ///
    /// # Errors
    /// Over [`chat::CHAT_MAX_BYTES`], the channel not open, or failing.
    pub async fn send_chat(&self, text: &str) -> Result<(), chat::ChatError> {
        self.shared.chat.send(text).await
    }

    /// Tells the peer over the media path that we are leaving: an RTCP BYE (RFC 3550
    /// §6.6) for both our SSRCs. Best effort, bounded by [`GOODBYE_WAIT`]: the signaling
    /// `hangup` is the other way the peer learns it, and either may be missing.
    async fn send_goodbye(&self) {
        let track = self
            .shared
            .remote_video
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(|r| r.track.clone()));
        let Some(track) = track else {
            return;
        };
        let bye = Goodbye {
            sources: vec![self.video.ssrc, self.audio.ssrc],
            reason: Bytes::from_static(b"hangup"),
        };
        let sent = tokio::time::timeout(GOODBYE_WAIT, track.write_rtcp(vec![Box::new(bye)])).await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("RTCP BYE not sent");
            return;
        }
        // write_rtcp queues; give the driver a moment to put it on the wire before close.
        tokio::time::sleep(GOODBYE_FLUSH).await;
    }

    /// A snapshot of the connection's counters: candidate-pair RTT and packets sent from
    /// webrtc's stats; frames, bytes, loss and jitter (converted from RTP units to ms) from
    /// our own counting, since webrtc 0.21 leaves the remote-side figures empty.
    pub async fn stats(&self) -> PeerStats {
        let now = Instant::now();
        let report = self.pc.get_stats(now, StatsSelector::None).await;
        let pairs: Vec<_> = report.candidate_pairs().collect();
        let rtt_secs = pairs
            .iter()
            .filter(|p| p.nominated)
            .chain(pairs.iter())
            .map(|p| p.current_round_trip_time)
            .find(|rtt| rtt.is_finite() && *rtt > 0.0);
        let mut packets_sent = [0u64; 2];
        let mut estimate_bps: f64 = 0.0;
        for out in report.outbound_rtp_streams() {
            let stream = &out.sent_rtp_stream_stats;
            let slot = match stream.rtp_stream_stats.kind {
                RtpCodecKind::Video => 0,
                _ => 1,
            };
            packets_sent[slot] += stream.packets_sent;
            // One estimate for the whole connection, copied onto every stream.
            estimate_bps = estimate_bps.max(out.target_bitrate);
        }
        let rtt = rtt_secs.map(Duration::from_secs_f64);
        if let Some(rtt) = rtt {
            self.rtt.set(rtt);
        }
        PeerStats {
            at: now,
            rtt,
            video: track_stats(&self.video, packets_sent[0], &self.shared.video_in),
            audio: track_stats(&self.audio, packets_sent[1], &self.shared.audio_in),
            pli_sent: self.shared.pli_sent.load(Ordering::Relaxed),
            estimate_bps: (estimate_bps > 0.0).then_some(estimate_bps),
            uplink_loss: self.uplink_loss.get(),
            retransmitted_packets_sent: self.retransmissions.load(Ordering::Relaxed),
            keyframe_requests_received: self.shared.keyframe_requests.load(Ordering::Relaxed),
            path: path::selected_path(&self.pc).await,
        }
    }

    /// Changes the connect deadline for the next offer/answer or ICE restart (default
    /// [`CONNECT_TIMEOUT`]); tests use a short one.
    pub fn set_connect_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.shared.connect_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// Waits until the peer can decrypt what we send, at most `limit`; whether it can.
    /// A DTLS client knows once connected ([`dtls_role`]); a server once something the
    /// peer sent under the keys arrived: its first RTP packet (a remote track opened) or
    /// a DataChannel. Before then our packets may reach a peer still finishing its
    /// handshake, which drops them.
    pub async fn wait_peer_secured(&self, limit: Duration) -> bool {
        if self.is_dtls_client().await {
            return true;
        }
        let mut secured = self.shared.peer_secured.subscribe();
        matches!(
            tokio::time::timeout(limit, secured.wait_for(|s| *s)).await,
            Ok(Ok(_))
        )
    }

    /// Whether we are the DTLS client of this connection (RFC 5763 §5), from the
    /// descriptions in force; false before both are set.
    async fn is_dtls_client(&self) -> bool {
        let (Some(local), Some(remote)) = (
            self.pc.local_description().await,
            self.pc.remote_description().await,
        ) else {
            return false;
        };
        dtls_role::is_dtls_client(&local.sdp, &remote.sdp)
    }

    /// The current local SDP (offer or answer), if one was set.
    pub async fn local_sdp(&self) -> Option<String> {
        self.pc.local_description().await.map(|d| d.sdp)
    }

    /// The PeerConnection's current state.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.shared.state.borrow()
    }

    /// Stops the background tasks and closes the PeerConnection (DTLS close_notify, sockets
    /// released). No events are emitted afterwards. Idempotent.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.send_goodbye().await;
        // Abort first: a task blocked in a track's poll() holds that track's event lock.
        if let Ok(mut tasks) = self.shared.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Err(e) = self.pc.close().await {
            tracing::warn!(error = %e, "closing the peer connection");
        }
    }

    async fn offer(&self, options: Option<RTCOfferOptions>) -> anyhow::Result<String> {
        let offer = self
            .pc
            .create_offer(options)
            .await
            .context("creating the SDP offer")?;
        let sdp = offer.sdp.clone();
        self.remember_local_ufrag(&sdp);
        self.shared.gathered.send_replace(false);
        self.pc
            .set_local_description(offer)
            .await
            .context("setting the local SDP offer")?;
        Ok(self.with_gathered_candidates(sdp).await)
    }

    /// The local description with the candidates gathered so far, once gathering is
    /// complete or after [`GATHER_WAIT`]. Candidates trickle anyway; carrying the host
    /// candidates in the SDP as well lets the peer start connectivity checks when it
    /// applies the description, instead of at webrtc 0.21's next 200 ms timer tick after
    /// a trickled candidate (BENCHMARKS.md, call setup).
    async fn with_gathered_candidates(&self, sdp: String) -> String {
        let mut gathered = self.shared.gathered.subscribe();
        let _ = tokio::time::timeout(GATHER_WAIT, gathered.wait_for(|done| *done)).await;
        match self.pc.local_description().await {
            Some(description) => description.sdp,
            None => sdp,
        }
    }

    /// Adds our two tracks once, and starts listening for keyframe requests on the video
    /// track (it is bound to its sender by `add_track`).
    async fn add_tracks(&self, negotiation: &mut Negotiation) -> anyhow::Result<()> {
        if negotiation.tracks_added {
            return Ok(());
        }
        for local in [&self.video, &self.audio] {
            let sender = self
                .pc
                .add_track(local.track.clone() as Arc<dyn TrackLocal>)
                .await
                .with_context(|| format!("adding the {} track", local.kind))?;
            // Set once: guarded by `tracks_added` under the negotiation lock.
            let _ = local.sender.set(sender);
        }
        negotiation.tracks_added = true;
        self.shared.keep(tokio::spawn(watch_keyframe_requests(
            self.video.clone(),
            self.shared.clone(),
        )));
        Ok(())
    }

    /// Lists RED before Opus in our audio transceiver's codecs, so our offers, and the
    /// answer of an rtc-cli peer (which keeps the offer's order), negotiate RED first. An
    /// answer to a browser's offer keeps the browser's order instead (Opus first).
    async fn prefer_red(&self) -> anyhow::Result<()> {
        let Some(ours) = self.audio.sender.get().map(|s| s.id()) else {
            return Ok(());
        };
        for transceiver in self.pc.get_transceivers().await {
            let sender = transceiver.sender().await.ok().flatten();
            if sender.is_some_and(|s| s.id() == ours) {
                transceiver
                    .set_codec_preferences(codecs::audio_preferences())
                    .await
                    .context("listing RED before Opus")?;
            }
        }
        Ok(())
    }

    /// Whether a remote candidate must wait: no remote description yet, or our offer is
    /// out and the answer (with the peer's new ICE credentials) has not arrived.
    async fn awaiting_remote_description(&self) -> bool {
        if self.pc.remote_description().await.is_none() {
            return true;
        }
        self.pc
            .pending_local_description()
            .await
            .is_some_and(|d| d.sdp_type == RTCSdpType::Offer)
    }

    async fn flush_candidates(&self, negotiation: &mut Negotiation) {
        for init in std::mem::take(&mut negotiation.pending_candidates) {
            if self.is_stale(&init).await {
                continue;
            }
            if let Err(e) = self.pc.add_ice_candidate(init.clone()).await {
                tracing::warn!(error = %e, candidate = %init.candidate, "dropping a queued remote candidate");
            }
        }
    }

    /// Whether a remote candidate names an ICE ufrag other than the remote description's
    /// (a late candidate from before an ICE restart).
    async fn is_stale(&self, candidate: &RTCIceCandidateInit) -> bool {
        let Some(ufrag) = &candidate.username_fragment else {
            return false;
        };
        let remote = self.pc.remote_description().await;
        remote
            .and_then(|d| ice_ufrag(&d.sdp).map(str::to_owned))
            .is_some_and(|current| current != *ufrag)
    }

    fn remember_local_ufrag(&self, sdp: &str) {
        if let Ok(mut slot) = self.shared.local_ufrag.lock() {
            *slot = ice_ufrag(sdp).map(str::to_owned);
        }
    }

    async fn renegotiated(&self) {
        self.video.renegotiated().await;
        self.audio.renegotiated().await;
    }

    /// Reports `Failed` unless the connection reaches `connected` within the connect
    /// deadline ([`CONNECT_TIMEOUT`] by default).
    fn arm_connect_deadline(&self) {
        let mut state = self.shared.state.subscribe();
        let shared = self.shared.clone();
        let deadline =
            Duration::from_millis(self.shared.connect_timeout_ms.load(Ordering::Relaxed));
        self.shared.keep(tokio::spawn(async move {
            let connected = state.wait_for(|s| *s == RTCPeerConnectionState::Connected);
            if tokio::time::timeout(deadline, connected).await.is_err() {
                shared.report_failed("ICE/DTLS did not connect in time");
            }
        }));
    }
}

/// The first `a=ice-ufrag` of an SDP (RFC 8839 §5.4).
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
}

fn track_stats(local: &LocalTrack, packets_sent: u64, inbound: &ReceivedCounters) -> TrackStats {
    TrackStats {
        sent: SentStats {
            packets: packets_sent,
            frames: local.counters.frames.load(Ordering::Relaxed),
            payload_bytes: local.counters.payload_bytes.load(Ordering::Relaxed),
        },
        received: ReceivedStats {
            packets: inbound.packets.load(Ordering::Relaxed),
            payload_bytes: inbound.payload_bytes.load(Ordering::Relaxed),
            frames: inbound.frames.load(Ordering::Relaxed),
            packets_lost: inbound.lost.load(Ordering::Relaxed),
            jitter_ms: f64::from_bits(inbound.jitter_ms_bits.load(Ordering::Relaxed)),
            dropped: inbound.dropped.load(Ordering::Relaxed),
        },
    }
}

/// Forwards the handler's events to the controller's bounded channel, in order, without
/// ever making webrtc's driver wait.
async fn forward_events(
    mut internal: mpsc::UnboundedReceiver<PeerEvent>,
    events: mpsc::Sender<PeerEvent>,
) {
    while let Some(event) = internal.recv().await {
        if events.send(event).await.is_err() {
            break;
        }
    }
}

/// Turns PLI/FIR arriving for our video track into [`PeerEvent::KeyframeRequested`].
async fn watch_keyframe_requests(video: Arc<LocalTrack>, shared: Arc<Shared>) {
    while let Some(event) = video.track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        let requests = packets
            .iter()
            .filter_map(|p| rtcp::keyframe_request(p.as_ref()));
        if let Some(request) = requests.max() {
            shared.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            shared.emit(PeerEvent::KeyframeRequested(request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_ufrag_is_read_from_the_first_media_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:Qx3F\r\na=ice-pwd:x\r\n";
        assert_eq!(ice_ufrag(sdp), Some("Qx3F"));
        assert_eq!(ice_ufrag("v=0\r\n"), None);
    }
}
