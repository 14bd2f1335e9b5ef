//! Calls: the state a call is in, why it ended, and the events and commands that
//! connect the call controller to whichever view shows it (TUI or headless).
//!
//! The call model: calling → ringing → connecting → connected → ended, where "ended"
//! carries an [`EndReason`] (closed normally, canceled, refused, busy, offline, no
//! answer, failed, …).

pub mod control;
pub mod controller;
pub mod history;
pub mod media;
pub mod peer;
pub mod ringer;
pub mod room;
pub mod stats;
pub mod worker;

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use crate::signaling::protocol::{
    CallId, MediaState, Presence, PresenceStatus, RoomId, UserId,
};
pub use peer::files::TransferDirection;
use peer::files::{TransferState, TransferUpdate};
pub use stats::CallStats;

/// Which side of a call we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We called.
    Outgoing,
    /// We were called.
    Incoming,
}

/// The state of one call as this client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// We sent `call`; the server has not confirmed the callee is online yet.
    Calling,
    /// The callee is being rung (outgoing), or we are being rung (incoming).
    Ringing,
    /// Accepted; SDP/ICE/DTLS in progress.
    Connecting,
    /// Media flows.
    Connected,
    /// ICE connectivity was lost; an ICE restart is under way.
    Reconnecting,
    /// Over; see the [`EndReason`].
    Ended,
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Calling => "calling",
            Self::Ringing => "ringing",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Ended => "ended",
        })
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// We hung up a connected call.
    Hangup,
    /// The peer hung up a connected call.
    RemoteHangup,
    /// The caller gave up before an answer (we canceled, or the peer did).
    Canceled,
    /// The callee refused (we refused, or the peer did).
    Refused,
    /// The callee was in another call.
    Busy,
    /// The callee is not logged in.
    Offline,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The peer's connection to the server died.
    PeerGone,
    /// ICE/DTLS did not connect (within 15 s), or an ICE restart failed.
    IceFailed,
    /// Media setup failed (SDP, devices, codecs); details are in the log.
    Failed,
    /// Both sides called each other; this call gave way to the other one.
    Glare,
    /// We logged in elsewhere and this session was closed.
    Conflict,
    /// The connection to the server was lost during call setup.
    ServerLost,
}

impl EndReason {
    /// Whether this is a normal end of a connected call.
    pub fn is_normal(self) -> bool {
        matches!(self, Self::Hangup | Self::RemoteHangup)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(value.as_str().unwrap_or("unknown"))
    }
}

/// Exit codes of `rtc-cli call` (documented in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// A connected call ended normally (either side hung up).
    Ok = 0,
    /// Any other error (bad config, device error, …).
    Error = 1,
    /// Bad command line (clap's code).
    Usage = 2,
    /// The callee refused.
    Refused = 3,
    /// The callee was busy.
    Busy = 4,
    /// The callee was offline.
    Offline = 5,
    /// Nobody answered.
    NoAnswer = 6,
    /// We canceled before an answer.
    Canceled = 7,
    /// The server refused our login (bad or expired token, bad id).
    AuthFailed = 8,
    /// The server could not be reached.
    ServerUnreachable = 9,
    /// The call was accepted but the connection failed (ICE/DTLS, peer gone, media).
    ConnectionFailed = 10,
    /// We were logged in elsewhere mid-call.
    Conflict = 11,
    /// `room`: the room already has its maximum of members.
    RoomFull = 12,
}

impl ExitCode {
    /// The process exit code for a call that ended for `reason`, after it had reached
    /// `connected` (`was_connected`) or not. Only a connected call ends with 0: hanging
    /// up before it connected is a cancel (7), the peer hanging up while the connection
    /// was still being made is a failed connection (10).
    pub fn for_end(reason: EndReason, was_connected: bool) -> Self {
        match reason {
            EndReason::Hangup | EndReason::RemoteHangup if was_connected => Self::Ok,
            EndReason::Hangup => Self::Canceled,
            EndReason::RemoteHangup => Self::ConnectionFailed,
            EndReason::Refused => Self::Refused,
            EndReason::Busy => Self::Busy,
            EndReason::Offline => Self::Offline,
            EndReason::NoAnswer => Self::NoAnswer,
            EndReason::Canceled => Self::Canceled,
            EndReason::Conflict => Self::Conflict,
            EndReason::ServerLost => Self::ServerUnreachable,
            EndReason::PeerGone | EndReason::IceFailed | EndReason::Failed | EndReason::Glare => {
                Self::ConnectionFailed
            }
        }
    }
}

/// A user's command, from a key in the TUI or a line on stdin in headless mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Accept the ringing incoming call.
    Accept,
    /// Refuse the ringing incoming call.
    Refuse,
    /// Hang up the call, or cancel it while it is not yet accepted.
    Hangup,
    /// Stop sending microphone audio.
    Mute,
    /// Send microphone audio again.
    Unmute,
    /// Stop sending video.
    CameraOff,
    /// Send video again.
    CameraOn,
    /// Hang up any call and exit.
    Quit,
    /// Send a chat message to the peer (in a room: to every member).
    Say(String),
    /// Send a file to the peer (in a room: to every member).
    SendFile(std::path::PathBuf),
    /// Call this id (from `listen`, while no call is on).
    Call(UserId),
}

impl std::str::FromStr for UserCommand {
    type Err = String;

    /// Parses a headless command line (`accept`, `refuse`, `hangup`, `mute`, `unmute`,
    /// `camera off`, `camera on`, `quit`, `say TEXT`, `send-file PATH`, `call ID`); surrounding and repeated spaces
    /// are ignored, except inside the text of `say`, which is kept as typed.
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let trimmed = line.trim_start();
        if let Some(text) = trimmed.strip_prefix("say ") {
            return Ok(Self::Say(text.to_owned()));
        }
        if let Some(id) = trimmed.strip_prefix("call ") {
            return UserId::parse(id.trim())
                .map(Self::Call)
                .map_err(|e| format!("call: {e}"));
        }
        if let Some(path) = trimmed.strip_prefix("send-file ") {
            let path = path.trim();
            if path.is_empty() {
                return Err("send-file needs a path".into());
            }
            return Ok(Self::SendFile(path.into()));
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        Ok(match words.as_slice() {
            ["accept"] => Self::Accept,
            ["refuse"] => Self::Refuse,
            ["hangup"] => Self::Hangup,
            ["mute"] => Self::Mute,
            ["unmute"] => Self::Unmute,
            ["camera", "off"] => Self::CameraOff,
            ["camera", "on"] => Self::CameraOn,
            ["quit"] => Self::Quit,
            _ => {
                return Err(format!(
                    "unknown command {:?}; expected accept, refuse, hangup, mute, unmute, \
                     camera off, camera on, say TEXT, send-file PATH, call ID or quit",
                    line.trim()
                ));
            }
        })
    }
}

/// Something a view (TUI or headless) shows. The controller emits these; both views
/// consume the same stream so they show the same truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AppEvent {
    /// Logged in to a server (again, after a reconnect).
    LoggedIn {
        /// The user id.
        id: UserId,
        /// The server URL.
        server: String,
    },
    /// Who is online changed (or arrived with a login): everyone online but us, sorted
    /// by id. Only when we subscribed (`listen`) and the server shares presence.
    Presence {
        /// Each online user and whether they are available or busy.
        users: Vec<Presence>,
    },
    /// The newest calls of the history, newest first (`listen`: at the first login and
    /// after each call).
    History {
        /// At most [`controller::RECENT_CALLS`] calls.
        calls: Vec<history::HistoryEntry>,
    },
    /// Someone calls us.
    Incoming {
        /// The call this message is about.
        call_id: CallId,
        /// Who calls; stamped by the server.
        from: UserId,
    },
    /// A call changed state. `reason` is set when `state` is `ended`.
    State {
        /// The call this message is about.
        call_id: CallId,
        /// The other party.
        peer: UserId,
        /// Whether we called or were called.
        direction: Direction,
        /// The new call state.
        state: CallState,
        /// Why it ended; set when `state` is `ended`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<EndReason>,
    },
    /// The peer's mic/camera state changed.
    PeerMedia {
        /// The call this message is about.
        call_id: CallId,
        /// The peer whose state it is.
        peer: UserId,
        /// Microphone and camera state.
        #[serde(flatten)]
        state: MediaState,
    },
    /// Our own mic/camera state changed.
    LocalMedia {
        /// The call it concerns, if any.
        call_id: Option<CallId>,
        /// Microphone and camera state.
        #[serde(flatten)]
        state: MediaState,
    },
    /// Once a second while connected.
    Stats {
        /// The call this message is about.
        call_id: CallId,
        /// The peer these figures are about.
        peer: UserId,
        /// The figures.
        #[serde(flatten)]
        stats: Box<CallStats>,
    },
    /// A chat message: from the peer of `call_id`, or ours (`from` is our id, `call_id`
    /// none in a room, where it went to every member).
    Chat {
        /// The call it came in on, or went out on.
        #[serde(skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        /// Who wrote it.
        from: UserId,
        /// The text, as written (a view must not print its control characters raw).
        text: String,
    },
    /// A file transfer moved on: `bytes` of `size` (a few times a second at most).
    FileProgress {
        /// The call it goes over.
        call_id: CallId,
        /// The other side.
        peer: UserId,
        /// The transfer's number in this process.
        transfer: u64,
        /// The file's name as offered.
        name: String,
        /// `out` (we send) or `in`.
        direction: TransferDirection,
        /// Bytes moved so far.
        bytes: u64,
        /// The file's size, bytes.
        size: u64,
    },
    /// A file transfer completed with a matching SHA-256.
    FileDone {
        /// The call it went over.
        call_id: CallId,
        /// The other side.
        peer: UserId,
        /// The transfer's number in this process.
        transfer: u64,
        /// The file's name as offered.
        name: String,
        /// `out` or `in`.
        direction: TransferDirection,
        /// The file's size, bytes.
        size: u64,
        /// The file's SHA-256, hex.
        sha256: String,
        /// Where a received file was saved.
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<std::path::PathBuf>,
    },
    /// A file transfer failed, or was refused.
    FileFailed {
        /// The call it went over.
        call_id: CallId,
        /// The other side.
        peer: UserId,
        /// The transfer's number in this process.
        transfer: u64,
        /// The file's name as offered.
        name: String,
        /// `out` or `in`.
        direction: TransferDirection,
        /// Why.
        reason: String,
    },
    /// We joined a room; `members` (in the order they joined) will each call us.
    RoomJoined {
        /// The room.
        room: RoomId,
        /// The other members.
        members: Vec<UserId>,
    },
    /// Someone joined our room; we call them.
    MemberJoined {
        /// The room.
        room: RoomId,
        /// The newcomer.
        id: UserId,
    },
    /// Someone left our room (or their connection died); our call with them is over.
    MemberLeft {
        /// The room.
        room: RoomId,
        /// Who left.
        id: UserId,
    },
    /// We logged in elsewhere; this session is over.
    Conflict {
        /// Human-readable detail.
        message: String,
    },
    /// The server connection dropped; reconnecting with backoff.
    ServerLost {
        /// Human-readable detail.
        message: String,
    },
    /// Something the user should know that does not end the call (a device
    /// notice, a source fallback, a refused command).
    Notice {
        /// Human-readable detail.
        message: String,
    },
    /// An error; `fatal` ones end the process.
    Error {
        /// Human-readable detail.
        message: String,
        /// Whether the process ends because of it.
        fatal: bool,
    },
}

/// The channels between a controller (call or room) and its view.
pub struct ViewChannels {
    /// Events for the view.
    pub events: tokio::sync::mpsc::Sender<TimedEvent>,
    /// Commands from the view. When it closes (EOF on stdin), calls go on.
    pub commands: tokio::sync::mpsc::Receiver<UserCommand>,
}

/// Ends the process's signaling client: once every handle is dropped the client sends
/// `logout` after anything queued (such as a `hangup`), then closes; this gives it 2 s.
async fn close_signaling(task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(std::time::Duration::from_secs(2), task)
        .await
        .is_err()
    {
        tracing::warn!("signaling client did not close in time");
    }
}

/// What the view gets for a chat message from `peer` on `call_id`: the text, or (for
/// `Err`) a notice saying which message was dropped and why.
fn chat_event(call_id: CallId, peer: UserId, message: Result<String, String>) -> AppEvent {
    match message {
        Ok(text) => AppEvent::Chat {
            call_id: Some(call_id),
            from: peer,
            text,
        },
        Err(why) => AppEvent::Notice {
            message: format!("dropped {why} from {peer}"),
        },
    }
}

/// Checks that `path` names a regular file we can read, before a transfer starts.
///
/// # Errors
/// Missing, unreadable, or not a regular file; the message names the path.
fn sendable_file(path: &std::path::Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot send {}: {e}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("cannot send {}: not a regular file", path.display());
    }
    std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot send {}: {e}", path.display()))?;
    Ok(())
}

/// What the view gets for a file transfer's news on the call `call_id` with `peer`.
fn file_event(call_id: CallId, peer: UserId, update: TransferUpdate) -> AppEvent {
    let TransferUpdate {
        id: transfer,
        name,
        direction,
        size,
        state,
    } = update;
    match state {
        TransferState::Progress { bytes } => AppEvent::FileProgress {
            call_id,
            peer,
            transfer,
            name,
            direction,
            bytes,
            size,
        },
        TransferState::Done { sha256, path } => AppEvent::FileDone {
            call_id,
            peer,
            transfer,
            name,
            direction,
            size,
            sha256,
            path,
        },
        TransferState::Failed { reason } => AppEvent::FileFailed {
            call_id,
            peer,
            transfer,
            name,
            direction,
            reason,
        },
    }
}

/// Sleeps until `deadline`, or forever without one (a `select!` branch that never fires).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl ExitCode {
    /// Every exit code, in numeric order.
    pub const ALL: [Self; 13] = [
        Self::Ok,
        Self::Error,
        Self::Usage,
        Self::Refused,
        Self::Busy,
        Self::Offline,
        Self::NoAnswer,
        Self::Canceled,
        Self::AuthFailed,
        Self::ServerUnreachable,
        Self::ConnectionFailed,
        Self::Conflict,
        Self::RoomFull,
    ];

    /// The exit code with the number `code` (from another process); unknown numbers
    /// are [`ExitCode::Error`].
    pub fn from_code(code: i32) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| *c as i32 == code)
            .unwrap_or(Self::Error)
    }

    /// The exit code when the signaling client stopped for good.
    pub fn for_fatal(fatal: &crate::signaling::client::Fatal) -> Self {
        use crate::signaling::client::Fatal;
        match fatal {
            Fatal::AuthFailed(_) => Self::AuthFailed,
            Fatal::Conflict(_) => Self::Conflict,
            Fatal::Unreachable { .. } => Self::ServerUnreachable,
        }
    }
}

/// An [`AppEvent`] with its wall-clock time, as a view receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    /// When the controller emitted the event.
    pub at: SystemTime,
    /// The event.
    pub event: AppEvent,
}

impl TimedEvent {
    /// Stamps `event` with the current time.
    pub fn now(event: AppEvent) -> Self {
        Self {
            at: SystemTime::now(),
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_commands_parse_with_loose_spacing() {
        assert_eq!("  camera   off ".parse(), Ok(UserCommand::CameraOff));
        assert_eq!("hangup".parse(), Ok(UserCommand::Hangup));
        assert!("camera".parse::<UserCommand>().is_err());
        assert!("ACCEPT".parse::<UserCommand>().is_err());
        assert_eq!(
            "  say  hi  there ".parse(),
            Ok(UserCommand::Say(" hi  there ".into()))
        );
        assert_eq!(
            "call jerry".parse(),
            Ok(UserCommand::Call(UserId::parse("jerry").unwrap()))
        );
        assert!("call ../x".parse::<UserCommand>().is_err());
    }

    #[test]
    fn every_abnormal_end_has_a_nonzero_exit_code() {
        use EndReason::*;
        for r in [
            Canceled, Refused, Busy, Offline, NoAnswer, PeerGone, IceFailed, Failed, Glare,
            Conflict, ServerLost,
        ] {
            assert_ne!(ExitCode::for_end(r, true), ExitCode::Ok, "{r}");
        }
        assert_eq!(ExitCode::for_end(RemoteHangup, true), ExitCode::Ok);
        assert_eq!(ExitCode::for_end(Hangup, true), ExitCode::Ok);
    }

    #[test]
    fn a_call_that_never_connected_never_exits_0() {
        assert_eq!(
            ExitCode::for_end(EndReason::Hangup, false),
            ExitCode::Canceled
        );
        assert_eq!(
            ExitCode::for_end(EndReason::RemoteHangup, false),
            ExitCode::ConnectionFailed
        );
    }

    #[test]
    fn state_event_serializes_as_a_json_line() {
        let ev = AppEvent::State {
            call_id: CallId::parse("c1").unwrap(),
            peer: UserId::parse("jerry").unwrap(),
            direction: Direction::Outgoing,
            state: CallState::Ended,
            reason: Some(EndReason::NoAnswer),
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"event":"state","call_id":"c1","peer":"jerry","direction":"outgoing","state":"ended","reason":"no-answer"}"#
        );
    }
}
