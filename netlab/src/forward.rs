//! The forwarder: moves IP packets between two TUN devices, one thread per direction,
//! each applying its own [`LinkModel`]; delayed packets wait in a heap ordered by
//! delivery time, so independent delays reorder them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::counters::{CounterSnapshot, Counters};
use crate::impair::{DropReason, Impairment, LinkModel, Verdict};
use crate::tun::Tun;

/// The longest one poll(2) waits, so a stop request is seen within this time.
const POLL_CAP: Duration = Duration::from_millis(20);

/// Packets read in one go before delivering what is due.
const READ_BATCH: usize = 64;

/// Bigger than any IP packet a TUN device with the default MTU passes.
const PACKET_MAX: usize = 65_536;

/// A running forwarder between device `a` and device `b`; stops (and closes both
/// devices, which removes them) on drop.
#[derive(Debug)]
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    /// Until when (µs since start) a cut ordered at run time ([`Forwarder::cut_for`])
    /// drops everything; 0 = none.
    cut_until_us: Arc<AtomicU64>,
    /// Time zero of both directions' models.
    start: Instant,
    threads: Vec<JoinHandle<()>>,
    a_to_b: Arc<Counters>,
    b_to_a: Arc<Counters>,
}

impl Forwarder {
    /// Starts forwarding: packets read from `a` go to `b` through `impairment` drawn from
    /// `seed`, and back from `b` to `a` through the same impairment with its own draws
    /// (`seed + 1`). Cut windows count from this call.
    ///
    /// # Errors
    /// A thread cannot be spawned.
    pub fn start(a: Tun, b: Tun, impairment: Impairment, seed: u64) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let cut_until_us = Arc::new(AtomicU64::new(0));
        let (a, b) = (Arc::new(a), Arc::new(b));
        let start = Instant::now();
        let spawn = |from: &Arc<Tun>, to: &Arc<Tun>, seed: u64| {
            let counters = Arc::new(Counters::default());
            let dir = Direction {
                from: Arc::clone(from),
                to: Arc::clone(to),
                model: LinkModel::new(impairment, seed),
                counters: Arc::clone(&counters),
                start,
                stop: Arc::clone(&stop),
                cut_until_us: Arc::clone(&cut_until_us),
            };
            let name = format!("netlab-{}", from.name());
            thread::Builder::new()
                .name(name)
                .spawn(move || dir.run())
                .map(|t| (t, counters))
        };
        let (t1, a_to_b) = spawn(&a, &b, seed)?;
        let (t2, b_to_a) = spawn(&b, &a, seed.wrapping_add(1))?;
        Ok(Self {
            stop,
            cut_until_us,
            start,
            threads: vec![t1, t2],
            a_to_b,
            b_to_a,
        })
    }

    /// Cuts both directions from now for `length` (on top of the model's own cut), for
    /// tests that cut at a moment they choose (e.g. once a call is connected).
    pub fn cut_for(&self, length: Duration) {
        let until = (self.start.elapsed() + length).as_micros() as u64;
        self.cut_until_us.store(until, Ordering::Relaxed);
    }

    /// Counters of the direction from `a` to `b`.
    pub fn a_to_b(&self) -> CounterSnapshot {
        self.a_to_b.snapshot()
    }

    /// Counters of the direction from `b` to `a`.
    pub fn b_to_a(&self) -> CounterSnapshot {
        self.b_to_a.snapshot()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One direction's loop state.
struct Direction {
    from: Arc<Tun>,
    to: Arc<Tun>,
    model: LinkModel,
    counters: Arc<Counters>,
    /// Time zero of the model (cut windows count from it).
    start: Instant,
    stop: Arc<AtomicBool>,
    /// See [`Forwarder::cut_for`].
    cut_until_us: Arc<AtomicU64>,
}

/// A packet waiting for its delivery time; `seq` keeps equal times in arrival order.
type Pending = Reverse<(Duration, u64, Vec<u8>)>;

impl Direction {
    fn run(mut self) {
        let mut pending: BinaryHeap<Pending> = BinaryHeap::new();
        let mut buf = vec![0u8; PACKET_MAX];
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.start.elapsed();
            let wait = pending.peek().map_or(POLL_CAP, |Reverse((at, _, _))| {
                at.saturating_sub(now).min(POLL_CAP)
            });
            if readable(self.from.fd(), wait) {
                for _ in 0..READ_BATCH {
                    let n = match self.from.recv(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    self.counters.read(n);
                    let at = self.start.elapsed();
                    let verdict =
                        if (at.as_micros() as u64) < self.cut_until_us.load(Ordering::Relaxed) {
                            Verdict::Drop(DropReason::Cut)
                        } else {
                            self.model.decide_packet(at, &buf[..n])
                        };
                    match verdict {
                        Verdict::Deliver(at) => {
                            pending.push(Reverse((at, seq, buf[..n].to_vec())));
                            seq += 1;
                        }
                        Verdict::Drop(why) => self.counters.dropped(why),
                    }
                    if !readable(self.from.fd(), Duration::ZERO) {
                        break;
                    }
                }
            }
            self.deliver_due(&mut pending);
        }
    }

    /// Writes every pending packet whose time has come.
    fn deliver_due(&self, pending: &mut BinaryHeap<Pending>) {
        let now = self.start.elapsed();
        while pending.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            let Some(Reverse((_, _, packet))) = pending.pop() else {
                break;
            };
            // A write fails only when the receiving device is down: the packet is lost,
            // as on a real link.
            if self.to.send(&packet).is_ok() {
                self.counters.wrote(packet.len());
            }
        }
    }
}

/// Whether `fd` has a packet within `wait`.
fn readable(fd: libc::c_int, wait: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the call's length.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    rc > 0 && pfd.revents & libc::POLLIN != 0
}
