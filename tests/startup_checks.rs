//! `call` and `listen` check the sources and sinks they are given before going
//! online: a missing camera, microphone or speaker, an unreadable file or a recording
//! into a missing directory fails at once, naming the flag, with exit code 1.

use std::process::{Command, Stdio};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rtc-cli"))
        .args(["--headless", "--id", "tom", "--log-file"])
        .arg(home.path().join("log"))
        .args(args)
        .env("RTC_CLI_CONFIG", home.path().join("config.toml"))
        // Nothing listens here: a check that passed would try to connect instead.
        .env("RTC_CLI_SERVER", "ws://127.0.0.1:9")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_camera_that_does_not_exist_is_named_with_the_list_of_cameras() {
    if std::path::Path::new("/dev/video0").exists() {
        eprintln!("skipped: this machine has a camera");
        return;
    }
    let (code, err) = run(&["call", "jerry", "--camera", "0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--camera") && err.contains("no camera matches `0`"),
        "{err}"
    );
    assert!(err.contains("cameras: none found"), "{err}");
}

#[test]
fn unreadable_media_files_fail_before_going_online() {
    let (code, err) = run(&["listen", "--camera", "file:/no/such/clip.y4m"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--camera file:/no/such/clip.y4m") && err.contains("No such file"),
        "{err}"
    );

    let not_y4m = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let (code, err) = run(&["call", "jerry", "--camera", &format!("file:{not_y4m}")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("bad Y4M header"), "{err}");

    let (code, err) = run(&["call", "jerry", "--mic", "file:/no/such/speech.wav"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--mic file:/no/such/speech.wav"), "{err}");

    let (code, err) = run(&["call", "jerry", "--record-video", "/no/such/dir/out.y4m"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--record-video") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn an_unknown_speaker_name_is_refused_with_what_exists() {
    let (code, err) = run(&["call", "jerry", "--speaker", "no-such-speaker-xyz"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--speaker") && err.contains("no-such-speaker-xyz"),
        "{err}"
    );
}
