//! Headless Chromium for the browser tests: Debian's `chromium` on a page, with its
//! fake camera and microphone, the page's console lines read from Chromium's log, and
//! its whole process group killed on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The browser's executable (Debian's package `chromium`).
pub const CHROMIUM: &str = "chromium";

/// Bound on each wait for the page: Chromium's start and a call on a loaded 2-core
/// machine take far less, but share the cores with other test binaries.
pub const WAIT: Duration = Duration::from_secs(45);

/// Why the browser cannot run here, if it cannot.
pub fn chromium_missing() -> Option<String> {
    match Command::new(CHROMIUM)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`{CHROMIUM} --version` exited with {s}")),
        Err(e) => Some(format!(
            "`{CHROMIUM}` cannot run: {e} (apt-get install chromium)"
        )),
    }
}

/// Headless Chromium showing one page; its whole process group is killed on drop.
pub struct Browser {
    child: Child,
    /// Chromium's stderr (its log, with the page's console lines), a line at a time.
    lines: mpsc::Receiver<String>,
    /// What starts each of the page's console lines in the log: `"` and the prefix the
    /// page logs with (`peer: `, `web: `).
    prefix: String,
    /// The page's console lines so far, for failure messages.
    page_log: Vec<String>,
    /// A fresh profile, removed after the browser is gone.
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group our unreaped child leads
            // (`process_group(0)` below), so the id cannot name another group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// How starting the browser went.
pub enum Start {
    /// The page runs and logged its first expected line.
    Ready(Browser),
    /// Chromium is not usable here; the reason.
    Unavailable(String),
}

impl Browser {
    /// Starts Chromium on `url`, whose console lines start with `prefix` (e.g. `web: `),
    /// and waits for a page line containing `ready` (e.g. `logged in as`). A page that
    /// logged nothing means Chromium cannot run here; one that logged something else
    /// is a failure (the panic shows its console).
    pub fn start(url: &str, prefix: &str, ready: &str) -> Start {
        Self::start_with(url, prefix, ready, &[])
    }

    /// [`Browser::start`] with `extra` command-line switches (e.g.
    /// `--remote-debugging-port=0` for [`Browser::devtools_page`]).
    pub fn start_with(url: &str, prefix: &str, ready: &str, extra: &[&str]) -> Start {
        let profile = tempfile::tempdir().expect("temp dir");
        let spawned = Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Start::Unavailable(format!("cannot start {CHROMIUM}: {e}")),
        };
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut browser = Browser {
            child,
            lines,
            prefix: format!("\"{prefix}"),
            page_log: Vec::new(),
            _profile: profile,
        };
        match browser.page_line(ready) {
            Ok(_) => Start::Ready(browser),
            Err(why) if browser.page_log.is_empty() => {
                Start::Unavailable(format!("{CHROMIUM} did not run the page: {why}"))
            }
            Err(why) => panic!(
                "the page did not get to {ready:?}: {why}\n{}",
                browser.page_report()
            ),
        }
    }

    /// The DevTools WebSocket URL of the first page target, when Chromium was started
    /// with `--remote-debugging-port=0`: the port from `DevToolsActivePort` in the
    /// profile, the target from `GET /json/list` on 127.0.0.1.
    pub fn devtools_page(&self) -> Result<String, String> {
        use std::io::{Read, Write};
        let file = self._profile.path().join("DevToolsActivePort");
        let ports =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let port = ports
            .lines()
            .next()
            .ok_or("empty DevToolsActivePort")?
            .trim()
            .to_owned();
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .map_err(|e| format!("DevTools port {port}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        // Chromium builds the targets' WebSocket URLs from the Host header.
        let request = format!(
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        // Chromium keeps the connection open: read until the body parses.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let targets: serde_json::Value = loop {
            let n = s
                .read(&mut buf)
                .map_err(|e| format!("reading /json/list: {e}"))?;
            if n == 0 {
                return Err("/json/list ended without a body".into());
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && let Ok(v) = serde_json::from_str(body)
            {
                break v;
            }
        };
        let body = targets.to_string();
        targets
            .as_array()
            .and_then(|list| list.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("no page target in {body}"))
    }

    /// Waits for a page console line containing `needle`; the reason it did not come.
    pub fn page_line(&mut self, needle: &str) -> Result<String, String> {
        self.page_line_where(needle, |text| text.contains(needle))
    }

    /// Waits for a page console line that satisfies `pred` (`what` names it in the
    /// error); the reason it did not come.
    pub fn page_line_where(
        &mut self,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no page line with {what:?} within {WAIT:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    return Err(format!("{CHROMIUM} exited ({status:?}) before {what:?}"));
                }
            };
            let Some(text) = self.page_text(&line) else {
                continue;
            };
            self.page_log.push(text.clone());
            if pred(&text) {
                return Ok(text);
            }
        }
    }

    /// The first page console line containing `needle`: one seen already, or the next.
    pub fn seen_or_wait(&mut self, needle: &str) -> Result<String, String> {
        match self.logged(needle) {
            Some(line) => Ok(line.to_owned()),
            None => self.page_line(needle),
        }
    }

    /// Whether the page logged exactly `line` so far.
    pub fn logged_exactly(&mut self, line: &str) -> bool {
        self.page_report();
        self.page_log.iter().any(|l| l == line)
    }

    /// The first page console line seen so far that contains `needle`.
    pub fn logged(&self, needle: &str) -> Option<&str> {
        self.page_log
            .iter()
            .find(|l| l.contains(needle))
            .map(String::as_str)
    }

    /// The page's console lines so far, one a line.
    pub fn page_report(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(text) = self.page_text(&line) {
                self.page_log.push(text);
            }
        }
        format!("page console:\n{}", self.page_log.join("\n"))
    }

    /// The page's message in a line of Chromium's log, which reads
    /// `[…:INFO:CONSOLE:31] "peer: <message>", source: file:///…/peer.html?… (31)`.
    fn page_text(&self, line: &str) -> Option<String> {
        let start = line.find(&self.prefix)? + self.prefix.len();
        let rest = &line[start..];
        let end = rest.rfind("\", source: ").unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

/// The web client `serve` hosts at `ws_url` (its `ws://host:port`), opened in headless
/// Chromium with `query` (see web/app.js; ICE candidates on 127.0.0.1 only), once it has
/// logged in; `None`, with the reason printed, where Chromium cannot run here.
pub fn open_web_client(ws_url: &str, query: &str) -> Option<Browser> {
    if let Some(why) = chromium_missing() {
        eprintln!("skipped: {why}");
        return None;
    }
    let host = ws_url.trim_start_matches("ws://");
    let page = format!("http://{host}/?only=127.0.0.1&{query}");
    match Browser::start(&page, "web: ", "logged in as") {
        Start::Ready(b) => Some(b),
        Start::Unavailable(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}
