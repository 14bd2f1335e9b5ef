//! The sessions this instance holds, and carrying out the registry's effects for
//! them: queueing messages, the `conflict` of a replaced session, `login_ok`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::{info, warn};

use super::ServerConfig;
use super::registry::{CallInstance, Effect, InstanceId, Registry, SessionKey};
use crate::signaling::protocol::{CallId, ErrorCode, PROTOCOL_VERSION, ServerMessage, UserId};

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

/// Handle to one connected client of this instance.
#[derive(Debug, Clone)]
pub(super) struct SessionHandle {
    /// Distinguishes a session from a newer one with the same id.
    pub(super) conn: u64,
    pub(super) tx: mpsc::Sender<Outbound>,
    /// Whether the client subscribed to presence (`login` with `presence: true`, on a
    /// server that shares it).
    pub(super) presence: bool,
    /// Whether its login was applied (`login_ok` sent): presence batches go only to
    /// such sessions, never ahead of `login_ok`.
    pub(super) logged_in: bool,
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

/// A ring timer to start (see [`Effect::RingTimer`]).
pub(super) type RingTimer = (CallId, CallInstance);

/// The registry and this instance's sessions, behind one mutex that is never held
/// across an await.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) registry: Registry,
    /// The sessions this instance holds, logged in or logging in, by connection number.
    pub(super) local: HashMap<u64, SessionHandle>,
}

impl State {
    /// Carries out the registry's pending effects that concern `me`'s sessions; the
    /// ring timers this instance must start.
    pub(super) fn carry_out(&mut self, me: InstanceId, config: &ServerConfig) -> Vec<RingTimer> {
        let mut timers = Vec::new();
        for effect in self.registry.take_effects() {
            match effect {
                Effect::Send { to, msg } => {
                    if let Some(s) = self.held(me, to) {
                        s.send(msg);
                    }
                }
                Effect::Relay { to, from, msg } => self.relay(me, to, from, msg),
                Effect::Replaced { old, id } => {
                    if let Some(s) = self.held(me, old) {
                        info!(%id, "newer login replaces the older session");
                        s.send(ServerMessage::Conflict {
                            message: format!("{id} logged in from another place"),
                        });
                        s.close(None);
                    }
                }
                Effect::LoggedIn { session, id } => self.logged_in(me, session, &id, config),
                Effect::RingTimer {
                    origin,
                    call_id,
                    instance,
                } => {
                    if origin.instance == me {
                        timers.push((call_id, instance));
                    }
                }
            }
        }
        timers
    }

    /// The handle of `key` if this instance holds it.
    fn held(&self, me: InstanceId, key: SessionKey) -> Option<&SessionHandle> {
        (key.instance == me)
            .then(|| self.local.get(&key.conn))
            .flatten()
    }

    fn relay(&self, me: InstanceId, to: SessionKey, from: SessionKey, msg: ServerMessage) {
        let Some(target) = self.held(me, to) else {
            return;
        };
        let call_id = msg.call_id().cloned();
        if !target.send(msg)
            && let Some(sender) = self.held(me, from)
        {
            sender.send(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                message: "the other party is not keeping up; message dropped".into(),
                call_id,
            });
        }
    }

    fn logged_in(
        &mut self,
        me: InstanceId,
        session: SessionKey,
        id: &UserId,
        config: &ServerConfig,
    ) {
        if session.instance != me {
            return;
        }
        let Some(s) = self.local.get_mut(&session.conn) else {
            return;
        };
        s.logged_in = true;
        let s = s.clone();
        let presence = s.presence.then(|| self.registry.presence_snapshot(id));
        s.send(ServerMessage::LoginOk {
            id: id.clone(),
            version: PROTOCOL_VERSION,
            heartbeat_secs: config.heartbeat.as_secs().max(1),
            ice_servers: config.ice.for_user(id, SystemTime::now()),
            presence,
        });
    }
}
