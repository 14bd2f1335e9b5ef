//! Driving the built `rtc-cli` binary as processes: isolated homes, JSON event
//! streams on stdout, bounded waits, and children killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rtc-cli");
pub const WAIT: Duration = Duration::from_secs(20);

/// A child process killed on drop, so a failing test leaves nothing running.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every JSON event read so far, in order.
    seen: std::cell::RefCell<Vec<serde_json::Value>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for a stdout line containing `needle`.
    pub fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no stdout line with {needle:?} within {WAIT:?}"),
            }
        }
    }

    fn parse(&self, line: &str) -> serde_json::Value {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            panic!("stdout line is not JSON: {line}");
        };
        assert!(v["ts"].is_string(), "every event has a timestamp: {line}");
        self.seen.borrow_mut().push(v.clone());
        v
    }

    /// Waits for the JSON event that satisfies `pred`; `what` names it in the panic.
    pub fn event_where(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no event {what} within {WAIT:?}"));
            let v = self.parse(&line);
            if pred(&v) {
                return v;
            }
        }
    }

    /// Waits for the JSON event whose fields include every `(key, value)` pair.
    pub fn event(&self, fields: &[(&str, &str)]) -> serde_json::Value {
        self.event_where(&format!("{fields:?}"), |v| {
            fields.iter().all(|(k, want)| v[*k] == *want)
        })
    }

    /// The latest event seen so far (including lines already printed) with these fields.
    pub fn last_seen(&self, fields: &[(&str, &str)]) -> serde_json::Value {
        while let Ok(line) = self.lines.try_recv() {
            self.parse(&line);
        }
        self.seen
            .borrow()
            .iter()
            .rev()
            .find(|v| fields.iter().all(|(k, want)| v[*k] == *want))
            .cloned()
            .unwrap_or_else(|| panic!("no event {fields:?} was printed"))
    }

    pub fn wait_exit(mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit in {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An isolated home for one test: config file and logs in a temp dir.
pub struct Home {
    pub dir: tempfile::TempDir,
    /// Media flags added to every `call` and `listen` this home runs.
    media: Vec<String>,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            media: Vec::new(),
        }
    }

    /// A home whose `call` and `listen` runs get `media` flags too.
    pub fn with_media(media: &[&str]) -> Self {
        let mut home = Self::new();
        home.media = media.iter().map(|s| (*s).to_owned()).collect();
        home
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if args.iter().any(|a| *a == "call" || *a == "listen") {
            cmd.args(&self.media);
        }
        cmd.env("RTC_CLI_CONFIG", self.config())
            .env("HOME", self.dir.path())
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env_remove("RTC_CLI_SERVER")
            .env_remove("RTC_CLI_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// [`Home::spawn`] with owned arguments.
    pub fn spawn_owned(&self, args: &[String]) -> Proc {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(&args)
    }

    pub fn spawn(&self, args: &[&str]) -> Proc {
        let mut child = self.command(args).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Default::default(),
        }
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let child = self.command(args).stdin(Stdio::null()).spawn().unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Starts `serve` on a free loopback port; returns it with its ws:// URL.
pub fn serve(home: &Home, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = home.spawn(&args);
    let line = server.line_with("listening on ");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    (server, url)
}
