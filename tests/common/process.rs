//! Driving the built `rtc-cli` binary as processes: isolated homes, JSON event
//! streams on stdout, bounded waits, and children killed on drop.
//!
//! One place for every test that runs the binary: a [`Home`] holds what its processes
//! share (config, logs, extra environment, media flags, how long to wait), and each
//! [`Proc`] is one running child whose stdout is read line by line on a thread.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_rtc-cli");

/// How long a [`Proc`] waits for any one line, event or exit, unless its home says
/// otherwise ([`Home::with_wait`]).
pub const WAIT: Duration = Duration::from_secs(20);

/// How often exits are polled.
const POLL: Duration = Duration::from_millis(20);

/// `--headless --server <url> --id <id> listen <extra…>`: a headless listener's arguments.
pub fn listen_args<'a>(url: &'a str, id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--headless", "--server", url, "--id", id, "listen"];
    args.extend_from_slice(extra);
    args
}

/// `--headless --server <url> --id <id> call <peer> <extra…>`: a headless caller's
/// arguments.
pub fn call_args<'a>(url: &'a str, id: &'a str, peer: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--headless", "--server", url, "--id", id, "call", peer];
    args.extend_from_slice(extra);
    args
}

/// The test pattern as camera: `--camera test --video-size <size> --fps <fps>`.
pub fn test_pattern(size: &'static str, fps: &'static str) -> [&'static str; 6] {
    ["--camera", "test", "--video-size", size, "--fps", fps]
}

/// A tone as microphone and no speaker: synthetic audio out, nothing played.
pub const TONE_NO_SPEAKER: [&str; 4] = ["--mic", "tone", "--speaker", "none"];

/// ICE candidates on 127.0.0.1 only: tests keep all traffic on loopback (FIELD-NOTES).
pub const LOOPBACK_ONLY: [&str; 2] = ["--bind", "127.0.0.1"];

/// Panics with `what` and the stderr of `out` unless it exited successfully.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Single-quotes `s` for `sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A child process killed on drop, so a failing test leaves nothing running.
pub struct Proc {
    child: Child,
    /// What the process is (`serve`, `jerry`, …), for messages.
    name: String,
    /// Its stdout, a line at a time, from the reader thread.
    lines: mpsc::Receiver<String>,
    /// Every JSON event read so far, in order.
    seen: RefCell<Vec<serde_json::Value>>,
    /// The bound on any one wait.
    wait: Duration,
    /// Whether an `error` event fails a wait for another event.
    errors_fail: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `command` (stdout piped here, read on a thread) as `name`.
    fn start(mut command: Command, name: &str, home: &Home) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {BIN}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            name: name.to_owned(),
            lines,
            seen: RefCell::default(),
            wait: home.wait,
            errors_fail: home.errors_fail,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as `kill` or a service manager would.
    pub fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid; it is not reaped until drop or
        // `wait_exit`, so the pid cannot name another process.
        let status = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(status, 0, "{}: SIGTERM failed", self.name);
    }

    /// Writes `line` and a newline to the child's stdin (headless commands).
    pub fn send(&mut self, line: &str) {
        let name = &self.name;
        let stdin: &mut ChildStdin = self
            .child
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("{name}: writing {line:?}: {e}"));
    }

    /// Closes the child's stdin: it reads end of file.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits for a stdout line containing `needle`.
    pub fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "{}: no stdout line with {needle:?} within {:?}",
                    self.name, self.wait
                ),
            }
        }
    }

    /// Parses a stdout line as an event and keeps it in the history.
    fn parse(&self, line: &str) -> serde_json::Value {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            panic!("{}: stdout line is not JSON: {line}", self.name);
        };
        assert!(
            v["ts"].is_string(),
            "{}: every event has a timestamp: {line}",
            self.name
        );
        self.seen.borrow_mut().push(v.clone());
        v
    }

    /// Waits for the JSON event that satisfies `pred`; `what` names it in the panic.
    /// Every line before it must be a JSON event too; with
    /// [`Home::failing_on_error_events`], none of them may be an `error` event.
    pub fn event_where(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("{}: no event {what} within {:?}", self.name, self.wait)
            });
            let v = self.parse(&line);
            if self.errors_fail && v["event"] == "error" {
                panic!(
                    "{}: error event while waiting for {what}: {line}",
                    self.name
                );
            }
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

    /// The event with these fields: the first one already seen, or the next one.
    pub fn seen_or_wait(&self, fields: &[(&str, &str)]) -> serde_json::Value {
        match self.all_seen(fields).into_iter().next() {
            Some(v) => v,
            None => self.event(fields),
        }
    }

    /// Every event seen so far (including lines already printed) with these fields, in
    /// order.
    pub fn all_seen(&self, fields: &[(&str, &str)]) -> Vec<serde_json::Value> {
        while let Ok(line) = self.lines.try_recv() {
            self.parse(&line);
        }
        self.seen
            .borrow()
            .iter()
            .filter(|v| fields.iter().all(|(k, want)| v[*k] == *want))
            .cloned()
            .collect()
    }

    /// The latest event seen so far (including lines already printed) with these fields.
    pub fn last_seen(&self, fields: &[(&str, &str)]) -> serde_json::Value {
        self.all_seen(fields)
            .pop()
            .unwrap_or_else(|| panic!("{}: no event {fields:?} was printed", self.name))
    }

    /// Waits for the process to exit; its exit code (-1 when killed by a signal).
    pub fn wait_exit(mut self) -> i32 {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling a child") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {:?}",
                self.name,
                self.wait
            );
            thread::sleep(POLL);
        }
    }
}

/// An isolated home for one test: config file, logs and recordings in a temp dir,
/// and what every process the test runs from it shares.
pub struct Home {
    pub dir: tempfile::TempDir,
    /// Media flags added to every `call` and `listen` this home runs.
    media: Vec<String>,
    /// Extra environment for every process (e.g. `PULSE_SERVER`, `PULSE_SINK`).
    env: Vec<(String, String)>,
    /// The bound on any one wait of its processes.
    wait: Duration,
    /// Whether its processes fail a wait on an `error` event.
    errors_fail: bool,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// A fresh home in a temp dir, removed at the end unless `RTC_TEST_KEEP` is set (then
    /// its path, with every process's log and stderr, is printed to keep).
    pub fn new() -> Self {
        let mut dir = tempfile::tempdir().expect("temp dir");
        if std::env::var_os("RTC_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("RTC_TEST_KEEP: home {}", dir.path().display());
        }
        Self {
            dir,
            media: Vec::new(),
            env: Vec::new(),
            wait: WAIT,
            errors_fail: false,
        }
    }

    /// This home, with `media` flags added to every `call` and `listen` run (after
    /// any given before).
    pub fn with_media(mut self, media: &[&str]) -> Self {
        self.media.extend(media.iter().map(|s| (*s).to_owned()));
        self
    }

    /// This home, with these `(key, value)` pairs in every process's environment.
    pub fn with_env(
        mut self,
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// This home, whose processes wait up to `wait` for any one line, event or exit.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// This home, whose processes fail a wait as soon as they print an `error` event.
    pub fn failing_on_error_events(mut self) -> Self {
        self.errors_fail = true;
        self
    }

    /// A path inside the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The config file every process of this home uses.
    pub fn config(&self) -> PathBuf {
        self.path("config.toml")
    }

    /// The log file of process `name` (`--log-file`).
    pub fn log(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.log"))
    }

    /// The file that takes the stderr of process `name`.
    pub fn stderr(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.err"))
    }

    /// The last 40 lines of process `name`'s log, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs `check`; if it panics, prints process `name`'s log tail and panics again.
    pub fn showing_log_on_panic<T>(&self, name: &str, check: impl FnOnce() -> T) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
            Ok(value) => value,
            Err(panic) => {
                eprintln!("{name} log:\n{}", self.log_tail(name));
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// The environment every process of this home gets, besides removing
    /// `RTC_CLI_SERVER` and `RTC_CLI_ID` (so the machine's own settings never leak in).
    fn env_vars(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        let mut vars = vec![
            ("RTC_CLI_CONFIG".to_owned(), path(&self.config())),
            ("HOME".to_owned(), path(self.dir.path())),
            ("XDG_STATE_HOME".to_owned(), path(&self.path("state"))),
            // Control sockets of running listeners (`call` and `who` find them here).
            ("XDG_RUNTIME_DIR".to_owned(), path(&self.path("run"))),
        ];
        vars.extend(self.env.iter().cloned());
        vars
    }

    /// `args` with this home's media flags added when they run `call` or `listen`.
    fn full_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = args.to_vec();
        if args.iter().any(|a| *a == "call" || *a == "listen") {
            full.extend(self.media.iter().map(String::as_str));
        }
        full
    }

    /// A `Command` for the binary with `args` (plus media flags) in this home's
    /// environment; stdin, stdout and stderr piped.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_via(&[], args)
    }

    /// [`Home::command`] run through `wrapper` (e.g. `ip netns exec NS`, which execs the
    /// binary, so the child's pid stays the binary's); no wrapper runs it directly.
    pub fn command_via(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(self.full_args(args))
            .envs(self.env_vars())
            .env_remove("RTC_CLI_SERVER")
            .env_remove("RTC_CLI_REDIS")
            .env_remove("RTC_CLI_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts `rtc-cli --log-file <name>.log args…` as process `name`: stdin open for
    /// commands ([`Proc::send`]), stdout read as lines, stderr to `<name>.err`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        self.spawn_via(&[], name, args)
    }

    /// [`Home::spawn`] through `wrapper` (see [`Home::command_via`]).
    pub fn spawn_via(&self, wrapper: &[&str], name: &str, args: &[&str]) -> Proc {
        let log = self.log(name).display().to_string();
        let mut full = vec!["--log-file", log.as_str()];
        full.extend_from_slice(args);
        let stderr = File::create(self.stderr(name)).expect("stderr file");
        let mut cmd = self.command_via(wrapper, &full);
        cmd.stderr(stderr);
        Proc::start(cmd, name, self)
    }

    /// [`Home::spawn`] with owned arguments.
    pub fn spawn_owned(&self, name: &str, args: &[String]) -> Proc {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(name, &args)
    }

    /// A headless `listen <extra…>` as `id` (also the process name), returned once it
    /// printed `logged_in` with that id.
    pub fn listener(&self, url: &str, id: &str, extra: &[&str]) -> Proc {
        let listener = self.spawn(id, &listen_args(url, id, extra));
        listener.event(&[("event", "logged_in"), ("id", id)]);
        listener
    }

    /// A headless `call <peer> <extra…>` as `id` (also the process name), just started.
    pub fn caller(&self, url: &str, id: &str, peer: &str, extra: &[&str]) -> Proc {
        self.spawn(id, &call_args(url, id, peer, extra))
    }

    /// Starts `serve --listen 127.0.0.1:0 <extra…>` as process `serve`; returns it with
    /// the ws:// URL it printed.
    pub fn serve(&self, extra: &[&str]) -> (Proc, String) {
        self.serve_via(&[], "127.0.0.1:0", extra)
    }

    /// [`Home::serve`] through `wrapper` (see [`Home::command_via`]) on `listen`.
    pub fn serve_via(&self, wrapper: &[&str], listen: &str, extra: &[&str]) -> (Proc, String) {
        let mut args = vec!["serve", "--listen", listen];
        args.extend_from_slice(extra);
        let server = self.spawn_via(wrapper, "serve", &args);
        let line = server.line_with("listening on ");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://") || w.starts_with("wss://"))
            .unwrap_or_else(|| panic!("no ws:// or wss:// URL in {line:?}"))
            .to_owned();
        (server, url)
    }

    /// Runs `rtc-cli args…` to its end with stdin closed; its output. Panics if it
    /// does not exit within the home's wait.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = read_all(child.stdout.take().expect("stdout is piped"));
        let stderr = read_all(child.stderr.take().expect("stderr is piped"));
        let deadline = Instant::now() + self.wait;
        let status = loop {
            if let Some(status) = child.try_wait().expect("polling a child") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?} did not exit within {:?}", self.wait);
            }
            thread::sleep(POLL);
        };
        Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// A `sh` command line that runs `rtc-cli --log-file <name>.log args…` (plus media
    /// flags) in this home's environment, every word quoted: for a tmux pane or a
    /// script in a network namespace.
    pub fn shell_command(&self, name: &str, args: &[&str]) -> String {
        let log = self.log(name).display().to_string();
        let mut words = vec!["env".to_owned(), "-u".into(), "RTC_CLI_SERVER".into()];
        words.extend(["-u".to_owned(), "RTC_CLI_ID".into()]);
        words.extend(
            self.env_vars()
                .iter()
                .map(|(k, v)| format!("{k}={}", sh_quote(v))),
        );
        words.push(sh_quote(BIN));
        words.extend(["--log-file", log.as_str()].map(sh_quote));
        words.extend(self.full_args(args).into_iter().map(sh_quote));
        words.join(" ")
    }
}

/// Reads `from` to its end on a thread.
fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}
