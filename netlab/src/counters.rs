//! Per-direction packet counters of an impaired link, updated by the forwarder and read
//! at any time by the lab's user.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::impair::DropReason;

/// Live counters of one direction, shared between its forwarder thread and readers.
#[derive(Debug, Default)]
pub struct Counters {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_queue: AtomicU64,
    dropped_cut: AtomicU64,
}

/// A copy of one direction's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// IP packets read from the sending side's TUN device.
    pub packets_in: u64,
    /// Their bytes (IP headers included).
    pub bytes_in: u64,
    /// Packets written to the receiving side's TUN device.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Packets dropped by random loss.
    pub dropped_loss: u64,
    /// Packets dropped because the bottleneck queue was full.
    pub dropped_queue: u64,
    /// Packets dropped during a cut.
    pub dropped_cut: u64,
}

impl Counters {
    pub(crate) fn read(&self, bytes: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, bytes: usize) {
        self.packets_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, why: DropReason) {
        let c = match why {
            DropReason::Loss => &self.dropped_loss,
            DropReason::Queue => &self.dropped_queue,
            DropReason::Cut => &self.dropped_cut,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            packets_in: get(&self.packets_in),
            bytes_in: get(&self.bytes_in),
            packets_out: get(&self.packets_out),
            bytes_out: get(&self.bytes_out),
            dropped_loss: get(&self.dropped_loss),
            dropped_queue: get(&self.dropped_queue),
            dropped_cut: get(&self.dropped_cut),
        }
    }
}

impl CounterSnapshot {
    /// The counters as a JSON object (for the binary's output and bench scripts).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"packets_in\":{},\"bytes_in\":{},\"packets_out\":{},\"bytes_out\":{},\
             \"dropped_loss\":{},\"dropped_queue\":{},\"dropped_cut\":{}}}",
            self.packets_in,
            self.bytes_in,
            self.packets_out,
            self.bytes_out,
            self.dropped_loss,
            self.dropped_queue,
            self.dropped_cut
        )
    }
}

impl fmt::Display for CounterSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in, {} out, dropped {} by loss, {} by queue, {} by cut",
            self.packets_in,
            self.packets_out,
            self.dropped_loss,
            self.dropped_queue,
            self.dropped_cut
        )
    }
}
