//! Connection limits: caps on connections per source address and in total, the set of
//! not-yet-logged-in connections that can be shed (oldest first) to make room, and the
//! process's open-file limit.
//!
//! Every admitted connection holds a [`Permit`]; while it has not logged in, the permit
//! sits in [`Pending`], so shedding a pending connection frees its slot at once, before
//! its task has even woken up to close the socket.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

/// Caps on concurrent connections (`serve --max-connections`,
/// `--max-connections-per-address`). Counted from TCP accept to close, logged in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// All connections at once.
    pub total: usize,
    /// Connections from one source IP address at once.
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            total: 20_000,
            per_address: 64,
        }
    }
}

/// Why a connection was refused; the text is the body of the HTTP 503 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source address already holds `limit` connections.
    TooManyFromAddress {
        /// The per-address cap.
        limit: usize,
    },
    /// The server holds `limit` connections, all logged in.
    ServerFull {
        /// The total cap.
        limit: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyFromAddress { limit } => write!(
                f,
                "too-many-connections: at most {limit} connections from one address"
            ),
            Self::ServerFull { limit } => {
                write!(f, "server-full: at most {limit} connections")
            }
        }
    }
}

/// Counts of connections in total and per source address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Admits connections under [`ConnectionLimits`].
#[derive(Debug)]
pub(super) struct Admission {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

impl Admission {
    pub(super) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit for one more connection from `ip`.
    ///
    /// # Errors
    /// The address or the server is at its cap.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut counts = self.counts();
        let from_ip = counts.per_address.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.per_address {
            return Err(Refusal::TooManyFromAddress {
                limit: self.limits.per_address,
            });
        }
        if counts.total >= self.limits.total {
            return Err(Refusal::ServerFull {
                limit: self.limits.total,
            });
        }
        counts.total += 1;
        *counts.per_address.entry(ip).or_insert(0) += 1;
        Ok(Permit {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// Connections held now.
    pub(super) fn total(&self) -> usize {
        self.counts().total
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&ip);
            }
        }
    }
}

/// One admitted connection's slot; released on drop.
#[derive(Debug)]
pub(super) struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.ip);
    }
}

/// A pending connection: how to stop it, and its slot.
#[derive(Debug)]
struct PendingEntry {
    shed: CancellationToken,
    permit: Permit,
}

/// Connections that have not logged in yet, oldest first (by connection number).
#[derive(Debug, Default)]
pub(super) struct Pending {
    entries: Mutex<BTreeMap<u64, PendingEntry>>,
}

impl Pending {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<u64, PendingEntry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers connection `conn` (numbers grow with accept order) with its permit.
    pub(super) fn insert(self: &Arc<Self>, conn: u64, permit: Permit) -> PendingGuard {
        let shed = CancellationToken::new();
        self.entries().insert(
            conn,
            PendingEntry {
                shed: shed.clone(),
                permit,
            },
        );
        PendingGuard {
            pending: Arc::clone(self),
            conn,
            shed,
        }
    }

    /// Stops up to `n` of the oldest pending connections and frees their slots now;
    /// how many were shed.
    pub(super) fn shed_oldest(&self, n: usize) -> usize {
        let mut entries = self.entries();
        let mut shed = 0;
        while shed < n {
            let Some((_, entry)) = entries.pop_first() else {
                break;
            };
            entry.shed.cancel();
            shed += 1;
        }
        shed
    }

    /// Connections pending now.
    pub(super) fn len(&self) -> usize {
        self.entries().len()
    }
}

/// A pending connection's registration; dropping it forgets the connection (and
/// frees its slot, unless it logged in and took the permit out).
#[derive(Debug)]
pub(super) struct PendingGuard {
    pending: Arc<Pending>,
    conn: u64,
    shed: CancellationToken,
}

impl PendingGuard {
    /// Resolves when the listener sheds this connection.
    pub(super) fn shed_token(&self) -> CancellationToken {
        self.shed.clone()
    }

    /// The connection logged in: it leaves the pending set and keeps its slot. `None`
    /// if it was shed meanwhile.
    pub(super) fn logged_in(&self) -> Option<LoggedInPermit> {
        let entry = self.pending.entries().remove(&self.conn)?;
        Some(LoggedInPermit {
            _permit: entry.permit,
        })
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.pending.entries().remove(&self.conn);
    }
}

/// The slot of a logged-in connection, which is never shed.
#[derive(Debug)]
pub(super) struct LoggedInPermit {
    /// Held for its drop, which frees the slot.
    _permit: Permit,
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit, so the server
/// can hold as many connections as the system lets it; returns the soft limit now.
///
/// # Errors
/// `getrlimit`/`setrlimit` failed (the limit stays as it was).
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn per_address_cap_refuses_that_address_only() {
        let admission = Admission::new(ConnectionLimits {
            total: 10,
            per_address: 2,
        });
        let _a = admission.admit(ip(1)).unwrap();
        let b = admission.admit(ip(1)).unwrap();
        assert_eq!(
            admission.admit(ip(1)).unwrap_err(),
            Refusal::TooManyFromAddress { limit: 2 }
        );
        assert!(admission.admit(ip(2)).is_ok());
        drop(b);
        assert!(admission.admit(ip(1)).is_ok());
    }

    #[test]
    fn total_cap_refuses_until_a_slot_frees() {
        let admission = Admission::new(ConnectionLimits {
            total: 2,
            per_address: 10,
        });
        let a = admission.admit(ip(1)).unwrap();
        let _b = admission.admit(ip(2)).unwrap();
        assert_eq!(
            admission.admit(ip(3)).unwrap_err(),
            Refusal::ServerFull { limit: 2 }
        );
        drop(a);
        assert_eq!(admission.total(), 1);
        assert!(admission.admit(ip(3)).is_ok());
    }

    #[test]
    fn shedding_stops_the_oldest_pending_and_frees_their_slots_but_not_logged_in_ones() {
        let admission = Admission::new(ConnectionLimits {
            total: 3,
            per_address: 10,
        });
        let pending = Arc::new(Pending::default());
        let first = pending.insert(1, admission.admit(ip(1)).unwrap());
        let second = pending.insert(2, admission.admit(ip(1)).unwrap());
        let third = pending.insert(3, admission.admit(ip(1)).unwrap());
        let kept = first.logged_in().expect("not shed yet");
        assert_eq!(pending.shed_oldest(1), 1);
        assert!(second.shed_token().is_cancelled());
        assert!(!third.shed_token().is_cancelled());
        assert_eq!(admission.total(), 2, "the shed slot is free at once");
        assert!(
            second.logged_in().is_none(),
            "a shed connection cannot log in"
        );
        drop(third);
        assert_eq!(pending.len(), 0);
        assert_eq!(admission.total(), 1);
        drop(kept);
        assert_eq!(admission.total(), 0);
    }
}
