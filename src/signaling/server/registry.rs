//! Who is online and which calls and rooms exist: the state every session shares.
//!
//! The registry is a deterministic state machine. It changes only through
//! [`Registry::apply`] (see `command.rs`), and what it wants said or done (messages to
//! sessions, a conflict, a ring timer) comes out as [`Effect`]s addressed to a
//! [`SessionKey`]. One server applies commands as its sessions send them; several
//! servers sharing a Redis (`serve --redis`) each apply the same commands in the same
//! order to their own copy, and each carries out only the effects addressed to its own
//! sessions. Nothing here may depend on the process it runs in: no clock, no random
//! number, no iteration over a hash map whose order decides an outcome.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::presence::Changes;
use crate::signaling::protocol::{CallId, RoomId, ServerEndReason, ServerMessage, UserId};

/// One `serve` process among those sharing a store: random at start, so a restarted
/// process is a new instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct InstanceId(pub(super) u64);

impl InstanceId {
    /// A fresh random id.
    pub(super) fn random() -> Self {
        Self(rand::random())
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One client connection anywhere: the instance that holds it and its connection
/// number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct SessionKey {
    pub(super) instance: InstanceId,
    pub(super) conn: u64,
}

/// Something the state machine wants done, for the instance that holds `to`/`session`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Effect {
    /// Queue `msg` to the session.
    Send { to: SessionKey, msg: ServerMessage },
    /// Queue a message relayed from `from`'s session; when `to` cannot take it (a full
    /// queue) and `from` is held by the same instance, `from` gets `rate-limited`.
    Relay {
        to: SessionKey,
        from: SessionKey,
        msg: ServerMessage,
    },
    /// A newer login of `id` replaced this session: `conflict`, then close it.
    Replaced { old: SessionKey, id: UserId },
    /// `id` is logged in on this session: send `login_ok`.
    LoggedIn { session: SessionKey, id: UserId },
    /// Start the ring timer of a call placed from `origin`: when it fires, the instance
    /// that holds `origin` submits [`super::command::Command::RingTimeout`].
    RingTimer {
        origin: SessionKey,
        call_id: CallId,
        instance: CallInstance,
    },
}

/// Whether a call still rings or was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum CallPhase {
    Ringing,
    Active,
}

/// One call's identity on this server: a serial number no other call ever gets, even
/// one that reuses its `call_id` after it ended. Per-call timers hold this, so they can
/// only end the call that started them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CallInstance(u64);

/// A call between two logged-in users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Call {
    pub(super) instance: CallInstance,
    pub(super) caller: UserId,
    pub(super) callee: UserId,
    pub(super) phase: CallPhase,
    /// The room both parties are in, for a room call (not in [`Registry::call_of`]).
    pub(super) room: Option<RoomId>,
}

/// A room: its members in the order they joined, and the calls between them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// Who is online and which calls exist. Serialized whole (without the effects and
/// presence changes) to hand a joining instance the state (see `cluster.rs`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Registry {
    /// The session each logged-in id has.
    pub(super) sessions: HashMap<UserId, SessionKey>,
    pub(super) calls: HashMap<CallId, Call>,
    /// The one 1:1 call each user is a party of (room calls are in [`Room::calls`]).
    pub(super) call_of: HashMap<UserId, CallId>,
    pub(super) rooms: HashMap<RoomId, Room>,
    /// The one room each user is in.
    pub(super) room_of: HashMap<UserId, RoomId>,
    /// The last [`CallInstance`] handed out.
    last_instance: u64,
    /// Ids whose presence may have changed since the last `presence_changed`.
    #[serde(skip)]
    pub(super) presence_changes: Changes,
    /// Effects of the command being applied, taken by [`Registry::take_effects`].
    #[serde(skip)]
    effects: Vec<Effect>,
}

impl Registry {
    /// A registry that tracks presence changes (`serve --presence all`).
    pub(super) fn with_presence() -> Self {
        Self {
            presence_changes: Changes::tracking(),
            ..Self::default()
        }
    }

    /// The effects of what was applied since the last call.
    pub(super) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub(super) fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Whether `session` is `id`'s current session (not replaced by a newer login).
    pub(super) fn is_current(&self, id: &UserId, session: SessionKey) -> bool {
        self.sessions.get(id) == Some(&session)
    }

    /// Registers `id`'s `session`. A session it replaces gets [`Effect::Replaced`]; its
    /// calls and room end as [`Departure::Gone`], except an accepted 1:1 call named in
    /// `resume` (the same client, reconnected), which carries over to `session`.
    pub(super) fn log_in(&mut self, id: &UserId, session: SessionKey, resume: &[CallId]) {
        self.presence_changes.touch(id);
        if let Some(old) = self.sessions.insert(id.clone(), session) {
            self.effect(Effect::Replaced {
                old,
                id: id.clone(),
            });
            let resumed = self.call_of.get(id).is_some_and(|c| {
                resume.contains(c) && self.calls.get(c).map(|c| c.phase) == Some(CallPhase::Active)
            });
            if !resumed {
                self.end_calls_of_departed(id);
            }
            self.leave_room(id, Departure::Gone);
        }
        self.effect(Effect::LoggedIn {
            session,
            id: id.clone(),
        });
    }

    /// Unregisters `id`'s `session` and ends its calls and room, unless a newer login
    /// replaced it; whether it did.
    pub(super) fn log_out(&mut self, id: &UserId, session: SessionKey) -> bool {
        if !self.is_current(id, session) {
            return false;
        }
        self.sessions.remove(id);
        self.presence_changes.touch(id);
        self.end_calls_of_departed(id);
        self.leave_room(id, Departure::Gone);
        true
    }

    /// Logs out every session `instance` held (it stopped heartbeating), in id order.
    pub(super) fn instance_gone(&mut self, instance: InstanceId) -> usize {
        let mut theirs: Vec<(UserId, SessionKey)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.instance == instance)
            .map(|(id, s)| (id.clone(), *s))
            .collect();
        theirs.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, session) in &theirs {
            self.log_out(id, *session);
        }
        theirs.len()
    }

    /// Queues `msg` to `id`'s session, if `id` is online.
    pub(super) fn send_to(&mut self, id: &UserId, msg: ServerMessage) {
        if let Some(&to) = self.sessions.get(id) {
            self.effect(Effect::Send { to, msg });
        }
    }

    /// Queues `msg` to `session` (the sender of the command being applied).
    pub(super) fn reply(&mut self, session: SessionKey, msg: ServerMessage) {
        self.effect(Effect::Send { to: session, msg });
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
        for member in self.rooms[&room_id].members.clone() {
            self.send_to(
                &member,
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    /// Session `conn` of instance 1.
    pub(in super::super) fn key(conn: u64) -> SessionKey {
        SessionKey {
            instance: InstanceId(1),
            conn,
        }
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

    #[test]
    fn a_newer_login_replaces_and_ends_the_call_unless_it_resumes_it() {
        let (tom, jerry) = (user("tom"), user("jerry"));
        let call = CallId::parse("c").unwrap();
        for resume in [vec![], vec![call.clone()]] {
            let mut reg = Registry::default();
            reg.log_in(&tom, key(1), &[]);
            reg.log_in(&jerry, key(2), &[]);
            reg.add_call(call.clone(), tom.clone(), jerry.clone(), None);
            reg.calls.get_mut(&call).unwrap().phase = CallPhase::Active;
            reg.take_effects();
            reg.log_in(&tom, key(3), &resume);
            let effects = reg.take_effects();
            assert!(effects.contains(&Effect::Replaced {
                old: key(1),
                id: tom.clone()
            }));
            let peer_gone = effects
                .iter()
                .any(|e| matches!(e, Effect::Send { to, msg: ServerMessage::CallEnded { .. } } if *to == key(2)));
            assert_eq!(peer_gone, resume.is_empty(), "resume {resume:?}");
            assert_eq!(reg.call_of.contains_key(&jerry), !resume.is_empty());
            assert!(
                !reg.log_out(&tom, key(1)),
                "the replaced session's logout is stale"
            );
        }
    }

    #[test]
    fn a_gone_instance_takes_its_sessions_and_their_calls() {
        let mut reg = Registry::default();
        let other = SessionKey {
            instance: InstanceId(2),
            conn: 1,
        };
        reg.log_in(&user("tom"), key(1), &[]);
        reg.log_in(&user("jerry"), other, &[]);
        reg.add_call(
            CallId::parse("c").unwrap(),
            user("tom"),
            user("jerry"),
            None,
        );
        reg.take_effects();
        assert_eq!(reg.instance_gone(InstanceId(2)), 1);
        assert_eq!(reg.sessions.len(), 1);
        assert!(reg.calls.is_empty() && reg.call_of.is_empty());
        assert!(matches!(
            &reg.take_effects()[..],
            [Effect::Send { to, msg: ServerMessage::CallEnded { reason: ServerEndReason::PeerGone, .. } }] if *to == key(1)
        ));
    }
}
