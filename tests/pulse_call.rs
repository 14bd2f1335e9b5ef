//! Calls whose audio goes through real devices: the built `rtc-cli` binary as
//! processes on 127.0.0.1, with a PulseAudio null sink as speaker and its monitor as
//! microphone (scripts/pulse-up.sh starts the daemon once per test binary).
//!
//! - Speaker path: the caller sends the speech fixture from a file, the callee plays
//!   it on `--speaker pulse`, and `parec` records the sink's monitor.
//! - Mic path: `paplay` plays the speech into the sink, the caller captures the
//!   monitor through cpal as `--mic pulse`, the callee writes `--record-audio`.
//!
//! Each recording must match the speech: energy-weighted mean NCC >= 0.7 over 1 s
//! windows, each aligned on its own (tests/common/audio_match.rs says why).
//!
//! Every test loads a null sink of its own and points the processes at it with
//! `PULSE_SINK` / `PULSE_SOURCE`, so other users of the shared daemon (tests/devices.rs
//! and tests/audio_pulse.rs play into `rtc_null`) cannot leak into a recording; a
//! mutex still runs the calls one at a time, as four debug-build processes share two
//! cores. Tests skip with a printed reason where PulseAudio is not installed.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::audio_match::{AudioMatch, match_windows};
use rtc_cli::media::audio::SAMPLE_RATE_HZ;
use rtc_cli::media::audio::wav::read_mono;

const BIN: &str = env!("CARGO_BIN_EXE_rtc-cli");

/// How long any one expected event may take.
const WAIT: Duration = Duration::from_secs(30);

/// The bar the issue sets: energy-weighted mean NCC of the speech windows.
const MIN_NCC: f64 = 0.7;

/// Alignment window: 1 s at 48 kHz.
const WINDOW: usize = SAMPLE_RATE_HZ as usize;

/// Windows quieter than -40 dBFS RMS are pauses, not speech.
const MIN_SPEECH_RMS: f64 = 0.01;

/// Light video on loopback: the test pattern, small and slow.
const VIDEO: &[&str] = &[
    "--camera",
    "test",
    "--video-size",
    "160x120",
    "--fps",
    "10",
    "--bind",
    "127.0.0.1",
];

fn speech_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech_48k_mono.wav")
}

fn speech() -> Vec<f32> {
    let clip = read_mono(&speech_path()).expect("speech fixture");
    assert_eq!(clip.sample_rate_hz, SAMPLE_RATE_HZ);
    clip.samples
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts PulseAudio once for this binary and returns its `PULSE_SERVER`; `None` (with
/// the reason printed) when PulseAudio or its tools are not installed. A daemon that
/// is installed but does not come up is a failure.
fn pulse_server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let missing: Vec<&str> = ["pulseaudio", "pactl", "parec", "paplay"]
                .into_iter()
                .filter(|t| !installed(t))
                .collect();
            if !missing.is_empty() {
                eprintln!(
                    "skipping: {missing:?} not installed \
                     (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
                );
                return None;
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pulse-up.sh");
            let out = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .expect("run scripts/pulse-up.sh");
            assert!(
                out.status.success(),
                "scripts/pulse-up.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let server = stdout
                .lines()
                .find_map(|l| l.strip_prefix("export PULSE_SERVER="))
                .expect("pulse-up.sh prints PULSE_SERVER")
                .to_owned();
            Some(server)
        })
        .as_deref()
}

/// One call through the devices at a time.
fn one_call_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A null sink of this test's own, unloaded on drop.
struct NullSink {
    /// Sink name; its monitor source is `<name>.monitor`.
    name: String,
    /// The module index `pactl load-module` printed.
    module: String,
    /// The daemon's address.
    server: String,
}

impl NullSink {
    fn load(server: &str, test: &str) -> Self {
        let name = format!("rtc_test_{test}_{}", std::process::id());
        let out = Command::new("pactl")
            .env("PULSE_SERVER", server)
            .args([
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                "rate=48000",
                &format!("sink_properties=device.description={name}"),
            ])
            .output()
            .expect("run pactl");
        assert!(
            out.status.success(),
            "loading a null sink: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name,
            module: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            server: server.to_owned(),
        }
    }

    fn monitor(&self) -> String {
        format!("{}.monitor", self.name)
    }

    /// A command for a PulseAudio tool (or `rtc-cli`) that uses this sink and its
    /// monitor as its defaults.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PULSE_SERVER", &self.server)
            .env("PULSE_SINK", &self.name)
            .env("PULSE_SOURCE", self.monitor())
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = Command::new("pactl")
            .env("PULSE_SERVER", &self.server)
            .args(["unload-module", &self.module])
            .output();
    }
}

/// A child process killed on drop, with its stdout lines on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// What the process is, for messages.
    name: String,
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
                Err(_) => panic!("{}: no stdout line with {needle:?}", self.name),
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
                .unwrap_or_else(|_| panic!("{}: no event {fields:?}", self.name));
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event"] == "error" {
                panic!("{}: {line}", self.name);
            }
            if fields.iter().all(|(k, want)| v[*k] == *want) {
                return v;
            }
        }
    }

    fn wait_exit(mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An isolated home (config, logs, recordings) for one test's processes.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Spawns `rtc-cli args…` as `name` (its log and stderr go to `<name>.log` and
    /// `<name>.err` in the home), with the sink's PulseAudio environment.
    fn spawn(&self, sink: &NullSink, name: &str, args: &[&str]) -> Proc {
        let log = self.path(&format!("{name}.log"));
        let stderr = File::create(self.path(&format!("{name}.err"))).expect("stderr file");
        let mut cmd = sink.command(BIN);
        cmd.arg("--log-file")
            .arg(&log)
            .args(args)
            .env("RTC_CLI_CONFIG", self.path("config.toml"))
            .env("HOME", self.dir.path())
            .env("XDG_STATE_HOME", self.path("state"))
            .env_remove("RTC_CLI_SERVER")
            .env_remove("RTC_CLI_ID")
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn rtc-cli");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc {
            child,
            lines,
            name: name.to_owned(),
        }
    }

    /// `rtc-cli serve` on a free loopback port; returns it and its ws:// URL.
    fn serve(&self, sink: &NullSink) -> (Proc, String) {
        let server = self.spawn(sink, "serve", &["serve", "--listen", "127.0.0.1:0"]);
        let line = server.line_with("listening on ");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no ws:// URL in {line:?}"))
            .to_owned();
        (server, url)
    }

    /// What the log of process `name` says, for failure messages.
    fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// `parec` recording a monitor as raw 48 kHz mono f32 until stopped.
struct MonitorRecording {
    child: Child,
    reader: Option<JoinHandle<Vec<u8>>>,
}

impl MonitorRecording {
    fn start(sink: &NullSink) -> Self {
        let mut child = sink
            .command("parec")
            .args([
                "-d",
                &sink.monitor(),
                "--rate=48000",
                "--channels=1",
                "--format=float32le",
                "--raw",
                "--latency-msec=20",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn parec");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        Self {
            child,
            reader: Some(reader),
        }
    }

    /// Stops `parec` and returns what it recorded.
    fn stop(mut self) -> Vec<f32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bytes = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

impl Drop for MonitorRecording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts `recording` carries the speech: enough speech windows, weighted NCC >= 0.7.
fn assert_matches_speech(what: &str, recording: &[f32], min_windows: usize) -> AudioMatch {
    let matched = match_windows(&speech(), recording, WINDOW, MIN_SPEECH_RMS);
    let report = matched.describe(SAMPLE_RATE_HZ);
    let ncc = matched.weighted_ncc().unwrap_or(0.0);
    eprintln!(
        "{what}: {:.1} s recorded, weighted NCC {ncc:.3} over {} windows\n{report}",
        recording.len() as f64 / f64::from(SAMPLE_RATE_HZ),
        matched.windows.len()
    );
    assert!(
        matched.windows.len() >= min_windows,
        "{what}: only {} of {:.1} s carried speech:\n{report}",
        matched.windows.len(),
        recording.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    );
    assert!(
        ncc >= MIN_NCC,
        "{what}: weighted NCC {ncc:.3} < {MIN_NCC}:\n{report}"
    );
    matched
}

#[test]
fn speech_sent_from_a_file_plays_on_the_callees_pulse_speaker() {
    let Some(server) = pulse_server() else { return };
    let _one = one_call_at_a_time();
    let sink = NullSink::load(server, "speaker");
    let home = Home::new();
    let (_serve, url) = home.serve(&sink);
    let speech_arg = format!("file:{}", speech_path().display());

    let mut listen = vec!["--headless", "--server", &url, "--id", "jerry", "listen"];
    listen.extend(["--auto-accept", "--mic", "none", "--speaker", "pulse"]);
    listen.extend(VIDEO);
    let jerry = home.spawn(&sink, "jerry", &listen);
    jerry.event(&[("event", "logged_in")]);

    let recording = MonitorRecording::start(&sink);
    let mut call = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
    ];
    call.extend(["--mic", &speech_arg, "--speaker", "none"]);
    call.extend(["--hangup-after", "9s"]);
    call.extend(VIDEO);
    let tom = home.spawn(&sink, "tom", &call);
    tom.event(&[("event", "state"), ("state", "connected")]);
    jerry.event(&[("event", "state"), ("state", "connected")]);
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);
    jerry.event(&[("event", "state"), ("state", "ended")]);
    let recorded = recording.stop();

    // 9 s of call less the speaker's start: at least 5 s of speech must be heard.
    let matched = std::panic::catch_unwind(|| assert_matches_speech("speaker path", &recorded, 5));
    if let Err(panic) = matched {
        eprintln!("callee log:\n{}", home.log_tail("jerry"));
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn speech_played_into_the_sink_is_captured_as_the_callers_pulse_mic() {
    let Some(server) = pulse_server() else { return };
    let _one = one_call_at_a_time();
    let sink = NullSink::load(server, "mic");
    let home = Home::new();
    let (_serve, url) = home.serve(&sink);
    let heard = home.path("heard.wav");
    let heard_arg = heard.display().to_string();

    // The callee records what it receives and plays nothing: its speaker must not feed
    // the sink the caller captures.
    let mut listen = vec!["--headless", "--server", &url, "--id", "jerry", "listen"];
    listen.extend(["--auto-accept", "--mic", "none", "--speaker", "none"]);
    listen.extend(["--record-audio", &heard_arg]);
    listen.extend(VIDEO);
    let jerry = home.spawn(&sink, "jerry", &listen);
    jerry.event(&[("event", "logged_in")]);

    let mut call = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
    ];
    call.extend(["--mic", "pulse", "--speaker", "none"]);
    call.extend(["--hangup-after", "10s"]);
    call.extend(VIDEO);
    let tom = home.spawn(&sink, "tom", &call);
    tom.event(&[("event", "state"), ("state", "connected")]);
    jerry.event(&[("event", "state"), ("state", "connected")]);

    // 7.1 s of speech into the sink while the call runs.
    let played = sink
        .command("paplay")
        .args(["-d", &sink.name])
        .arg(speech_path())
        .output()
        .expect("run paplay");
    assert!(
        played.status.success(),
        "paplay: {}",
        String::from_utf8_lossy(&played.stderr)
    );
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);
    jerry.event(&[("event", "state"), ("state", "ended")]);
    drop(jerry);

    let recorded = read_mono(&heard)
        .unwrap_or_else(|e| panic!("reading {}: {e}", heard.display()))
        .samples;
    let matched = std::panic::catch_unwind(|| assert_matches_speech("mic path", &recorded, 5));
    if let Err(panic) = matched {
        eprintln!("caller log:\n{}", home.log_tail("tom"));
        std::panic::resume_unwind(panic);
    }
}

/// The matcher itself, on the fixture: no PulseAudio needed.
#[test]
fn the_matcher_aligns_each_window_and_rejects_other_audio() {
    let source = speech();
    // A "call": 0.7 s of silence, then the source from 1.3 s on at half gain, looping,
    // with playout jumping 20 ms ahead after 3 s (a jitter-buffer step).
    let start = 13 * WINDOW / 10;
    let mut recording = vec![0.0f32; 7 * WINDOW / 10];
    let looped = |i: usize| source[i % source.len()] * 0.5;
    recording.extend((0..3 * WINDOW).map(|i| looped(start + i)));
    recording.extend((3 * WINDOW + 960..9 * WINDOW).map(|i| looped(start + i)));

    let matched = match_windows(&source, &recording, WINDOW, MIN_SPEECH_RMS);
    let ncc = matched.weighted_ncc().expect("speech windows");
    assert!(ncc > 0.9, "{ncc}\n{}", matched.describe(SAMPLE_RATE_HZ));
    // The second window starts 1 s into the recording: 0.3 s after the source began.
    let second = matched
        .windows
        .iter()
        .find(|w| w.start == WINDOW)
        .expect("window at 1 s");
    assert!(second.ncc > 0.99, "{second:?}");
    assert_eq!(second.source_offset, start + 3 * WINDOW / 10);

    // The same speech backwards has the same spectrum but not the same waveform.
    let reversed: Vec<f32> = source.iter().rev().copied().collect();
    let other = match_windows(&source, &reversed, WINDOW, MIN_SPEECH_RMS);
    let ncc = other.weighted_ncc().expect("speech windows");
    assert!(ncc < 0.4, "{ncc}\n{}", other.describe(SAMPLE_RATE_HZ));
}
