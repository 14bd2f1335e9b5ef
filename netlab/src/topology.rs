//! The topologies the tests and benchmarks use, built on [`Lab`].
//!
//! - [`MediaLab`] (issue 9): namespaces `a` and `b` with an impaired TUN link for media
//!   and a clean veth for signaling (TCP only).
//! - [`NatLab`] (issue 10): a "public" namespace (servers: `serve`, coturn) and two
//!   homes, each behind its own NAT router namespace (nftables masquerade).
//!
//! Addresses are private (10.77/16, 10.78/16, 172.16/12, 192.168/16) and exist only on
//! interfaces inside these namespaces.

use std::net::Ipv4Addr;

use anyhow::Context;

use crate::counters::CounterSnapshot;
use crate::impair::Impairment;
use crate::lab::{Ipv4Cidr, Lab, Namespace, run_bounded};

/// Two namespaces joined by an impaired link (media, `tun0`) and a clean veth
/// (signaling, `sig0`, which drops UDP so that ICE can only use the impaired link).
#[derive(Debug)]
pub struct MediaLab {
    /// The lab; dropping it removes everything.
    pub lab: Lab,
    /// One end (the caller's side; `serve` may run here on [`MediaLab::A_SIGNAL`]).
    pub a: Namespace,
    /// The other end.
    pub b: Namespace,
    link: usize,
}

impl MediaLab {
    /// `a`'s address on the impaired link (`tun0`, 10.77.0.1/24).
    pub const A_MEDIA: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    /// `b`'s address on the impaired link (`tun0`, 10.77.0.2/24).
    pub const B_MEDIA: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    /// `a`'s address on the clean link (`sig0`, 10.78.0.1/24).
    pub const A_SIGNAL: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
    /// `b`'s address on the clean link (`sig0`, 10.78.0.2/24).
    pub const B_SIGNAL: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);

    /// Builds the lab; the impaired link's clock (cut windows) starts now.
    ///
    /// # Errors
    /// Labs cannot be made here ([`Lab::available`]) or a step fails.
    pub fn new(impairment: Impairment, seed: u64) -> anyhow::Result<Self> {
        let mut lab = Lab::new()?;
        let a = lab.namespace("a")?;
        let b = lab.namespace("b")?;
        lab.veth(
            (&a, "sig0", Ipv4Cidr::new(Self::A_SIGNAL, 24)),
            (&b, "sig0", Ipv4Cidr::new(Self::B_SIGNAL, 24)),
        )?;
        // Signaling is TCP: with UDP off the veth, ICE can only find the impaired link,
        // whatever addresses a peer gathers on (a browser cannot be told `--bind`).
        for ns in [&a, &b] {
            nft(ns, SIGNALING_TCP_ONLY)?;
        }
        let link = lab.impaired_link(
            (&a, Ipv4Cidr::new(Self::A_MEDIA, 24)),
            (&b, Ipv4Cidr::new(Self::B_MEDIA, 24)),
            impairment,
            seed,
        )?;
        Ok(Self { lab, a, b, link })
    }

    /// Counters of the impaired link from `a` to `b`.
    pub fn a_to_b(&self) -> CounterSnapshot {
        self.lab.link(self.link).a_to_b()
    }

    /// Cuts the impaired link both ways from now for `length`.
    pub fn cut_for(&self, length: std::time::Duration) {
        self.lab.link(self.link).cut_for(length);
    }

    /// Counters of the impaired link from `b` to `a`.
    pub fn b_to_a(&self) -> CounterSnapshot {
        self.lab.link(self.link).b_to_a()
    }
}

/// How a NAT router maps a home's UDP flows to its public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatMapping {
    /// One public port per home socket whatever the destination (RFC 4787
    /// endpoint-independent mapping; masquerade keeps the source port when free), so
    /// srflx candidates work between two such NATs.
    #[default]
    EndpointIndependent,
    /// A fresh random public port per destination (masquerade `fully-random`, a
    /// "symmetric" NAT): srflx candidates do not work, only a relay does.
    EndpointDependent,
}

/// How a [`NatLab`] is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatOptions {
    /// Both routers' mapping behaviour.
    pub mapping: NatMapping,
    /// Drop UDP between the two NATs' public addresses in the public namespace, so the
    /// only UDP path between the homes is through a relay in the public namespace.
    pub block_direct_udp: bool,
}

/// A public namespace, two NAT routers and two homes:
///
/// ```text
/// home1 192.168.1.2 ─ 192.168.1.1 nat1 172.16.1.2 ─ 172.16.1.1 ┐
///                                                              public (server 172.16.0.1 on lo)
/// home2 192.168.2.2 ─ 192.168.2.1 nat2 172.16.2.2 ─ 172.16.2.1 ┘
/// ```
#[derive(Debug)]
pub struct NatLab {
    /// The lab; dropping it removes everything.
    pub lab: Lab,
    /// Where servers run; routes between the two NATs.
    pub public: Namespace,
    /// The first home's NAT router.
    pub nat1: Namespace,
    /// The second home's NAT router.
    pub nat2: Namespace,
    /// The first home (a client).
    pub home1: Namespace,
    /// The second home (a client).
    pub home2: Namespace,
}

impl NatLab {
    /// The servers' address: on the public namespace's `lo`, reachable from both NATs.
    pub const SERVER: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
    /// home1's address (behind nat1).
    pub const HOME1: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
    /// home2's address (behind nat2).
    pub const HOME2: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 2);
    /// nat1's public address (what the server sees home1 as).
    pub const NAT1_PUBLIC: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
    /// nat2's public address.
    pub const NAT2_PUBLIC: Ipv4Addr = Ipv4Addr::new(172, 16, 2, 2);

    /// Builds the topology.
    ///
    /// # Errors
    /// Labs cannot be made here, `nft` is missing, or a step fails.
    pub fn new(options: NatOptions) -> anyhow::Result<Self> {
        let mut lab = Lab::new()?;
        let public = lab.namespace("pub")?;
        let nat1 = lab.namespace("nat1")?;
        let nat2 = lab.namespace("nat2")?;
        let home1 = lab.namespace("home1")?;
        let home2 = lab.namespace("home2")?;
        let cidr = |a, b, c, d, p| Ipv4Cidr::new(Ipv4Addr::new(a, b, c, d), p);
        public.run(
            "ip",
            &["addr", "add", &format!("{}/32", Self::SERVER), "dev", "lo"],
        )?;
        for (i, nat, home) in [(1u8, &nat1, &home1), (2, &nat2, &home2)] {
            lab.veth(
                (&public, &format!("wan{i}"), cidr(172, 16, i, 1, 24)),
                (nat, "wan", cidr(172, 16, i, 2, 24)),
            )?;
            lab.veth(
                (nat, "lan", cidr(192, 168, i, 1, 24)),
                (home, "eth0", cidr(192, 168, i, 2, 24)),
            )?;
            nat.run(
                "ip",
                &["route", "add", "default", "via", &format!("172.16.{i}.1")],
            )?;
            home.run(
                "ip",
                &["route", "add", "default", "via", &format!("192.168.{i}.1")],
            )?;
            forwarding_on(nat)?;
            nft(nat, &router_rules(options.mapping))?;
        }
        forwarding_on(&public)?;
        default_route_to_nowhere(&mut lab, &public)?;
        if options.block_direct_udp {
            nft(&public, BLOCK_DIRECT_UDP)?;
        }
        Ok(Self {
            lab,
            public,
            nat1,
            nat2,
            home1,
            home2,
        })
    }
}

/// A default route out of `ns` into a link where every packet is silently dropped, as
/// the rest of the internet looks from a server that sends to an unreachable private
/// address: the send succeeds and nothing comes back.
///
/// Without it a send to an address with no route fails at once with `ENETUNREACH`,
/// and coturn 4.6.1 closes the whole allocation on a failed send from its relay socket
/// (`send_data_from_ioa_socket_nbh` sets `tobeclosed`): the first ICE check to the
/// other home's host candidate then ended every relayed call in this lab.
fn default_route_to_nowhere(lab: &mut Lab, ns: &Namespace) -> anyhow::Result<()> {
    let gateway = Ipv4Addr::new(10, 255, 255, 1);
    let nowhere = lab.namespace("nowhere")?;
    lab.veth(
        (
            ns,
            "inet",
            Ipv4Cidr::new(Ipv4Addr::new(10, 255, 255, 2), 30),
        ),
        (&nowhere, "void", Ipv4Cidr::new(gateway, 30)),
    )?;
    ns.run(
        "ip",
        &["route", "add", "default", "via", &gateway.to_string()],
    )?;
    // `nowhere` does not forward (the default): everything routed to it is dropped.
    Ok(())
}

/// nftables rules of a home router: masquerade everything leaving `wan`, and drop
/// what arrives on `wan` unsolicited (as home routers do). The drop also matters for
/// hole punching: an unsolicited packet to the router would otherwise leave a conntrack
/// entry whose tuple makes masquerade pick another port for the home's own packets to
/// that peer, breaking the endpoint-independent mapping.
fn router_rules(mapping: NatMapping) -> String {
    let flags = match mapping {
        NatMapping::EndpointIndependent => "",
        NatMapping::EndpointDependent => " fully-random",
    };
    format!(
        "table ip netlab {{
 chain postrouting {{
  type nat hook postrouting priority srcnat; policy accept;
  oifname \"wan\" masquerade{flags}
 }}
 chain input {{
  type filter hook input priority filter; policy accept;
  iifname \"wan\" ct state new drop
 }}
 chain forward {{
  type filter hook forward priority filter; policy accept;
  iifname \"wan\" ct state new drop
 }}
}}
"
    )
}

/// nftables rules of a media lab end: no UDP on the signaling veth.
const SIGNALING_TCP_ONLY: &str = "table inet netlab {
 chain output {
  type filter hook output priority filter; policy accept;
  oifname \"sig0\" meta l4proto udp drop
 }
}
";

/// nftables rules for the public namespace: no UDP between the two NATs.
const BLOCK_DIRECT_UDP: &str = "table ip netlab {
 chain forward {
  type filter hook forward priority filter; policy accept;
  ip saddr 172.16.1.0/24 ip daddr 172.16.2.0/24 meta l4proto udp drop
  ip saddr 172.16.2.0/24 ip daddr 172.16.1.0/24 meta l4proto udp drop
 }
}
";

fn forwarding_on(ns: &Namespace) -> anyhow::Result<()> {
    ns.run("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])
        .map(drop)
}

/// Loads `rules` with `nft -f -` inside `ns`.
fn nft(ns: &Namespace, rules: &str) -> anyhow::Result<()> {
    let mut cmd = ns.command("nft");
    cmd.args(["-f", "-"]);
    run_bounded(cmd, Some(rules))
        .map(drop)
        .with_context(|| format!("loading nftables rules in {}", ns.name()))
}
