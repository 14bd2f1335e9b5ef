//! A device that fails mid-call does not end the call: when the sound server behind
//! the callee's speaker dies, audio goes on to `none` with a notice, video and the call
//! go on, and the call still ends normally. Own test binary: it stops the shared
//! PulseAudio daemon (and starts it again at the end).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::process::{Home, LOOPBACK_ONLY, test_pattern};
use common::pulse;

fn pulse_script(name: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    let out = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("run the pulse script");
    common::process::assert_success(name, &out);
}

/// Starts the daemon again however the test ends, for the test binaries after this one.
struct RestartPulse;

impl Drop for RestartPulse {
    fn drop(&mut self) {
        pulse_script("pulse-up.sh");
    }
}

#[test]
fn the_speaker_failing_mid_call_falls_back_to_none_and_the_call_goes_on() {
    let Some(server) = pulse::server() else {
        return;
    };
    let _restart = RestartPulse;
    let home = Home::new()
        .with_env([("PULSE_SERVER", server)])
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&LOOPBACK_ONLY);
    let (_server, url) = home.serve(&[]);
    let jerry = home.listener(
        &url,
        "jerry",
        &["--auto-accept", "--mic", "tone", "--speaker", "pulse"],
    );
    let mut tom = home.caller(
        &url,
        "tom",
        "jerry",
        &["--mic", "tone", "--speaker", "none"],
    );
    jerry.event(&[("event", "state"), ("state", "connected")]);
    jerry.event_where("audio playing", |v| {
        v["event"] == "stats" && v["audio_kbps_in"].as_f64().unwrap_or(0.0) > 5.0
    });

    pulse_script("pulse-down.sh");
    let notice = jerry.event_where("a notice that the speaker failed", |v| {
        v["event"] == "notice"
            && v["message"]
                .as_str()
                .unwrap_or("")
                .contains("audio output failed")
    });
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("playing to none"),
        "{notice}"
    );
    // The call goes on: video still decodes after the failure.
    jerry.event_where("video still arriving", |v| {
        v["event"] == "stats" && v["video_fps_in"].as_f64().unwrap_or(0.0) > 5.0
    });
    tom.send("hangup");
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "remote-hangup"),
    ]);
    assert_eq!(tom.wait_exit(), 0);
}
