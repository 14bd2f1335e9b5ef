//! Private network namespaces (`unshare -n`) for calls that need a network of their
//! own: only `lo`, no multicast interface, and firewall rules no other test sees.

use std::process::{Command, Output};

use super::process::{Home, listen_args, sh_quote};

/// Whether this machine can make a network namespace and run the `sh` line `check`
/// inside it (e.g. `true`, or an `nft` probe); the reason when it cannot.
pub fn available(check: &str) -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-n", "-p", "-f", "sh", "-c", check])
        .output()
        .map_err(|e| format!("unshare is not available: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Runs the `sh` script `body` in a new network namespace: `set -e`, `lo` up, and
/// every background job killed when the script ends. The script is PID 1 of its own PID
/// namespace too, so the kernel ends everything it started when it exits, whatever
/// the trap managed (and the script ends when the test's `unshare` goes).
pub fn run(body: &str) -> Output {
    let script = format!(
        "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\nip link set lo up\n{body}"
    );
    Command::new("unshare")
        .args(["-n", "-p", "-f", "--kill-child", "sh", "-c", &script])
        .output()
        .expect("run unshare")
}

/// Script lines that start `serve` on 127.0.0.1:`port` and then `listener` as an
/// auto-accepting headless listener (the home's media flags included), each in the
/// background with stdout and stderr in `<home>/<name>.out`; returns them with the
/// server's ws:// URL. Each start gets 0.5 s before the next line runs.
pub fn serve_and_listener(home: &Home, port: u16, listener: &str) -> (String, String) {
    let addr = format!("127.0.0.1:{port}");
    let url = format!("ws://{addr}");
    let out = |name: &str| sh_quote(&home.path(&format!("{name}.out")).display().to_string());
    let serve = home.shell_command("serve", &["serve", "--listen", &addr]);
    let listen = home.shell_command(listener, &listen_args(&url, listener, &["--auto-accept"]));
    let lines = format!(
        "{serve} > {serve_out} 2>&1 &\nsleep 0.5\n{listen} > {listen_out} 2>&1 &\nsleep 0.5\n",
        serve_out = out("serve"),
        listen_out = out(listener),
    );
    (lines, url)
}
