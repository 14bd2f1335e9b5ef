//! The call screen's state and its one place of change (The Elm Architecture):
//! a [`Model`], the [`Msg`]s that can happen (a key, a controller event, a tick, a
//! resize), and [`update`], which applies one and may answer with a [`UserCommand`].
//!
//! `update` reads no clock: time arrives as [`Msg::Tick`], so tests drive it exactly.

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::halfblock::CellSize;
use crate::call::history::HistoryEntry;
use crate::call::{
    AppEvent, CallId, CallState, CallStats, Direction, EndReason, MediaState, Presence, RoomId,
    TimedEvent, TransferDirection, UserCommand, UserId,
};

/// How long an ended call stays on screen before `listen` shows the listening
/// screen again (the reason stays as a notice).
pub const ENDED_LINGER: Duration = Duration::from_secs(3);

/// How long an informational notice stays up.
pub const NOTICE_TTL: Duration = Duration::from_secs(8);

/// What the process is for, which changes what the idle screen says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// `rtc-cli listen`: wait for calls, return to listening after each.
    #[default]
    Listen,
    /// `rtc-cli call`: one outgoing call, then exit.
    Call,
    /// `rtc-cli room`: a grid of the room's members until we leave.
    Room,
}

/// Who we are logged in as, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Our user id.
    pub id: UserId,
    /// The signaling server's URL, as the user gave it (e.g. `ws://host:8080`).
    pub server: String,
}

/// One call as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// The controller's id for the call; events for other calls are ignored.
    pub call_id: CallId,
    /// The other side.
    pub peer: UserId,
    /// Whether we called or were called (changes the wording of end reasons).
    pub direction: Direction,
    /// The latest state.
    pub state: CallState,
    /// Why it ended, once `state` is [`CallState::Ended`].
    pub reason: Option<EndReason>,
    /// When media first flowed: the start of the HH:MM:SS clock (kept across
    /// reconnects, so the clock shows the call's length, not the link's).
    pub connected_at: Option<Instant>,
    /// When it ended, for [`ENDED_LINGER`].
    pub ended_at: Option<Instant>,
    /// The peer's microphone and camera.
    pub peer_media: MediaState,
    /// The latest once-a-second figures.
    pub stats: Option<Box<CallStats>>,
}

impl CallView {
    /// Whether the call is still under way (not ended).
    pub fn is_live(&self) -> bool {
        self.state != CallState::Ended
    }
}

/// One member of our room as its tile shows it: our call with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Our call with the member.
    pub call_id: CallId,
    /// The member.
    pub peer: UserId,
    /// The call's latest state (never `ended`: an ended call's tile goes).
    pub state: CallState,
    /// The member's microphone and camera.
    pub peer_media: MediaState,
    /// The latest once-a-second figures of our call with them.
    pub stats: Option<Box<CallStats>>,
}

impl Tile {
    /// Whether the member is speaking: the level of their audio as played, from the
    /// latest figures, is above [`SPEAKING_DBFS`] and their microphone is on.
    pub fn speaking(&self) -> bool {
        !self.peer_media.muted
            && self
                .stats
                .as_ref()
                .is_some_and(|s| s.audio_level_in_dbfs > SPEAKING_DBFS)
    }
}

/// The audio level above which a member counts as speaking, dBFS: speech sits around
/// -20 to -30 dBFS RMS, a quiet room's noise well under -50.
pub const SPEAKING_DBFS: f64 = -45.0;

/// A room as the screen shows it: a tile per member we have a call with, in the order
/// the calls began.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    /// The room.
    pub room: RoomId,
    /// The members' tiles.
    pub tiles: Vec<Tile>,
}

impl RoomView {
    fn tile_mut(&mut self, call_id: &CallId) -> Option<&mut Tile> {
        self.tiles.iter_mut().find(|t| t.call_id == *call_id)
    }
}

/// What fills the main area.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// No call: listening (or still connecting to the server).
    Idle,
    /// Someone is calling and waits for `[a] accept  [r] refuse`.
    Incoming {
        /// The call to accept or refuse.
        call_id: CallId,
        /// The caller.
        from: UserId,
    },
    /// A call in any state from calling to (just) ended.
    Call(CallView),
    /// We are in a room.
    Room(RoomView),
}

/// How much a notice matters, which sets its color.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// Good to know.
    Info,
    /// Something is degraded (server lost, device fallback).
    Warning,
    /// Something failed.
    Error,
}

/// A message shown in its own line of the view, instead of printed over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text, one line.
    pub text: String,
    /// Its color.
    pub level: NoticeLevel,
    /// When it disappears; `None` keeps it until replaced.
    pub expires_at: Option<Instant>,
}

/// Everything the call screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Listen or call, for the idle screen's wording.
    pub role: Role,
    /// The time of the latest [`Msg::Tick`]: the clock the view and expiries use.
    pub now: Instant,
    /// Set once logged in; `None` while connecting.
    pub session: Option<Session>,
    /// The server connection dropped and the controller is reconnecting.
    pub server_lost: bool,
    /// The main area's content.
    pub screen: Screen,
    /// Our microphone and camera.
    pub local_media: MediaState,
    /// Show our own camera in a corner (`p`).
    pub self_view: bool,
    /// Show the detailed network panel (`s`).
    pub stats_panel: bool,
    /// Show the help overlay (`?`).
    pub help: bool,
    /// The message line.
    pub notice: Option<Notice>,
    /// The terminal's cell shape, for keeping the video's aspect ratio.
    pub cell_size: CellSize,
    /// Quit was sent: waiting for the controller to finish.
    pub quitting: bool,
    /// When the latest controller event was emitted (wall clock), for chat times.
    pub event_time: SystemTime,
    /// The chat so far, oldest first, at most [`CHAT_HISTORY`] lines.
    pub chat: Vec<ChatLine>,
    /// Show the chat pane (`c`).
    pub chat_pane: bool,
    /// Chat messages that came while the pane was hidden.
    pub unread: usize,
    /// The line being typed: a chat message (`t`) or a file's path (`f`); Enter sends,
    /// Esc cancels.
    pub input: Option<Input>,
    /// Who is online (sorted by id), when the server shares presence; `None` when it
    /// does not (or has not said yet).
    pub online: Option<Vec<Presence>>,
    /// The newest calls of the history, newest first.
    pub recent: Vec<HistoryEntry>,
    /// The selected entry of [`Model::recent`] (Up/Down; Enter calls back).
    pub selected: usize,
}

/// What the input line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    /// A chat message (`t`).
    Chat,
    /// The path of a file to send (`f`).
    SendFile,
    /// An id to call, from the listening screen (`c`).
    Dial,
}

/// The line being typed at the bottom of the call screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// What Enter does with it.
    pub purpose: InputPurpose,
    /// The text so far.
    pub text: String,
}

/// Chat lines kept for the pane.
pub const CHAT_HISTORY: usize = 200;

/// One chat message as the pane shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// When it was sent or received.
    pub at: SystemTime,
    /// Who wrote it.
    pub from: UserId,
    /// The text as written (the view replaces control characters).
    pub text: String,
}

impl Model {
    /// A model for `role` at time `now`: idle, not logged in, self-view on.
    pub fn new(role: Role, now: Instant) -> Self {
        Self {
            role,
            now,
            session: None,
            server_lost: false,
            screen: Screen::Idle,
            local_media: MediaState::default(),
            self_view: true,
            stats_panel: false,
            help: false,
            notice: None,
            cell_size: CellSize::default(),
            quitting: false,
            event_time: SystemTime::UNIX_EPOCH,
            chat: Vec::new(),
            chat_pane: false,
            unread: 0,
            input: None,
            online: None,
            recent: Vec::new(),
            selected: 0,
        }
    }

    /// Whether the listening screen is up (logged in, no call, `listen`): the keys
    /// that dial and call back work there.
    pub fn phone_idle(&self) -> bool {
        self.role == Role::Listen
            && self.session.is_some()
            && match &self.screen {
                Screen::Idle => true,
                Screen::Call(call) => !call.is_live(),
                _ => false,
            }
    }

    /// The call on screen, if any.
    pub fn call(&self) -> Option<&CallView> {
        match &self.screen {
            Screen::Call(call) => Some(call),
            _ => None,
        }
    }

    /// How long the call on screen has been connected (frozen at its end).
    pub fn call_duration(&self) -> Option<Duration> {
        let call = self.call()?;
        let start = call.connected_at?;
        let end = call.ended_at.unwrap_or(self.now);
        Some(end.saturating_duration_since(start))
    }

    /// The room on screen, if any.
    pub fn room(&self) -> Option<&RoomView> {
        match &self.screen {
            Screen::Room(room) => Some(room),
            _ => None,
        }
    }

    fn room_mut(&mut self) -> Option<&mut RoomView> {
        match &mut self.screen {
            Screen::Room(room) => Some(room),
            _ => None,
        }
    }

    /// The call on screen if it is `call_id`.
    fn call_mut(&mut self, call_id: &CallId) -> Option<&mut CallView> {
        match &mut self.screen {
            Screen::Call(call) if call.call_id == *call_id => Some(call),
            _ => None,
        }
    }

    /// The lines to print once the terminal is back to normal: how the last call
    /// ended (for `call`, whose screen closes with the call) and a fatal error, if
    /// any. Without them a failed call (offline, refused, login refused) would
    /// vanish with the screen and leave only an exit code.
    pub fn farewell(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.role == Role::Call
            && let Some(call) = self.call().filter(|c| !c.is_live())
        {
            let how = describe_end(call.reason, &call.peer, call.direction);
            lines.push(match self.call_duration() {
                Some(length) => format!(
                    "Call with {} ended after {}: {how}",
                    call.peer,
                    format_clock(length)
                ),
                None => format!("Call with {} ended: {how}", call.peer),
            });
        }
        if let Some(notice) = &self.notice
            && notice.level == NoticeLevel::Error
            && notice.expires_at.is_none()
        {
            lines.push(notice.text.clone());
        }
        lines
    }

    /// Drops a notice that would expire anyway (kept: the ones that last until
    /// their cause is gone, like a lost server).
    fn clear_transient_notice(&mut self) {
        if self.notice.as_ref().is_some_and(|n| n.expires_at.is_some()) {
            self.notice = None;
        }
    }

    fn set_notice(&mut self, text: String, level: NoticeLevel, ttl: Option<Duration>) {
        self.notice = Some(Notice {
            text,
            level,
            expires_at: ttl.map(|ttl| self.now + ttl),
        });
    }
}

/// Everything that can happen to the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// An event from the call controller.
    Event(AppEvent),
    /// An event from the call controller with the wall-clock time it was emitted (the
    /// chat pane shows it).
    TimedEvent(TimedEvent),
    /// Time passed; carries the current time.
    Tick(Instant),
    /// The terminal changed size; `cell` is its cell size in pixels when it reports one.
    Resize {
        /// Width in cells.
        cols: u16,
        /// Height in cells.
        rows: u16,
        /// The reported cell size, if any.
        cell: Option<CellSize>,
    },
}

/// Applies `msg` to `model`; returns the command to send to the controller, if any.
pub fn update(model: &mut Model, msg: Msg) -> Option<UserCommand> {
    match msg {
        Msg::Key(key) => on_key(model, key),
        Msg::Event(event) => {
            on_event(model, event);
            None
        }
        Msg::TimedEvent(timed) => {
            model.event_time = timed.at;
            on_event(model, timed.event);
            None
        }
        Msg::Tick(now) => {
            on_tick(model, now);
            None
        }
        Msg::Resize { cell, .. } => {
            model.cell_size = cell.unwrap_or_default();
            None
        }
    }
}

/// The keymap: `a` accept, `r` refuse, `h` hang up or cancel, `m` mute/unmute,
/// `v` camera off/on, `p` self-view, `s` stats, `?` help, `q` or Ctrl-C quit.
fn on_key(model: &mut Model, key: KeyEvent) -> Option<UserCommand> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return quit(model);
    }
    if model.input.is_some() {
        return on_input_key(model, key, ctrl);
    }
    let in_call = model.call().is_some_and(CallView::is_live) || model.room().is_some();
    match key.code {
        _ if ctrl => None,
        KeyCode::Char('t') if in_call => {
            model.input = Some(Input {
                purpose: InputPurpose::Chat,
                text: String::new(),
            });
            model.chat_pane = true;
            model.unread = 0;
            None
        }
        KeyCode::Char('f') if in_call => {
            model.input = Some(Input {
                purpose: InputPurpose::SendFile,
                text: String::new(),
            });
            None
        }
        KeyCode::Char('c') if in_call => {
            model.chat_pane = !model.chat_pane;
            if model.chat_pane {
                model.unread = 0;
            }
            None
        }
        KeyCode::Char('c') if model.phone_idle() => {
            model.input = Some(Input {
                purpose: InputPurpose::Dial,
                text: String::new(),
            });
            None
        }
        KeyCode::Up if model.phone_idle() => {
            model.selected = model.selected.saturating_sub(1);
            None
        }
        KeyCode::Down if model.phone_idle() => {
            model.selected = (model.selected + 1).min(model.recent.len().saturating_sub(1));
            None
        }
        KeyCode::Enter | KeyCode::Char('b') if model.phone_idle() => model
            .recent
            .get(model.selected)
            .map(|entry| UserCommand::Call(entry.peer.clone())),
        KeyCode::Char('q') => quit(model),
        KeyCode::Char('a') => match &model.screen {
            Screen::Incoming { .. } => Some(UserCommand::Accept),
            _ => None,
        },
        // Hanging up a call that rings here is refusing it.
        KeyCode::Char('r') | KeyCode::Char('h')
            if matches!(model.screen, Screen::Incoming { .. }) =>
        {
            Some(UserCommand::Refuse)
        }
        KeyCode::Char('h') => (model.call().is_some_and(CallView::is_live)
            || model.room().is_some())
        .then_some(UserCommand::Hangup),
        KeyCode::Char('m') => {
            model.local_media.muted = !model.local_media.muted;
            Some(if model.local_media.muted {
                UserCommand::Mute
            } else {
                UserCommand::Unmute
            })
        }
        KeyCode::Char('v') => {
            model.local_media.camera = !model.local_media.camera;
            Some(if model.local_media.camera {
                UserCommand::CameraOn
            } else {
                UserCommand::CameraOff
            })
        }
        KeyCode::Char('p') => {
            model.self_view = !model.self_view;
            None
        }
        KeyCode::Char('s') => {
            model.stats_panel = !model.stats_panel;
            None
        }
        KeyCode::Char('?') => {
            model.help = !model.help;
            None
        }
        KeyCode::Esc => {
            model.help = false;
            None
        }
        _ => None,
    }
}

/// Keys while a chat message is typed: text, Backspace, Enter sends, Esc cancels.
fn on_input_key(model: &mut Model, key: KeyEvent, ctrl: bool) -> Option<UserCommand> {
    let input = model.input.as_mut()?;
    match key.code {
        KeyCode::Esc => model.input = None,
        KeyCode::Enter => {
            let Input { purpose, text } = model.input.take()?;
            if text.trim().is_empty() {
                return None;
            }
            return match purpose {
                InputPurpose::Chat => Some(UserCommand::Say(text)),
                InputPurpose::SendFile => Some(UserCommand::SendFile(text.trim().into())),
                InputPurpose::Dial => match UserId::parse(text.trim()) {
                    Ok(id) => Some(UserCommand::Call(id)),
                    Err(e) => {
                        model.set_notice(
                            format!("cannot call {:?}: {e}", text.trim()),
                            NoticeLevel::Error,
                            Some(NOTICE_TTL),
                        );
                        None
                    }
                },
            };
        }
        KeyCode::Backspace => {
            input.text.pop();
        }
        KeyCode::Tab if input.purpose == InputPurpose::Dial => {
            if let Some(id) = complete(model.online.as_deref().unwrap_or_default(), &input.text) {
                input.text = id;
            }
        }
        KeyCode::Char(c) if !ctrl => input.text.push(c),
        _ => {}
    }
    None
}

/// The completion of a typed id prefix from the online list: the one id that starts
/// with it, or the longest prefix all matching ids share; `None` when nothing matches
/// or nothing would be added.
fn complete(online: &[Presence], typed: &str) -> Option<String> {
    let mut matches = online
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| id.starts_with(typed));
    let first = matches.next()?;
    let common = matches.fold(first, |common, id| {
        let same = common
            .bytes()
            .zip(id.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        &common[..same]
    });
    (common.len() > typed.len()).then(|| common.to_owned())
}

fn quit(model: &mut Model) -> Option<UserCommand> {
    model.quitting = true;
    model.set_notice("Quitting…".into(), NoticeLevel::Info, None);
    Some(UserCommand::Quit)
}

fn on_event(model: &mut Model, event: AppEvent) {
    match event {
        AppEvent::LoggedIn { id, server } => {
            if model.server_lost {
                model.set_notice(
                    "Reconnected to the server".into(),
                    NoticeLevel::Info,
                    Some(NOTICE_TTL),
                );
            }
            model.server_lost = false;
            model.session = Some(Session { id, server });
        }
        AppEvent::Presence { users } => model.online = Some(users),
        AppEvent::History { calls } => {
            model.recent = calls;
            model.selected = 0;
        }
        AppEvent::Incoming { call_id, from } => {
            if !model.call().is_some_and(CallView::is_live) {
                model.clear_transient_notice();
                model.screen = Screen::Incoming { call_id, from };
            }
        }
        AppEvent::State {
            call_id,
            peer,
            state,
            ..
        } if model.role == Role::Room => on_room_state(model, call_id, peer, state),
        AppEvent::State {
            call_id,
            peer,
            direction,
            state,
            reason,
        } => on_state(model, call_id, peer, direction, state, reason),
        AppEvent::PeerMedia { call_id, state, .. } => {
            if let Some(call) = model.call_mut(&call_id) {
                call.peer_media = state;
            }
            if let Some(tile) = model.room_mut().and_then(|r| r.tile_mut(&call_id)) {
                tile.peer_media = state;
            }
        }
        AppEvent::LocalMedia { state, .. } => model.local_media = state,
        AppEvent::Stats { call_id, stats, .. } => {
            if let Some(tile) = model.room_mut().and_then(|r| r.tile_mut(&call_id)) {
                tile.stats = Some(stats.clone());
            }
            if let Some(call) = model.call_mut(&call_id) {
                call.stats = Some(stats);
            }
        }
        AppEvent::Chat { from, text, .. } => {
            if model.chat.len() == CHAT_HISTORY {
                model.chat.remove(0);
            }
            model.chat.push(ChatLine {
                at: model.event_time,
                from,
                text,
            });
            if !model.chat_pane {
                model.unread += 1;
            }
        }
        AppEvent::FileProgress {
            name,
            direction,
            bytes,
            size,
            ..
        } => {
            let text = format!(
                "{} {}",
                transfer_verb(direction),
                transfer_bar(&name, bytes, size)
            );
            model.set_notice(text, NoticeLevel::Info, Some(NOTICE_TTL));
        }
        AppEvent::FileDone {
            name,
            direction,
            size,
            path,
            ..
        } => {
            let text = match (direction, path) {
                (TransferDirection::In, Some(path)) => {
                    format!(
                        "received {name} ({size} bytes, SHA-256 checked): {}",
                        path.display()
                    )
                }
                _ => format!("sent {name} ({size} bytes, SHA-256 checked)"),
            };
            model.set_notice(text, NoticeLevel::Info, Some(NOTICE_TTL));
        }
        AppEvent::FileFailed {
            name,
            direction,
            reason,
            ..
        } => {
            let text = format!("{} {name} failed: {reason}", transfer_verb(direction));
            model.set_notice(text, NoticeLevel::Error, Some(2 * NOTICE_TTL));
        }
        AppEvent::RoomJoined { room, members } => {
            let text = match members.len() {
                0 => format!("In room {room}: nobody else yet"),
                n => format!("In room {room}: {n} other member(s) calling in"),
            };
            model.set_notice(text, NoticeLevel::Info, Some(NOTICE_TTL));
            if model.room().is_none_or(|r| r.room != room) {
                model.screen = Screen::Room(RoomView {
                    room,
                    tiles: Vec::new(),
                });
            }
        }
        AppEvent::MemberJoined { room, id } => {
            model.set_notice(
                format!("{id} joined {room}"),
                NoticeLevel::Info,
                Some(NOTICE_TTL),
            );
        }
        AppEvent::MemberLeft { room, id } => {
            model.set_notice(
                format!("{id} left {room}"),
                NoticeLevel::Info,
                Some(NOTICE_TTL),
            );
            if let Some(view) = model.room_mut() {
                view.tiles.retain(|t| t.peer != id);
            }
        }
        AppEvent::Conflict { message } => {
            model.session = None;
            model.set_notice(
                format!("Logged in elsewhere: {message}"),
                NoticeLevel::Error,
                None,
            );
        }
        AppEvent::ServerLost { message } => {
            model.server_lost = true;
            model.set_notice(
                format!("Server connection lost ({message}); reconnecting…"),
                NoticeLevel::Warning,
                None,
            );
        }
        AppEvent::Notice { message } => {
            model.set_notice(message, NoticeLevel::Info, Some(NOTICE_TTL))
        }
        AppEvent::Error { message, fatal } => {
            let ttl = (!fatal).then_some(2 * NOTICE_TTL);
            model.set_notice(message, NoticeLevel::Error, ttl);
        }
    }
}

fn on_state(
    model: &mut Model,
    call_id: CallId,
    peer: UserId,
    direction: Direction,
    state: CallState,
    reason: Option<EndReason>,
) {
    let now = model.now;
    if state == CallState::Ringing && direction == Direction::Incoming {
        model.clear_transient_notice();
        model.screen = Screen::Incoming {
            call_id,
            from: peer,
        };
        return;
    }
    let mut call = match std::mem::replace(&mut model.screen, Screen::Idle) {
        Screen::Call(call) if call.call_id == call_id => call,
        Screen::Incoming {
            call_id: ref ringing,
            ..
        } if *ringing == call_id => new_call_view(call_id, peer, direction, state),
        _ => {
            // A new call: what the screen said about the previous one is old news.
            model.clear_transient_notice();
            new_call_view(call_id, peer, direction, state)
        }
    };
    call.state = state;
    if state == CallState::Connected && call.connected_at.is_none() {
        call.connected_at = Some(now);
    }
    if state == CallState::Ended {
        call.reason = reason;
        call.ended_at = Some(now);
        let text = format!(
            "Call ended: {}",
            describe_end(reason, &call.peer, call.direction)
        );
        let level = match reason {
            Some(reason) if reason.is_normal() => NoticeLevel::Info,
            _ => NoticeLevel::Warning,
        };
        model.set_notice(text, level, Some(ENDED_LINGER + NOTICE_TTL));
    }
    model.screen = Screen::Call(call);
}

/// `sending` or `receiving`.
fn transfer_verb(direction: TransferDirection) -> &'static str {
    match direction {
        TransferDirection::Out => "sending",
        TransferDirection::In => "receiving",
    }
}

/// `name ▕██████░░░░▏ 60 %`: a transfer's progress bar, 20 cells wide.
pub fn transfer_bar(name: &str, bytes: u64, size: u64) -> String {
    const CELLS: u64 = 20;
    let filled = (bytes.saturating_mul(CELLS))
        .checked_div(size)
        .unwrap_or(CELLS)
        .min(CELLS);
    let percent = (bytes.saturating_mul(100))
        .checked_div(size)
        .unwrap_or(100)
        .min(100);
    let bar: String = (0..CELLS)
        .map(|i| if i < filled { '█' } else { '░' })
        .collect();
    format!("{name} ▕{bar}▏ {percent} %")
}

/// A room call changed state: its tile appears, follows it, and goes when it ends.
fn on_room_state(model: &mut Model, call_id: CallId, peer: UserId, state: CallState) {
    let Some(room) = model.room_mut() else {
        return;
    };
    if state == CallState::Ended {
        room.tiles.retain(|t| t.call_id != call_id);
        return;
    }
    match room.tile_mut(&call_id) {
        Some(tile) => tile.state = state,
        None => room.tiles.push(Tile {
            call_id,
            peer,
            state,
            peer_media: MediaState::default(),
            stats: None,
        }),
    }
}

fn new_call_view(
    call_id: CallId,
    peer: UserId,
    direction: Direction,
    state: CallState,
) -> CallView {
    CallView {
        call_id,
        peer,
        direction,
        state,
        reason: None,
        connected_at: None,
        ended_at: None,
        peer_media: MediaState::default(),
        stats: None,
    }
}

fn on_tick(model: &mut Model, now: Instant) {
    model.now = now;
    if model
        .notice
        .as_ref()
        .and_then(|n| n.expires_at)
        .is_some_and(|at| now >= at)
    {
        model.notice = None;
    }
    let linger_over = model
        .call()
        .and_then(|c| c.ended_at)
        .is_some_and(|at| now >= at + ENDED_LINGER);
    if linger_over && model.role == Role::Listen {
        model.screen = Screen::Idle;
    }
}

/// Why a call ended, in words, from our side (`direction`) with the peer's name.
pub fn describe_end(reason: Option<EndReason>, peer: &UserId, direction: Direction) -> String {
    let outgoing = direction == Direction::Outgoing;
    match reason {
        None => "ended".into(),
        Some(EndReason::Hangup) => "you hung up".into(),
        Some(EndReason::RemoteHangup) => format!("{peer} hung up"),
        Some(EndReason::Canceled) if outgoing => "canceled".into(),
        Some(EndReason::Canceled) => format!("{peer} canceled the call"),
        Some(EndReason::Refused) if outgoing => format!("{peer} refused the call"),
        Some(EndReason::Refused) => "you refused the call".into(),
        Some(EndReason::Busy) => format!("{peer} is busy"),
        Some(EndReason::Offline) => format!("{peer} is offline"),
        Some(EndReason::NoAnswer) if outgoing => format!("{peer} did not answer"),
        Some(EndReason::NoAnswer) => format!("missed call from {peer}"),
        Some(EndReason::PeerGone) => format!("{peer} lost the server connection"),
        Some(EndReason::IceFailed) => format!("could not connect to {peer} (ICE/DTLS failed)"),
        Some(EndReason::Failed) => "media setup failed (details in the log)".into(),
        Some(EndReason::Glare) => format!("you and {peer} called each other; the other call won"),
        Some(EndReason::Conflict) => "logged in elsewhere".into(),
        Some(EndReason::ServerLost) => "lost the server during call setup".into(),
    }
}

/// A duration as `HH:MM:SS` (hours grow past 99 rather than wrap).
pub fn format_clock(duration: Duration) -> String {
    let secs = duration.as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_screen_dials_completes_and_calls_back() {
        use crate::call::history::HistoryEntry;
        use crate::call::{Presence, PresenceStatus};
        let mut model = Model::new(Role::Listen, Instant::now());
        assert_eq!(update(&mut model, key('c')), None);
        assert!(model.input.is_none(), "not logged in: no dialing");
        update(
            &mut model,
            Msg::Event(AppEvent::LoggedIn {
                id: id("jerry"),
                server: "ws://x".into(),
            }),
        );
        let online = ["tom", "tomas", "tyke"].map(|who| Presence {
            id: id(who),
            status: PresenceStatus::Available,
        });
        update(
            &mut model,
            Msg::Event(AppEvent::Presence {
                users: online.to_vec(),
            }),
        );
        update(&mut model, key('c'));
        update(&mut model, key('t'));
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Tab)));
        assert_eq!(
            model.input.as_ref().unwrap().text,
            "t",
            "t: tom, tomas, tyke"
        );
        update(&mut model, key('o'));
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Tab)));
        assert_eq!(model.input.as_ref().unwrap().text, "tom");
        update(&mut model, key('a'));
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Tab)));
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Enter))),
            Some(UserCommand::Call(id("tomas")))
        );
        let entry = |who: &str| HistoryEntry {
            time: SystemTime::UNIX_EPOCH,
            peer: id(who),
            direction: Direction::Incoming,
            duration_secs: 0,
            connected: false,
            reason: EndReason::NoAnswer,
            call_id: call_id(),
        };
        update(
            &mut model,
            Msg::Event(AppEvent::History {
                calls: vec![entry("spike"), entry("tyke")],
            }),
        );
        let down = || Msg::Key(KeyEvent::from(KeyCode::Down));
        update(&mut model, down());
        update(&mut model, down());
        assert_eq!(model.selected, 1, "the selection stops at the last call");
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Enter))),
            Some(UserCommand::Call(id("tyke")))
        );
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Up)));
        assert_eq!(
            update(&mut model, key('b')),
            Some(UserCommand::Call(id("spike")))
        );
    }

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::from(KeyCode::Char(c)))
    }

    fn id(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn call_id() -> CallId {
        CallId::parse("c1").unwrap()
    }

    fn state(state: CallState, direction: Direction, reason: Option<EndReason>) -> Msg {
        Msg::Event(AppEvent::State {
            call_id: call_id(),
            peer: id("tom"),
            direction,
            state,
            reason,
        })
    }

    fn incoming(model: &mut Model) {
        update(
            model,
            Msg::Event(AppEvent::Incoming {
                call_id: call_id(),
                from: id("tom"),
            }),
        );
    }

    fn chat_from(from: &str, text: &str) -> Msg {
        Msg::Event(AppEvent::Chat {
            call_id: Some(call_id()),
            from: id(from),
            text: text.into(),
        })
    }

    #[test]
    fn t_types_a_message_that_enter_sends_and_esc_drops() {
        let mut model = Model::new(Role::Call, Instant::now());
        assert_eq!(update(&mut model, key('t')), None);
        assert_eq!(model.input, None, "no chat without a call");
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(&mut model, key('t'));
        assert_eq!(model.input.as_ref().map(|i| i.text.as_str()), Some(""));
        assert!(model.chat_pane, "typing shows the pane");
        // Keys type text now: h and q do not hang up or quit.
        for c in "hi q".chars() {
            assert_eq!(update(&mut model, key(c)), None);
        }
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Backspace)));
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Enter))),
            Some(UserCommand::Say("hi ".into()))
        );
        assert_eq!(model.input, None);
        update(&mut model, key('t'));
        update(&mut model, key('x'));
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Esc))),
            None
        );
        assert_eq!(model.input, None, "Esc cancels");
        assert_eq!(update(&mut model, key('h')), Some(UserCommand::Hangup));
    }

    #[test]
    fn c_on_the_listening_screen_dials_the_id_typed() {
        let mut model = Model::new(Role::Listen, Instant::now());
        assert_eq!(update(&mut model, key('c')), None);
        assert_eq!(model.input, None, "not before the login");
        update(
            &mut model,
            Msg::Event(AppEvent::LoggedIn {
                id: id("jerry"),
                server: "ws://x".into(),
            }),
        );
        update(&mut model, key('c'));
        for c in "tom".chars() {
            update(&mut model, key(c));
        }
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Enter))),
            Some(UserCommand::Call(id("tom")))
        );
        update(&mut model, key('c'));
        for c in "no way".chars() {
            update(&mut model, key(c));
        }
        assert_eq!(
            update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Enter))),
            None
        );
        assert_eq!(
            model.notice.as_ref().map(|n| n.level),
            Some(NoticeLevel::Error)
        );
    }

    #[test]
    fn messages_while_the_pane_is_hidden_count_as_unread_until_c_shows_it() {
        let mut model = Model::new(Role::Call, Instant::now());
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(&mut model, chat_from("tom", "one"));
        update(&mut model, chat_from("tom", "two"));
        assert_eq!(model.unread, 2);
        assert_eq!(model.chat.len(), 2);
        update(&mut model, key('c'));
        assert!(model.chat_pane);
        assert_eq!(model.unread, 0);
        update(&mut model, chat_from("tom", "three"));
        assert_eq!(model.unread, 0, "seen while shown");
        for i in 0..CHAT_HISTORY {
            update(&mut model, chat_from("tom", &i.to_string()));
        }
        assert_eq!(model.chat.len(), CHAT_HISTORY, "bounded");
    }

    #[test]
    fn accept_and_refuse_only_answer_a_ringing_call() {
        let mut model = Model::new(Role::Listen, Instant::now());
        assert_eq!(update(&mut model, key('a')), None);
        assert_eq!(update(&mut model, key('r')), None);
        incoming(&mut model);
        assert!(matches!(model.screen, Screen::Incoming { .. }));
        assert_eq!(update(&mut model, key('a')), Some(UserCommand::Accept));
        assert_eq!(update(&mut model, key('r')), Some(UserCommand::Refuse));
        assert_eq!(update(&mut model, key('h')), Some(UserCommand::Refuse));
    }

    #[test]
    fn hangup_cancels_an_outgoing_call_and_ends_a_live_one_only() {
        let mut model = Model::new(Role::Call, Instant::now());
        assert_eq!(update(&mut model, key('h')), None, "no call yet");
        update(
            &mut model,
            state(CallState::Calling, Direction::Outgoing, None),
        );
        assert_eq!(update(&mut model, key('h')), Some(UserCommand::Hangup));
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Outgoing,
                Some(EndReason::Canceled),
            ),
        );
        assert_eq!(update(&mut model, key('h')), None, "already ended");
    }

    #[test]
    fn mute_and_camera_keys_toggle_from_the_current_state() {
        let mut model = Model::new(Role::Listen, Instant::now());
        assert_eq!(update(&mut model, key('m')), Some(UserCommand::Mute));
        assert_eq!(update(&mut model, key('m')), Some(UserCommand::Unmute));
        assert_eq!(update(&mut model, key('v')), Some(UserCommand::CameraOff));
        // The controller's report is the truth the next toggle starts from.
        update(
            &mut model,
            Msg::Event(AppEvent::LocalMedia {
                call_id: None,
                state: MediaState {
                    muted: true,
                    camera: true,
                },
            }),
        );
        assert_eq!(update(&mut model, key('m')), Some(UserCommand::Unmute));
        assert_eq!(update(&mut model, key('v')), Some(UserCommand::CameraOff));
    }

    #[test]
    fn q_and_ctrl_c_quit_and_view_toggles_send_nothing() {
        let mut model = Model::new(Role::Listen, Instant::now());
        for c in ['p', 's', '?'] {
            assert_eq!(update(&mut model, key(c)), None);
        }
        assert!(!model.self_view && model.stats_panel && model.help);
        update(&mut model, Msg::Key(KeyEvent::from(KeyCode::Esc)));
        assert!(!model.help);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            update(&mut model, Msg::Key(ctrl_c)),
            Some(UserCommand::Quit)
        );
        assert!(model.quitting);
        let mut model = Model::new(Role::Listen, Instant::now());
        assert_eq!(update(&mut model, key('q')), Some(UserCommand::Quit));
    }

    #[test]
    fn clock_runs_from_connect_and_survives_reconnects() {
        let t0 = Instant::now();
        let mut model = Model::new(Role::Call, t0);
        update(
            &mut model,
            state(CallState::Connecting, Direction::Outgoing, None),
        );
        assert_eq!(model.call_duration(), None);
        update(&mut model, Msg::Tick(t0 + Duration::from_secs(2)));
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(&mut model, Msg::Tick(t0 + Duration::from_secs(30)));
        update(
            &mut model,
            state(CallState::Reconnecting, Direction::Outgoing, None),
        );
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(&mut model, Msg::Tick(t0 + Duration::from_secs(3727)));
        assert_eq!(
            model.call_duration().map(format_clock).as_deref(),
            Some("01:02:05")
        );
    }

    #[test]
    fn ended_call_shows_its_reason_then_listen_returns_to_listening() {
        let t0 = Instant::now();
        let mut model = Model::new(Role::Listen, t0);
        incoming(&mut model);
        update(
            &mut model,
            state(CallState::Connected, Direction::Incoming, None),
        );
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Incoming,
                Some(EndReason::RemoteHangup),
            ),
        );
        let call = model.call().expect("ended call still shown");
        assert_eq!(call.reason, Some(EndReason::RemoteHangup));
        assert_eq!(
            model.notice.as_ref().unwrap().text,
            "Call ended: tom hung up"
        );
        update(&mut model, Msg::Tick(t0 + ENDED_LINGER));
        assert_eq!(model.screen, Screen::Idle);
        assert!(
            model.notice.is_some(),
            "the reason outlives the call screen"
        );
        update(&mut model, Msg::Tick(t0 + ENDED_LINGER + NOTICE_TTL));
        assert_eq!(model.notice, None);
    }

    #[test]
    fn farewell_says_how_the_call_ended_and_how_long_it_lasted() {
        let t0 = Instant::now();
        let mut model = Model::new(Role::Call, t0);
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(&mut model, Msg::Tick(t0 + Duration::from_secs(29)));
        assert!(model.farewell().is_empty(), "nothing to say mid-call");
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Outgoing,
                Some(EndReason::Hangup),
            ),
        );
        assert_eq!(
            model.farewell(),
            ["Call with tom ended after 00:00:29: you hung up"]
        );

        let mut model = Model::new(Role::Call, t0);
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Outgoing,
                Some(EndReason::Offline),
            ),
        );
        update(
            &mut model,
            Msg::Event(AppEvent::Error {
                message: "login refused".into(),
                fatal: true,
            }),
        );
        assert_eq!(
            model.farewell(),
            ["Call with tom ended: tom is offline", "login refused"]
        );
    }

    #[test]
    fn listen_farewell_skips_old_calls_and_passing_errors() {
        let mut model = Model::new(Role::Listen, Instant::now());
        incoming(&mut model);
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Incoming,
                Some(EndReason::RemoteHangup),
            ),
        );
        update(
            &mut model,
            Msg::Event(AppEvent::Error {
                message: "cannot start mic".into(),
                fatal: false,
            }),
        );
        assert!(model.farewell().is_empty(), "{:?}", model.farewell());
    }

    #[test]
    fn a_new_call_clears_the_previous_calls_notice() {
        let mut model = Model::new(Role::Listen, Instant::now());
        incoming(&mut model);
        update(
            &mut model,
            state(
                CallState::Ended,
                Direction::Incoming,
                Some(EndReason::Refused),
            ),
        );
        assert!(model.notice.is_some());
        update(
            &mut model,
            Msg::Event(AppEvent::Incoming {
                call_id: CallId::parse("c2").unwrap(),
                from: id("tyke"),
            }),
        );
        assert_eq!(model.notice, None);
        // A notice that lasts until its cause is gone stays.
        update(
            &mut model,
            Msg::Event(AppEvent::ServerLost {
                message: "reset".into(),
            }),
        );
        update(
            &mut model,
            Msg::Event(AppEvent::State {
                call_id: CallId::parse("c3").unwrap(),
                peer: id("tyke"),
                direction: Direction::Outgoing,
                state: CallState::Calling,
                reason: None,
            }),
        );
        assert!(model.notice.is_some());
    }

    #[test]
    fn call_role_keeps_the_ended_screen() {
        let t0 = Instant::now();
        let mut model = Model::new(Role::Call, t0);
        update(
            &mut model,
            state(CallState::Ended, Direction::Outgoing, Some(EndReason::Busy)),
        );
        update(&mut model, Msg::Tick(t0 + 2 * ENDED_LINGER));
        assert_eq!(model.call().and_then(|c| c.reason), Some(EndReason::Busy));
    }

    #[test]
    fn events_for_another_call_are_ignored() {
        let mut model = Model::new(Role::Call, Instant::now());
        update(
            &mut model,
            state(CallState::Connected, Direction::Outgoing, None),
        );
        update(
            &mut model,
            Msg::Event(AppEvent::PeerMedia {
                call_id: CallId::parse("other").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                state: MediaState {
                    muted: true,
                    camera: false,
                },
            }),
        );
        assert_eq!(model.call().unwrap().peer_media, MediaState::default());
        update(
            &mut model,
            Msg::Event(AppEvent::PeerMedia {
                call_id: call_id(),
                peer: UserId::parse("jerry").unwrap(),
                state: MediaState {
                    muted: true,
                    camera: false,
                },
            }),
        );
        assert!(model.call().unwrap().peer_media.muted);
    }

    #[test]
    fn server_loss_shows_until_logged_in_again() {
        let mut model = Model::new(Role::Listen, Instant::now());
        update(
            &mut model,
            Msg::Event(AppEvent::ServerLost {
                message: "connection reset".into(),
            }),
        );
        assert!(model.server_lost);
        assert_eq!(model.notice.as_ref().unwrap().level, NoticeLevel::Warning);
        let later = model.now + Duration::from_secs(600);
        update(&mut model, Msg::Tick(later));
        assert!(model.notice.is_some(), "no expiry while the server is lost");
        update(
            &mut model,
            Msg::Event(AppEvent::LoggedIn {
                id: id("jerry"),
                server: "ws://127.0.0.1:8080".into(),
            }),
        );
        assert!(!model.server_lost);
        assert_eq!(
            model.notice.as_ref().unwrap().text,
            "Reconnected to the server"
        );
    }
}
