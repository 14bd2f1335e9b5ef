//! A real Redis for the tests: Debian's `redis-server` (installed by
//! `scripts/setup.sh`), started on 127.0.0.1 on a port of its own with no persistence,
//! its files in a temp dir, killed on drop. It can be killed and started again on the
//! same port to test recovery.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running (or stopped) `redis-server`.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one on a free port; panics (naming `scripts/setup.sh`) if Debian's
    /// `redis-server` is not installed or does not answer `PING` within 10 s.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        redis.start_again();
        redis
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILLs the server (its data is gone: there is no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and waits for `PING`.
    pub fn start_again(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); scripts/setup.sh installs it")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server on port {} did not answer PING in 10 s",
            self.port
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis answers `PING` on 127.0.0.1:`port`.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// `GET /healthz` of the server at `ws_url` (`ws://HOST:PORT`): the HTTP status and
/// the JSON body; `None` when it cannot be asked.
pub fn health(ws_url: &str) -> Option<(u16, serde_json::Value)> {
    let addr = ws_url.strip_prefix("ws://")?.trim_end_matches('/');
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1)?;
    Some((status, serde_json::from_str(body).ok()?))
}

/// Waits up to `within` for the server at `ws_url` to report its Redis link `link`
/// (`up`, `down`); the last health seen.
pub fn wait_for_link(ws_url: &str, link: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Some((_, body)) = health(ws_url) {
            if body["redis"] == link {
                return body;
            }
            last = body;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{ws_url} did not report redis {link} within {within:?}; last health: {last}");
}
