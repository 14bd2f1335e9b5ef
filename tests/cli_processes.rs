//! The built `rtc-cli` binary driven as processes on 127.0.0.1: `serve`,
//! `listen --auto-accept --headless`, `call --headless --hangup-after`, `login`,
//! `logout`, checking JSON events, files and exit codes.

mod common;

use std::path::Path;

use common::process::{Home, LOOPBACK_ONLY, TONE_NO_SPEAKER, call_args, test_pattern};

/// A home whose calls and listeners send light media on loopback only: a small test
/// pattern, a tone, no speaker.
fn light_home() -> Home {
    Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY)
}

#[test]
fn headless_call_to_an_auto_accepting_listener_connects_and_exits_zero() {
    let home = light_home();
    let (_server, url) = home.serve(&[]);
    let jerry = home.listener(&url, "jerry", &["--auto-accept"]);

    let tom = home.caller(&url, "tom", "jerry", &["--hangup-after", "1s"]);
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
    let home = light_home();
    let (_server, url) = home.serve(&[]);
    let mut jerry = home.listener(&url, "jerry", &[]);
    let tom = home.caller(&url, "tom", "jerry", &[]);
    jerry.event(&[("event", "incoming"), ("from", "tom")]);
    jerry.send("dance");
    jerry.event(&[("event", "error")]);
    jerry.send("refuse");
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
    let home = light_home();
    let (_server, url) = home.serve(&[]);
    let _jerry = home.listener(&url, "jerry", &["--auto-accept"]);
    let mut tom = home.caller(&url, "tom", "jerry", &["--hangup-after", "1500ms"]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    tom.close_stdin();
    let ended = tom.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(
        ended["reason"], "hangup",
        "the call lasted until --hangup-after"
    );
    assert_eq!(tom.wait_exit(), 0);
}

/// A ws:// URL of a loopback port where nothing listens.
fn dead_server_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("ws://127.0.0.1:{port}")
}

#[test]
fn call_outcomes_map_to_documented_exit_codes() {
    let home = light_home();
    let (_server, url) = home.serve(&["--ring-timeout", "500ms"]);
    let offline = home.run(&call_args(&url, "tom", "nobody", &[]));
    assert_eq!(offline.status.code(), Some(5));

    let _jerry = home.listener(&url, "jerry", &[]);
    let no_answer = home.run(&call_args(&url, "tom", "jerry", &[]));
    assert_eq!(no_answer.status.code(), Some(6));

    let dead = dead_server_url();
    let unreachable = home.run(&call_args(&dead, "tom", "jerry", &[]));
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
    let home = light_home();
    let secret = home.dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-secret\n").unwrap();
    let secret_arg = secret.to_str().unwrap();
    let (_server, url) = home.serve(&["--auth", "token", "--token-secret-file", secret_arg]);

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
    let jerry_home = light_home();
    let ok = jerry_home.run(&["--server", &url, "login", "jerry", "--token", &jerry_token]);
    assert!(ok.status.success());
    let jerry = jerry_home.spawn("jerry", &["--headless", "listen", "--auto-accept"]);
    jerry.event(&[("event", "logged_in"), ("id", "jerry")]);
    let call = home.run(&["--headless", "call", "jerry", "--hangup-after", "200ms"]);
    assert_eq!(
        call.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );

    // An unreachable server leaves the profile untouched.
    let dead = dead_server_url();
    let unreachable = home.run(&["--server", &dead, "login", "spike"]);
    assert_eq!(unreachable.status.code(), Some(9));
    assert_eq!(read(&home.config()), saved);

    let out = home.run(&["logout"]);
    assert!(out.status.success());
    assert!(!read(&home.config()).contains("tom"));
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let home = light_home();
    let (server, url) = home.serve(&[]);
    let jerry = home.listener(&url, "jerry", &[]);
    server.sigterm();
    assert_eq!(server.wait_exit(), 0);
    jerry.event(&[("event", "server_lost")]);
}

#[test]
fn manpage_and_completions_describe_every_subcommand() {
    let home = Home::new();
    let man = home.run(&["manpage"]);
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH rtc-cli 1"),
        "{man}"
    );
    for sub in ["serve", "login", "call", "listen", "devices"] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    let bash = home.run(&["completions", "bash"]);
    assert!(bash.status.success());
    let bash = String::from_utf8_lossy(&bash.stdout);
    assert!(
        bash.contains("complete") && bash.contains("--auto-accept"),
        "{bash}"
    );
}

#[test]
fn a_listener_dials_with_call_id_on_stdin_and_listens_again_after() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let media = phone_media();
    let mut listen = vec!["--auto-accept"];
    listen.extend(&media);
    let _jerry = home.listener(&url, "jerry", &listen);
    let mut tom = home.listener(&url, "tom", &media);
    // A bad id is refused without a call; dialing oneself is refused by the client.
    tom.send("call ../jerry");
    tom.event(&[("event", "error")]);
    tom.send("call tom");
    tom.event(&[("event", "notice"), ("message", "you cannot call yourself")]);
    for _ in 0..2 {
        tom.send("call jerry");
        tom.event(&[
            ("event", "state"),
            ("state", "connected"),
            ("peer", "jerry"),
        ]);
        tom.send("hangup");
        tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    }
    tom.send("quit");
    assert_eq!(
        tom.wait_exit(),
        0,
        "a listener that dialed still exits 0 on quit"
    );
}

/// The media of the phone tests: a small test pattern, a tone, loopback candidates.
fn phone_media() -> Vec<&'static str> {
    [
        test_pattern("160x120", "15").as_slice(),
        &TONE_NO_SPEAKER,
        &LOOPBACK_ONLY,
    ]
    .concat()
}

#[test]
fn a_second_call_process_dials_through_the_running_listener_without_conflict() {
    use std::os::unix::fs::PermissionsExt;
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let media = phone_media();
    // A socket file left by a crashed run: nobody answers on it, so it is replaced.
    let socket_dir = home.path("run/rtc-cli");
    std::fs::create_dir_all(&socket_dir).unwrap();
    let socket = socket_dir.join("jerry.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut listen = vec!["--auto-accept"];
    listen.extend(&media);
    let _tom = home.listener(&url, "tom", &listen);
    let mut jerry = home.listener(&url, "jerry", &media);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&socket_dir),
        0o700,
        "only its owner enters the directory"
    );
    assert_eq!(mode(&socket), 0o600);

    // `rtc-cli who` asks the running listener (a login of its own would kick it).
    let who = home.run(&["--server", &url, "--id", "jerry", "who", "--json"]);
    assert!(who.status.success(), "{who:?}");
    let online: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(
        online,
        serde_json::json!([{"id": "tom", "status": "available"}])
    );

    let dial = home.spawn(
        "jerry-dial",
        &call_args(&url, "jerry", "tom", &["--hangup-after", "2s"]),
    );
    jerry.event(&[("event", "state"), ("state", "connected"), ("peer", "tom")]);
    dial.event(&[("event", "state"), ("state", "connected")]);
    dial.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    dial.event(&[("event", "done")]);
    assert_eq!(dial.wait_exit(), 0, "the dialer exits with the call's code");
    jerry.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    // Still logged in and listening: a second dial gets an answer from it.
    let busy_self = home.run(&[
        "--server",
        &url,
        "--id",
        "jerry",
        "--headless",
        "call",
        "jerry",
    ]);
    assert_eq!(busy_self.status.code(), Some(1), "{busy_self:?}");
    let said = String::from_utf8_lossy(&busy_self.stdout);
    assert!(said.contains("you cannot call yourself"), "{said}");
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0, "never kicked by conflict");
    assert!(!socket.exists(), "the socket goes with its listener");
    // Another user cannot reach the socket: the directory is closed to them even when
    // every directory above it is open (tried as nobody when we are root, who could).
    let python = Path::new("/usr/bin/python3");
    if unsafe { libc::geteuid() } == 0 && python.exists() {
        let _jerry = home.listener(&url, "jerry", &media);
        for open in [home.path(""), home.path("run")] {
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let script = format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?})",
            socket.display().to_string()
        );
        let other = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(python)
            .args(["-c", &script])
            .output()
            .expect("setpriv");
        let err = String::from_utf8_lossy(&other.stderr);
        assert!(
            !other.status.success() && err.contains("PermissionError"),
            "another user reached the control socket: {other:?}"
        );
    }
}

#[test]
fn stopping_the_dialing_process_cancels_the_call_it_placed() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let media = phone_media();
    let tom = home.listener(&url, "tom", &media);
    let jerry = home.listener(&url, "jerry", &media);
    let dial = home.spawn("jerry-dial", &call_args(&url, "jerry", "tom", &[]));
    tom.event(&[("event", "incoming"), ("from", "jerry")]);
    dial.event(&[("event", "state"), ("state", "ringing")]);
    drop(dial); // killed, as Ctrl-C would
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "canceled"),
    ]);
    tom.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "canceled"),
    ]);
}

#[test]
fn history_lists_calls_with_their_reasons_and_durations() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let media = phone_media();
    // tom in a home of his own: the history file is per home (per machine user).
    let toms = Home::new();
    let mut tom = toms.listener(&url, "tom", &media);
    let mut jerry = home.listener(&url, "jerry", &media);
    jerry.event(&[("event", "history")]);
    // 1: connected, hung up after ~2 s.
    jerry.send("call tom");
    tom.event(&[("event", "incoming"), ("from", "jerry")]);
    tom.send("accept");
    jerry.event(&[("event", "state"), ("state", "connected")]);
    std::thread::sleep(std::time::Duration::from_millis(2_300));
    jerry.send("hangup");
    jerry.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    // 2: refused.
    jerry.send("call tom");
    tom.event(&[("event", "incoming"), ("from", "jerry")]);
    tom.send("refuse");
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "refused"),
    ]);
    // 3: offline.
    jerry.send("call spike");
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "offline"),
    ]);
    let shown = jerry.event(&[("event", "history")]);
    assert_eq!(shown["calls"].as_array().map(Vec::len), Some(3), "{shown}");
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);

    let out = home.run(&["history", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let calls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = calls.as_array().expect("an array");
    let summary: Vec<(&str, &str, bool)> = calls
        .iter()
        .map(|c| {
            (
                c["peer"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
                c["connected"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("spike", "offline", false),
            ("tom", "refused", false),
            ("tom", "hangup", true)
        ],
        "newest first"
    );
    let connected_secs = calls[2]["duration_secs"].as_u64().unwrap();
    assert!((2..=6).contains(&connected_secs), "{connected_secs} s");
    assert_eq!(calls[0]["duration_secs"], 0);
    let text = home.run(&["history", "-n", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("spike") && text.contains("is offline") && !text.contains("tom"),
        "{text}"
    );
    // tom's side, in his own home: two incoming calls.
    tom.send("quit");
    tom.wait_exit();
    let out = toms.run(&["history", "--json"]);
    let calls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(calls[0]["direction"], "incoming");
    assert_eq!(calls.as_array().map(Vec::len), Some(2));
}

/// Borrowed views of owned arguments.
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// RMS of each 20 ms of a 48 kHz mono WAV file.
fn wav_frame_levels(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).expect("a WAV file");
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    samples
        .chunks_exact(960)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / 960.0).sqrt())
        .collect()
}

#[test]
fn a_ringing_call_plays_the_ring_and_the_ringback_on_the_speakers() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let ring = home.path("ring.wav");
    let ringback = home.path("ringback.wav");
    let base = [test_pattern("160x120", "15").as_slice(), &LOOPBACK_ONLY].concat();
    let owned = |wav: &Path, extra: &[&str]| -> Vec<String> {
        let speaker = format!("file:{}", wav.display());
        base.iter()
            .chain(&["--mic", "tone", "--speaker", speaker.as_str()])
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let (jerrys, toms) = (owned(&ring, &[]), owned(&ringback, &[]));
    let mut jerry = home.listener(&url, "jerry", &strs(&jerrys));
    let mut tom = home.caller(&url, "tom", "jerry", &strs(&toms));
    jerry.event(&[("event", "incoming"), ("from", "tom")]);
    tom.event(&[("event", "state"), ("state", "ringing")]);
    // Nobody answers for 1.5 s; tom gives up.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    tom.send("hangup");
    tom.event(&[("event", "state"), ("reason", "canceled")]);
    assert_eq!(tom.wait_exit(), 7);
    jerry.event(&[("event", "state"), ("reason", "canceled")]);
    let heard = wav_frame_levels(&ring);
    assert!(
        heard.len() >= 50,
        "about 1.5 s of ring: {} frames",
        heard.len()
    );
    // The double ring: 0.4 s on, 0.2 s off, 0.4 s on.
    assert!(heard[2..18].iter().all(|&l| l > 0.05), "{heard:?}");
    assert!(heard[22..28].iter().all(|&l| l < 0.01), "{heard:?}");
    assert!(heard[32..48].iter().all(|&l| l > 0.05), "{heard:?}");
    let back = wav_frame_levels(&ringback);
    assert!(back.len() >= 50, "{} frames", back.len());
    assert!(
        back[2..48].iter().all(|&l| l > 0.05),
        "1 s of ringback: {back:?}"
    );
    // --no-ring: no tone, the speaker is never opened for one.
    jerry.send("quit");
    jerry.wait_exit();
    std::fs::remove_file(&ring).unwrap();
    let quiet = owned(&ring, &["--no-ring"]);
    let jerry = home.listener(&url, "jerry", &strs(&quiet));
    let mut tom = home.caller(&url, "tom", "jerry", &base);
    jerry.event(&[("event", "incoming"), ("from", "tom")]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    tom.send("hangup");
    assert_eq!(tom.wait_exit(), 7);
    assert!(!ring.exists(), "--no-ring plays nothing");
}
