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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::MutexGuard;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::audio_match::{AudioMatch, match_windows};
use common::process::{Home, LOOPBACK_ONLY, Proc, assert_success, test_pattern};
use common::pulse::{self, NullSink};
use rtc_cli::media::audio::SAMPLE_RATE_HZ;
use rtc_cli::media::audio::wav::read_mono;

/// How long any one expected event may take: four debug-build processes share the
/// cores, so longer than the default.
const WAIT: Duration = Duration::from_secs(30);

/// The bar the issue sets: energy-weighted mean NCC of the speech windows.
const MIN_NCC: f64 = 0.7;

/// Alignment window: 1 s at 48 kHz.
const WINDOW: usize = SAMPLE_RATE_HZ as usize;

/// Windows quieter than -40 dBFS RMS are pauses, not speech.
const MIN_SPEECH_RMS: f64 = 0.01;

fn speech_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech_48k_mono.wav")
}

fn speech() -> Vec<f32> {
    let clip = read_mono(&speech_path()).expect("speech fixture");
    assert_eq!(clip.sample_rate_hz, SAMPLE_RATE_HZ);
    clip.samples
}

/// What each call through PulseAudio stands on: its turn, a null sink of its own, a
/// home whose processes use that sink, and a server. Fields drop in order: the
/// server, the home, the sink, and last the turn.
struct PulseCall {
    /// `rtc-cli serve` on a free loopback port.
    _serve: Proc,
    /// The server's ws:// URL.
    url: String,
    home: Home,
    sink: NullSink,
    /// One call through the devices at a time.
    _turn: MutexGuard<'static, ()>,
}

impl PulseCall {
    /// Starts the daemon (once), waits for this test's turn, loads sink `test` and
    /// starts a server; `None` where PulseAudio is not installed.
    fn start(test: &str) -> Option<Self> {
        let server = pulse::server()?;
        let turn = common::one_call_at_a_time();
        let sink = NullSink::load(server, test);
        // Processes send light video on loopback (the test pattern, small and slow),
        // wait longer than the default and fail on any `error` event.
        let home = Home::new()
            .with_env(sink.env())
            .with_media(&test_pattern("160x120", "10"))
            .with_media(&LOOPBACK_ONLY)
            .with_wait(WAIT)
            .failing_on_error_events();
        let (serve, url) = home.serve(&[]);
        Some(Self {
            _serve: serve,
            url,
            home,
            sink,
            _turn: turn,
        })
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

/// Waits for caller `tom` and callee `jerry` to both report `connected`.
fn both_connected(tom: &Proc, jerry: &Proc) {
    tom.event(&[("event", "state"), ("state", "connected")]);
    jerry.event(&[("event", "state"), ("state", "connected")]);
}

/// Waits for `tom`'s `--hangup-after` to end the call: `tom` ends it as `hangup` and
/// exits 0, then `jerry`'s side ends too.
fn hung_up_on_schedule(tom: Proc, jerry: &Proc) {
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);
    jerry.event(&[("event", "state"), ("state", "ended")]);
}

#[test]
fn speech_sent_from_a_file_plays_on_the_callees_pulse_speaker() {
    let Some(call) = PulseCall::start("speaker") else {
        return;
    };
    let (home, sink, url) = (&call.home, &call.sink, &call.url);
    let speech_arg = format!("file:{}", speech_path().display());

    let jerry = home.listener(
        url,
        "jerry",
        &["--auto-accept", "--mic", "none", "--speaker", "pulse"],
    );

    let recording = MonitorRecording::start(sink);
    let tom = home.caller(
        url,
        "tom",
        "jerry",
        &[
            "--mic",
            &speech_arg,
            "--speaker",
            "none",
            "--hangup-after",
            "9s",
        ],
    );
    both_connected(&tom, &jerry);
    hung_up_on_schedule(tom, &jerry);
    let recorded = recording.stop();

    // 9 s of call less the speaker's start: at least 5 s of speech must be heard.
    home.showing_log_on_panic("jerry", || {
        assert_matches_speech("speaker path", &recorded, 5)
    });
}

#[test]
fn speech_played_into_the_sink_is_captured_as_the_callers_pulse_mic() {
    let Some(call) = PulseCall::start("mic") else {
        return;
    };
    let (home, sink, url) = (&call.home, &call.sink, &call.url);
    let heard = home.path("heard.wav");
    let heard_arg = heard.display().to_string();

    // The callee records what it receives and plays nothing: its speaker must not feed
    // the sink the caller captures.
    let jerry = home.listener(
        url,
        "jerry",
        &[
            "--auto-accept",
            "--mic",
            "none",
            "--speaker",
            "none",
            "--record-audio",
            &heard_arg,
        ],
    );

    let tom = home.caller(
        url,
        "tom",
        "jerry",
        &[
            "--mic",
            "pulse",
            "--speaker",
            "none",
            "--hangup-after",
            "10s",
        ],
    );
    both_connected(&tom, &jerry);

    // 7.1 s of speech into the sink while the call runs.
    let played = sink
        .command("paplay")
        .args(["-d", &sink.name])
        .arg(speech_path())
        .output()
        .expect("run paplay");
    assert_success("paplay", &played);
    hung_up_on_schedule(tom, &jerry);
    drop(jerry);

    let recorded = read_mono(&heard)
        .unwrap_or_else(|e| panic!("reading {}: {e}", heard.display()))
        .samples;
    home.showing_log_on_panic("tom", || assert_matches_speech("mic path", &recorded, 5));
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
