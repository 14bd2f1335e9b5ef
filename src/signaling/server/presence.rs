//! Presence: who is online and whether they are in a call, for clients that subscribe
//! (`login` with `presence: true`) on a server that shares it (`serve --presence all`).
//!
//! Changes are not sent as they happen: the registry marks the ids whose status may
//! have changed, and [`publish`] sends one `presence_changed` with all of them every
//! [`BATCH_INTERVAL`], encoded once for every subscriber. A login storm of N users thus
//! costs (N / batch) messages per subscriber instead of N.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::registry::Registry;
use crate::signaling::protocol::{Presence, PresenceStatus, ServerMessage, UserId};

/// Longest time a presence change waits before it is sent.
pub(super) const BATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Whether `serve` shares presence (`--presence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresenceSharing {
    /// Subscribers learn who is online (the friends-server default).
    #[default]
    All,
    /// Nobody learns who is online; `login_ok` carries no list.
    None,
}

/// Ids whose status may have changed since the last batch. Tracking is off (and the
/// set stays empty) when the server does not share presence.
#[derive(Debug, Default)]
pub(super) struct Changes {
    tracking: bool,
    ids: HashSet<UserId>,
}

impl Changes {
    /// A change set that records changes.
    pub(super) fn tracking() -> Self {
        Self {
            tracking: true,
            ids: HashSet::new(),
        }
    }

    /// Notes that `id`'s status may have changed.
    pub(super) fn touch(&mut self, id: &UserId) {
        if self.tracking {
            self.ids.insert(id.clone());
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn take(&mut self) -> HashSet<UserId> {
        std::mem::take(&mut self.ids)
    }
}

impl Registry {
    /// `id`'s status now: `offline` when not logged in, `busy` in a call or room.
    pub(super) fn status_of(&self, id: &UserId) -> PresenceStatus {
        if !self.sessions.contains_key(id) {
            PresenceStatus::Offline
        } else if self.call_of.contains_key(id) || self.room_of.contains_key(id) {
            PresenceStatus::Busy
        } else {
            PresenceStatus::Available
        }
    }

    /// Everyone online but `me`, sorted by id (for `login_ok`).
    pub(super) fn presence_snapshot(&self, me: &UserId) -> Vec<Presence> {
        let mut list: Vec<Presence> = self
            .sessions
            .keys()
            .filter(|id| *id != me)
            .map(|id| Presence {
                id: id.clone(),
                status: self.status_of(id),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// The statuses changed since the last call, sorted by id; empty when none.
    fn take_presence_changes(&mut self) -> Vec<Presence> {
        let mut list: Vec<Presence> = self
            .presence_changes
            .take()
            .into_iter()
            .map(|id| Presence {
                status: self.status_of(&id),
                id,
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }
}

/// Sends the batched presence changes to every subscriber, every [`BATCH_INTERVAL`],
/// until the task is aborted.
pub(super) async fn publish(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (users, subscribers) = {
            let mut state = shared.state();
            if state.registry.presence_changes.is_empty() {
                continue;
            }
            let subscribers: Vec<_> = state
                .local
                .values()
                .filter(|s| s.presence && s.logged_in)
                .cloned()
                .collect();
            if subscribers.is_empty() {
                // Nobody to tell: drop the changes without building the list.
                state.registry.presence_changes.take();
                continue;
            }
            (state.registry.take_presence_changes(), subscribers)
        };
        let text: Arc<str> = ServerMessage::PresenceChanged { users }.encode().into();
        for s in subscribers {
            s.send_shared(Arc::clone(&text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::registry::tests::{key, user};
    use super::*;
    use crate::signaling::protocol::{CallId, RoomId};

    fn statuses(list: &[Presence]) -> Vec<(&str, PresenceStatus)> {
        list.iter().map(|p| (p.id.as_str(), p.status)).collect()
    }

    #[test]
    fn changes_are_batched_and_report_the_status_at_batch_time() {
        let mut reg = Registry::with_presence();
        let (tom, jerry) = (user("tom"), user("jerry"));
        reg.log_in(&tom, key(1), &[]);
        reg.log_in(&jerry, key(2), &[]);
        let call = CallId::parse("c").unwrap();
        reg.add_call(call.clone(), tom.clone(), jerry.clone(), None);
        assert_eq!(
            statuses(&reg.take_presence_changes()),
            [
                ("jerry", PresenceStatus::Busy),
                ("tom", PresenceStatus::Busy)
            ],
            "a login and a call in one batch: only the latest status"
        );
        assert!(reg.take_presence_changes().is_empty());
        reg.remove_call(&call);
        reg.log_out(&jerry, key(2));
        assert_eq!(
            statuses(&reg.take_presence_changes()),
            [
                ("jerry", PresenceStatus::Offline),
                ("tom", PresenceStatus::Available)
            ]
        );
        reg.join_room(&tom, &RoomId::parse("r").unwrap());
        assert_eq!(
            statuses(&reg.presence_snapshot(&jerry)),
            [("tom", PresenceStatus::Busy)]
        );
        assert!(reg.presence_snapshot(&tom).is_empty(), "never oneself");
    }

    #[test]
    fn nothing_is_tracked_when_presence_is_not_shared() {
        let mut reg = Registry::default();
        reg.log_in(&user("tom"), key(1), &[]);
        assert!(reg.take_presence_changes().is_empty());
    }
}
