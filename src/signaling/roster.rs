//! The client's view of who is online: the `login_ok` snapshot with every
//! `presence_changed` applied (docs/protocol.md §13).

use std::collections::BTreeMap;

use super::protocol::{Presence, PresenceStatus, UserId};

/// Online users other than ourselves, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    online: BTreeMap<UserId, PresenceStatus>,
}

impl Roster {
    /// Starts over from a `login_ok` snapshot (every login brings a full one).
    pub fn replace(&mut self, snapshot: &[Presence], me: &UserId) {
        self.online.clear();
        self.apply(snapshot, me);
    }

    /// Applies the statuses of a `presence_changed`: `offline` removes the user. Our
    /// own id is skipped. Whether anything changed.
    pub fn apply(&mut self, users: &[Presence], me: &UserId) -> bool {
        let mut changed = false;
        for p in users.iter().filter(|p| p.id != *me) {
            changed |= match p.status {
                PresenceStatus::Offline => self.online.remove(&p.id).is_some(),
                status => self.online.insert(p.id.clone(), status) != Some(status),
            };
        }
        changed
    }

    /// Everyone online, sorted by id.
    pub fn list(&self) -> Vec<Presence> {
        self.online
            .iter()
            .map(|(id, status)| Presence {
                id: id.clone(),
                status: *status,
            })
            .collect()
    }

    /// Online ids that start with `prefix`, sorted (for completing a dialed id).
    pub fn completions<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a UserId> + 'a {
        self.online
            .keys()
            .filter(move |id| id.as_str().starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, status: PresenceStatus) -> Presence {
        Presence {
            id: UserId::parse(id).unwrap(),
            status,
        }
    }

    #[test]
    fn changes_apply_on_the_snapshot_and_offline_removes() {
        let me = UserId::parse("me").unwrap();
        let mut roster = Roster::default();
        roster.replace(&[p("tom", PresenceStatus::Available)], &me);
        assert!(roster.apply(
            &[
                p("jerry", PresenceStatus::Busy),
                p("me", PresenceStatus::Available)
            ],
            &me
        ));
        assert_eq!(
            roster.list(),
            [
                p("jerry", PresenceStatus::Busy),
                p("tom", PresenceStatus::Available)
            ]
        );
        assert!(!roster.apply(&[p("tom", PresenceStatus::Available)], &me));
        assert!(roster.apply(&[p("tom", PresenceStatus::Offline)], &me));
        assert!(!roster.apply(&[p("spike", PresenceStatus::Offline)], &me));
        assert_eq!(roster.list(), [p("jerry", PresenceStatus::Busy)]);
        let ids: Vec<_> = roster.completions("je").collect();
        assert_eq!(ids.len(), 1);
        roster.replace(&[], &me);
        assert!(roster.list().is_empty());
    }
}
