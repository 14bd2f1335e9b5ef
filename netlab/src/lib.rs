//! rtc-netlab: the one network lab of rtc-cli's tests and benchmarks.
//!
//! Layout:
//! - [`impair`]: the impairment model (loss, delay, jitter, bottleneck queue, cut) and
//!   the named profiles of issue 9; pure, tested without a network.
//! - [`counters`]: per-direction packet counters of an impaired link.
//! - [`tun`]: TUN devices through `/dev/net/tun`.
//! - [`forward`]: the forwarder moving packets between two TUN devices through the model.
//! - [`lab`]: named network namespaces, veths and impaired links, removed on drop.
//! - [`topology`]: the two-namespace media lab and the NAT topology.
//!
//! This kernel has no `sch_netem` (FIELD-NOTES), hence impairment in user space: two TUN
//! devices opened here, one moved into each namespace, and a thread per direction.
//! Everything needs root (`ip netns`, `/dev/net/tun`) and `nft`; [`Lab::available`] says
//! why not.

#![warn(missing_docs)]

pub mod counters;
pub mod forward;
pub mod impair;
pub mod lab;
pub mod topology;
pub mod tun;

pub use counters::CounterSnapshot;
pub use impair::{Impairment, Profile};
pub use lab::{Ipv4Cidr, Lab, Namespace};
pub use topology::{MediaLab, NatLab, NatMapping, NatOptions};
