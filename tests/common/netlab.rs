//! `rtc-cli` processes in the network lab (crate `rtc-netlab`). In the media lab: `serve`
//! and the caller in namespace `a`, the listener in `b`, media bound to the impaired
//! `tun0` link (`--bind`), signaling on the clean `sig0` veth. In the NAT lab: servers
//! in the public namespace, clients in the homes.

use rtc_netlab::{Impairment, Lab, MediaLab, NatLab, NatOptions};

use super::process::{Home, Proc, call_args, listen_args};

/// The media lab with `impairment` (drawn from `seed`), or `None` after printing why
/// this machine cannot make one (not root, no `ip netns`, no `/dev/net/tun`): the
/// caller then skips. A lab that fails to build where labs can be made is a failure.
pub fn media_lab(impairment: Impairment, seed: u64) -> Option<MediaLab> {
    if let Err(why) = Lab::available() {
        eprintln!("skipped: no network lab on this machine: {why}");
        return None;
    }
    Some(MediaLab::new(impairment, seed).expect("building the media lab"))
}

/// The NAT lab built with `options`, or `None` after printing why this machine cannot
/// make one (as [`media_lab`]).
pub fn nat_lab(options: NatOptions) -> Option<NatLab> {
    if let Err(why) = Lab::available() {
        eprintln!("skipped: no network lab on this machine: {why}");
        return None;
    }
    Some(NatLab::new(options).expect("building the NAT lab"))
}

/// `serve` running in the lab's namespace `a`, and the lab. Dropping it stops the
/// server, then removes the lab (which kills whatever else still runs inside).
pub struct LabCall {
    /// The server, on `a`'s signaling address.
    serve: Proc,
    /// Its ws:// URL, reachable from both namespaces.
    pub url: String,
    /// The lab (last field: dropped after the processes).
    pub lab: MediaLab,
}

impl LabCall {
    /// Starts `serve` in `a` on the signaling veth, in `home`.
    pub fn start(lab: MediaLab, home: &Home) -> Self {
        let listen = format!("{}:0", MediaLab::A_SIGNAL);
        let (serve, url) = home.serve_via(&in_namespace(lab.a.name()), &listen, &[]);
        Self { serve, url, lab }
    }

    /// A headless `listen <extra…>` as `id` in `b`, media on `b`'s end of the impaired
    /// link; returned once logged in.
    pub fn listener_in_b(&self, home: &Home, id: &str, extra: &[&str]) -> Proc {
        let bind = MediaLab::B_MEDIA.to_string();
        let mut args = listen_args(&self.url, id, extra);
        args.extend(["--bind", &bind]);
        let p = home.spawn_via(&in_namespace(self.lab.b.name()), id, &args);
        p.event(&[("event", "logged_in"), ("id", id)]);
        p
    }

    /// A headless `call <peer> <extra…>` as `id` in `a`, media on `a`'s end of the
    /// impaired link; just started.
    pub fn caller_in_a(&self, home: &Home, id: &str, peer: &str, extra: &[&str]) -> Proc {
        let bind = MediaLab::A_MEDIA.to_string();
        let mut args = call_args(&self.url, id, peer, extra);
        args.extend(["--bind", &bind]);
        home.spawn_via(&in_namespace(self.lab.a.name()), id, &args)
    }

    /// The server's pid (it runs as long as this value).
    pub fn serve_pid(&self) -> u32 {
        self.serve.pid()
    }
}

/// `ip netns exec <ns>`, the wrapper that runs a process inside namespace `ns` (for
/// [`Home::spawn_via`] and friends).
pub fn in_namespace(ns: &str) -> [&str; 4] {
    ["ip", "netns", "exec", ns]
}
