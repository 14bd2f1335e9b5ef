//! `serve --tls-cert/--tls-key` serves `wss://`: a client that trusts the CA
//! (`--ca-file`) logs in and calls; one that does not fails at once with exit 9; bad
//! or mismatched files stop `serve` at start naming the file. All on 127.0.0.1, with
//! a CA and a server certificate made at test time with rcgen.

mod common;

use common::pki::make_pki;
use common::process::{Home, LOOPBACK_ONLY, TONE_NO_SPEAKER, test_pattern};

fn tls_home() -> Home {
    Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY)
}

fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn client_with_ca_file_logs_in_over_wss_and_completes_a_call() {
    let home = tls_home();
    let pki = make_pki(&home, "127.0.0.1");
    let (_server, url) = home.serve(&["--tls-cert", s(&pki.cert), "--tls-key", s(&pki.key)]);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let ca = ["--ca-file", s(&pki.ca)];
    let jerry = home.spawn(
        "jerry",
        &common::process::listen_args(&url, "jerry", &[&["--auto-accept"], &ca[..]].concat()),
    );
    // Called before jerry is logged in, tom would end `offline`.
    jerry.event(&[("event", "logged_in")]);
    let tom = home.spawn(
        "tom",
        &[
            &ca[..],
            &common::process::call_args(&url, "tom", "jerry", &["--hangup-after", "3s"]),
        ]
        .concat(),
    );
    tom.event(&[("event", "state"), ("state", "connected")]);
    // On loopback the selected pair is host to host, on 127.0.0.1.
    let stats = tom.event_where("stats with a path", |v| {
        v["event"] == "stats" && v["path"].is_object()
    });
    assert_eq!(stats["path"]["local"]["type"], "host", "{stats}");
    assert_eq!(stats["path"]["remote"]["type"], "host", "{stats}");
    let local = stats["path"]["local"]["address"].as_str().unwrap();
    assert!(local.starts_with("127.0.0.1:"), "{stats}");
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);
    jerry.event(&[("event", "state"), ("state", "connected")]);
}

#[test]
fn client_without_the_ca_fails_with_a_clear_message_and_exit_9() {
    let home = tls_home();
    let pki = make_pki(&home, "127.0.0.1");
    let (_server, url) = home.serve(&["--tls-cert", s(&pki.cert), "--tls-key", s(&pki.key)]);
    let out = home.run(&["--server", &url, "login", "tom"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("certificate is not trusted"), "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");
    // With the CA, the same login succeeds.
    let out = home.run(&["--server", &url, "--ca-file", s(&pki.ca), "login", "tom"]);
    common::process::assert_success("login with --ca-file", &out);
}

#[test]
fn bad_or_mismatched_certificate_files_stop_serve_naming_the_file() {
    let home = tls_home();
    let pki = make_pki(&home, "127.0.0.1");
    let garbage = home.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let cases = [
        (s(&garbage), s(&pki.key), s(&garbage)),
        (s(&pki.cert), s(&garbage), s(&garbage)),
        (s(&pki.cert), s(&pki.other_key), s(&pki.other_key)),
        (s(&pki.cert), "/nonexistent/key.pem", "/nonexistent/key.pem"),
    ];
    for (cert, key, named) in cases {
        let out = home.run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cert} {key}: {stderr}");
        assert!(stderr.contains(named), "{cert} {key}: {stderr}");
    }
}

#[test]
fn a_silent_connection_to_a_tls_server_is_closed_at_the_upgrade_deadline() {
    use std::io::Read;
    let home = tls_home();
    let pki = make_pki(&home, "127.0.0.1");
    let (_server, url) = home.serve(&[
        "--tls-cert",
        s(&pki.cert),
        "--tls-key",
        s(&pki.key),
        "--upgrade-timeout",
        "1s",
    ]);
    let addr = url.trim_start_matches("wss://");
    let mut half_open = std::net::TcpStream::connect(addr).unwrap();
    // Far above the 1 s deadline: only a server that never closes fails this.
    half_open
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 16];
    let read = half_open.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server should close a connection that never starts TLS: {read:?}"
    );
}
