//! Call control on the server: placing a call (busy, offline, glare), the ring
//! timeout, and the state machine that accepts, ends or relays each call message.

use std::sync::Arc;

use tracing::{debug, info};

use super::registry::{CallInstance, CallPhase};
use super::session::Session;
use crate::signaling::protocol::{
    CallId, ClientMessage, ErrorCode, RoomId, ServerEndReason, ServerMessage, UserId,
};

impl Session {
    pub(super) fn on_call(&self, me: &UserId, call_id: CallId, to: UserId, room: Option<RoomId>) {
        let reply_err = |code, text: String| self.error(code, text, Some(call_id.clone()));
        if *me == to {
            return reply_err(ErrorCode::SelfCall, "you cannot call yourself".into());
        }
        let mut reg = self.shared.registry();
        if reg.calls.contains_key(&call_id) {
            return reply_err(
                ErrorCode::DuplicateCall,
                format!("call id {call_id} is in use"),
            );
        }
        if let Some(room) = room {
            drop(reg);
            return self.on_room_call(me, call_id, to, room);
        }
        if let Some(room) = reg.room_of.get(me) {
            return reply_err(
                ErrorCode::AlreadyInCall,
                format!("you are in room {room}; leave it to place a call"),
            );
        }
        if let Some(current) = reg.call_of.get(me).cloned() {
            let theirs = &reg.calls[&current];
            if theirs.phase == CallPhase::Ringing && theirs.caller == to && theirs.callee == *me {
                // Glare: the call that reached the server first survives. We already
                // got `incoming` for it; this one gives way.
                info!(a = %me, b = %to, kept = %current, "glare resolved");
                self.reply(ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::Glare,
                    replaced_by: Some(current),
                });
                return;
            }
            return reply_err(
                ErrorCode::AlreadyInCall,
                format!("you are already in call {current}"),
            );
        }
        if !reg.sessions.contains_key(&to) {
            info!(from = %me, %to, "call to offline user");
            self.reply(ServerMessage::CallEnded {
                call_id,
                reason: ServerEndReason::Offline,
                replaced_by: None,
            });
            return;
        }
        if reg.call_of.contains_key(&to) || reg.room_of.contains_key(&to) {
            info!(from = %me, %to, "callee busy");
            self.reply(ServerMessage::Busy { call_id, from: to });
            return;
        }
        let instance = reg.add_call(call_id.clone(), me.clone(), to.clone(), None);
        reg.send_to(
            &to,
            ServerMessage::Incoming {
                call_id: call_id.clone(),
                from: me.clone(),
                room: None,
            },
        );
        drop(reg);
        info!(from = %me, %to, %call_id, "ringing");
        self.reply(ServerMessage::Ringing {
            call_id: call_id.clone(),
            to,
        });
        self.start_ring_timer(call_id, instance);
    }

    /// A call between two members of `room` (an existing member calls a newcomer): both
    /// must be in it, and the pair may have one call there at a time.
    fn on_room_call(&self, me: &UserId, call_id: CallId, to: UserId, room: RoomId) {
        let reply_err = |code, text: String| self.error(code, text, Some(call_id.clone()));
        let mut reg = self.shared.registry();
        let both_in = [me, &to]
            .iter()
            .all(|id| reg.room_of.get(*id) == Some(&room));
        if !both_in {
            return reply_err(
                ErrorCode::NotInRoom,
                format!("{me} and {to} are not both in room {room}"),
            );
        }
        let paired = reg.rooms.get(&room).is_some_and(|r| {
            r.calls.iter().any(|c| {
                reg.calls.get(c).is_some_and(|call| {
                    (call.caller == *me && call.callee == to)
                        || (call.caller == to && call.callee == *me)
                })
            })
        });
        if paired {
            return reply_err(
                ErrorCode::AlreadyInCall,
                format!("you already have a call with {to} in room {room}"),
            );
        }
        let instance = reg.add_call(call_id.clone(), me.clone(), to.clone(), Some(room.clone()));
        reg.send_to(
            &to,
            ServerMessage::Incoming {
                call_id: call_id.clone(),
                from: me.clone(),
                room: Some(room.clone()),
            },
        );
        drop(reg);
        info!(from = %me, %to, %room, %call_id, "room call ringing");
        self.reply(ServerMessage::Ringing {
            call_id: call_id.clone(),
            to,
        });
        self.start_ring_timer(call_id, instance);
    }

    /// Ends call `instance` with `no-answer` if it still rings after `--ring-timeout`.
    /// Keyed by the instance, not the id: a later call that reuses `call_id` gets its
    /// own full ring time.
    fn start_ring_timer(&self, call_id: CallId, instance: CallInstance) {
        let shared = Arc::clone(&self.shared);
        let timeout = shared.config.ring_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let mut reg = shared.registry();
            if reg
                .call_if(&call_id, instance, CallPhase::Ringing)
                .is_none()
            {
                return;
            }
            if let Some(call) = reg.remove_call(&call_id) {
                info!(%call_id, "no answer within {timeout:?}");
                for id in [&call.caller, &call.callee] {
                    reg.send_to(
                        id,
                        ServerMessage::CallEnded {
                            call_id: call_id.clone(),
                            reason: ServerEndReason::NoAnswer,
                            replaced_by: None,
                        },
                    );
                }
            }
        });
    }

    /// Applies a call-control or relayed message from `me`.
    pub(super) fn route(&self, me: &UserId, msg: ClientMessage) -> Result<(), (ErrorCode, String)> {
        let call_id = msg
            .call_id()
            .cloned()
            .ok_or((ErrorCode::BadMessage, "message needs a call_id".to_owned()))?;
        let mut reg = self.shared.registry();
        let call = reg
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
                if let Some(c) = reg.calls.get_mut(&call_id) {
                    c.phase = CallPhase::Active;
                }
                ServerMessage::Accept { call_id, from }
            }
            (ClientMessage::Refuse { call_id }, CallPhase::Ringing, false)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, false) => {
                reg.remove_call(&call_id);
                ServerMessage::Refuse { call_id, from }
            }
            (ClientMessage::Cancel { call_id }, CallPhase::Ringing, true)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, true) => {
                reg.remove_call(&call_id);
                ServerMessage::Cancel { call_id, from }
            }
            (ClientMessage::Hangup { call_id }, CallPhase::Active, _)
            | (ClientMessage::Cancel { call_id }, CallPhase::Active, true) => {
                reg.remove_call(&call_id);
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
            (msg, _, _) => {
                let kind = serde_json::to_value(&msg)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                return bad_state(&kind);
            }
        };
        let delivered = reg.sessions.get(&other).is_some_and(|s| s.send(relay));
        drop(reg);
        if delivered {
            Ok(())
        } else {
            Err((
                ErrorCode::RateLimited,
                format!("{other} is not keeping up; message dropped"),
            ))
        }
    }

    /// Ends `me`'s call as if `me` hung up (a cancel or refusal while it rings), so a
    /// logout reads as a hangup to the peer rather than as a vanished client.
    pub(super) fn leave_call(&self, me: &UserId) {
        let call_id = self.shared.registry().call_of.get(me).cloned();
        if let Some(call_id) = call_id
            && let Err((code, text)) = self.route(me, ClientMessage::Hangup { call_id })
        {
            debug!(%me, %code, "hangup on logout: {text}");
        }
    }
}
