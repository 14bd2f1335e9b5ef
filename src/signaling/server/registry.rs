//! Who is online and which calls exist: the one piece of state every session shares,
//! behind a mutex that is never held across an await.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::warn;

use super::presence::Changes;
use crate::signaling::protocol::{CallId, RoomId, ServerEndReason, ServerMessage, UserId};

/// What a session's writer task sends.
#[derive(Debug)]
pub(super) enum Outbound {
    /// An encoded [`ServerMessage`], queued as text so a queue slot stays small.
    Text(String),
    /// An encoded [`ServerMessage`] sent to many sessions (presence), encoded once.
    Shared(Arc<str>),
    /// Send a close frame (with a code and reason, when given) and end the session.
    Close(Option<CloseFrame>),
}

/// Handle to one connected, logged-in client.
#[derive(Debug, Clone)]
pub(super) struct SessionHandle {
    /// Distinguishes a session from a newer one with the same id.
    pub(super) conn: u64,
    pub(super) tx: mpsc::Sender<Outbound>,
    /// Whether the client subscribed to presence (`login` with `presence: true`, on a
    /// server that shares it).
    pub(super) presence: bool,
}

impl SessionHandle {
    /// Queues a message without waiting; a full queue drops it (and says so).
    pub(super) fn send(&self, msg: ServerMessage) -> bool {
        self.queue(Outbound::Text(msg.encode()))
    }

    /// Queues a message encoded once for many sessions; a full queue drops it.
    pub(super) fn send_shared(&self, text: Arc<str>) -> bool {
        self.queue(Outbound::Shared(text))
    }

    fn queue(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    conn = self.conn,
                    "outbound queue full or closed, dropped: {e}"
                );
                false
            }
        }
    }

    /// Asks the writer to send a close frame and end the session.
    pub(super) fn close(&self, frame: Option<CloseFrame>) {
        let _ = self.tx.try_send(Outbound::Close(frame));
    }
}

/// Whether a call still rings or was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallPhase {
    Ringing,
    Active,
}

/// One call's identity on this server: a serial number no other call ever gets, even
/// one that reuses its `call_id` after it ended. Per-call timers hold this, so they can
/// only end the call that started them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CallInstance(u64);

/// A call between two logged-in users.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) instance: CallInstance,
    pub(super) caller: UserId,
    pub(super) callee: UserId,
    pub(super) phase: CallPhase,
    /// The room both parties are in, for a room call (not in [`Registry::call_of`]).
    pub(super) room: Option<RoomId>,
}

/// A room: its members in the order they joined, and the calls between them.
#[derive(Debug, Clone, Default)]
pub(super) struct Room {
    pub(super) members: Vec<UserId>,
    pub(super) calls: Vec<CallId>,
}

/// How a member left its room, which decides what its peers are told about their calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Departure {
    /// `leave_room` or `logout`: a `hangup` from it on each call.
    Left,
    /// Its connection died or a newer login replaced it: `call_ended`, `peer-gone`.
    Gone,
}

impl Call {
    /// The party that is not `id`.
    pub(super) fn other(&self, id: &UserId) -> &UserId {
        if *id == self.caller {
            &self.callee
        } else {
            &self.caller
        }
    }
}

/// Who is online and which calls exist.
#[derive(Debug, Default)]
pub(super) struct Registry {
    pub(super) sessions: HashMap<UserId, SessionHandle>,
    pub(super) calls: HashMap<CallId, Call>,
    /// The one 1:1 call each user is a party of (room calls are in [`Room::calls`]).
    pub(super) call_of: HashMap<UserId, CallId>,
    pub(super) rooms: HashMap<RoomId, Room>,
    /// The one room each user is in.
    pub(super) room_of: HashMap<UserId, RoomId>,
    /// The last [`CallInstance`] handed out.
    last_instance: u64,
    /// Ids whose presence may have changed since the last `presence_changed`.
    pub(super) presence_changes: Changes,
}

impl Registry {
    /// A registry that tracks presence changes (`serve --presence all`).
    pub(super) fn with_presence() -> Self {
        Self {
            presence_changes: Changes::tracking(),
            ..Self::default()
        }
    }

    /// Registers `id`'s session; the session it replaces, if any (its calls and room
    /// are ended as [`Departure::Gone`]).
    pub(super) fn log_in(&mut self, id: UserId, handle: SessionHandle) -> Option<SessionHandle> {
        self.presence_changes.touch(&id);
        let old = self.sessions.insert(id.clone(), handle);
        if old.is_some() {
            self.end_calls_of_departed(&id);
            self.leave_room(&id, Departure::Gone);
        }
        old
    }

    /// Unregisters `id`'s session `conn` and ends its calls and room, unless a newer
    /// login replaced it; whether it did.
    pub(super) fn log_out(&mut self, id: &UserId, conn: u64) -> bool {
        if self.sessions.get(id).map(|s| s.conn) != Some(conn) {
            return false;
        }
        self.sessions.remove(id);
        self.presence_changes.touch(id);
        self.end_calls_of_departed(id);
        self.leave_room(id, Departure::Gone);
        true
    }

    pub(super) fn send_to(&self, id: &UserId, msg: ServerMessage) {
        if let Some(s) = self.sessions.get(id) {
            s.send(msg);
        }
    }

    /// Records a new ringing call `caller` → `callee` (in `room`, for a room call); its
    /// instance.
    pub(super) fn add_call(
        &mut self,
        call_id: CallId,
        caller: UserId,
        callee: UserId,
        room: Option<RoomId>,
    ) -> CallInstance {
        self.last_instance += 1;
        let instance = CallInstance(self.last_instance);
        self.presence_changes.touch(&caller);
        self.presence_changes.touch(&callee);
        match room.as_ref().and_then(|r| self.rooms.get_mut(r)) {
            Some(r) => r.calls.push(call_id.clone()),
            None => {
                self.call_of.insert(caller.clone(), call_id.clone());
                self.call_of.insert(callee.clone(), call_id.clone());
            }
        }
        self.calls.insert(
            call_id,
            Call {
                instance,
                caller,
                callee,
                phase: CallPhase::Ringing,
                room,
            },
        );
        instance
    }

    /// The call `call_id` if it is still `instance` and in `phase`.
    pub(super) fn call_if(
        &self,
        call_id: &CallId,
        instance: CallInstance,
        phase: CallPhase,
    ) -> Option<&Call> {
        self.calls
            .get(call_id)
            .filter(|c| c.instance == instance && c.phase == phase)
    }

    pub(super) fn remove_call(&mut self, call_id: &CallId) -> Option<Call> {
        let call = self.calls.remove(call_id)?;
        self.presence_changes.touch(&call.caller);
        self.presence_changes.touch(&call.callee);
        for id in [&call.caller, &call.callee] {
            if self.call_of.get(id) == Some(call_id) {
                self.call_of.remove(id);
            }
        }
        if let Some(room) = call.room.as_ref().and_then(|r| self.rooms.get_mut(r)) {
            room.calls.retain(|c| c != call_id);
        }
        Some(call)
    }

    /// Adds `id` to `room` (created if new); the members already there, or `None` when
    /// it is full.
    pub(super) fn join_room(&mut self, id: &UserId, room: &RoomId) -> Option<Vec<UserId>> {
        let r = self.rooms.entry(room.clone()).or_default();
        if r.members.len() >= RoomId::MAX_MEMBERS {
            return None;
        }
        let before = r.members.clone();
        r.members.push(id.clone());
        self.presence_changes.touch(id);
        self.room_of.insert(id.clone(), room.clone());
        for member in &before {
            self.send_to(
                member,
                ServerMessage::MemberJoined {
                    room: room.clone(),
                    id: id.clone(),
                },
            );
        }
        Some(before)
    }

    /// Takes `id` out of its room, if it is in one: ends its room calls (see
    /// [`Departure`]) and tells the other members `member_left`. The room goes with its
    /// last member.
    pub(super) fn leave_room(&mut self, id: &UserId, how: Departure) {
        let Some(room_id) = self.room_of.remove(id) else {
            return;
        };
        self.presence_changes.touch(id);
        let Some(room) = self.rooms.get(&room_id) else {
            return;
        };
        let theirs: Vec<CallId> = room
            .calls
            .iter()
            .filter(|c| {
                self.calls
                    .get(*c)
                    .is_some_and(|call| call.caller == *id || call.callee == *id)
            })
            .cloned()
            .collect();
        for call_id in theirs {
            let Some(call) = self.remove_call(&call_id) else {
                continue;
            };
            let msg = match how {
                Departure::Left => ServerMessage::Hangup {
                    call_id,
                    from: id.clone(),
                },
                Departure::Gone => ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::PeerGone,
                    replaced_by: None,
                },
            };
            self.send_to(call.other(id), msg);
        }
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        room.members.retain(|m| m != id);
        if room.members.is_empty() {
            self.rooms.remove(&room_id);
            return;
        }
        for member in &self.rooms[&room_id].members {
            self.send_to(
                member,
                ServerMessage::MemberLeft {
                    room: room_id.clone(),
                    id: id.clone(),
                },
            );
        }
    }

    /// Ends `id`'s call because `id` left; the other party learns `peer-gone`.
    pub(super) fn end_calls_of_departed(&mut self, id: &UserId) {
        if let Some(call_id) = self.call_of.get(id).cloned()
            && let Some(call) = self.remove_call(&call_id)
        {
            self.send_to(
                call.other(id),
                ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::PeerGone,
                    replaced_by: None,
                },
            );
        }
    }
}

/// A session handle for unit tests (its queue is dropped: sends fail quietly).
#[cfg(test)]
pub(super) fn test_handle(conn: u64, presence: bool) -> SessionHandle {
    SessionHandle {
        conn,
        tx: mpsc::channel(1).0,
        presence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn a_reused_call_id_is_a_new_instance() {
        let mut reg = Registry::default();
        let id = CallId::parse("x").unwrap();
        let first = reg.add_call(id.clone(), user("tom"), user("jerry"), None);
        assert!(reg.call_if(&id, first, CallPhase::Ringing).is_some());
        reg.remove_call(&id);
        let second = reg.add_call(id.clone(), user("tom"), user("jerry"), None);
        assert_ne!(first, second);
        assert!(reg.call_if(&id, first, CallPhase::Ringing).is_none());
        assert!(reg.call_if(&id, second, CallPhase::Ringing).is_some());
        assert!(reg.call_if(&id, second, CallPhase::Active).is_none());
    }

    fn room(s: &str) -> RoomId {
        RoomId::parse(s).unwrap()
    }

    #[test]
    fn a_room_holds_four_and_goes_with_its_last_member() {
        let mut reg = Registry::default();
        let r = room("r");
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let before = reg.join_room(&user(id), &r).expect("room for four");
            assert_eq!(before.len(), i);
        }
        assert_eq!(reg.join_room(&user("e"), &r), None, "a fifth is refused");
        assert!(!reg.room_of.contains_key(&user("e")));
        for id in ["a", "b", "c", "d"] {
            reg.leave_room(&user(id), Departure::Left);
        }
        assert!(reg.rooms.is_empty() && reg.room_of.is_empty());
    }

    #[test]
    fn leaving_ends_the_leavers_room_calls_only() {
        let mut reg = Registry::default();
        let r = room("r");
        for id in ["a", "b", "c"] {
            reg.join_room(&user(id), &r);
        }
        let ab = CallId::parse("ab").unwrap();
        let bc = CallId::parse("bc").unwrap();
        reg.add_call(ab.clone(), user("a"), user("b"), Some(r.clone()));
        reg.add_call(bc.clone(), user("b"), user("c"), Some(r.clone()));
        assert!(reg.call_of.is_empty(), "room calls are not 1:1 calls");
        reg.leave_room(&user("a"), Departure::Gone);
        assert!(!reg.calls.contains_key(&ab));
        assert!(reg.calls.contains_key(&bc));
        assert_eq!(reg.rooms[&r].calls, vec![bc]);
        assert_eq!(reg.rooms[&r].members, vec![user("b"), user("c")]);
    }
}
