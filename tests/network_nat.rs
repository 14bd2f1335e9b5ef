//! Calls across the network lab's NAT topology (rtc-netlab's `NatLab`): `serve` and
//! coturn in a "public" namespace, each client in a home behind its own nftables
//! masquerade router. The foundation of issue 10's TURN tests. Skipped (with the reason
//! printed) where namespaces cannot be made or coturn is not installed.

mod common;

use std::time::Duration;

use common::netlab::{Coturn, in_namespace, nat_lab};
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
}

/// `serve <serve_flags…>` in the public namespace, jerry listening in home1 and tom
/// calling it from home2 with `--hangup-after 3s`, both with `ice` as their ICE flags.
fn call_between_homes(lab: &NatLab, serve_flags: &[&str], ice: &[&str]) -> Outcome {
    // Light media; no --bind: each home gathers on its one interface (and lo). The
    // homes have no route to each other's private addresses, so only the NATs' public
    // addresses learnt through STUN (srflx candidates) or a relay can connect them.
    let media = test_pattern("160x120", "10");
    let home = Home::new()
        .with_media(&media)
        .with_media(&TONE_NO_SPEAKER)
        .with_media(ice)
        .with_wait(Duration::from_secs(40));
    let (_serve, url) = home.serve_via(
        &in_namespace(lab.public.name()),
        &format!("{}:0", NatLab::SERVER),
        serve_flags,
    );
    let jerry = home.spawn_via(
        &in_namespace(lab.home1.name()),
        "jerry",
        &listen_args(&url, "jerry", &["--auto-accept"]),
    );
    jerry.event(&[("event", "logged_in"), ("id", "jerry")]);
    let tom = home.spawn_via(
        &in_namespace(lab.home2.name()),
        "tom",
        &call_args(&url, "tom", "jerry", &["--hangup-after", "3s"]),
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
    Outcome {
        reason,
        code: tom.wait_exit(),
        stats,
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
    let from_flags = call_between_homes(&lab, &[], &["--ice-server", &stun]);
    assert_eq!((from_flags.reason.as_str(), from_flags.code), ("hangup", 0));

    let from_serve = call_between_homes(&lab, &["--stun", &stun], &[]);
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
    let outcome = call_between_homes(&lab, &[], &["--ice-server", &stun]);
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

/// With direct UDP between the NATs blocked, TURN credentials from `serve` alone get
/// the call through coturn's relay.
///
/// Ignored: it ends `ice-failed` (exit 10) with webrtc 0.21.1. Measured (coturn `-V`
/// counters, `RUST_LOG=rtc_ice=trace,rtc_turn=trace`): allocation, permissions and
/// channel bindings succeed; each side's ICE pings its relay pairs 8 times, but coturn
/// relays only the 4 that went out as Send indications before the channel was bound.
/// The ChannelData that follows leaves each home (nft counters in the NAT routers: 12
/// per side, 116-byte datagrams to 172.16.0.1:3478) yet coturn relays none of it and
/// sends no ChannelData back, so no check ever arrives (also with `--stun` added, and
/// with `--allow-loopback-peers`). coturn 4.6.1 `-V` logs `read_client_connection: wrote
/// to peer 0 bytes` for every one of them: `write_to_peerchannel` returns 0 when its
/// `recv_ttl != 0` / relay-socket guard skips the send (not yet checked: what the send
/// itself returns), so the drop is most likely on coturn's side of the ChannelData path
/// in this lab. The
/// `unhandled STUN packet` warnings are duplicate TURN responses (requests queued while
/// the driver writes are flushed go out a tick late together with their retransmission)
/// and are harmless. Run it with `--ignored` to reproduce.
#[test]
#[ignore = "the relay path does not connect with webrtc 0.21.1 yet"]
fn with_direct_udp_blocked_turn_from_serve_alone_relays_the_call() {
    let _turn = common::one_call_at_a_time();
    let Some(lab) = blocked_lab() else { return };
    let _coturn = Coturn::rest(&lab.public, NatLab::SERVER, TURN_SECRET);
    let secret = secret_file(TURN_SECRET);
    let turn = format!("turn:{}:3478", NatLab::SERVER);
    let secret_path = secret.path().to_str().unwrap();
    let outcome = call_between_homes(
        &lab,
        &["--turn", &turn, "--turn-secret-file", secret_path],
        &[],
    );
    assert_eq!(
        (outcome.reason.as_str(), outcome.code),
        ("hangup", 0),
        "{outcome:?}"
    );
    let stats = outcome.stats.expect("stats while connected");
    let (local, remote) = path_types(&stats);
    assert!(local == "relay" || remote == "relay", "{stats}");
}
