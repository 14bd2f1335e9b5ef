//! `call` and `listen` check the sources and sinks they are given before going
//! online: a missing camera, microphone or speaker, an unreadable file or a recording
//! into a missing directory fails at once, naming the flag, with exit code 1; a Y4M file
//! without a whole first frame of the header's size or a `--speaker file:` into a missing
//! directory stops `call` and `listen` before they log in to a live server; a malformed
//! server URL is a bad command line (exit 2).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::process::{Home, LOOPBACK_ONLY, call_args, listen_args};

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

/// A Y4M header for 16x16 I420 frames (384 bytes of picture each).
const HEADER_16X16: &[u8] = b"YUV4MPEG2 W16 H16 F10:1 Ip A1:1 C420jpeg\n";

fn write_file(path: &Path, parts: &[&[u8]]) -> PathBuf {
    let mut file = std::fs::File::create(path).unwrap();
    for part in parts {
        file.write_all(part).unwrap();
    }
    path.to_owned()
}

/// Runs `call` and `listen` with `media` flags against a live server; each must exit
/// 1 with `flag` on stderr, and the server must never have logged anyone in.
fn both_stop_before_login(home: &Home, media: &[&str], flag: &str) {
    let (_server, url) = home.serve(&[]);
    let runs = [
        ("call", call_args(&url, "tom", "jerry", media)),
        ("listen", listen_args(&url, "jerry", media)),
    ];
    for (what, args) in runs {
        let out = home.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{what} does not name {flag}: {stderr}"
        );
    }
    let log = std::fs::read_to_string(home.log("serve")).unwrap_or_default();
    assert!(
        !log.lines()
            .any(|l| l.contains("server::session: logged in")),
        "a client logged in before its check failed:\n{log}"
    );
}

fn media<'a>(camera: &'a str, speaker: &'a str) -> Vec<&'a str> {
    let mut flags = vec!["--camera", camera, "--mic", "tone", "--speaker", speaker];
    flags.extend(LOOPBACK_ONLY);
    flags
}

#[test]
fn a_y4m_file_cut_inside_its_first_frame_stops_call_and_listen() {
    let home = Home::new();
    let path = write_file(
        &home.path("cut.y4m"),
        &[HEADER_16X16, b"FRAME\n", &[128; 100]],
    );
    let camera = format!("file:{}", path.display());
    both_stop_before_login(&home, &media(&camera, "none"), "--camera");
}

#[test]
fn a_y4m_file_whose_frames_are_not_the_header_size_stops_call_and_listen() {
    let home = Home::new();
    // Frames of 16x8 (192 bytes) under a 16x16 header.
    let frame: Vec<u8> = [b"FRAME\n".as_slice(), &[128; 192]].concat();
    let path = write_file(
        &home.path("wrong-size.y4m"),
        &[HEADER_16X16, &frame, &frame, &frame, &frame],
    );
    let camera = format!("file:{}", path.display());
    both_stop_before_login(&home, &media(&camera, "none"), "--camera");
}

#[test]
fn a_y4m_file_with_no_frames_stops_call_and_listen() {
    let home = Home::new();
    let path = write_file(&home.path("empty.y4m"), &[HEADER_16X16]);
    let camera = format!("file:{}", path.display());
    both_stop_before_login(&home, &media(&camera, "none"), "--camera");
}

#[test]
fn a_speaker_file_in_a_missing_directory_stops_call_and_listen() {
    let home = Home::new();
    let speaker = format!("file:{}", home.path("missing/out.wav").display());
    both_stop_before_login(&home, &media("test", &speaker), "--speaker");
}

#[test]
fn a_malformed_server_url_is_a_bad_command_line() {
    let home = Home::new();
    for args in [
        call_args("ws://[::1", "tom", "jerry", &[]),
        listen_args("ws://[::1", "jerry", &[]),
    ] {
        let out = home.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--server"), "{stderr}");
    }
}

#[test]
fn codec_warnings_reach_the_log_not_stderr_in_headless_mode() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_media(&media("test", "none"));
    let (_server, url) = home.serve(&[]);
    let jerry = home.listener(&url, "jerry", &["--auto-accept"]);
    let tom = home.caller(&url, "tom", "jerry", &["--hangup-after", "1s"]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    assert_eq!(tom.wait_exit(), 0);
    drop(jerry);
    let stderr = std::fs::read_to_string(home.stderr("tom")).unwrap();
    assert!(
        !stderr.contains("OpenH264"),
        "codec noise on stderr: {stderr}"
    );
    let log = std::fs::read_to_string(home.log("tom")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("stderr:") && l.contains("OpenH264")),
        "OpenH264's warning is not in the log:\n{}",
        home.log_tail("tom")
    );
}
