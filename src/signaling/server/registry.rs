//! Who is online and which calls exist: the one piece of state every session shares,
//! behind a mutex that is never held across an await.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::warn;

use crate::signaling::protocol::{CallId, ServerEndReason, ServerMessage, UserId};

/// What a session's writer task sends.
#[derive(Debug)]
pub(super) enum Outbound {
    /// An encoded [`ServerMessage`], queued as text so a queue slot stays small.
    Text(String),
    /// Send a close frame (with a code and reason, when given) and end the session.
    Close(Option<CloseFrame>),
}

/// Handle to one connected, logged-in client.
#[derive(Debug, Clone)]
pub(super) struct SessionHandle {
    /// Distinguishes a session from a newer one with the same id.
    pub(super) conn: u64,
    pub(super) tx: mpsc::Sender<Outbound>,
}

impl SessionHandle {
    /// Queues a message without waiting; a full queue drops it (and says so).
    pub(super) fn send(&self, msg: ServerMessage) -> bool {
        match self.tx.try_send(Outbound::Text(msg.encode())) {
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
    /// The one call each user is a party of.
    pub(super) call_of: HashMap<UserId, CallId>,
    /// The last [`CallInstance`] handed out.
    last_instance: u64,
}

impl Registry {
    pub(super) fn send_to(&self, id: &UserId, msg: ServerMessage) {
        if let Some(s) = self.sessions.get(id) {
            s.send(msg);
        }
    }

    /// Records a new ringing call `caller` → `callee`; its instance.
    pub(super) fn add_call(
        &mut self,
        call_id: CallId,
        caller: UserId,
        callee: UserId,
    ) -> CallInstance {
        self.last_instance += 1;
        let instance = CallInstance(self.last_instance);
        self.call_of.insert(caller.clone(), call_id.clone());
        self.call_of.insert(callee.clone(), call_id.clone());
        self.calls.insert(
            call_id,
            Call {
                instance,
                caller,
                callee,
                phase: CallPhase::Ringing,
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
        for id in [&call.caller, &call.callee] {
            if self.call_of.get(id) == Some(call_id) {
                self.call_of.remove(id);
            }
        }
        Some(call)
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
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn a_reused_call_id_is_a_new_instance() {
        let mut reg = Registry::default();
        let id = CallId::parse("x").unwrap();
        let first = reg.add_call(id.clone(), user("tom"), user("jerry"));
        assert!(reg.call_if(&id, first, CallPhase::Ringing).is_some());
        reg.remove_call(&id);
        let second = reg.add_call(id.clone(), user("tom"), user("jerry"));
        assert_ne!(first, second);
        assert!(reg.call_if(&id, first, CallPhase::Ringing).is_none());
        assert!(reg.call_if(&id, second, CallPhase::Ringing).is_some());
        assert!(reg.call_if(&id, second, CallPhase::Active).is_none());
    }
}
