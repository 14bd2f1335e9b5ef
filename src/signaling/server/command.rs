//! The commands that change the registry: what a session asks for, what a timer or a
//! vanished instance means. A single server applies each as it comes; servers sharing
//! a Redis append them to one stream and every instance applies the stream in order
//! (see `cluster.rs`), so each command is encoded as JSON.

use serde::{Deserialize, Serialize};
use tracing::info;

use super::registry::{CallInstance, Departure, InstanceId, Registry, SessionKey};
use crate::signaling::protocol::{CallId, ClientMessage, ServerMessage, UserId};

/// One change to the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Command {
    /// `id` logged in on `session` (credentials already checked by its instance),
    /// carrying over the accepted calls named in `resume` from a session it replaces.
    LogIn {
        id: UserId,
        session: SessionKey,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resume: Vec<CallId>,
    },
    /// `id`'s `session` closed (or went silent).
    LogOut { id: UserId, session: SessionKey },
    /// A message from `id`'s logged-in `session` (never `login`).
    Message {
        id: UserId,
        session: SessionKey,
        msg: ClientMessage,
    },
    /// The ring timer of call `instance` fired.
    RingTimeout {
        call_id: CallId,
        instance: CallInstance,
    },
    /// `instance` stopped heartbeating: its sessions are gone.
    InstanceGone { instance: InstanceId },
}

impl Registry {
    /// Applies `cmd`; its effects wait in [`Registry::take_effects`].
    pub(super) fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::LogIn {
                id,
                session,
                resume,
            } => self.log_in(&id, session, &resume),
            Command::LogOut { id, session } => {
                if self.log_out(&id, session) {
                    info!(%id, "offline");
                }
            }
            Command::Message { id, session, msg } => {
                // A replaced session's last messages must not act for the newer one.
                if self.is_current(&id, session) {
                    self.on_message(session, &id, msg);
                }
            }
            Command::RingTimeout { call_id, instance } => self.ring_timeout(&call_id, instance),
            Command::InstanceGone { instance } => {
                let n = self.instance_gone(instance);
                info!(%instance, sessions = n, "instance gone: its sessions logged out");
            }
        }
    }

    fn on_message(&mut self, session: SessionKey, me: &UserId, msg: ClientMessage) {
        let call_id = msg.call_id().cloned();
        let result = match msg {
            ClientMessage::Logout => {
                info!(id = %me, "logout");
                self.leave_call(session, me);
                self.leave_room(me, Departure::Left);
                Ok(())
            }
            ClientMessage::Call { call_id, to, room } => {
                self.on_call(session, me, call_id, to, room)
            }
            ClientMessage::JoinRoom { room } => self.on_join_room(session, me, room),
            ClientMessage::LeaveRoom { room } => self.on_leave_room(me, room),
            other => self.route(session, me, other),
        };
        if let Err((code, message)) = result {
            self.reply(
                session,
                ServerMessage::Error {
                    code,
                    message,
                    call_id,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::registry::Effect;
    use super::super::registry::tests::{key, user};
    use super::*;
    use crate::signaling::protocol::{ErrorCode, ServerEndReason};

    fn message(id: &str, conn: u64, msg: ClientMessage) -> Command {
        Command::Message {
            id: user(id),
            session: key(conn),
            msg,
        }
    }

    fn log_in(reg: &mut Registry, id: &str, conn: u64) {
        reg.apply(Command::LogIn {
            id: user(id),
            session: key(conn),
            resume: vec![],
        });
    }

    /// The messages `conn` gets from the effects.
    fn to(effects: &[Effect], conn: u64) -> Vec<ServerMessage> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg } | Effect::Relay { to, msg, .. } if *to == key(conn) => {
                    Some(msg.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn commands_survive_json_and_replay_to_the_same_state() {
        let c = CallId::parse("c").unwrap();
        let cmds = vec![
            Command::LogIn {
                id: user("tom"),
                session: key(1),
                resume: vec![],
            },
            Command::LogIn {
                id: user("jerry"),
                session: key(2),
                resume: vec![],
            },
            message(
                "tom",
                1,
                ClientMessage::Call {
                    call_id: c.clone(),
                    to: user("jerry"),
                    room: None,
                },
            ),
            message("jerry", 2, ClientMessage::Accept { call_id: c.clone() }),
        ];
        let mut a = Registry::default();
        let mut b = Registry::default();
        for cmd in cmds {
            let json = serde_json::to_string(&cmd).unwrap();
            a.apply(cmd);
            b.apply(serde_json::from_str(&json).unwrap());
        }
        assert_eq!(a.take_effects(), b.take_effects());
        let snapshot: Registry = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(snapshot.calls[&c].phase, a.calls[&c].phase);
        assert_eq!(snapshot.sessions, a.sessions);
    }

    #[test]
    fn glare_and_busy_come_out_as_replies_to_the_sender() {
        let mut reg = Registry::default();
        for (id, conn) in [("tom", 1), ("jerry", 2), ("spike", 3)] {
            log_in(&mut reg, id, conn);
        }
        let (tj, jt, st) = (
            CallId::parse("tj").unwrap(),
            CallId::parse("jt").unwrap(),
            CallId::parse("st").unwrap(),
        );
        reg.take_effects();
        reg.apply(message(
            "tom",
            1,
            ClientMessage::Call {
                call_id: tj.clone(),
                to: user("jerry"),
                room: None,
            },
        ));
        reg.apply(message(
            "jerry",
            2,
            ClientMessage::Call {
                call_id: jt.clone(),
                to: user("tom"),
                room: None,
            },
        ));
        reg.apply(message(
            "spike",
            3,
            ClientMessage::Call {
                call_id: st.clone(),
                to: user("tom"),
                room: None,
            },
        ));
        let effects = reg.take_effects();
        assert_eq!(
            to(&effects, 2),
            [
                ServerMessage::Incoming {
                    call_id: tj.clone(),
                    from: user("tom"),
                    room: None
                },
                ServerMessage::CallEnded {
                    call_id: jt,
                    reason: ServerEndReason::Glare,
                    replaced_by: Some(tj.clone())
                }
            ]
        );
        assert_eq!(
            to(&effects, 3),
            [ServerMessage::Busy {
                call_id: st,
                from: user("tom")
            }]
        );
        reg.apply(message("tom", 1, ClientMessage::Accept { call_id: tj }));
        assert!(matches!(
            &to(&reg.take_effects(), 1)[..],
            [ServerMessage::Error {
                code: ErrorCode::BadState,
                ..
            }]
        ));
    }

    #[test]
    fn a_replaced_sessions_messages_are_ignored() {
        let mut reg = Registry::default();
        log_in(&mut reg, "tom", 1);
        log_in(&mut reg, "jerry", 2);
        log_in(&mut reg, "tom", 3);
        reg.take_effects();
        reg.apply(message(
            "tom",
            1,
            ClientMessage::Call {
                call_id: CallId::parse("c").unwrap(),
                to: user("jerry"),
                room: None,
            },
        ));
        assert!(reg.calls.is_empty());
        assert!(reg.take_effects().is_empty());
    }
}
