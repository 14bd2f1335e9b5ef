//! The call controller: owns one client's call state machine. Signaling events, user
//! commands and media events come in; [`AppEvent`]s go out to the view (TUI or
//! headless), and signaling messages to the server.
//!
//! One controller runs per `call` or `listen` process. `call` ends with the first
//! call; `listen` goes back to listening after each call.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::control::{ControlRequest, Reply};
use super::history::{History, HistoryEntry};
use super::media::{MediaCall, MediaEvent, Preview, VideoSlots};
use super::peer::turn_check;
use super::peer::{FailedStage, IceServer, PeerEvent};
use super::ringer::Ringer;
use super::{
    AppEvent, CallId, CallState, Direction, EndReason, ExitCode, MediaState, TimedEvent,
    UserCommand, UserId, ViewChannels, chat_event, close_signaling, file_event, sendable_file,
    sleep_until,
};
use crate::config::{IceServerConfig, MediaSettings};
use crate::media::audio::ring::Cadence;
use crate::signaling::client::{self, ClientConfig, Fatal, SignalingEvent, SignalingHandle};
use crate::signaling::protocol::{ClientMessage, ErrorCode, ServerEndReason, ServerMessage};
use crate::signaling::roster::Roster;

/// Past calls the listening screen shows.
pub const RECENT_CALLS: usize = 20;

/// Seconds in a row with no media from a peer the server reported gone before the call
/// ends `peer-gone` (a peer that is merely muted with its camera off is found out by ICE
/// consent instead, RFC 7675).
const PEER_GONE_SILENCE: u32 = 3;

/// PeerConnections one call may try when the DTLS handshake gives up before the call
/// connects: under 10 % loss one setup in about 30 failed that way (BENCHMARKS), so a
/// second and a third try make a failed setup rare.
const SETUP_ATTEMPTS: u32 = 3;

/// The first `a=fingerprint` value of an SDP (RFC 8122 §5): `sha-256 AB:CD:…`.
fn dtls_fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=fingerprint:"))
}

/// How long the TURN check after a failed ICE waits for each server's answer: an
/// Allocate and its authenticated retry take two round trips.
const TURN_CHECK_DEADLINE: Duration = Duration::from_secs(3);

/// What this process is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Call `peer` once; the process ends with that call.
    Call {
        /// Who to call.
        peer: UserId,
    },
    /// Wait for calls; answer at once with `auto_accept`.
    Listen {
        /// Accept incoming calls without asking.
        auto_accept: bool,
    },
}

/// How a controller runs.
#[derive(Debug)]
pub struct ControllerConfig {
    /// Call or listen.
    pub mode: Mode,
    /// The signaling connection.
    pub client: ClientConfig,
    /// End a connected call by itself after this long (`--hangup-after`).
    pub hangup_after: Option<Duration>,
    /// Sources, sinks, codecs and ICE settings of each call's media.
    pub media: MediaSettings,
    /// Where decoded remote video and our self-view go.
    pub slots: VideoSlots,
    /// Where finished calls are recorded (`None`: nowhere).
    pub history: Option<History>,
    /// Requests from the local control socket (`listen`: a second `rtc-cli call` or
    /// `rtc-cli who` on this machine).
    pub control: Option<mpsc::Receiver<ControlRequest>>,
    /// `listen` on a screen: show the camera in the self-view while no call's media
    /// runs.
    pub preview: bool,
}

/// The call in progress.
#[derive(Debug, Clone)]
struct ActiveCall {
    id: CallId,
    peer: UserId,
    direction: Direction,
    state: CallState,
    /// When the call reached `Connected`, for `--hangup-after`.
    connected_at: Option<Instant>,
    /// While the connection is being brought back after it dropped.
    reconnect: Option<Reconnect>,
    /// The server said the peer's connection to it died while our media was up: the call
    /// goes on while the peer's media keeps arriving; this counts the stats seconds in a
    /// row with nothing from it.
    peer_unconfirmed: Option<u32>,
    /// Whether we gathered a relay (TURN) candidate for this call.
    relay_gathered: bool,
    /// Which PeerConnection of this call is up: 1, then one more each time the setup
    /// starts over after DTLS gave up (at most [`SETUP_ATTEMPTS`]).
    setup_attempt: u32,
    /// We started over and sent a fresh offer that is not answered yet.
    fresh_offer_pending: bool,
    /// The DTLS fingerprint (`a=fingerprint`) of the peer's current SDP, which tells a
    /// fresh PeerConnection's offer from an ICE restart.
    remote_fingerprint: Option<String>,
    /// When the call was placed or rang, for the history.
    began: std::time::SystemTime,
    /// This call's own `--hangup-after` (a call asked for over the control socket).
    hangup_after: Option<Duration>,
}

impl ActiveCall {
    fn new(id: CallId, peer: UserId, direction: Direction) -> Self {
        Self {
            id,
            peer,
            direction,
            state: CallState::Ended,
            connected_at: None,
            reconnect: None,
            peer_unconfirmed: None,
            relay_gathered: false,
            setup_attempt: 1,
            fresh_offer_pending: false,
            remote_fingerprint: None,
            began: std::time::SystemTime::now(),
            hangup_after: None,
        }
    }
}

/// A dropped connection being brought back: ICE restarts (by the caller) with backoff
/// until the reconnect timeout.
#[derive(Debug, Clone, Copy)]
struct Reconnect {
    /// When connectivity was lost.
    since: Instant,
    /// When to restart ICE again (the caller), or check the deadline (the callee).
    next_attempt: Instant,
    /// ICE restarts made so far.
    attempts: u32,
}

/// Delay before ICE restart `attempt` (1-based) of one outage: 1 s, 2 s, then every 3 s.
/// Short, because a restart is only an offer/answer, and video should come back within
/// about a second of the network.
fn restart_backoff(attempt: u32) -> Duration {
    Duration::from_secs(u64::from(attempt.clamp(1, 3)))
}

/// The process that asked over the control socket for the active call.
struct Dialer {
    /// Its connection's number.
    id: u64,
    /// Its answer lines.
    replies: mpsc::Sender<Reply>,
}

/// What the controller loop does next.
enum Next {
    Continue,
    Exit(ExitCode),
}

/// Runs the controller until the process should exit, returning its exit code.
pub async fn run(config: ControllerConfig, view: ViewChannels) -> ExitCode {
    let client = client::spawn(config.client.clone());
    let previewing = config.preview && matches!(config.mode, Mode::Listen { .. });
    let mut controller = Controller {
        me: config.client.id.clone(),
        signaling: client.handle,
        events: view.events,
        mode: config.mode,
        hangup_after: config.hangup_after,
        call: None,
        local: MediaState::default(),
        started: false,
        pending_incoming: None,
        quitting: false,
        media_config: config.media,
        server_ice: Vec::new(),
        slots: config.slots,
        media: None,
        media_events: None,
        roster: Roster::default(),
        history: config.history,
        logged_in_once: false,
        control: config.control,
        dialer: None,
        presence_shared: false,
        ringer: None,
        preview: None,
        previewing,
    };
    controller.update_preview().await;
    let code = controller.event_loop(client.events, view.commands).await;
    drop(controller);
    close_signaling(client.task).await;
    code
}

struct Controller {
    /// Our id.
    me: UserId,
    signaling: SignalingHandle,
    events: mpsc::Sender<TimedEvent>,
    mode: Mode,
    hangup_after: Option<Duration>,
    call: Option<ActiveCall>,
    /// Our mic/camera state; kept across calls.
    local: MediaState,
    /// `call` mode: whether the call was placed (it is placed once, after the first login).
    started: bool,
    /// `call` mode: an incoming call from the peer we are calling (possible glare).
    pending_incoming: Option<CallId>,
    /// Quit was asked; exit once the call is over.
    quitting: bool,
    media_config: MediaSettings,
    /// STUN/TURN servers from the latest `login_ok`, used after our own for each new
    /// call; replaced at every login, so TURN credentials are fresh after a reconnect.
    server_ice: Vec<IceServerConfig>,
    slots: VideoSlots,
    /// The active call's media, from acceptance to the end of the call.
    media: Option<MediaCall>,
    /// Events of the active call's media (a fresh channel per call, so nothing from an
    /// earlier call leaks into the next).
    media_events: Option<mpsc::Receiver<MediaEvent>>,
    /// Who is online (`listen`, when the server shares presence).
    roster: Roster,
    /// Where finished calls are recorded.
    history: Option<History>,
    /// Whether a login succeeded yet (the history is shown after the first).
    logged_in_once: bool,
    /// Requests from the local control socket.
    control: Option<mpsc::Receiver<ControlRequest>>,
    /// The control-socket dialer of the active call: it gets the call's events and
    /// its outcome.
    dialer: Option<Dialer>,
    /// Whether the server shares presence (the latest `login_ok` had a list).
    presence_shared: bool,
    /// The ring or ringback tone playing, while a call rings.
    ringer: Option<Ringer>,
    /// The camera preview, while idle.
    preview: Option<Preview>,
    /// Whether this controller shows a preview while idle.
    previewing: bool,
}

impl Controller {
    async fn event_loop(
        &mut self,
        mut signaling: mpsc::Receiver<SignalingEvent>,
        mut commands: mpsc::Receiver<UserCommand>,
    ) -> ExitCode {
        let mut commands_open = true;
        loop {
            let hangup_at = self.hangup_deadline();
            let reconnect_at = self
                .call
                .as_ref()
                .and_then(|c| c.reconnect)
                .map(|r| r.next_attempt);
            let next = tokio::select! {
                ev = signaling.recv() => match ev {
                    Some(ev) => self.on_signaling(ev).await,
                    None => Next::Exit(ExitCode::Error),
                },
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => {
                        debug!("command input closed; calls go on");
                        commands_open = false;
                        Next::Continue
                    }
                },
                ev = recv_or_pending(&mut self.media_events) => match ev {
                    Some(ev) => self.on_media(ev).await,
                    None => {
                        self.media_events = None;
                        Next::Continue
                    }
                },
                _ = sleep_until(hangup_at) => {
                    info!("--hangup-after elapsed");
                    self.on_command(UserCommand::Hangup).await
                }
                _ = sleep_until(reconnect_at) => self.reconnect_step().await,
                req = recv_or_pending(&mut self.control) => match req {
                    Some(req) => self.on_control(req).await,
                    None => {
                        self.control = None;
                        Next::Continue
                    }
                },
            };
            if let Next::Exit(code) = next {
                return code;
            }
        }
    }

    fn hangup_deadline(&self) -> Option<Instant> {
        let call = self.call.as_ref()?;
        Some(call.connected_at? + call.hangup_after.or(self.hangup_after)?)
    }

    async fn emit(&self, event: AppEvent) {
        let event = TimedEvent::now(event);
        if let Some(dialer) = &self.dialer
            && matches!(
                event.event,
                AppEvent::State { .. }
                    | AppEvent::PeerMedia { .. }
                    | AppEvent::Notice { .. }
                    | AppEvent::Error { .. }
            )
        {
            // A dialer that stopped reading loses lines, never stalls the call.
            let _ = dialer.replies.try_send(Reply::event(&event));
        }
        if self.events.send(event).await.is_err() {
            debug!("view is gone");
        }
    }

    async fn notice(&self, message: impl Into<String>) {
        self.emit(AppEvent::Notice {
            message: message.into(),
        })
        .await;
    }

    async fn send(&self, msg: ClientMessage) {
        self.signaling.send(msg).await;
    }

    /// Moves the active call to `state` and tells the view.
    async fn set_state(&mut self, state: CallState) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if call.state == state {
            return;
        }
        call.state = state;
        if state == CallState::Connected && call.connected_at.is_none() {
            call.connected_at = Some(Instant::now());
            // A login after a lost connection carries the call over (`resume`).
            self.signaling.set_resume(vec![call.id.clone()]);
        }
        let event = AppEvent::State {
            call_id: call.id.clone(),
            peer: call.peer.clone(),
            direction: call.direction,
            state,
            reason: None,
        };
        info!(call_id = %call.id, %state, "call state");
        self.emit(event).await;
        self.ring_for_state().await;
    }

    /// Plays the tone the active call's state calls for (the ring while a call to us
    /// rings, the ringback while ours does; nothing otherwise or with `--no-ring`),
    /// stopping the previous one first.
    async fn ring_for_state(&mut self) {
        let want = match &self.call {
            Some(call) if call.state == CallState::Ringing && self.media_config.ring => {
                match (call.direction, &self.mode) {
                    (Direction::Incoming, Mode::Listen { auto_accept: true }) => None,
                    (Direction::Incoming, _) => Some(Cadence::Ring),
                    (Direction::Outgoing, _) => Some(Cadence::Ringback),
                }
            }
            _ => None,
        };
        if self.ringer.as_ref().map(Ringer::cadence) == want {
            return;
        }
        if let Some(old) = self.ringer.take() {
            old.stop().await;
        }
        self.ringer = want.map(|cadence| Ringer::start(&self.media_config.speaker, cadence));
    }

    /// Ends the active call for `reason`; returns how the process goes on.
    async fn end_call(&mut self, reason: EndReason) -> Next {
        let Some(call) = self.call.take() else {
            return Next::Continue;
        };
        info!(call_id = %call.id, %reason, "call ended");
        self.signaling.set_resume(Vec::new());
        self.ring_for_state().await;
        let entry = history_entry(&call, reason);
        self.media_events = None;
        if let Some(media) = self.media.take() {
            let stats = media.final_stats().await;
            self.emit(AppEvent::Stats {
                call_id: call.id.clone(),
                peer: call.peer.clone(),
                stats: Box::new(stats),
            })
            .await;
            media.close().await;
        }
        self.update_preview().await;
        self.emit(AppEvent::State {
            call_id: call.id,
            peer: call.peer,
            direction: call.direction,
            state: CallState::Ended,
            reason: Some(reason),
        })
        .await;
        let code = ExitCode::for_end(reason, call.connected_at.is_some());
        if let Some(dialer) = self.dialer.take() {
            let _ = dialer.replies.try_send(Reply::done(code, None));
        }
        self.record(&entry).await;
        match self.mode {
            Mode::Call { .. } => Next::Exit(code),
            Mode::Listen { .. } if self.quitting => Next::Exit(ExitCode::Ok),
            Mode::Listen { .. } => Next::Continue,
        }
    }

    /// Starts the camera preview when it is wanted and nothing else holds the camera.
    async fn update_preview(&mut self) {
        let wanted = self.previewing && self.media.is_none() && !self.quitting;
        if wanted && self.preview.is_none() {
            self.preview = Some(Preview::start(&self.media_config, self.slots.local.clone()));
        } else if !wanted && let Some(preview) = self.preview.take() {
            preview.stop().await;
        }
    }

    /// Appends a finished call to the history and, on the listening screen, shows the
    /// newest entries. A history that cannot be written is a notice, not an error.
    async fn record(&self, entry: &HistoryEntry) {
        let Some(history) = &self.history else { return };
        if let Err(e) = history.append(entry) {
            warn!("call history: {e:#}");
            self.notice(format!("cannot record the call: {e:#}")).await;
        }
        self.emit_history().await;
    }

    /// `listen`: the newest [`RECENT_CALLS`] calls, for the idle screen.
    async fn emit_history(&self) {
        let (Some(history), Mode::Listen { .. }) = (&self.history, &self.mode) else {
            return;
        };
        match history.recent(RECENT_CALLS) {
            Ok(calls) => self.emit(AppEvent::History { calls }).await,
            Err(e) => warn!("call history: {e:#}"),
        }
    }

    fn is_current(&self, call_id: &CallId) -> bool {
        self.call.as_ref().is_some_and(|c| c.id == *call_id)
    }

    async fn on_signaling(&mut self, ev: SignalingEvent) -> Next {
        match ev {
            SignalingEvent::LoggedIn {
                id,
                server,
                ice_servers,
                presence,
            } => {
                self.server_ice = ice_servers;
                self.emit(AppEvent::LoggedIn { id, server }).await;
                self.presence_shared = presence.is_some();
                if let Some(snapshot) = presence {
                    self.roster.replace(&snapshot, &self.me);
                    self.emit_presence().await;
                }
                if !self.logged_in_once {
                    self.logged_in_once = true;
                    self.emit_history().await;
                }
                self.place_call_once().await;
                Next::Continue
            }
            SignalingEvent::Message(msg) => self.on_server_message(msg).await,
            SignalingEvent::Disconnected { reason } => self.on_server_lost(reason).await,
            SignalingEvent::Fatal(fatal) => self.on_fatal(fatal).await,
        }
    }

    /// The server connection dropped (the client reconnects by itself). A call whose
    /// media is up goes on: it is peer to peer, and a hangup still reaches the peer as an
    /// RTCP BYE. A call still being set up needs the server, and ends.
    async fn on_server_lost(&mut self, reason: String) -> Next {
        let media_up = self.media_up();
        let message = if media_up {
            format!("lost the server ({reason}); the call goes on, reconnecting")
        } else {
            format!("lost the server ({reason}); reconnecting")
        };
        self.emit(AppEvent::ServerLost { message }).await;
        if media_up {
            Next::Continue
        } else {
            self.end_call(EndReason::ServerLost).await
        }
    }

    /// Whether the call's media was connected (it may be reconnecting now).
    fn media_up(&self) -> bool {
        self.call
            .as_ref()
            .is_some_and(|c| matches!(c.state, CallState::Connected | CallState::Reconnecting))
    }

    async fn on_fatal(&mut self, fatal: Fatal) -> Next {
        let code = ExitCode::for_fatal(&fatal);
        if let Fatal::Conflict(message) = &fatal {
            self.emit(AppEvent::Conflict {
                message: message.clone(),
            })
            .await;
            self.end_call(EndReason::Conflict).await;
        } else {
            self.end_call(EndReason::ServerLost).await;
        }
        self.emit(AppEvent::Error {
            message: fatal.to_string(),
            fatal: true,
        })
        .await;
        Next::Exit(code)
    }

    async fn place_call_once(&mut self) {
        let Mode::Call { peer } = &self.mode else {
            return;
        };
        if self.started {
            return;
        }
        self.started = true;
        let peer = peer.clone();
        self.place_call(peer).await;
    }

    /// Calls `peer` under a fresh call id.
    async fn place_call(&mut self, peer: UserId) {
        let id = CallId::random();
        self.call = Some(ActiveCall::new(
            id.clone(),
            peer.clone(),
            Direction::Outgoing,
        ));
        self.send(ClientMessage::Call {
            call_id: id,
            to: peer,
            room: None,
        })
        .await;
        self.set_state(CallState::Calling).await;
    }

    /// `listen`: calls `peer` from the running client; the client listens again after.
    async fn dial(&mut self, peer: UserId) {
        match self.dial_refusal(&peer) {
            Some(why) => self.notice(why).await,
            None => self.place_call(peer).await,
        }
    }

    /// Why `peer` cannot be dialed now, if it cannot.
    fn dial_refusal(&self, peer: &UserId) -> Option<&'static str> {
        match (&self.mode, &self.call) {
            (Mode::Call { .. }, _) => Some("this process calls one id; use listen to dial"),
            (_, Some(_)) => Some("already in a call; hang up first"),
            _ if *peer == self.me => Some("you cannot call yourself"),
            _ => None,
        }
    }

    /// A request from the control socket: a call placed for another process (which
    /// gets the call's events and outcome), or who is online.
    async fn on_control(&mut self, req: ControlRequest) -> Next {
        match req {
            ControlRequest::Who { reply } => {
                let _ = reply.send(self.presence_shared.then(|| self.roster.list()));
            }
            ControlRequest::DialerGone { dialer } => {
                if self.dialer.as_ref().is_some_and(|d| d.id == dialer) {
                    self.dialer = None;
                    self.notice("the rtc-cli that placed this call stopped; hanging up")
                        .await;
                    return self.on_command(UserCommand::Hangup).await;
                }
            }
            ControlRequest::Call {
                to,
                hangup_after,
                replies,
                dialer,
            } => {
                if let Some(why) = self.dial_refusal(&to) {
                    let code = if self.call.is_some() {
                        ExitCode::Busy
                    } else {
                        ExitCode::Error
                    };
                    let _ = replies.try_send(Reply::done(code, Some(why.into())));
                    return Next::Continue;
                }
                self.notice(format!("calling {to} for another rtc-cli process"))
                    .await;
                self.dialer = Some(Dialer {
                    id: dialer,
                    replies,
                });
                self.place_call(to).await;
                if let Some(call) = self.call.as_mut() {
                    call.hangup_after = hangup_after;
                }
            }
        }
        Next::Continue
    }

    async fn emit_presence(&self) {
        self.emit(AppEvent::Presence {
            users: self.roster.list(),
        })
        .await;
    }

    async fn on_server_message(&mut self, msg: ServerMessage) -> Next {
        match msg {
            ServerMessage::PresenceChanged { users } => {
                if self.roster.apply(&users, &self.me) {
                    self.emit_presence().await;
                }
                Next::Continue
            }
            ServerMessage::Incoming { call_id, from, .. } => self.on_incoming(call_id, from).await,
            ServerMessage::Ringing { call_id, .. } if self.is_current(&call_id) => {
                self.set_state(CallState::Ringing).await;
                Next::Continue
            }
            ServerMessage::Accept { call_id, .. } if self.is_current(&call_id) => {
                self.on_accepted().await
            }
            ServerMessage::Refuse { call_id, .. } if self.is_current(&call_id) => {
                self.end_call(EndReason::Refused).await
            }
            ServerMessage::Busy { call_id, .. } if self.is_current(&call_id) => {
                self.end_call(EndReason::Busy).await
            }
            ServerMessage::Cancel { call_id, .. } => {
                if self.pending_incoming.as_ref() == Some(&call_id) {
                    self.pending_incoming = None;
                }
                if self.is_current(&call_id) {
                    return self.end_call(EndReason::Canceled).await;
                }
                Next::Continue
            }
            ServerMessage::Hangup { call_id, .. } if self.is_current(&call_id) => {
                self.end_call(EndReason::RemoteHangup).await
            }
            ServerMessage::CallEnded {
                call_id,
                reason,
                replaced_by,
            } if self.is_current(&call_id) => self.on_server_ended(reason, replaced_by).await,
            ServerMessage::Offer { call_id, sdp, .. } if self.is_current(&call_id) => {
                self.on_remote_offer(call_id, &sdp).await
            }
            ServerMessage::Answer { call_id, sdp, .. } if self.is_current(&call_id) => {
                self.on_remote_answer(&sdp).await
            }
            ServerMessage::Candidate {
                call_id, candidate, ..
            } if self.is_current(&call_id) => {
                if let Some(media) = &self.media
                    && let Err(e) = media.peer().add_remote_candidate(&candidate).await
                {
                    warn!("ignoring a remote ICE candidate: {e:#}");
                }
                Next::Continue
            }
            ServerMessage::EndOfCandidates { call_id, .. } if self.is_current(&call_id) => {
                debug!("peer finished gathering ICE candidates");
                Next::Continue
            }
            ServerMessage::MediaState {
                call_id,
                state,
                from,
            } if self.is_current(&call_id) => {
                self.emit(AppEvent::PeerMedia {
                    call_id,
                    peer: from,
                    state,
                })
                .await;
                Next::Continue
            }
            ServerMessage::Error {
                code,
                message,
                call_id,
            } => self.on_error(code, message, call_id).await,
            other => {
                debug!("ignoring {other:?}");
                Next::Continue
            }
        }
    }

    async fn on_incoming(&mut self, call_id: CallId, from: UserId) -> Next {
        let calling_them = matches!(
            (&self.mode, &self.call),
            (Mode::Call { peer }, Some(c)) if *peer == from && c.direction == Direction::Outgoing
        );
        if calling_them {
            // Both called at once; the server tells which call survives (glare).
            self.pending_incoming = Some(call_id);
            return Next::Continue;
        }
        if self.call.is_some() || matches!(self.mode, Mode::Call { .. }) {
            // The server answers busy for us while we are in a call; a stray offer
            // is refused so the caller is not left ringing.
            self.send(ClientMessage::Refuse { call_id }).await;
            return Next::Continue;
        }
        self.call = Some(ActiveCall::new(
            call_id.clone(),
            from.clone(),
            Direction::Incoming,
        ));
        self.emit(AppEvent::Incoming { call_id, from }).await;
        self.set_state(CallState::Ringing).await;
        if matches!(self.mode, Mode::Listen { auto_accept: true }) {
            return self.on_command(UserCommand::Accept).await;
        }
        Next::Continue
    }

    async fn on_server_ended(
        &mut self,
        reason: ServerEndReason,
        replaced_by: Option<CallId>,
    ) -> Next {
        let reason = match reason {
            ServerEndReason::Offline => EndReason::Offline,
            ServerEndReason::NoAnswer => EndReason::NoAnswer,
            ServerEndReason::PeerGone if self.media_up() => {
                // Its signaling died, maybe not its media: that decides (see on_media).
                if let Some(call) = self.call.as_mut() {
                    call.peer_unconfirmed = Some(0);
                }
                self.notice("the server lost the peer; the call goes on while its media arrives")
                    .await;
                return Next::Continue;
            }
            ServerEndReason::PeerGone => EndReason::PeerGone,
            ServerEndReason::ServerShutdown => EndReason::ServerLost,
            ServerEndReason::Glare => {
                if let Some(kept) =
                    replaced_by.filter(|k| self.pending_incoming.as_ref() == Some(k))
                {
                    return self.adopt_glare_call(kept).await;
                }
                EndReason::Glare
            }
        };
        self.end_call(reason).await
    }

    /// Glare: our call gave way to the peer's call to us; we wanted to talk to them,
    /// so we accept theirs.
    async fn adopt_glare_call(&mut self, kept: CallId) -> Next {
        self.pending_incoming = None;
        let Some(old) = self.call.take() else {
            return Next::Continue;
        };
        info!(old = %old.id, new = %kept, "glare: accepting the peer's call instead of ours");
        self.emit(AppEvent::State {
            call_id: old.id,
            peer: old.peer.clone(),
            direction: Direction::Outgoing,
            state: CallState::Ended,
            reason: Some(EndReason::Glare),
        })
        .await;
        let mut call = ActiveCall::new(kept.clone(), old.peer, Direction::Incoming);
        call.state = CallState::Ringing;
        self.call = Some(call);
        self.send(ClientMessage::Accept { call_id: kept }).await;
        self.on_accepted().await
    }

    async fn on_error(
        &mut self,
        code: ErrorCode,
        message: String,
        call_id: Option<CallId>,
    ) -> Next {
        warn!(%code, ?call_id, "server error: {message}");
        let ours = call_id.as_ref().is_some_and(|id| self.is_current(id));
        let setup = self
            .call
            .as_ref()
            .is_some_and(|c| matches!(c.state, CallState::Calling));
        self.emit(AppEvent::Error {
            message: format!("server: {code}: {message}"),
            fatal: false,
        })
        .await;
        if ours && setup {
            return self.end_call(EndReason::Failed).await;
        }
        Next::Continue
    }

    /// Both sides accepted: media setup starts; the caller sends the SDP offer.
    async fn on_accepted(&mut self) -> Next {
        self.set_state(CallState::Connecting).await;
        self.send_media_state().await;
        if let Err(e) = self.start_media().await {
            return self.fail_call(format!("cannot start media: {e:#}")).await;
        }
        let outgoing = self
            .call
            .as_ref()
            .is_some_and(|c| c.direction == Direction::Outgoing);
        if outgoing {
            return self.send_offer().await;
        }
        Next::Continue
    }

    /// Starts the call's media (devices, encoders, a new PeerConnection), closing the
    /// previous one (or the preview) if there is one.
    async fn start_media(&mut self) -> anyhow::Result<()> {
        if let Some(old) = self.media.take() {
            old.close().await;
        }
        if let Some(preview) = self.preview.take() {
            preview.stop().await;
        }
        let (tx, rx) = mpsc::channel(64);
        let mut settings = self.media_config.clone();
        settings.ice_servers.extend(self.server_ice.iter().cloned());
        let media = MediaCall::start(&settings, &self.slots, tx).await?;
        media.set_muted(self.local.muted);
        media.set_camera(self.local.camera);
        self.media_events = Some(rx);
        self.media = Some(media);
        Ok(())
    }

    /// Sends an SDP offer from the current PeerConnection.
    async fn send_offer(&mut self) -> Next {
        let Some(media) = &self.media else {
            return Next::Continue;
        };
        match media.peer().create_offer().await {
            Ok(sdp) => {
                self.send_sdp(true, sdp).await;
                Next::Continue
            }
            Err(e) => {
                self.fail_call(format!("cannot create the SDP offer: {e:#}"))
                    .await
            }
        }
    }

    /// The DTLS handshake gave up before the call ever connected (heavy loss can exhaust
    /// rtc-dtls's 7 retransmissions): start over with a fresh PeerConnection and offer
    /// it. The peer sees a new DTLS fingerprint in the offer and starts over too (see
    /// [`Controller::on_remote_offer`]).
    async fn retry_setup(&mut self) -> Next {
        let Some(call) = self.call.as_mut() else {
            return Next::Continue;
        };
        call.setup_attempt += 1;
        call.fresh_offer_pending = true;
        let attempt = call.setup_attempt;
        info!(
            attempt,
            "DTLS gave up before the call connected: a fresh peer connection"
        );
        self.notice(format!(
            "the secure connection did not come up; trying again ({attempt} of {SETUP_ATTEMPTS})"
        ))
        .await;
        if let Err(e) = self.start_media().await {
            return self.fail_call(format!("cannot start media: {e:#}")).await;
        }
        self.send_offer().await
    }

    async fn send_sdp(&self, offer: bool, sdp: String) {
        let Some(call) = &self.call else { return };
        let call_id = call.id.clone();
        self.send(if offer {
            ClientMessage::Offer { call_id, sdp }
        } else {
            ClientMessage::Answer { call_id, sdp }
        })
        .await;
    }

    /// An SDP offer: the first one (we are the callee), an ICE restart, or a fresh
    /// connection after a failed setup (a new DTLS fingerprint, RFC 8122 §5: the peer
    /// started over with a new PeerConnection, so we do too).
    async fn on_remote_offer(&mut self, call_id: CallId, sdp: &str) -> Next {
        let Some(call) = self.call.as_mut() else {
            return Next::Continue;
        };
        let fresh = call
            .remote_fingerprint
            .as_deref()
            .is_some_and(|known| dtls_fingerprint(sdp) != Some(known));
        if fresh {
            if call.fresh_offer_pending && call.direction == Direction::Outgoing {
                debug!("both sides started over at once; the caller's offer stands");
                return Next::Continue;
            }
            call.setup_attempt += 1;
            info!(
                attempt = call.setup_attempt,
                "the peer started over: a fresh peer connection"
            );
            if let Err(e) = self.start_media().await {
                return self.fail_call(format!("cannot start media: {e:#}")).await;
            }
        }
        let Some(media) = &self.media else {
            warn!(%call_id, "SDP offer before media started; ignored");
            return Next::Continue;
        };
        match media.peer().accept_offer(sdp).await {
            Ok(answer) => {
                if let Some(call) = self.call.as_mut() {
                    call.remote_fingerprint = dtls_fingerprint(sdp).map(str::to_owned);
                    call.fresh_offer_pending = false;
                }
                self.send_sdp(false, answer).await;
                Next::Continue
            }
            // A restart offer that cannot be applied now (webrtc still busy with the last
            // one) is not the end of a call that is reconnecting: the next one follows.
            Err(e) if self.call.as_ref().is_some_and(|c| c.reconnect.is_some()) => {
                warn!("ICE restart offer not applied: {e:#}");
                Next::Continue
            }
            Err(e) => {
                self.fail_call(format!("bad SDP offer from the peer: {e:#}"))
                    .await
            }
        }
    }

    /// An SDP answer to our offer.
    async fn on_remote_answer(&mut self, sdp: &str) -> Next {
        let Some(media) = &self.media else {
            return Next::Continue;
        };
        if let Err(e) = media.peer().accept_answer(sdp).await {
            return self
                .fail_call(format!("bad SDP answer from the peer: {e:#}"))
                .await;
        }
        if let Some(call) = self.call.as_mut() {
            call.remote_fingerprint = dtls_fingerprint(sdp).map(str::to_owned);
            call.fresh_offer_pending = false;
        }
        Next::Continue
    }

    /// Ends the call for a media failure: tells the peer, shows why, ends with `failed`.
    async fn fail_call(&mut self, message: String) -> Next {
        warn!("{message}");
        self.emit(AppEvent::Error {
            message,
            fatal: false,
        })
        .await;
        if let Some(call) = &self.call {
            self.send(ClientMessage::Hangup {
                call_id: call.id.clone(),
            })
            .await;
        }
        self.end_call(EndReason::Failed).await
    }

    async fn on_media(&mut self, ev: MediaEvent) -> Next {
        let Some(call) = &self.call else {
            return Next::Continue;
        };
        let call_id = call.id.clone();
        let peer = call.peer.clone();
        match ev {
            MediaEvent::Stats(stats) => {
                let silent = stats.video_kbps_in + stats.audio_kbps_in == 0.0;
                self.emit(AppEvent::Stats {
                    call_id,
                    peer,
                    stats,
                })
                .await;
                if self.peer_silent_too_long(silent) {
                    info!("the peer's signaling and media are both gone");
                    return self.end_call(EndReason::PeerGone).await;
                }
            }
            MediaEvent::Notice(message) => self.notice(message).await,
            MediaEvent::Peer(PeerEvent::LocalCandidate(candidate)) => {
                if let Some(call) = self.call.as_mut() {
                    call.relay_gathered |= candidate.candidate.contains(" typ relay");
                }
                self.send(ClientMessage::Candidate { call_id, candidate })
                    .await;
            }
            MediaEvent::Peer(PeerEvent::EndOfCandidates) => {
                self.send(ClientMessage::EndOfCandidates { call_id }).await;
            }
            MediaEvent::Peer(PeerEvent::Connected) => {
                if let Some(media) = &mut self.media {
                    media.start_sending();
                }
                if let Some(call) = self.call.as_mut()
                    && let Some(r) = call.reconnect.take()
                {
                    info!(after = ?r.since.elapsed(), attempts = r.attempts, "reconnected");
                }
                self.set_state(CallState::Connected).await;
            }
            MediaEvent::Peer(PeerEvent::Disconnected) => return self.on_disconnected().await,
            MediaEvent::Peer(PeerEvent::Failed(stage)) => {
                let retry = self.call.as_ref().is_some_and(|c| {
                    stage == FailedStage::Dtls
                        && c.connected_at.is_none()
                        && c.setup_attempt < SETUP_ATTEMPTS
                });
                if retry {
                    return self.retry_setup().await;
                }
                if self.call.as_ref().is_some_and(|c| c.reconnect.is_some()) {
                    // One restart gave up; the next one (or the deadline) follows.
                    debug!("an ICE restart did not connect; trying on");
                    return Next::Continue;
                }
                if self.call.as_ref().is_some_and(|c| c.connected_at.is_some()) {
                    // A connected call whose connection failed without a `disconnected`
                    // first (the peer's restart offer came before we noticed the loss,
                    // taking us from `connected` straight to `connecting`): reconnect
                    // until the reconnect timeout, as after a `disconnected`.
                    info!("the connection failed without a disconnect first; reconnecting");
                    return self.on_disconnected().await;
                }
                self.send(ClientMessage::Hangup { call_id }).await;
                return self.end_ice_failed().await;
            }
            MediaEvent::Peer(PeerEvent::Closed) => {
                return self.fail_call("the peer connection closed".into()).await;
            }
            MediaEvent::Peer(PeerEvent::KeyframeRequested(_) | PeerEvent::ChatOpen) => {}
            MediaEvent::Peer(PeerEvent::Chat(text)) => {
                self.emit(chat_event(call_id, peer, Ok(text))).await;
            }
            MediaEvent::Peer(PeerEvent::ChatDropped(why)) => {
                self.emit(chat_event(call_id, peer, Err(why))).await;
            }
            MediaEvent::Peer(PeerEvent::File(update)) => {
                self.emit(file_event(call_id, peer, update)).await;
            }
            MediaEvent::Peer(PeerEvent::Goodbye) => {
                info!(call_id = %call_id, "the peer's RTCP BYE arrived");
                return self.end_call(EndReason::RemoteHangup).await;
            }
        }
        Next::Continue
    }

    /// Ends the call `ice-failed`, first saying why no relay helped when TURN servers
    /// were configured but none gave us a relay candidate (see [`turn_check`]).
    async fn end_ice_failed(&mut self) -> Next {
        let relay_gathered = self.call.as_ref().is_none_or(|c| c.relay_gathered);
        let servers: Vec<IceServer> = self
            .media_config
            .ice_servers
            .iter()
            .chain(&self.server_ice)
            .cloned()
            .map(IceServer::from)
            .collect();
        if !relay_gathered {
            let bind = self.media_config.bind.first().copied();
            for (url, answer) in turn_check::check_all(&servers, bind, TURN_CHECK_DEADLINE).await {
                info!(%url, ?answer, "TURN check after ICE failed");
                if let Some(line) = answer.explain(&url) {
                    self.notice(line).await;
                }
            }
        }
        self.end_call(EndReason::IceFailed).await
    }

    /// After the server reported the peer gone: counts a second of `silent` media and
    /// says whether the peer has now been silent for [`PEER_GONE_SILENCE`] seconds.
    fn peer_silent_too_long(&mut self, silent: bool) -> bool {
        let Some(count) = self.call.as_mut().and_then(|c| c.peer_unconfirmed.as_mut()) else {
            return false;
        };
        *count = if silent { *count + 1 } else { 0 };
        *count >= PEER_GONE_SILENCE
    }

    /// ICE connectivity lost: show `reconnecting`; the caller restarts ICE with a new
    /// offer (only one side restarts, so the two offers never collide). If nothing comes
    /// back within the connect timeout the peer reports `Failed`.
    async fn on_disconnected(&mut self) -> Next {
        self.set_state(CallState::Reconnecting).await;
        let Some(call) = self.call.as_mut() else {
            return Next::Continue;
        };
        if call.reconnect.is_none() {
            let now = Instant::now();
            call.reconnect = Some(Reconnect {
                since: now,
                next_attempt: now,
                attempts: 0,
            });
        }
        self.reconnect_step().await
    }

    /// One step of bringing a dropped connection back: past the reconnect timeout the
    /// call ends `ice-failed`; otherwise the caller restarts ICE with a new offer (only
    /// one side restarts, so two offers never collide) and the next step is scheduled
    /// with [`restart_backoff`].
    async fn reconnect_step(&mut self) -> Next {
        let timeout = self.media_config.reconnect_timeout;
        let Some(call) = self.call.as_mut() else {
            return Next::Continue;
        };
        let Some(mut r) = call.reconnect else {
            return Next::Continue;
        };
        if r.since.elapsed() >= timeout {
            info!(
                ?timeout,
                attempts = r.attempts,
                "no reconnection within the timeout"
            );
            let call_id = call.id.clone();
            self.send(ClientMessage::Hangup { call_id }).await;
            return self.end_ice_failed().await;
        }
        let outgoing = call.direction == Direction::Outgoing;
        r.attempts += u32::from(outgoing);
        r.next_attempt = (Instant::now() + restart_backoff(r.attempts)).min(r.since + timeout);
        call.reconnect = Some(r);
        if !outgoing {
            return Next::Continue;
        }
        let Some(media) = &self.media else {
            return Next::Continue;
        };
        match media.peer().restart_ice().await {
            Ok(offer) => {
                info!(attempt = r.attempts, "ICE restart: sending a new offer");
                self.send_sdp(true, offer).await;
                Next::Continue
            }
            Err(e) => {
                warn!("ICE restart {} failed: {e:#}; trying again", r.attempts);
                Next::Continue
            }
        }
    }

    async fn send_media_state(&self) {
        if let Some(call) = &self.call {
            self.send(ClientMessage::MediaState {
                call_id: call.id.clone(),
                state: self.local,
            })
            .await;
        }
    }

    async fn on_command(&mut self, cmd: UserCommand) -> Next {
        if let UserCommand::Say(text) = cmd {
            self.say(&text).await;
            return Next::Continue;
        }
        if let UserCommand::SendFile(path) = cmd {
            self.send_file(path).await;
            return Next::Continue;
        }
        if let UserCommand::Call(peer) = cmd {
            self.dial(peer).await;
            return Next::Continue;
        }
        let state = self
            .call
            .as_ref()
            .map(|c| (c.id.clone(), c.direction, c.state));
        match (cmd, state) {
            (UserCommand::Accept, Some((call_id, Direction::Incoming, CallState::Ringing))) => {
                self.send(ClientMessage::Accept { call_id }).await;
                self.on_accepted().await
            }
            (UserCommand::Refuse, Some((call_id, Direction::Incoming, CallState::Ringing)))
            | (UserCommand::Hangup, Some((call_id, Direction::Incoming, CallState::Ringing))) => {
                self.send(ClientMessage::Refuse { call_id }).await;
                self.end_call(EndReason::Refused).await
            }
            (
                UserCommand::Hangup,
                Some((call_id, Direction::Outgoing, CallState::Calling | CallState::Ringing)),
            ) => {
                self.send(ClientMessage::Cancel { call_id }).await;
                self.end_call(EndReason::Canceled).await
            }
            (UserCommand::Hangup, Some((call_id, _, _))) => {
                self.send(ClientMessage::Hangup { call_id }).await;
                self.end_call(EndReason::Hangup).await
            }
            (
                cmd @ (UserCommand::Mute
                | UserCommand::Unmute
                | UserCommand::CameraOff
                | UserCommand::CameraOn),
                _,
            ) => {
                self.set_local_media(cmd).await;
                Next::Continue
            }
            (UserCommand::Quit, None) => Next::Exit(self.quit_code()),
            (UserCommand::Quit, Some(_)) => {
                self.quitting = true;
                match Box::pin(self.on_command(UserCommand::Hangup)).await {
                    Next::Continue => Next::Exit(self.quit_code()),
                    exit => exit,
                }
            }
            (cmd, _) => {
                self.notice(format!("nothing to {}", command_verb(&cmd)))
                    .await;
                Next::Continue
            }
        }
    }

    /// Sends a chat message to the peer of the call; says why when it cannot.
    async fn say(&mut self, text: &str) {
        let (Some(call), Some(media)) = (&self.call, &self.media) else {
            self.notice("no call to chat in").await;
            return;
        };
        let call_id = call.id.clone();
        match media.peer().send_chat(text).await {
            Ok(()) => {
                self.emit(AppEvent::Chat {
                    call_id: Some(call_id),
                    from: self.me.clone(),
                    text: text.to_owned(),
                })
                .await;
            }
            Err(e) => {
                self.emit(AppEvent::Error {
                    message: format!("chat message not sent: {e}"),
                    fatal: false,
                })
                .await;
            }
        }
    }

    /// Starts sending a file to the peer of the call; says why when it cannot.
    async fn send_file(&mut self, path: std::path::PathBuf) {
        let Some(media) = &self.media else {
            self.notice("no call to send a file in").await;
            return;
        };
        let started = match sendable_file(&path) {
            Ok(()) => media.peer().send_file(path).await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            self.emit(AppEvent::Error {
                message: format!("{e:#}"),
                fatal: false,
            })
            .await;
        }
    }

    fn quit_code(&self) -> ExitCode {
        match self.mode {
            // Quitting `call` before it was answered counts as canceling it.
            Mode::Call { .. } => ExitCode::Canceled,
            Mode::Listen { .. } => ExitCode::Ok,
        }
    }

    async fn set_local_media(&mut self, cmd: UserCommand) {
        let before = self.local;
        match cmd {
            UserCommand::Mute => self.local.muted = true,
            UserCommand::Unmute => self.local.muted = false,
            UserCommand::CameraOff => self.local.camera = false,
            UserCommand::CameraOn => self.local.camera = true,
            _ => return,
        }
        if before == self.local {
            return;
        }
        if let Some(media) = &self.media {
            media.set_muted(self.local.muted);
            media.set_camera(self.local.camera);
        }
        self.emit(AppEvent::LocalMedia {
            call_id: self.call.as_ref().map(|c| c.id.clone()),
            state: self.local,
        })
        .await;
        let accepted = self.call.as_ref().is_some_and(|c| {
            matches!(
                c.state,
                CallState::Connecting | CallState::Connected | CallState::Reconnecting
            )
        });
        if accepted {
            self.send_media_state().await;
        }
    }
}

fn command_verb(cmd: &UserCommand) -> &'static str {
    match cmd {
        UserCommand::Accept => "accept",
        UserCommand::Refuse => "refuse",
        _ => "hang up",
    }
}

/// The history entry of `call`, which ends now for `reason`.
fn history_entry(call: &ActiveCall, reason: EndReason) -> HistoryEntry {
    HistoryEntry {
        time: call.began,
        peer: call.peer.clone(),
        direction: call.direction,
        duration_secs: call.connected_at.map_or(0, |t| t.elapsed().as_secs()),
        connected: call.connected_at.is_some(),
        reason,
        call_id: call.id.clone(),
    }
}

/// The next message of `rx`, or never when there is no channel (so a `select!` arm
/// for an absent channel never fires).
async fn recv_or_pending<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
