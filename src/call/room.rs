//! The room controller: one client's membership of a mesh room of up to
//! [`RoomId::MAX_MEMBERS`]. The server keeps the membership; every member already in the
//! room calls each newcomer, and the newcomer answers those calls by itself
//! (docs/protocol.md, "Rooms"). Each pair of members holds its own PeerConnection (a
//! *leg*, signaled as a 1:1 call carrying the room); all legs share one
//! [`LocalMedia`]: capture and encode once, one speaker with every member's audio mixed.
//!
//! One controller runs per `room` process; it ends when the user leaves (`h`, `quit`,
//! `--hangup-after`), or for a fatal server answer (room full, login refused).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::media::{LocalMedia, MediaEvent, PeerMedia, Recording};
use super::peer::{FailedStage, PeerEvent, chat};
use super::{
    AppEvent, CallId, CallState, Direction, EndReason, ExitCode, MediaState, RoomId, TimedEvent,
    UserCommand, UserId, ViewChannels, chat_event, close_signaling, file_event, sendable_file,
    sleep_until,
};
use crate::config::{IceServerConfig, MediaSettings};
use crate::media::video::{FrameReceiver, FrameSender};
use crate::signaling::client::{self, ClientConfig, Fatal, SignalingEvent, SignalingHandle};
use crate::signaling::protocol::{ClientMessage, ErrorCode, ServerMessage};

/// How a room controller runs.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// The room to join (created by the first join).
    pub room: RoomId,
    /// The signaling connection.
    pub client: ClientConfig,
    /// Leave the room by itself this long after joining it (`--hangup-after`).
    pub hangup_after: Option<Duration>,
    /// Sources, sinks, codecs and ICE settings.
    pub media: MediaSettings,
    /// `--record-dir`: each member's received video and audio go to `<id>.y4m` and
    /// `<id>.wav` in it.
    pub record_dir: Option<PathBuf>,
    /// Where the decoded video of each member and our self-view go.
    pub tiles: RoomVideo,
}

/// The video a room view shows: our self-view, and the latest decoded frame of each
/// member we are connected to, by id. The controller adds a member's slot when its leg
/// starts and removes it when the leg ends.
#[derive(Debug, Clone)]
pub struct RoomVideo {
    /// Our own outgoing video.
    pub local: FrameSender,
    members: Arc<Mutex<BTreeMap<UserId, FrameReceiver>>>,
}

impl Default for RoomVideo {
    fn default() -> Self {
        Self::new()
    }
}

impl RoomVideo {
    /// No members yet, an empty self-view.
    pub fn new() -> Self {
        Self {
            local: tokio::sync::watch::channel(None).0,
            members: Arc::default(),
        }
    }

    /// Each connected member's video, in id order.
    pub fn members(&self) -> Vec<(UserId, FrameReceiver)> {
        self.lock()
            .iter()
            .map(|(id, rx)| (id.clone(), rx.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<UserId, FrameReceiver>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh slot for `id`'s video (replacing any earlier one).
    fn add(&self, id: &UserId) -> FrameSender {
        let (tx, rx) = tokio::sync::watch::channel(None);
        self.lock().insert(id.clone(), rx);
        tx
    }

    fn remove(&self, id: &UserId) {
        self.lock().remove(id);
    }
}

/// Our call with one other member.
struct Leg {
    id: CallId,
    peer: UserId,
    direction: Direction,
    state: CallState,
    /// From acceptance on.
    media: Option<PeerMedia>,
}

/// What the controller loop does next.
enum Next {
    Continue,
    Exit(ExitCode),
}

/// Joins the room and runs until the process should exit, returning its exit code.
pub async fn run(config: RoomConfig, view: ViewChannels) -> ExitCode {
    let (media_tx, media_rx) = mpsc::channel(256);
    let (local_tx, local_rx) = mpsc::channel(16);
    let local = match LocalMedia::open(&config.media, config.tiles.local.clone(), local_tx).await {
        Ok(local) => local,
        Err(e) => {
            let message = format!("{e:#}");
            let _ = view
                .events
                .send(TimedEvent::now(AppEvent::Error {
                    message,
                    fatal: true,
                }))
                .await;
            return ExitCode::Error;
        }
    };
    let client = client::spawn(config.client.clone());
    let mut controller = Room {
        me: config.client.id.clone(),
        signaling: client.handle,
        events: view.events,
        room: config.room,
        hangup_after: config.hangup_after,
        joined_at: None,
        record_dir: config.record_dir,
        tiles: config.tiles,
        local: Arc::clone(&local),
        local_state: MediaState::default(),
        server_ice: Vec::new(),
        legs: HashMap::new(),
        media_tx,
    };
    let code = controller
        .event_loop(client.events, view.commands, media_rx, local_rx)
        .await;
    controller.close_all(EndReason::Hangup).await;
    local.close().await;
    drop(controller);
    close_signaling(client.task).await;
    code
}

struct Room {
    /// Our id.
    me: UserId,
    signaling: SignalingHandle,
    events: mpsc::Sender<TimedEvent>,
    room: RoomId,
    hangup_after: Option<Duration>,
    /// When the server confirmed our membership, for `--hangup-after`.
    joined_at: Option<Instant>,
    record_dir: Option<PathBuf>,
    tiles: RoomVideo,
    local: Arc<LocalMedia>,
    /// Our mic/camera state.
    local_state: MediaState,
    /// STUN/TURN servers from the latest `login_ok`.
    server_ice: Vec<IceServerConfig>,
    legs: HashMap<CallId, Leg>,
    /// Every leg's media events, tagged with its call.
    media_tx: mpsc::Sender<(CallId, MediaEvent)>,
}

impl Room {
    async fn event_loop(
        &mut self,
        mut signaling: mpsc::Receiver<SignalingEvent>,
        mut commands: mpsc::Receiver<UserCommand>,
        mut media: mpsc::Receiver<(CallId, MediaEvent)>,
        mut local: mpsc::Receiver<MediaEvent>,
    ) -> ExitCode {
        let mut commands_open = true;
        loop {
            let leave_at = self.joined_at.zip(self.hangup_after).map(|(at, d)| at + d);
            let next = tokio::select! {
                ev = signaling.recv() => match ev {
                    Some(ev) => self.on_signaling(ev).await,
                    None => Next::Exit(ExitCode::Error),
                },
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => {
                        debug!("command input closed; the room goes on");
                        commands_open = false;
                        Next::Continue
                    }
                },
                Some((call_id, ev)) = media.recv() => self.on_media(call_id, ev).await,
                Some(ev) = local.recv() => {
                    if let MediaEvent::Notice(message) = ev {
                        self.emit(AppEvent::Notice { message }).await;
                    }
                    Next::Continue
                }
                _ = sleep_until(leave_at) => {
                    info!("--hangup-after elapsed");
                    self.on_command(UserCommand::Hangup).await
                }
            };
            if let Next::Exit(code) = next {
                return code;
            }
        }
    }

    async fn emit(&self, event: AppEvent) {
        if self.events.send(TimedEvent::now(event)).await.is_err() {
            debug!("view is gone");
        }
    }

    async fn send(&self, msg: ClientMessage) {
        self.signaling.send(msg).await;
    }

    async fn on_signaling(&mut self, ev: SignalingEvent) -> Next {
        match ev {
            SignalingEvent::LoggedIn {
                id,
                server,
                ice_servers,
                ..
            } => {
                self.server_ice = ice_servers;
                self.emit(AppEvent::LoggedIn { id, server }).await;
                // After a reconnect the server has dropped us from the room (and told
                // the others): start over with a fresh membership.
                self.close_all(EndReason::ServerLost).await;
                self.send(ClientMessage::JoinRoom {
                    room: self.room.clone(),
                })
                .await;
                Next::Continue
            }
            SignalingEvent::Message(msg) => self.on_server_message(msg).await,
            SignalingEvent::Disconnected { reason } => {
                let message =
                    format!("lost the server ({reason}); connected members go on, reconnecting");
                self.emit(AppEvent::ServerLost { message }).await;
                Next::Continue
            }
            SignalingEvent::Fatal(fatal) => {
                let code = ExitCode::for_fatal(&fatal);
                if let Fatal::Conflict(message) = &fatal {
                    self.emit(AppEvent::Conflict {
                        message: message.clone(),
                    })
                    .await;
                }
                self.emit(AppEvent::Error {
                    message: fatal.to_string(),
                    fatal: true,
                })
                .await;
                Next::Exit(code)
            }
        }
    }

    async fn on_server_message(&mut self, msg: ServerMessage) -> Next {
        match msg {
            ServerMessage::RoomJoined { room, members } if room == self.room => {
                info!(%room, ?members, "joined the room");
                self.joined_at.get_or_insert_with(Instant::now);
                self.emit(AppEvent::RoomJoined { room, members }).await;
            }
            ServerMessage::MemberJoined { room, id } if room == self.room => {
                self.emit(AppEvent::MemberJoined {
                    room,
                    id: id.clone(),
                })
                .await;
                self.call_member(id).await;
            }
            ServerMessage::MemberLeft { room, id } if room == self.room => {
                self.emit(AppEvent::MemberLeft {
                    room,
                    id: id.clone(),
                })
                .await;
                let gone: Vec<CallId> = self
                    .legs
                    .values()
                    .filter(|l| l.peer == id)
                    .map(|l| l.id.clone())
                    .collect();
                for call_id in gone {
                    self.end_leg(&call_id, EndReason::RemoteHangup).await;
                }
            }
            ServerMessage::Incoming {
                call_id,
                from,
                room,
            } => {
                if room.as_ref() == Some(&self.room) {
                    return self.answer_member(call_id, from).await;
                }
                // A 1:1 call while we are in a room: we are busy.
                info!(%from, "refusing a 1:1 call while in a room");
                self.send(ClientMessage::Refuse { call_id }).await;
            }
            ServerMessage::Ringing { call_id, .. } => {
                self.set_state(&call_id, CallState::Ringing).await;
            }
            ServerMessage::Accept { call_id, .. } => return self.on_accepted(call_id).await,
            ServerMessage::Refuse { call_id, .. } | ServerMessage::Busy { call_id, .. } => {
                self.end_leg(&call_id, EndReason::Refused).await;
            }
            ServerMessage::Cancel { call_id, .. } => {
                self.end_leg(&call_id, EndReason::Canceled).await;
            }
            ServerMessage::Hangup { call_id, .. } => {
                self.end_leg(&call_id, EndReason::RemoteHangup).await;
            }
            ServerMessage::CallEnded { call_id, .. } => {
                self.end_leg(&call_id, EndReason::PeerGone).await;
            }
            ServerMessage::Offer { call_id, sdp, .. } => return self.on_offer(call_id, &sdp).await,
            ServerMessage::Answer { call_id, sdp, .. } => {
                let Some(media) = self.legs.get(&call_id).and_then(|l| l.media.as_ref()) else {
                    return Next::Continue;
                };
                if let Err(e) = media.peer().accept_answer(&sdp).await {
                    return self
                        .fail_leg(&call_id, format!("bad SDP answer: {e:#}"))
                        .await;
                }
            }
            ServerMessage::Candidate {
                call_id, candidate, ..
            } => {
                if let Some(media) = self.legs.get(&call_id).and_then(|l| l.media.as_ref())
                    && let Err(e) = media.peer().add_remote_candidate(&candidate).await
                {
                    warn!("ignoring a remote ICE candidate: {e:#}");
                }
            }
            ServerMessage::MediaState {
                call_id,
                from,
                state,
            } if self.legs.contains_key(&call_id) => {
                self.emit(AppEvent::PeerMedia {
                    call_id,
                    peer: from,
                    state,
                })
                .await;
            }
            ServerMessage::Error {
                code,
                message,
                call_id,
            } => return self.on_error(code, message, call_id).await,
            other => debug!("ignoring {other:?}"),
        }
        Next::Continue
    }

    async fn on_error(
        &mut self,
        code: ErrorCode,
        message: String,
        call_id: Option<CallId>,
    ) -> Next {
        match (code, call_id) {
            (ErrorCode::RoomFull, _) => {
                self.emit(AppEvent::Error {
                    message: format!("room {} is full: {message}", self.room),
                    fatal: true,
                })
                .await;
                Next::Exit(ExitCode::RoomFull)
            }
            (_, Some(call_id)) if self.legs.contains_key(&call_id) => {
                self.fail_leg(&call_id, format!("the server refused: {message}"))
                    .await
            }
            (code, _) => {
                warn!(?code, "server error: {message}");
                self.emit(AppEvent::Notice {
                    message: format!("server: {message}"),
                })
                .await;
                Next::Continue
            }
        }
    }

    /// An existing member calls each newcomer.
    async fn call_member(&mut self, id: UserId) {
        let call_id = CallId::random();
        self.legs.insert(
            call_id.clone(),
            Leg {
                id: call_id.clone(),
                peer: id.clone(),
                direction: Direction::Outgoing,
                state: CallState::Ended,
                media: None,
            },
        );
        self.send(ClientMessage::Call {
            call_id: call_id.clone(),
            to: id,
            room: Some(self.room.clone()),
        })
        .await;
        self.set_state(&call_id, CallState::Calling).await;
    }

    /// The newcomer answers each member's call by itself.
    async fn answer_member(&mut self, call_id: CallId, from: UserId) -> Next {
        self.legs.insert(
            call_id.clone(),
            Leg {
                id: call_id.clone(),
                peer: from,
                direction: Direction::Incoming,
                state: CallState::Ended,
                media: None,
            },
        );
        self.send(ClientMessage::Accept {
            call_id: call_id.clone(),
        })
        .await;
        self.on_accepted(call_id).await
    }

    /// Both sides accepted: the leg's media starts; the caller sends the SDP offer.
    async fn on_accepted(&mut self, call_id: CallId) -> Next {
        let Some(leg) = self.legs.get(&call_id) else {
            return Next::Continue;
        };
        let peer = leg.peer.clone();
        let outgoing = leg.direction == Direction::Outgoing;
        self.set_state(&call_id, CallState::Connecting).await;
        self.send(ClientMessage::MediaState {
            call_id: call_id.clone(),
            state: self.local_state,
        })
        .await;
        let media = match self.start_leg_media(&call_id, &peer).await {
            Ok(media) => media,
            Err(e) => {
                return self
                    .fail_leg(&call_id, format!("cannot start media: {e:#}"))
                    .await;
            }
        };
        let offer = if outgoing {
            Some(media.peer().create_offer().await)
        } else {
            None
        };
        if let Some(leg) = self.legs.get_mut(&call_id) {
            leg.media = Some(media);
        }
        match offer {
            Some(Ok(sdp)) => self.send(ClientMessage::Offer { call_id, sdp }).await,
            Some(Err(e)) => {
                return self
                    .fail_leg(&call_id, format!("cannot create the SDP offer: {e:#}"))
                    .await;
            }
            None => {}
        }
        Next::Continue
    }

    async fn start_leg_media(&self, call_id: &CallId, peer: &UserId) -> anyhow::Result<PeerMedia> {
        let (tx, mut rx) = mpsc::channel(64);
        let tagged = self.media_tx.clone();
        let tag = call_id.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if tagged.send((tag.clone(), ev)).await.is_err() {
                    return;
                }
            }
        });
        let recording = match &self.record_dir {
            Some(dir) => Recording {
                video: Some(dir.join(format!("{peer}.y4m"))),
                audio: Some(dir.join(format!("{peer}.wav"))),
            },
            None => Recording::default(),
        };
        let slot = self.tiles.add(peer);
        PeerMedia::start(&self.local, &self.server_ice, slot, recording, tx).await
    }

    async fn on_offer(&mut self, call_id: CallId, sdp: &str) -> Next {
        let Some(media) = self.legs.get(&call_id).and_then(|l| l.media.as_ref()) else {
            warn!(%call_id, "SDP offer for no leg with media; ignored");
            return Next::Continue;
        };
        match media.peer().accept_offer(sdp).await {
            Ok(answer) => {
                self.send(ClientMessage::Answer {
                    call_id,
                    sdp: answer,
                })
                .await;
                Next::Continue
            }
            Err(e) => {
                self.fail_leg(&call_id, format!("bad SDP offer: {e:#}"))
                    .await
            }
        }
    }

    async fn on_media(&mut self, call_id: CallId, ev: MediaEvent) -> Next {
        let Some(leg) = self.legs.get_mut(&call_id) else {
            return Next::Continue;
        };
        let peer = leg.peer.clone();
        match ev {
            MediaEvent::Stats(stats) => {
                self.emit(AppEvent::Stats {
                    call_id,
                    peer,
                    stats,
                })
                .await;
            }
            MediaEvent::Notice(message) => {
                self.emit(AppEvent::Notice {
                    message: format!("{peer}: {message}"),
                })
                .await;
            }
            MediaEvent::Peer(PeerEvent::LocalCandidate(candidate)) => {
                self.send(ClientMessage::Candidate { call_id, candidate })
                    .await;
            }
            MediaEvent::Peer(PeerEvent::EndOfCandidates) => {
                self.send(ClientMessage::EndOfCandidates { call_id }).await;
            }
            MediaEvent::Peer(PeerEvent::Connected) => {
                if let Some(media) = &leg.media {
                    media.start_sending();
                }
                self.set_state(&call_id, CallState::Connected).await;
            }
            MediaEvent::Peer(PeerEvent::Disconnected) => {
                self.set_state(&call_id, CallState::Reconnecting).await;
            }
            MediaEvent::Peer(PeerEvent::Failed(stage)) => {
                let what = match stage {
                    FailedStage::Ice => "no network path (ICE failed)",
                    FailedStage::Dtls => "the secure connection did not come up (DTLS)",
                };
                self.send(ClientMessage::Hangup {
                    call_id: call_id.clone(),
                })
                .await;
                self.emit(AppEvent::Notice {
                    message: format!("{peer}: {what}"),
                })
                .await;
                self.end_leg(&call_id, EndReason::IceFailed).await;
            }
            MediaEvent::Peer(PeerEvent::Closed) => {
                return self
                    .fail_leg(&call_id, "the peer connection closed".into())
                    .await;
            }
            MediaEvent::Peer(PeerEvent::Goodbye) => {
                self.end_leg(&call_id, EndReason::RemoteHangup).await;
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
        }
        Next::Continue
    }

    async fn on_command(&mut self, cmd: UserCommand) -> Next {
        match cmd {
            UserCommand::Hangup | UserCommand::Quit => {
                info!(room = %self.room, "leaving the room");
                self.send(ClientMessage::LeaveRoom {
                    room: self.room.clone(),
                })
                .await;
                self.close_all(EndReason::Hangup).await;
                Next::Exit(ExitCode::Ok)
            }
            UserCommand::Mute
            | UserCommand::Unmute
            | UserCommand::CameraOff
            | UserCommand::CameraOn => {
                match cmd {
                    UserCommand::Mute => self.local_state.muted = true,
                    UserCommand::Unmute => self.local_state.muted = false,
                    UserCommand::CameraOff => self.local_state.camera = false,
                    _ => self.local_state.camera = true,
                }
                self.local.set_muted(self.local_state.muted);
                self.local.set_camera(self.local_state.camera);
                let calls: Vec<CallId> = self.legs.keys().cloned().collect();
                for call_id in calls {
                    self.send(ClientMessage::MediaState {
                        call_id,
                        state: self.local_state,
                    })
                    .await;
                }
                self.emit(AppEvent::LocalMedia {
                    call_id: None,
                    state: self.local_state,
                })
                .await;
                Next::Continue
            }
            UserCommand::Say(text) => {
                self.say(&text).await;
                Next::Continue
            }
            UserCommand::SendFile(path) => {
                self.send_file(path).await;
                Next::Continue
            }
            UserCommand::Accept | UserCommand::Refuse | UserCommand::Call(_) => {
                self.emit(AppEvent::Notice {
                    message: "in a room, members call each other by themselves".into(),
                })
                .await;
                Next::Continue
            }
        }
    }

    /// Sends a chat message to every member we are connected to; one `chat` event for
    /// it, and a notice naming the members it could not reach.
    async fn say(&mut self, text: &str) {
        if let Err(e) = chat::check_length(text) {
            self.emit(AppEvent::Error {
                message: format!("chat message not sent: {e}"),
                fatal: false,
            })
            .await;
            return;
        }
        let mut reached = 0;
        let mut missed = Vec::new();
        for leg in self.legs.values() {
            let sent = match &leg.media {
                Some(media) => media.peer().send_chat(text).await,
                None => Err(chat::ChatError::NotOpen),
            };
            match sent {
                Ok(()) => reached += 1,
                Err(e) => missed.push(format!("{} ({e})", leg.peer)),
            }
        }
        if reached > 0 {
            self.emit(AppEvent::Chat {
                call_id: None,
                from: self.me.clone(),
                text: text.to_owned(),
            })
            .await;
        }
        if reached == 0 || !missed.is_empty() {
            let message = if missed.is_empty() {
                "chat message not sent: nobody in the room yet".to_owned()
            } else {
                format!("chat message not sent to {}", missed.join(", "))
            };
            self.emit(AppEvent::Error {
                message,
                fatal: false,
            })
            .await;
        }
    }

    /// Starts sending a file to every member we are connected to (a transfer each).
    async fn send_file(&mut self, path: std::path::PathBuf) {
        let mut problems = Vec::new();
        if let Err(e) = sendable_file(&path) {
            problems.push(format!("{e:#}"));
        } else {
            let mut any = false;
            for leg in self.legs.values() {
                if let Some(media) = &leg.media {
                    any = true;
                    if let Err(e) = media.peer().send_file(path.clone()).await {
                        problems.push(format!("{}: {e:#}", leg.peer));
                    }
                }
            }
            if !any {
                problems.push("nobody in the room to send a file to".into());
            }
        }
        for message in problems {
            self.emit(AppEvent::Error {
                message,
                fatal: false,
            })
            .await;
        }
    }

    async fn set_state(&mut self, call_id: &CallId, state: CallState) {
        let Some(leg) = self.legs.get_mut(call_id) else {
            return;
        };
        if leg.state == state {
            return;
        }
        leg.state = state;
        info!(%call_id, peer = %leg.peer, %state, "room call state");
        let event = AppEvent::State {
            call_id: call_id.clone(),
            peer: leg.peer.clone(),
            direction: leg.direction,
            state,
            reason: None,
        };
        self.emit(event).await;
    }

    /// Ends a leg for a media failure: tells the peer, shows why, ends with `failed`.
    async fn fail_leg(&mut self, call_id: &CallId, message: String) -> Next {
        warn!("{message}");
        self.send(ClientMessage::Hangup {
            call_id: call_id.clone(),
        })
        .await;
        self.emit(AppEvent::Notice { message }).await;
        self.end_leg(call_id, EndReason::Failed).await;
        Next::Continue
    }

    /// Closes a leg's media (its last stats first) and tells the view it ended.
    async fn end_leg(&mut self, call_id: &CallId, reason: EndReason) {
        let Some(leg) = self.legs.remove(call_id) else {
            return;
        };
        info!(%call_id, peer = %leg.peer, %reason, "room call ended");
        if let Some(media) = leg.media {
            let stats = media.final_stats().await;
            self.emit(AppEvent::Stats {
                call_id: leg.id.clone(),
                peer: leg.peer.clone(),
                stats: Box::new(stats),
            })
            .await;
            media.close().await;
        }
        if !self.legs.values().any(|l| l.peer == leg.peer) {
            self.tiles.remove(&leg.peer);
        }
        self.emit(AppEvent::State {
            call_id: leg.id,
            peer: leg.peer,
            direction: leg.direction,
            state: CallState::Ended,
            reason: Some(reason),
        })
        .await;
    }

    async fn close_all(&mut self, reason: EndReason) {
        let calls: Vec<CallId> = self.legs.keys().cloned().collect();
        for call_id in calls {
            self.end_leg(&call_id, reason).await;
        }
    }
}
