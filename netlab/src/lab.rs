//! A lab: network namespaces made with `ip netns add`, the links between them, and
//! everything removed on drop (processes inside killed, namespaces deleted, TUN devices
//! closed). Names carry the creating process's pid (`rtcl<pid>x<n>-<short>`), so a later
//! lab can sweep what a crashed run left behind.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::forward::Forwarder;
use crate::impair::Impairment;
use crate::tun::Tun;

/// Every lab namespace name starts with this.
pub const PREFIX: &str = "rtcl";

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// The bound on any one `ip`/`nft`/`sysctl` run.
const TOOL_WAIT: Duration = Duration::from_secs(10);

/// An IPv4 address with its prefix length, as `ip addr add` takes it (`10.77.0.1/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix`.
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Self { addr, prefix }
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A named network namespace of a lab (cheap to clone; the lab owns its lifetime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Its name for `ip netns` (`rtcl1234x0-a`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <ns> <program>`: a command that runs inside the namespace (the
    /// environment is passed on; `ip` execs the program, so its pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a thread that has entered this namespace (setns(2)), so sockets it
    /// opens live there; its result. For in-process checks of a lab without a helper
    /// program.
    ///
    /// # Errors
    /// The namespace cannot be opened or entered (the thread then never runs `f`).
    ///
    /// # Panics
    /// When `f` panics.
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let path = Path::new(NETNS_DIR).join(&self.name);
        let file =
            fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns(2) on an open namespace file; it changes only this
                    // thread's network namespace.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(std::io::Error::last_os_error())
                            .with_context(|| format!("cannot enter {}", self.name));
                    }
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `program args…` inside the namespace to its end, bounded in time.
    ///
    /// # Errors
    /// It cannot start, exits non-zero (the error holds its stderr) or takes longer than
    /// 10 s.
    pub fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.command(program);
        cmd.args(args);
        run_bounded(cmd, None)
    }
}

/// A lab's namespaces and links; everything goes on drop.
#[derive(Debug)]
pub struct Lab {
    /// `rtcl<pid>x<n>`: this lab's name prefix.
    prefix: String,
    /// Created namespaces, in creation order.
    namespaces: Vec<Namespace>,
    /// Impaired links' forwarders (stopped, and their TUN devices closed, on drop).
    forwarders: Vec<Forwarder>,
}

/// Numbers labs within one process.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// A new, empty lab; first sweeps namespaces left by dead processes.
    ///
    /// # Errors
    /// This machine cannot make labs: see [`Lab::available`].
    pub fn new() -> anyhow::Result<Self> {
        Self::available().map_err(anyhow::Error::msg)?;
        sweep_stale();
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            prefix: format!("{PREFIX}{}x{n}", std::process::id()),
            namespaces: Vec::new(),
            forwarders: Vec::new(),
        })
    }

    /// Whether labs can be made here (root, `ip netns`, `/dev/net/tun`, `nft`); the
    /// reason when not, for a test to print as it skips.
    pub fn available() -> Result<(), String> {
        static NEXT_PROBE: AtomicU32 = AtomicU32::new(0);
        let n = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
        let probe = format!("{PREFIX}{}probe{n}", std::process::id());
        let made = run_bounded(ip_cmd(&["netns", "add", &probe]), None)
            .map_err(|e| format!("cannot create a network namespace: {e:#}"))?;
        drop(made);
        let _ = run_bounded(ip_cmd(&["netns", "del", &probe]), None);
        Tun::create().map(drop).map_err(|e| format!("{e:#}"))?;
        let mut nft = Command::new("nft");
        nft.arg("--version");
        run_bounded(nft, None)
            .map(drop)
            .map_err(|e| format!("nft (nftables) is needed: {e:#}"))
    }

    /// A new namespace `<prefix>-<short>` with `lo` up.
    ///
    /// # Errors
    /// `ip netns add` fails.
    pub fn namespace(&mut self, short: &str) -> anyhow::Result<Namespace> {
        let ns = Namespace {
            name: format!("{}-{short}", self.prefix),
        };
        ip(&["netns", "add", &ns.name])?;
        self.namespaces.push(ns.clone());
        ns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair between `a` and `b`: `a_if` in `a` with `a_addr`, `b_if` in `b` with
    /// `b_addr`, both up.
    ///
    /// # Errors
    /// An `ip` command fails (e.g. a name already used in that namespace).
    pub fn veth(
        &mut self,
        (a, a_if, a_addr): (&Namespace, &str, Ipv4Cidr),
        (b, b_if, b_addr): (&Namespace, &str, Ipv4Cidr),
    ) -> anyhow::Result<()> {
        a.run(
            "ip",
            &[
                "link",
                "add",
                a_if,
                "type",
                "veth",
                "peer",
                "name",
                b_if,
                "netns",
                b.name(),
            ],
        )?;
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            ns.run("ip", &["addr", "add", &addr.to_string(), "dev", ifname])?;
            ns.run("ip", &["link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// An impaired link: a TUN device `tun0` in `a` with `a_addr` and one in `b` with
    /// `b_addr` (on a shared subnet; IPv4 only), and a forwarder between them applying `impairment`
    /// per direction, drawn from `seed`. The returned index names it for
    /// [`Lab::link`].
    ///
    /// # Errors
    /// A TUN device cannot be made or moved, or an `ip` command fails.
    pub fn impaired_link(
        &mut self,
        (a, a_addr): (&Namespace, Ipv4Cidr),
        (b, b_addr): (&Namespace, Ipv4Cidr),
        impairment: Impairment,
        seed: u64,
    ) -> anyhow::Result<usize> {
        let ta = Tun::create()?;
        let tb = Tun::create()?;
        for (tun, ns, addr) in [(&ta, a, a_addr), (&tb, b, b_addr)] {
            ip(&["link", "set", tun.name(), "netns", ns.name()])?;
            ns.run("ip", &["link", "set", tun.name(), "name", "tun0"])?;
            // IPv4 only: no IPv6 router solicitations in the link's counters.
            ns.run("sysctl", &["-q", "-w", "net.ipv6.conf.tun0.disable_ipv6=1"])?;
            ns.run("ip", &["addr", "add", &addr.to_string(), "dev", "tun0"])?;
            ns.run("ip", &["link", "set", "tun0", "up"])?;
        }
        self.forwarders
            .push(Forwarder::start(ta, tb, impairment, seed)?);
        Ok(self.forwarders.len() - 1)
    }

    /// The forwarder of impaired link `index` (as [`Lab::impaired_link`] returned it).
    ///
    /// # Panics
    /// No such link.
    pub fn link(&self, index: usize) -> &Forwarder {
        &self.forwarders[index]
    }

    /// The namespaces made so far.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first, so none holds a device; then the forwarders (closing the TUN
        // devices removes them); then the namespaces (their veths go with them).
        for ns in self.namespaces.iter().rev() {
            kill_inside(ns.name());
        }
        self.forwarders.clear();
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns.name()]);
        }
    }
}

/// Kills every process inside namespace `name` (SIGKILL) and waits up to 2 s for them.
fn kill_inside(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids: Vec<libc::pid_t> = run_bounded(ip_cmd(&["netns", "pids", name]), None)
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid listed in a namespace this lab created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `rtcl<pid>…` namespaces whose creating process is gone (a crashed or killed
/// run), killing what still runs inside them. Namespaces of live processes are kept.
pub fn sweep_stale() -> Vec<String> {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_inside(&name);
        if ip(&["netns", "del", &name]).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The pid in a lab namespace name (`rtcl1234x0-a` → 1234).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn ip_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    cmd
}

/// Runs `ip args…` in the lab process's namespace.
pub(crate) fn ip(args: &[&str]) -> anyhow::Result<Output> {
    run_bounded(ip_cmd(args), None)
}

/// Runs `cmd` (with `stdin` written to it, if given) to its end within 10 s.
///
/// # Errors
/// It cannot start, exits non-zero (the error holds its stderr) or overruns.
pub(crate) fn run_bounded(mut cmd: Command, stdin: Option<&str>) -> anyhow::Result<Output> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("writing to {what}"))?;
    }
    let deadline = Instant::now() + TOOL_WAIT;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {TOOL_WAIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_carry_the_owner_pid() {
        assert_eq!(owner_pid("rtcl1234x0-a"), Some(1234));
        assert_eq!(owner_pid("rtcl77probe"), Some(77));
        assert_eq!(owner_pid("rtclx-a"), None);
        assert_eq!(owner_pid("other"), None);
    }
}
