//! The built `rtc-cli` binary driven as processes on 127.0.0.1: `serve`,
//! `listen --auto-accept --headless`, `call --headless --hangup-after`, `login`,
//! `logout`, checking JSON events, files and exit codes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rtc-cli");
const WAIT: Duration = Duration::from_secs(20);

/// A child process killed on drop, so a failing test leaves nothing running.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for a stdout line containing `needle`.
    fn line_with(&self, needle: &str) -> String {
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

    /// Waits for the JSON event whose fields include every `(key, value)` pair.
    fn event(&self, fields: &[(&str, &str)]) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no event {fields:?} within {WAIT:?}"));
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                panic!("stdout line is not JSON: {line}");
            };
            assert!(v["ts"].is_string(), "every event has a timestamp: {line}");
            if fields.iter().all(|(k, want)| v[*k] == *want) {
                return v;
            }
        }
    }

    fn wait_exit(mut self) -> i32 {
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
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if args.iter().any(|a| *a == "call" || *a == "listen") {
            cmd.args(MEDIA);
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

    fn spawn(&self, args: &[&str]) -> Proc {
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
        Proc { child, lines }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let child = self.command(args).stdin(Stdio::null()).spawn().unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Starts `serve` on a free loopback port; returns it with its ws:// URL.
fn serve(home: &Home, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = home.spawn(&args);
    let line = server.line_with("listening on ");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    (server, url)
}

/// Light media on loopback only: a small test pattern, a tone, no speaker.
const MEDIA: &[&str] = &[
    "--camera",
    "test",
    "--video-size",
    "160x120",
    "--fps",
    "10",
    "--mic",
    "tone",
    "--speaker",
    "none",
    "--bind",
    "127.0.0.1",
];

#[test]
fn headless_call_to_an_auto_accepting_listener_connects_and_exits_zero() {
    let home = Home::new();
    let (_server, url) = serve(&home, &[]);
    let listen_args = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "jerry",
        "listen",
        "--auto-accept",
    ];

    let jerry = home.spawn(&listen_args);
    jerry.event(&[("event", "logged_in"), ("id", "jerry")]);

    let call_args = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
        "--hangup-after",
        "1s",
    ];

    let tom = home.spawn(&call_args);
    tom.event(&[("event", "state"), ("state", "calling")]);
    tom.event(&[("event", "state"), ("state", "ringing")]);
    let connected = tom.event(&[("event", "state"), ("state", "connected")]);
    assert_eq!(connected["peer"], "jerry");
    assert_eq!(connected["direction"], "outgoing");
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);

    jerry.event(&[("event", "incoming"), ("from", "tom")]);
    jerry.event(&[("event", "state"), ("state", "connected")]);
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "remote-hangup"),
    ]);
}

#[test]
fn listener_takes_commands_on_stdin_and_refuses() {
    use std::io::Write;
    let home = Home::new();
    let (_server, url) = serve(&home, &[]);
    let mut jerry = home.spawn(&["--headless", "--server", &url, "--id", "jerry", "listen"]);
    jerry.event(&[("event", "logged_in")]);
    let tom = home.spawn(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
    ]);
    jerry.event(&[("event", "incoming"), ("from", "tom")]);
    let stdin = jerry.child.stdin.as_mut().unwrap();
    writeln!(stdin, "dance").unwrap();
    jerry.event(&[("event", "error")]);
    let stdin = jerry.child.stdin.as_mut().unwrap();
    writeln!(stdin, "refuse").unwrap();
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "refused"),
    ]);
    tom.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "refused"),
    ]);
    assert_eq!(tom.wait_exit(), 3);
}

#[test]
fn eof_on_stdin_does_not_end_a_call() {
    let home = Home::new();
    let (_server, url) = serve(&home, &[]);
    let jerry = home.spawn(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "jerry",
        "listen",
        "--auto-accept",
    ]);
    jerry.event(&[("event", "logged_in")]);
    let mut tom = home.spawn(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
        "--hangup-after",
        "1500ms",
    ]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    drop(tom.child.stdin.take());
    let ended = tom.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(
        ended["reason"], "hangup",
        "the call lasted until --hangup-after"
    );
    assert_eq!(tom.wait_exit(), 0);
}

#[test]
fn call_outcomes_map_to_documented_exit_codes() {
    let home = Home::new();
    let (_server, url) = serve(&home, &["--ring-timeout", "500ms"]);
    let offline = home.run(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "nobody",
    ]);
    assert_eq!(offline.status.code(), Some(5));

    let jerry = home.spawn(&["--headless", "--server", &url, "--id", "jerry", "listen"]);
    jerry.event(&[("event", "logged_in")]);
    let no_answer = home.run(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
    ]);
    assert_eq!(no_answer.status.code(), Some(6));

    // A port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("ws://127.0.0.1:{port}");
    let unreachable = home.run(&[
        "--headless",
        "--server",
        &dead,
        "--id",
        "tom",
        "call",
        "jerry",
    ]);
    assert_eq!(unreachable.status.code(), Some(9));

    let bad_flag = home.run(&["call", "jerry", "--fps", "0"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("--fps"));
    let no_id = home.run(&["--headless", "--server", &url, "call", "jerry"]);
    assert_eq!(no_id.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_id.stderr).contains("rtc-cli login"));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn login_saves_the_profile_only_on_success_and_logout_forgets_it() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let secret = home.dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-secret\n").unwrap();
    let secret_arg = secret.to_str().unwrap();
    let (_server, url) = serve(
        &home,
        &["--auth", "token", "--token-secret-file", secret_arg],
    );

    let bad = home.run(&[
        "--server",
        &url,
        "login",
        "tom",
        "--token",
        "forged.token.value",
    ]);
    assert_eq!(bad.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused"));
    assert!(!home.config().exists(), "a failed login leaves no profile");

    let token = home.run(&[
        "serve",
        "token",
        "tom",
        "--token-secret-file",
        secret_arg,
        "--ttl",
        "1h",
    ]);
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let ok = home.run(&["--server", &url, "login", "tom", "--token", &token]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Logged in as tom"));
    let saved = read(&home.config());
    assert!(saved.contains("id = \"tom\"") && saved.contains(&token) && saved.contains(&url));
    let mode = std::fs::metadata(home.config())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The saved profile is used: no --server/--id needed.
    let jerry_token = home.run(&["serve", "token", "jerry", "--token-secret-file", secret_arg]);
    let jerry_token = String::from_utf8(jerry_token.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let jerry_home = Home::new();
    let ok = jerry_home.run(&["--server", &url, "login", "jerry", "--token", &jerry_token]);
    assert!(ok.status.success());
    let jerry = jerry_home.spawn(&["--headless", "listen", "--auto-accept"]);
    jerry.event(&[("event", "logged_in"), ("id", "jerry")]);
    let call = home.run(&["--headless", "call", "jerry", "--hangup-after", "200ms"]);
    assert_eq!(
        call.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );

    // An unreachable server leaves the profile untouched.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("ws://127.0.0.1:{port}");
    let unreachable = home.run(&["--server", &dead, "login", "spike"]);
    assert_eq!(unreachable.status.code(), Some(9));
    assert_eq!(read(&home.config()), saved);

    let out = home.run(&["logout"]);
    assert!(out.status.success());
    assert!(!read(&home.config()).contains("tom"));
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let home = Home::new();
    let (server, url) = serve(&home, &[]);
    let jerry = home.spawn(&["--headless", "--server", &url, "--id", "jerry", "listen"]);
    jerry.event(&[("event", "logged_in")]);
    let pid = server.child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    assert_eq!(server.wait_exit(), 0);
    jerry.event(&[("event", "server_lost")]);
}
