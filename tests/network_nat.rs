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
    let outcome = call_between_homes(&lab, &[], &["--ice-server", &stun]);
    assert_eq!((outcome.reason.as_str(), outcome.code), ("hangup", 0));
}

/// STUN handed out by `serve` alone (no ICE flags on the clients) connects the homes,
/// and the stats show the path: the NATs' addresses (srflx), no relay.
#[test]
fn stun_from_serve_alone_connects_the_homes_over_srflx() {
    let _turn = common::one_call_at_a_time();
    if !Coturn::installed() {
        return;
    }
    let Some(lab) = nat_lab(NatOptions::default()) else {
        return;
    };
    let _stun = Coturn::stun_only(&lab.public, NatLab::SERVER);
    let stun = stun_url();
    let outcome = call_between_homes(&lab, &["--stun", &stun], &[]);
    assert_eq!(
        (outcome.reason.as_str(), outcome.code),
        ("hangup", 0),
        "{outcome:?}"
    );
    let stats = outcome.stats.expect("stats while connected");
    let (local, remote) = path_types(&stats);
    eprintln!("selected pair: {}", stats["path"]);
    assert!(
        [&local, &remote].iter().any(|t| *t == "srflx"),
        "expected a srflx end: {stats}"
    );
    assert!(local != "relay" && remote != "relay", "{stats}");
}

/// The negative control of issue 10's relay topology: with UDP between the NATs dropped,
/// srflx candidates cannot connect the homes (only a relay in the public namespace can).
#[test]
fn with_direct_udp_between_the_nats_blocked_a_stun_only_call_fails() {
    let _turn = common::one_call_at_a_time();
    if !Coturn::installed() {
        return;
    }
    let options = NatOptions {
        block_direct_udp: true,
        ..NatOptions::default()
    };
    let Some(lab) = nat_lab(options) else { return };
    let _stun = Coturn::stun_only(&lab.public, NatLab::SERVER);
    let stun = stun_url();
    let outcome = call_between_homes(&lab, &[], &["--ice-server", &stun]);
    assert_eq!(outcome.reason, "ice-failed");
    assert_ne!(outcome.code, 0);
}
