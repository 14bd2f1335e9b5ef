//! `rtc-cli` processes in the network lab (crate `rtc-netlab`). In the media lab: `serve`
//! and the caller in namespace `a`, the listener in `b`, media bound to the impaired
//! `tun0` link (`--bind`), signaling on the clean `sig0` veth. In the NAT lab: servers
//! in the public namespace, clients in the homes.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use rtc_netlab::{Impairment, Lab, MediaLab, Namespace, NatLab, NatOptions};

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

/// coturn (`turnserver`, Debian package `coturn`) in a lab namespace on one address,
/// port 3478, UDP only; killed on drop (and by the lab's removal).
pub struct Coturn(Child);

/// The TURN realm of [`Coturn::relay`].
pub const TURN_REALM: &str = "rtc-cli.test";

impl Coturn {
    /// Whether coturn is installed; prints why a test skips when it is not.
    pub fn installed() -> bool {
        let found = Command::new("turnserver").arg("--version").output().is_ok();
        if !found {
            eprintln!("skipped: coturn (turnserver) is not installed");
        }
        found
    }

    /// A STUN-only server on `addr` in `ns`.
    pub fn stun_only(ns: &Namespace, addr: Ipv4Addr) -> Self {
        Self::start(ns, addr, &["--stun-only"])
    }

    /// A STUN and TURN server on `addr` in `ns`, relaying from the same address (ports
    /// 49152-49200), with one long-term credential `user`/`password` in [`TURN_REALM`].
    pub fn relay(ns: &Namespace, addr: Ipv4Addr, user: &str, password: &str) -> Self {
        let credential = format!("{user}:{password}");
        Self::relaying(ns, addr, &["--lt-cred-mech", "--user", &credential])
    }

    /// A STUN and TURN server as [`Coturn::relay`], checking TURN REST API credentials
    /// made with `secret` (coturn's `use-auth-secret`, as `serve --turn-secret-file`).
    pub fn rest(ns: &Namespace, addr: Ipv4Addr, secret: &str) -> Self {
        let secret = format!("--static-auth-secret={secret}");
        Self::relaying(ns, addr, &["--use-auth-secret", &secret])
    }

    fn relaying(ns: &Namespace, addr: Ipv4Addr, auth: &[&str]) -> Self {
        let relay_ip = addr.to_string();
        let mut args = vec![
            "--relay-ip",
            &relay_ip,
            "--min-port",
            "49152",
            "--max-port",
            "49200",
            "--realm",
            TURN_REALM,
        ];
        args.extend_from_slice(auth);
        Self::start(ns, addr, &args)
    }

    fn start(ns: &Namespace, addr: Ipv4Addr, extra: &[&str]) -> Self {
        let listen = addr.to_string();
        let child = ns
            .command("turnserver")
            .args([
                "-n",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--log-file",
                "stdout",
            ])
            .args(["--listening-ip", &listen, "--listening-port", "3478"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting turnserver");
        Self(child)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ip netns exec <ns>`, the wrapper that runs a process inside namespace `ns` (for
/// [`Home::spawn_via`] and friends).
pub fn in_namespace(ns: &str) -> [&str; 4] {
    ["ip", "netns", "exec", ns]
}
