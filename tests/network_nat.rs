//! Calls across the network lab's NAT topology (rtc-netlab's `NatLab`): `serve` and
//! coturn in a "public" namespace, each client in a home behind its own nftables
//! masquerade router. The foundation of issue 10's TURN tests. Skipped (with the reason
//! printed) where namespaces cannot be made or coturn is not installed.

mod common;

use std::time::Duration;

use common::media_check::{CLIP, SPEECH, check_received, file_source};
use common::netlab::{Coturn, in_namespace, nat_lab};
use common::pki::make_pki;
use common::process::{Home, TONE_NO_SPEAKER, call_args, listen_args, test_pattern};
use rtc_netlab::{NatLab, NatOptions};

/// How a call between the homes went.
#[derive(Debug)]
struct Outcome {
    /// tom's end reason.
    reason: String,
    /// tom's exit code.
    code: i32,
    /// tom's first `stats` event with video flowing in, if the call got that far.
    stats: Option<serde_json::Value>,
    /// tom's `frames_sent` in its last stats event (0 without one).
    sent: u64,
    /// tom's `notice` events' texts.
    notices: Vec<String>,
    /// jerry's last `stats` event, if it printed one.
    jerry_stats: Option<serde_json::Value>,
    /// The URL `serve` listened on (`ws://` or, with TLS, `wss://`).
    url: String,
}

/// A home whose calls send light synthetic media (the test pattern at 160x120, 10 fps,
/// and a tone), with `ice` as everyone's ICE flags. No `--bind`: each home gathers on
/// its one interface (and lo). The homes have no route to each other's private
/// addresses, so only the NATs' public addresses learnt through STUN (srflx
/// candidates) or a relay can connect them.
fn light_home(ice: &[&str]) -> Home {
    Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(ice)
        .with_wait(Duration::from_secs(40))
}

/// `serve <serve_flags…>` in the public namespace, jerry listening in home1 (with
/// `jerry_extra`) and tom calling it from home2 with `--hangup-after <talk>`.
fn call_between_homes(
    lab: &NatLab,
    home: &Home,
    serve_flags: &[&str],
    jerry_extra: &[&str],
    talk: &str,
) -> Outcome {
    let (_serve, url) = home.serve_via(
        &in_namespace(lab.public.name()),
        &format!("{}:0", NatLab::SERVER),
        serve_flags,
    );
    let mut listen = vec!["--auto-accept"];
    listen.extend_from_slice(jerry_extra);
    let jerry = home.spawn_via(
        &in_namespace(lab.home1.name()),
        "jerry",
        &listen_args(&url, "jerry", &listen),
    );
    jerry.event(&[("event", "logged_in"), ("id", "jerry")]);
    let tom = home.spawn_via(
        &in_namespace(lab.home2.name()),
        "tom",
        &call_args(&url, "tom", "jerry", &["--hangup-after", talk]),
    );
    let first = tom.event_where("a connected call with video, or the end", |v| {
        let video = v["event"] == "stats" && v["video_fps_in"].as_f64().unwrap_or(0.0) > 3.0;
        let ended = v["event"] == "state" && v["state"] == "ended";
        video || ended
    });
    let (ended, stats) = if first["event"] == "stats" {
        (
            tom.event(&[("event", "state"), ("state", "ended")]),
            Some(first),
        )
    } else {
        (first, None)
    };
    let reason = ended["reason"].as_str().unwrap_or_default().to_owned();
    let sent = tom
        .all_seen(&[("event", "stats")])
        .last()
        .and_then(|v| v["frames_sent"].as_u64())
        .unwrap_or(0);
    let notices = tom
        .all_seen(&[("event", "notice")])
        .iter()
        .filter_map(|v| v["message"].as_str().map(str::to_owned))
        .collect();
    let code = tom.wait_exit();
    // jerry sees the end too, so its recording is complete when it exits.
    jerry.event(&[("event", "state"), ("state", "ended")]);
    let jerry_stats = jerry.all_seen(&[("event", "stats")]).pop();
    drop(jerry);
    Outcome {
        reason,
        code,
        stats,
        sent,
        notices,
        jerry_stats,
        url,
    }
}

/// The candidate types of the selected pair in `stats`: (local, remote).
fn path_types(stats: &serde_json::Value) -> (String, String) {
    let kind = |end: &str| {
        stats["path"][end]["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no {end} candidate in {stats}"))
            .to_owned()
    };
    (kind("local"), kind("remote"))
}

/// The STUN URL of a [`Coturn`] on the public server address.
fn stun_url() -> String {
    format!("stun:{}:3478", NatLab::SERVER)
}

/// Homes behind endpoint-independent NATs call each other through STUN, given to the
/// clients (`--ice-server`) or handed out by `serve` alone (`--stun`, no ICE flags on
/// the clients); the stats show the path: a NAT's address (srflx), no relay.
#[test]
fn homes_behind_endpoint_independent_nats_call_each_other_through_stun() {
    let _turn = common::one_call_at_a_time();
    if !Coturn::installed() {
        return;
    }
    let Some(lab) = nat_lab(NatOptions::default()) else {
        return;
    };
    let _stun = Coturn::stun_only(&lab.public, NatLab::SERVER);
    let stun = stun_url();
    let from_flags =
        call_between_homes(&lab, &light_home(&["--ice-server", &stun]), &[], &[], "3s");
    assert_eq!((from_flags.reason.as_str(), from_flags.code), ("hangup", 0));

    let from_serve = call_between_homes(&lab, &light_home(&[]), &["--stun", &stun], &[], "3s");
    assert_eq!(
        (from_serve.reason.as_str(), from_serve.code),
        ("hangup", 0),
        "{from_serve:?}"
    );
    let stats = from_serve.stats.expect("stats while connected");
    let (local, remote) = path_types(&stats);
    assert!(
        [&local, &remote].iter().any(|t| *t == "srflx"),
        "expected a srflx end: {stats}"
    );
    assert!(local != "relay" && remote != "relay", "{stats}");
}

/// The NAT lab with UDP between the two NATs dropped, or `None` (skip, reason printed)
/// without coturn or namespaces.
fn blocked_lab() -> Option<NatLab> {
    if !Coturn::installed() {
        return None;
    }
    nat_lab(NatOptions {
        block_direct_udp: true,
        ..NatOptions::default()
    })
}

/// The negative control of issue 10's relay topology: with UDP between the NATs dropped,
/// srflx candidates cannot connect the homes (only a relay in the public namespace can).
#[test]
fn with_direct_udp_between_the_nats_blocked_a_stun_only_call_fails() {
    let _turn = common::one_call_at_a_time();
    let Some(lab) = blocked_lab() else { return };
    let _stun = Coturn::stun_only(&lab.public, NatLab::SERVER);
    let stun = stun_url();
    let home = light_home(&["--ice-server", &stun]);
    let outcome = call_between_homes(&lab, &home, &[], &[], "3s");
    assert_eq!(outcome.reason, "ice-failed");
    assert_ne!(outcome.code, 0);
}

/// The secret shared by coturn and `serve` in the relay tests.
const TURN_SECRET: &str = "relay-test-secret-0123456789";

/// A file holding `secret`, for `serve --turn-secret-file`.
fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{secret}\n")).unwrap();
    file
}

/// `serve --turn <coturn> --turn-secret-file <file>`: the flags that hand out TURN REST
/// credentials made with the secret in `secret`.
fn turn_flags(secret: &tempfile::NamedTempFile) -> Vec<String> {
    let turn = format!("turn:{}:3478", NatLab::SERVER);
    let path = secret.path().display().to_string();
    vec!["--turn".into(), turn, "--turn-secret-file".into(), path]
}

/// The blocked lab with coturn relaying in its public namespace, and a file holding the
/// secret coturn shares with `serve`; `None` as for [`blocked_lab`].
fn relaying_lab() -> Option<(NatLab, Coturn, tempfile::NamedTempFile)> {
    let lab = blocked_lab()?;
    let coturn = Coturn::rest(&lab.public, NatLab::SERVER, TURN_SECRET);
    Some((lab, coturn, secret_file(TURN_SECRET)))
}

/// With direct UDP between the NATs blocked, TURN credentials from `serve` alone (no ICE
/// flags on the clients) get the call through coturn's relay, and the footage and speech
/// arrive as on loopback: frames, PSNR and audio correlation (`check_received`).
#[test]
fn with_direct_udp_blocked_turn_from_serve_alone_relays_the_call() {
    let _turn = common::one_call_at_a_time();
    let Some((lab, _coturn, secret)) = relaying_lab() else {
        return;
    };
    let serve = turn_flags(&secret);
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let (camera, mic) = (file_source(CLIP), file_source(SPEECH));
    let home = Home::new()
        .with_media(&["--camera", &camera, "--video-size", "320x240"])
        .with_media(&["--mic", &mic, "--speaker", "none"])
        .with_wait(Duration::from_secs(40));
    let (video, audio) = (home.path("at-jerry.y4m"), home.path("at-jerry.wav"));
    let (video_arg, audio_arg) = (video.display().to_string(), audio.display().to_string());
    let record = ["--record-video", &video_arg, "--record-audio", &audio_arg];
    let outcome = call_between_homes(&lab, &home, &serve, &record, "10s");
    assert_eq!(
        (outcome.reason.as_str(), outcome.code),
        ("hangup", 0),
        "{outcome:?}"
    );
    let stats = outcome.stats.as_ref().expect("stats while connected");
    let (local, remote) = path_types(stats);
    assert!(local == "relay" || remote == "relay", "{stats}");
    eprintln!("jerry: {:?}", outcome.jerry_stats);
    // Through coturn on shared cores the audio arrives with 7-8 ms of jitter (0 on
    // loopback), so jerry's jitter buffer plays at ~50 ms instead of 20 and now and then
    // stretches a frame; a stretch inside a window shifts the rest of it, which costs
    // that window's NCC (measured 0.60 for a 1 s window once). Nothing is lost or
    // concealed.
    check_received("tom → jerry via TURN", outcome.sent, &video, &audio);
}

/// `serve` hands out credentials made with a secret coturn does not share: the call
/// ends `ice-failed` within the connect timeout (no hang), and a notice names TURN
/// authentication as the reason.
#[test]
fn a_wrong_turn_secret_ends_ice_failed_with_a_notice_naming_turn_authentication() {
    let _turn = common::one_call_at_a_time();
    let Some(lab) = blocked_lab() else { return };
    let _coturn = Coturn::rest(&lab.public, NatLab::SERVER, TURN_SECRET);
    let wrong = secret_file("not-the-secret-coturn-knows-0123");
    let serve = turn_flags(&wrong);
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let outcome = call_between_homes(&lab, &light_home(&[]), &serve, &[], "3s");
    assert_eq!(outcome.reason, "ice-failed", "{outcome:?}");
    assert_eq!(outcome.code, 10, "{outcome:?}");
    assert!(
        outcome
            .notices
            .iter()
            .any(|n| n.contains("TURN authentication failed")),
        "{outcome:?}"
    );
    // The default connect timeout is 15 s; login, ringing and the check fit in the rest.
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "{:?}",
        started.elapsed()
    );
}

/// `--ice-transport-policy relay` where a direct path works (the NATs map
/// endpoint-independently and STUN is handed out too): the call still goes through the
/// relay at both ends.
#[test]
fn the_relay_policy_uses_the_relay_even_where_a_direct_path_works() {
    let _turn = common::one_call_at_a_time();
    if !Coturn::installed() {
        return;
    }
    let Some(lab) = nat_lab(NatOptions::default()) else {
        return;
    };
    let _coturn = Coturn::rest(&lab.public, NatLab::SERVER, TURN_SECRET);
    let secret = secret_file(TURN_SECRET);
    let stun = stun_url();
    let mut serve = turn_flags(&secret);
    serve.extend(["--stun".into(), stun]);
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let home = light_home(&["--ice-transport-policy", "relay"]);
    let outcome = call_between_homes(&lab, &home, &serve, &[], "3s");
    assert_eq!(
        (outcome.reason.as_str(), outcome.code),
        ("hangup", 0),
        "{outcome:?}"
    );
    let stats = outcome.stats.expect("stats while connected");
    assert_eq!(
        path_types(&stats),
        ("relay".to_owned(), "relay".to_owned()),
        "{stats}"
    );
}

/// The README's recipe for a server on the internet, in one piece: `serve` with TLS
/// (a certificate for its address from a private CA), STUN and TURN credentials beside
/// coturn; clients that only trust the CA (`--ca-file`) and have no ICE flags. With
/// direct UDP between the NATs blocked, they log in over `wss://` and the call goes
/// through the relay.
#[test]
fn the_readme_recipe_tls_and_coturn_relays_a_call_between_homes_over_wss() {
    let _turn = common::one_call_at_a_time();
    let Some((lab, _coturn, secret)) = relaying_lab() else {
        return;
    };
    let pki_home = Home::new();
    let pki = make_pki(&pki_home, &NatLab::SERVER.to_string());
    let (cert, key, ca) = (path(&pki.cert), path(&pki.key), path(&pki.ca));
    let stun = stun_url();
    let mut serve = turn_flags(&secret);
    serve.extend(["--stun".into(), stun]);
    serve.extend(["--tls-cert".into(), cert, "--tls-key".into(), key]);
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let home = light_home(&["--ca-file", &ca]);
    let outcome = call_between_homes(&lab, &home, &serve, &[], "3s");
    assert_eq!(
        (outcome.reason.as_str(), outcome.code),
        ("hangup", 0),
        "{outcome:?}"
    );
    assert!(outcome.url.starts_with("wss://"), "{}", outcome.url);
    let stats = outcome.stats.expect("stats while connected");
    let (local, remote) = path_types(&stats);
    assert!(local == "relay" || remote == "relay", "{stats}");
}

/// `path` as a flag value.
fn path(path: &std::path::Path) -> String {
    path.display().to_string()
}
