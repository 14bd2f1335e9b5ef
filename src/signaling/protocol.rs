//! Signaling messages: JSON text frames, each an object with a `type` field.
//!
//! This module holds only the message types and their (de)serialization; the
//! exchange itself is documented with examples in `docs/protocol.md`. Field names
//! are snake_case, `type` values are snake_case, reasons and error codes kebab-case.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Protocol version a client sends in `login`; the server refuses others with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame either side accepts, in bytes (an SDP offer is ~5 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A user id: 1-64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// Why a string is not a valid [`UserId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// Empty or longer than 64 characters.
    #[error("an id must be 1-64 characters long, got {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9._-]`.
    #[error("an id may only use A-Z, a-z, 0-9, '.', '_' and '-', got {0:?}")]
    Character(char),
}

impl UserId {
    /// Longest id, in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates `s` as an id.
    pub fn parse(s: &str) -> Result<Self, UserIdError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(UserIdError::Length(s.chars().count()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(UserIdError::Character(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = UserIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl std::str::FromStr for UserId {
    type Err = UserIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parsing, serde and `Display` plumbing of a string newtype that takes the
/// [`UserId`] alphabet and length.
macro_rules! id_like {
    ($name:ident) => {
        impl $name {
            /// Validates `s` (same alphabet and length as [`UserId`]).
            pub fn parse(s: &str) -> Result<Self, UserIdError> {
                UserId::parse(s).map(|id| Self(id.0))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = UserIdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = UserIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

/// A call id chosen by the caller: 1-64 characters of `[A-Za-z0-9._-]` (a UUID in practice).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallId(String);

id_like!(CallId);

impl CallId {
    /// A fresh random call id (UUID v4).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// A room name: 1-64 characters of `[A-Za-z0-9._-]`, as a [`UserId`]. A room exists
/// from its first member's `join_room` until its last member leaves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

id_like!(RoomId);

impl RoomId {
    /// Most members a room holds: its calls are a mesh, each member sending to and
    /// receiving from every other, and 4 is where that stops scaling.
    pub const MAX_MEMBERS: usize = 4;
}

/// One ICE candidate as the browser API's `RTCIceCandidateInit` carries it
/// (W3C webrtc-pc §4.8.1.1): the `candidate-attribute` line of RFC 8839 §5.1
/// without the `a=` prefix, and the media section it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// `candidate:…` line, e.g. `candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host`.
    pub candidate: String,
    /// The `a=mid` of the media section, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// Index of the media section in the SDP, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
    /// ICE ufrag the candidate belongs to (changes on ICE restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A sender's media state, shown to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaState {
    /// Microphone muted: no audio is being sent.
    pub muted: bool,
    /// Camera on: video is being sent.
    pub camera: bool,
}

impl Default for MediaState {
    fn default() -> Self {
        Self {
            muted: false,
            camera: true,
        }
    }
}

/// Messages a client sends. Every message but `login` requires a logged-in session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on a connection.
    Login {
        /// Must be [`PROTOCOL_VERSION`].
        version: u32,
        /// Who is logging in.
        id: UserId,
        /// A JWT (HS256, `sub` = id) when the server runs `--auth token`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Subscribe to presence: `login_ok` carries who is online and
        /// `presence_changed` follows, when the server shares presence
        /// (`serve --presence all`). A compatible addition to version 1.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        presence: bool,
        /// Accepted calls this client still has, after a reconnect: when this login
        /// replaces an older session of the same id, these calls carry over to it
        /// instead of ending with `peer-gone`. A compatible addition to version 1.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resume: Vec<CallId>,
    },
    /// Start a call to `to` under a fresh `call_id`. With `room`, a call between two
    /// members of that room (an existing member calls each newcomer): neither party is
    /// busy for it, and it ends when either leaves the room.
    Call {
        /// The call this message is about.
        call_id: CallId,
        /// The callee.
        to: UserId,
        /// The room both parties are in, for a room call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
    },
    /// Join (or create) the room `room`; answered with `room_joined`, or an `error`
    /// (`room-full`, `already-in-call`).
    JoinRoom {
        /// The room.
        room: RoomId,
    },
    /// Leave the room: the server ends the sender's room calls and tells the others.
    LeaveRoom {
        /// The room.
        room: RoomId,
    },
    /// Callee accepts a ringing call.
    Accept {
        /// The call this message is about.
        call_id: CallId,
    },
    /// Callee refuses a ringing call.
    Refuse {
        /// The call this message is about.
        call_id: CallId,
    },
    /// Caller gives up on a call that was not accepted yet.
    Cancel {
        /// The call this message is about.
        call_id: CallId,
    },
    /// Either party ends an accepted call.
    Hangup {
        /// The call this message is about.
        call_id: CallId,
    },
    /// SDP offer (RFC 8829 §5.2); relayed to the other party.
    Offer {
        /// The call this message is about.
        call_id: CallId,
        /// The session description (RFC 8866).
        sdp: String,
    },
    /// SDP answer (RFC 8829 §5.3); relayed to the other party.
    Answer {
        /// The call this message is about.
        call_id: CallId,
        /// The session description (RFC 8866).
        sdp: String,
    },
    /// A trickled ICE candidate (RFC 8838); relayed to the other party.
    Candidate {
        /// The call this message is about.
        call_id: CallId,
        /// The trickled ICE candidate.
        candidate: IceCandidate,
    },
    /// No more candidates for this ICE generation (RFC 8838 §4.4); relayed.
    EndOfCandidates {
        /// The call this message is about.
        call_id: CallId,
    },
    /// The sender's mic/camera state; relayed to the other party.
    MediaState {
        /// The call this message is about.
        call_id: CallId,
        /// Microphone and camera state.
        #[serde(flatten)]
        state: MediaState,
    },
    /// Leave: the server ends any call as a `hangup` (a `cancel` or `refuse` while it
    /// rings) and closes the connection.
    Logout,
}

/// A STUN or TURN server (W3C webrtc-pc §4.2.1 `RTCIceServer`): in `login_ok`, and
/// the shape of `[[ice_servers]]` in the client's config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp` URLs (RFC 7064, RFC 7065).
    pub urls: Vec<String>,
    /// TURN username (for TURN REST credentials `<unix-expiry>:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// One user's presence (`login_ok.presence`, `presence_changed.users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The user.
    pub id: UserId,
    /// What they are doing.
    pub status: PresenceStatus,
}

/// What an online user is doing, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresenceStatus {
    /// Logged in and in no call: a call to them rings.
    Available,
    /// In a call (ringing or connected) or a room: a call to them gets `busy`.
    Busy,
    /// Logged out or gone (only in `presence_changed`).
    Offline,
}

impl fmt::Display for PresenceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Offline => "offline",
        })
    }
}

/// Messages the server sends. Relayed messages carry `from`, stamped by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Login succeeded.
    LoginOk {
        /// The user id.
        id: UserId,
        /// The server's protocol version.
        version: u32,
        /// Interval of the server's WebSocket pings, in seconds; a client silent for
        /// three intervals is considered gone.
        heartbeat_secs: u64,
        /// STUN/TURN servers the server offers for calls (`serve --stun/--turn`), TURN
        /// with short-lived credentials; left out when none. A compatible addition to
        /// version 1: older clients ignore it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
        /// Who else is online, for a client that asked (`login` with `presence: true`)
        /// on a server that shares presence; left out otherwise. Changes follow as
        /// `presence_changed`. A compatible addition to version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presence: Option<Vec<Presence>>,
    },
    /// To presence subscribers: users whose status changed since the last update,
    /// batched (at most one message every 250 ms). A compatible addition to version 1.
    PresenceChanged {
        /// The new status of each user that changed (`offline`: logged out or gone).
        users: Vec<Presence>,
    },
    /// A request failed; the connection stays open unless `code` is fatal for it
    /// (`auth-failed`, `unsupported-version`).
    Error {
        /// Stable error code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
        /// The call it concerns, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// A newer login with the same id took over; this connection is closed next.
    Conflict {
        /// Human-readable detail.
        message: String,
    },
    /// To the caller: the callee is online and is being rung.
    Ringing {
        /// The call this message is about.
        call_id: CallId,
        /// The callee.
        to: UserId,
    },
    /// To the callee: someone calls.
    Incoming {
        /// The call this message is about.
        call_id: CallId,
        /// Who calls; stamped by the server.
        from: UserId,
        /// For a room call, the room (the callee answers it without asking).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
    },
    /// To a member that joined: who else is in the room (they will call it).
    RoomJoined {
        /// The room.
        room: RoomId,
        /// The other members, in the order they joined.
        members: Vec<UserId>,
    },
    /// To the other members: `id` joined the room; each of them calls it.
    MemberJoined {
        /// The room.
        room: RoomId,
        /// The newcomer.
        id: UserId,
    },
    /// To the other members: `id` left the room (or its connection died); its room
    /// calls are over.
    MemberLeft {
        /// The room.
        room: RoomId,
        /// Who left.
        id: UserId,
    },
    /// To the caller: the callee accepted.
    Accept {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// To the caller: the callee refused.
    Refuse {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// To the callee: the caller gave up before an answer.
    Cancel {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// To the caller: the callee is in another call (answered by the server).
    Busy {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// To the other party: the call was hung up.
    Hangup {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// Relayed SDP offer.
    Offer {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
        /// The session description (RFC 8866).
        sdp: String,
    },
    /// Relayed SDP answer.
    Answer {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
        /// The session description (RFC 8866).
        sdp: String,
    },
    /// Relayed ICE candidate.
    Candidate {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
        /// The trickled ICE candidate.
        candidate: IceCandidate,
    },
    /// Relayed end of candidates.
    EndOfCandidates {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
    },
    /// Relayed peer media state.
    MediaState {
        /// The call this message is about.
        call_id: CallId,
        /// Who sent it; stamped by the server, never taken from the client.
        from: UserId,
        /// Microphone and camera state.
        #[serde(flatten)]
        state: MediaState,
    },
    /// The server ended the call on its own.
    CallEnded {
        /// The call this message is about.
        call_id: CallId,
        /// Why the call ended.
        reason: ServerEndReason,
        /// With `glare`: the call that survives (an `incoming` for it was sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced_by: Option<CallId>,
    },
    /// The server is shutting down; reconnect after `retry_after_ms`.
    Shutdown {
        /// Human-readable detail.
        message: String,
        /// When to reconnect, in milliseconds.
        retry_after_ms: u64,
    },
}

/// Why the server ended a call by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerEndReason {
    /// The callee is not logged in.
    Offline,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The other party's connection died or it logged out mid-call.
    PeerGone,
    /// Both called each other at once; this call lost to `replaced_by`.
    Glare,
    /// The server is shutting down.
    ServerShutdown,
}

/// Stable error codes of [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The frame is not JSON, or not an object with a string `type`.
    BadJson,
    /// `type` names no known message.
    UnknownType,
    /// A field is missing or has the wrong shape.
    BadMessage,
    /// The frame exceeds [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// A binary frame; only text frames are allowed.
    BinaryFrame,
    /// An id that is not 1-64 characters of `[A-Za-z0-9._-]`.
    BadId,
    /// Login version differs from the server's.
    UnsupportedVersion,
    /// Token missing, forged, expired, or for another id.
    AuthFailed,
    /// A message other than `login` before logging in.
    NotLoggedIn,
    /// A second `login` on a logged-in connection.
    AlreadyLoggedIn,
    /// Calling oneself.
    SelfCall,
    /// A call id already in use.
    DuplicateCall,
    /// The sender already has a call in progress.
    AlreadyInCall,
    /// The call id is unknown, or the sender is not a party of it.
    UnknownCall,
    /// The message does not fit the call's state (e.g. `accept` by the caller).
    BadState,
    /// The sender is sending faster than the server relays.
    RateLimited,
    /// The room already has [`RoomId::MAX_MEMBERS`] members.
    RoomFull,
    /// A room message about a room the sender (or, for a room call, the callee) is not
    /// in.
    NotInRoom,
    /// The server cannot reach the store it shares with other servers (`serve
    /// --redis`); the message was not acted on. A login refused with it closes the
    /// connection: try again later or another server.
    Unavailable,
}

impl ErrorCode {
    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        matches!(self, Self::AuthFailed | Self::UnsupportedVersion)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(value.as_str().unwrap_or("unknown"))
    }
}

/// A frame that could not be read as a [`ClientMessage`], with the code to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The stable code for the `error` reply.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

const CLIENT_TYPES: &[&str] = &[
    "login",
    "call",
    "accept",
    "refuse",
    "cancel",
    "hangup",
    "offer",
    "answer",
    "candidate",
    "end_of_candidates",
    "media_state",
    "join_room",
    "leave_room",
    "logout",
];

impl ClientMessage {
    /// Parses one text frame, classifying failures into the codes the server answers with.
    ///
    /// # Errors
    /// [`ErrorCode::TooLarge`], [`ErrorCode::BadJson`], [`ErrorCode::UnknownType`],
    /// [`ErrorCode::BadId`] or [`ErrorCode::BadMessage`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let fail = |code, message: String| DecodeError { code, message };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(fail(
                ErrorCode::TooLarge,
                format!("{} bytes exceeds {MAX_MESSAGE_BYTES}", text.len()),
            ));
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| fail(ErrorCode::BadJson, e.to_string()))?;
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                fail(
                    ErrorCode::BadJson,
                    "expected an object with a string `type`".into(),
                )
            })?;
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(fail(
                ErrorCode::UnknownType,
                format!("unknown message type {kind:?}"),
            ));
        }
        serde_json::from_value(value).map_err(|e| {
            let message = e.to_string();
            let code = if message.contains("an id ") {
                ErrorCode::BadId
            } else {
                ErrorCode::BadMessage
            };
            fail(code, format!("{kind}: {message}"))
        })
    }

    /// The call this message is about, if any.
    pub fn call_id(&self) -> Option<&CallId> {
        match self {
            Self::Call { call_id, .. }
            | Self::Accept { call_id }
            | Self::Refuse { call_id }
            | Self::Cancel { call_id }
            | Self::Hangup { call_id }
            | Self::Offer { call_id, .. }
            | Self::Answer { call_id, .. }
            | Self::Candidate { call_id, .. }
            | Self::EndOfCandidates { call_id }
            | Self::MediaState { call_id, .. } => Some(call_id),
            Self::Login { .. } | Self::JoinRoom { .. } | Self::LeaveRoom { .. } | Self::Logout => {
                None
            }
        }
    }
}

impl ServerMessage {
    /// Serializes to one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// The call this message is about, if any.
    pub fn call_id(&self) -> Option<&CallId> {
        match self {
            Self::Ringing { call_id, .. }
            | Self::Incoming { call_id, .. }
            | Self::Accept { call_id, .. }
            | Self::Refuse { call_id, .. }
            | Self::Cancel { call_id, .. }
            | Self::Busy { call_id, .. }
            | Self::Hangup { call_id, .. }
            | Self::Offer { call_id, .. }
            | Self::Answer { call_id, .. }
            | Self::Candidate { call_id, .. }
            | Self::EndOfCandidates { call_id, .. }
            | Self::MediaState { call_id, .. }
            | Self::CallEnded { call_id, .. } => Some(call_id),
            Self::Error { call_id, .. } => call_id.as_ref(),
            Self::LoginOk { .. }
            | Self::PresenceChanged { .. }
            | Self::Conflict { .. }
            | Self::Shutdown { .. }
            | Self::RoomJoined { .. }
            | Self::MemberJoined { .. }
            | Self::MemberLeft { .. } => None,
        }
    }
}

impl ClientMessage {
    /// Serializes to one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn user_id_accepts_the_documented_alphabet_and_rejects_the_rest() {
        assert!(UserId::parse("tom.smith_2-x").is_ok());
        assert_eq!(UserId::parse(""), Err(UserIdError::Length(0)));
        assert_eq!(UserId::parse(&"a".repeat(65)), Err(UserIdError::Length(65)));
        assert!(UserId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(UserId::parse("tom jerry"), Err(UserIdError::Character(' ')));
        assert_eq!(UserId::parse("tóm"), Err(UserIdError::Character('ó')));
    }

    #[test]
    fn login_round_trips_with_its_documented_shape() {
        let msg = ClientMessage::Login {
            version: 1,
            id: id("tom"),
            token: None,
            presence: false,
            resume: vec![],
        };
        assert_eq!(msg.encode(), r#"{"type":"login","version":1,"id":"tom"}"#);
        assert_eq!(ClientMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn presence_has_its_documented_shape() {
        let login = r#"{"type":"login","version":1,"id":"tom","presence":true}"#;
        assert!(matches!(
            ClientMessage::decode(login).unwrap(),
            ClientMessage::Login { presence: true, .. }
        ));
        let changed = ServerMessage::PresenceChanged {
            users: vec![
                Presence {
                    id: id("jerry"),
                    status: PresenceStatus::Busy,
                },
                Presence {
                    id: id("spike"),
                    status: PresenceStatus::Offline,
                },
            ],
        };
        assert_eq!(
            changed.encode(),
            r#"{"type":"presence_changed","users":[{"id":"jerry","status":"busy"},{"id":"spike","status":"offline"}]}"#
        );
        let ok = r#"{"type":"login_ok","id":"tom","version":1,"heartbeat_secs":5}"#;
        assert!(matches!(
            serde_json::from_str::<ServerMessage>(ok).unwrap(),
            ServerMessage::LoginOk { presence: None, .. }
        ));
    }

    #[test]
    fn media_state_is_flattened() {
        let msg = ServerMessage::MediaState {
            call_id: CallId::parse("c1").unwrap(),
            from: id("tom"),
            state: MediaState {
                muted: true,
                camera: false,
            },
        };
        assert_eq!(
            msg.encode(),
            r#"{"type":"media_state","call_id":"c1","from":"tom","muted":true,"camera":false}"#
        );
    }

    #[test]
    fn decode_classifies_bad_input() {
        let code = |s: &str| ClientMessage::decode(s).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"call","to":"jerry"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"type":"call","call_id":"c1","to":"je rry"}"#),
            ErrorCode::BadId
        );
        let big = format!(
            r#"{{"type":"offer","call_id":"c","sdp":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code(&big), ErrorCode::TooLarge);
    }

    #[test]
    fn error_codes_and_reasons_are_kebab_case() {
        assert_eq!(ErrorCode::NotLoggedIn.to_string(), "not-logged-in");
        assert_eq!(
            serde_json::to_string(&ServerEndReason::NoAnswer).unwrap(),
            r#""no-answer""#
        );
    }
}
