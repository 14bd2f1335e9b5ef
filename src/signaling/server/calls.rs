//! Call control in the registry: placing a call (busy, offline, glare), the ring
//! timeout, and the state machine that accepts, ends or relays each call message.
//! Every decision is a function of the registry alone (see `registry.rs`).

use tracing::{debug, info};

use super::registry::{CallInstance, CallPhase, Effect, Registry, SessionKey};
use crate::signaling::protocol::{
    CallId, ClientMessage, ErrorCode, RoomId, ServerEndReason, ServerMessage, UserId,
};

/// A refusal of a client message: the code and text of the `error` reply.
pub(super) type Refusal = (ErrorCode, String);

impl Registry {
    /// `call`: `me` (on `session`) calls `to` under `call_id`.
    pub(super) fn on_call(
        &mut self,
        session: SessionKey,
        me: &UserId,
        call_id: CallId,
        to: UserId,
        room: Option<RoomId>,
    ) -> Result<(), Refusal> {
        if *me == to {
            return Err((ErrorCode::SelfCall, "you cannot call yourself".into()));
        }
        if self.calls.contains_key(&call_id) {
            return Err((
                ErrorCode::DuplicateCall,
                format!("call id {call_id} is in use"),
            ));
        }
        if let Some(room) = room {
            return self.on_room_call(session, me, call_id, to, room);
        }
        if let Some(room) = self.room_of.get(me) {
            return Err((
                ErrorCode::AlreadyInCall,
                format!("you are in room {room}; leave it to place a call"),
            ));
        }
        if let Some(current) = self.call_of.get(me).cloned() {
            let theirs = &self.calls[&current];
            if theirs.phase == CallPhase::Ringing && theirs.caller == to && theirs.callee == *me {
                // Glare: the call that reached the server first survives. We already
                // got `incoming` for it; this one gives way.
                info!(a = %me, b = %to, kept = %current, "glare resolved");
                self.reply(
                    session,
                    ServerMessage::CallEnded {
                        call_id,
                        reason: ServerEndReason::Glare,
                        replaced_by: Some(current),
                    },
                );
                return Ok(());
            }
            return Err((
                ErrorCode::AlreadyInCall,
                format!("you are already in call {current}"),
            ));
        }
        if !self.sessions.contains_key(&to) {
            info!(from = %me, %to, "call to offline user");
            self.reply(
                session,
                ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::Offline,
                    replaced_by: None,
                },
            );
            return Ok(());
        }
        if self.call_of.contains_key(&to) || self.room_of.contains_key(&to) {
            info!(from = %me, %to, "callee busy");
            self.reply(session, ServerMessage::Busy { call_id, from: to });
            return Ok(());
        }
        info!(from = %me, %to, %call_id, "ringing");
        self.ring(session, me, call_id, to, None);
        Ok(())
    }

    /// A call between two members of `room` (an existing member calls a newcomer): both
    /// must be in it, and the pair may have one call there at a time.
    fn on_room_call(
        &mut self,
        session: SessionKey,
        me: &UserId,
        call_id: CallId,
        to: UserId,
        room: RoomId,
    ) -> Result<(), Refusal> {
        let both_in = [me, &to]
            .iter()
            .all(|id| self.room_of.get(*id) == Some(&room));
        if !both_in {
            return Err((
                ErrorCode::NotInRoom,
                format!("{me} and {to} are not both in room {room}"),
            ));
        }
        let paired = self.rooms.get(&room).is_some_and(|r| {
            r.calls.iter().any(|c| {
                self.calls.get(c).is_some_and(|call| {
                    (call.caller == *me && call.callee == to)
                        || (call.caller == to && call.callee == *me)
                })
            })
        });
        if paired {
            return Err((
                ErrorCode::AlreadyInCall,
                format!("you already have a call with {to} in room {room}"),
            ));
        }
        info!(from = %me, %to, %room, %call_id, "room call ringing");
        self.ring(session, me, call_id, to, Some(room));
        Ok(())
    }

    /// Records the call, sends `incoming` and `ringing`, and asks for the ring timer.
    fn ring(
        &mut self,
        session: SessionKey,
        me: &UserId,
        call_id: CallId,
        to: UserId,
        room: Option<RoomId>,
    ) {
        let instance = self.add_call(call_id.clone(), me.clone(), to.clone(), room.clone());
        self.send_to(
            &to,
            ServerMessage::Incoming {
                call_id: call_id.clone(),
                from: me.clone(),
                room,
            },
        );
        self.reply(
            session,
            ServerMessage::Ringing {
                call_id: call_id.clone(),
                to,
            },
        );
        self.effect(Effect::RingTimer {
            origin: session,
            call_id,
            instance,
        });
    }

    /// The ring timer of call `instance` fired: it ends with `no-answer` if it still
    /// rings. Keyed by the instance, not the id: a later call that reuses `call_id`
    /// gets its own full ring time.
    pub(super) fn ring_timeout(&mut self, call_id: &CallId, instance: CallInstance) {
        if self
            .call_if(call_id, instance, CallPhase::Ringing)
            .is_none()
        {
            return;
        }
        if let Some(call) = self.remove_call(call_id) {
            info!(%call_id, "no answer within the ring timeout");
            for id in [&call.caller, &call.callee] {
                self.send_to(
                    id,
                    ServerMessage::CallEnded {
                        call_id: call_id.clone(),
                        reason: ServerEndReason::NoAnswer,
                        replaced_by: None,
                    },
                );
            }
        }
    }

    /// Applies a call-control or relayed message from `me` (on `session`).
    pub(super) fn route(
        &mut self,
        session: SessionKey,
        me: &UserId,
        msg: ClientMessage,
    ) -> Result<(), Refusal> {
        let call_id = msg
            .call_id()
            .cloned()
            .ok_or((ErrorCode::BadMessage, "message needs a call_id".to_owned()))?;
        let call = self
            .calls
            .get(&call_id)
            .filter(|c| c.caller == *me || c.callee == *me)
            .cloned()
            .ok_or_else(|| {
                (
                    ErrorCode::UnknownCall,
                    format!("no call {call_id} of yours"),
                )
            })?;
        let is_caller = call.caller == *me;
        let other = call.other(me).clone();
        let from = me.clone();
        let bad_state =
            |what: &str| Err((ErrorCode::BadState, format!("{what} in this call's state")));
        let relay = match (msg, call.phase, is_caller) {
            (ClientMessage::Accept { call_id }, CallPhase::Ringing, false) => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.phase = CallPhase::Active;
                }
                ServerMessage::Accept { call_id, from }
            }
            (ClientMessage::Refuse { call_id }, CallPhase::Ringing, false)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, false) => {
                self.remove_call(&call_id);
                ServerMessage::Refuse { call_id, from }
            }
            (ClientMessage::Cancel { call_id }, CallPhase::Ringing, true)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, true) => {
                self.remove_call(&call_id);
                ServerMessage::Cancel { call_id, from }
            }
            (ClientMessage::Hangup { call_id }, CallPhase::Active, _)
            | (ClientMessage::Cancel { call_id }, CallPhase::Active, true) => {
                self.remove_call(&call_id);
                ServerMessage::Hangup { call_id, from }
            }
            (ClientMessage::Offer { call_id, sdp }, CallPhase::Active, _) => {
                ServerMessage::Offer { call_id, from, sdp }
            }
            (ClientMessage::Answer { call_id, sdp }, CallPhase::Active, _) => {
                ServerMessage::Answer { call_id, from, sdp }
            }
            (ClientMessage::Candidate { call_id, candidate }, CallPhase::Active, _) => {
                ServerMessage::Candidate {
                    call_id,
                    from,
                    candidate,
                }
            }
            (ClientMessage::EndOfCandidates { call_id }, CallPhase::Active, _) => {
                ServerMessage::EndOfCandidates { call_id, from }
            }
            (ClientMessage::MediaState { call_id, state }, _, _) => ServerMessage::MediaState {
                call_id,
                from,
                state,
            },
            (msg, _, _) => return bad_state(&kind(&msg)),
        };
        if let Some(&to) = self.sessions.get(&other) {
            self.effect(Effect::Relay {
                to,
                from: session,
                msg: relay,
            });
        }
        Ok(())
    }

    /// Ends `me`'s 1:1 call as if `me` hung up (a cancel or refusal while it rings), so
    /// a logout reads as a hangup to the peer rather than as a vanished client.
    pub(super) fn leave_call(&mut self, session: SessionKey, me: &UserId) {
        if let Some(call_id) = self.call_of.get(me).cloned()
            && let Err((code, text)) = self.route(session, me, ClientMessage::Hangup { call_id })
        {
            debug!(%me, %code, "hangup on logout: {text}");
        }
    }
}

/// A message's `type`, for an error that names it.
fn kind(msg: &ClientMessage) -> String {
    serde_json::to_value(msg)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default()
}
