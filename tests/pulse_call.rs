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
        Self::start_with(test, &[])
    }

    /// [`PulseCall::start`] with `env` added to (and overriding) the sink's.
    fn start_with(test: &str, env: &[(&'static str, String)]) -> Option<Self> {
        let server = pulse::server()?;
        let turn = common::one_call_at_a_time();
        let sink = NullSink::load(server, test);
        // Processes send light video on loopback (the test pattern, small and slow),
        // wait longer than the default and fail on any `error` event.
        let home = Home::new()
            .with_env(sink.env())
            .with_env(env.iter().cloned())
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
    // The fourth window holds the step 0.7 s in: no one offset fits all of it, but
    // split at 0.75 s each side nearly fits one.
    let stepped = matched
        .windows
        .iter()
        .find(|w| w.start == 3 * WINDOW)
        .expect("window at 3 s");
    assert!(stepped.ncc > 0.9, "{stepped:?}");

    // The same speech backwards has the same spectrum but not the same waveform.
    let reversed: Vec<f32> = source.iter().rev().copied().collect();
    let other = match_windows(&source, &reversed, WINDOW, MIN_SPEECH_RMS);
    let ncc = other.weighted_ncc().expect("speech windows");
    assert!(ncc < 0.4, "{ncc}\n{}", other.describe(SAMPLE_RATE_HZ));
}

/// `samples` through the audio processing module's high-pass filter alone (sonora, as
/// `media::audio::processing` configures it), in 10 ms chunks.
fn high_passed(samples: &[f32]) -> Vec<f32> {
    let stream = sonora::StreamConfig::new(SAMPLE_RATE_HZ, 1);
    let mut apm = sonora::AudioProcessing::builder()
        .config(sonora::Config {
            high_pass_filter: Some(sonora::config::HighPassFilter::default()),
            ..Default::default()
        })
        .capture_config(stream)
        .render_config(stream)
        .build();
    let mut out = vec![0.0; samples.len()];
    for (src, dst) in samples.chunks_exact(480).zip(out.chunks_exact_mut(480)) {
        apm.process_capture_f32(&[src], &mut [dst])
            .expect("high-pass");
    }
    out
}

/// Writes `samples` (48 kHz mono) to a WAV file at `path`.
fn write_wav(path: &Path, samples: &[f32]) {
    let mut writer = rtc_cli::media::audio::wav::WavWriter::create(path).expect("create WAV");
    writer.write(samples).expect("write WAV");
    writer.finish().expect("finish WAV");
}

/// RMS of `samples[from..to]` (seconds), in dBFS.
fn dbfs(samples: &[f32], from: f64, to: f64) -> f64 {
    let rate = f64::from(SAMPLE_RATE_HZ);
    let end = ((to * rate) as usize).min(samples.len());
    let span = &samples[((from * rate) as usize).min(end)..end];
    let power = span.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / span.len().max(1) as f64;
    10.0 * power.max(1e-12).log10()
}

/// One call for the echo test: jerry's speaker plays into the call's sink, which the
/// echo path carries into `mic`, whose monitor is jerry's microphone; tom sends `far`
/// and records what he hears from jerry; `near` (jerry's voice) is played into `mic`
/// from `near_at` after the call connects. Returns tom's
/// recording and jerry's last stats event.
fn echo_call(
    call: &PulseCall,
    mic: &NullSink,
    cancel: &str,
    far: &Path,
    near: &Path,
    near_at: Duration,
) -> (Vec<f32>, serde_json::Value) {
    let (home, url) = (&call.home, &call.url);
    let heard = home.path(&format!("heard-aec-{cancel}.wav"));
    let far_arg = format!("file:{}", far.display());
    let mut jerry = home.listener(
        url,
        "jerry",
        &[
            "--auto-accept",
            "--mic",
            "pulse",
            "--speaker",
            "pulse",
            "--echo-cancellation",
            cancel,
            "--noise-suppression",
            "off",
            "--auto-gain",
            "off",
        ],
    );
    let heard_arg = heard.display().to_string();
    let tom = home.caller(
        url,
        "tom",
        "jerry",
        &[
            "--mic",
            &far_arg,
            "--speaker",
            "none",
            "--record-audio",
            &heard_arg,
            "--hangup-after",
            "14s",
        ],
    );
    both_connected(&tom, &jerry);
    thread::sleep(near_at);
    let played = mic
        .command("paplay")
        .args(["-d", &mic.name])
        .arg(near)
        .output()
        .expect("run paplay");
    assert_success("paplay", &played);
    hung_up_on_schedule(tom, &jerry);
    let stats = jerry
        .all_seen(&[("event", "stats")])
        .pop()
        .unwrap_or_default();
    jerry.send("quit");
    jerry.wait_exit();
    let recorded = read_mono(&heard)
        .unwrap_or_else(|e| panic!("reading {}: {e}", heard.display()))
        .samples;
    (recorded, stats)
}

/// A room's acoustics for the echo test: what is played into `speaker` comes back into
/// `mic`'s monitor 60 ms later and about 24 dB down, a laptop's speaker-to-microphone
/// coupling (module-loopback reading the speaker sink's monitor at 40 % volume, which
/// PulseAudio's cubic scale makes -24 dB); unloaded on drop.
struct EchoPath {
    module: String,
    server: String,
}

impl EchoPath {
    fn load(server: &str, speaker: &NullSink, mic: &NullSink) -> Self {
        let pactl = |args: &[&str]| {
            let out = std::process::Command::new("pactl")
                .env("PULSE_SERVER", server)
                .args(args)
                .output()
                .expect("run pactl");
            assert_success("pactl", &out);
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let module = pactl(&[
            "load-module",
            "module-loopback",
            &format!("source={}", speaker.monitor()),
            &format!("sink={}", mic.name),
            "latency_msec=60",
            "source_dont_move=true",
            "sink_dont_move=true",
        ]);
        pactl(&["set-source-volume", &speaker.monitor(), "40%"]);
        Self {
            module,
            server: server.to_owned(),
        }
    }
}

impl Drop for EchoPath {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pactl")
            .env("PULSE_SERVER", &self.server)
            .args(["unload-module", &self.module])
            .output();
    }
}

#[test]
fn echo_cancellation_takes_the_far_ends_echo_out_and_keeps_the_near_end() {
    let Some(server) = pulse::server() else {
        return;
    };
    // jerry's microphone is another sink's monitor: the echo path feeds it, and so
    // does jerry's own voice (`near`, played into it).
    let mic = NullSink::load(server, "echo_mic");
    let Some(call) = PulseCall::start_with("echo", &[("PULSE_SOURCE", mic.monitor())]) else {
        return;
    };
    let _echo_path = EchoPath::load(server, &call.sink, &mic);
    let clip = speech();
    let rate = SAMPLE_RATE_HZ as usize;
    let (far, near) = (call.home.path("far.wav"), call.home.path("near.wav"));
    // Two halves of the clip: tom's speech (looped) and what jerry says over it.
    write_wav(&far, &clip[..rate * 7 / 2]);
    write_wav(&near, &clip[rate * 7 / 2..rate * 7]);
    let near_at = Duration::from_secs(7);
    let (without, _) = echo_call(&call, &mic, "off", &far, &near, near_at);
    let (with, stats) = echo_call(&call, &mic, "on", &far, &near, near_at);
    for (name, rec) in [("off", &without), ("on", &with)] {
        let bins: Vec<String> = (0..28)
            .map(|i| {
                format!(
                    "{:.0}",
                    dbfs(rec, f64::from(i) * 0.5, f64::from(i) * 0.5 + 0.5)
                )
            })
            .collect();
        eprintln!(
            "tom's recording, echo cancellation {name}, dBFS per 0.5 s: {}",
            bins.join(" ")
        );
    }
    // Far end only: 1.5-6 s of tom's recording, before jerry speaks (7 s after both saw
    // `connected`); the median of its 0.5 s levels, so that one transient while the
    // echo path's latency settles does not stand for the whole stretch.
    let typical = |rec: &[f32]| {
        let mut bins: Vec<f64> = (3..12)
            .map(|i| dbfs(rec, f64::from(i) * 0.5, f64::from(i) * 0.5 + 0.5))
            .collect();
        bins.sort_by(f64::total_cmp);
        bins[bins.len() / 2]
    };
    let (echo_off, echo_on) = (typical(&without), typical(&with));
    eprintln!(
        "tom hears his own echo at {echo_off:.1} dBFS without cancellation, {echo_on:.1} dBFS with; jerry's stats {stats}"
    );
    assert!(echo_off > -50.0, "the echo path works: {echo_off:.1} dBFS");
    assert!(
        echo_off - echo_on >= 20.0,
        "echo down {:.1} dB",
        echo_off - echo_on
    );
    assert!(
        stats["echo_erle_db"].is_number(),
        "the canceller's figures in stats: {stats}"
    );
    // jerry's own speech still reaches tom, as the processing's linear part (its
    // high-pass filter, which turns the phase of low frequencies) leaves it.
    let near_ref = high_passed(&clip[rate * 7 / 2..rate * 7]);
    let kept = match_windows(&near_ref, &with, WINDOW, MIN_SPEECH_RMS);
    let ncc = kept.weighted_ncc().unwrap_or(0.0);
    eprintln!(
        "near end through the canceller: NCC {ncc:.3}\n{}",
        kept.describe(SAMPLE_RATE_HZ)
    );
    assert!(ncc >= 0.6, "near-end speech kept: NCC {ncc:.3}");
}
