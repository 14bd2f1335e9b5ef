//! A call's media is peer to peer, so losing the signaling server must not end it:
//! `serve` killed mid-call and started again, the call goes on without a freeze and
//! ends normally later; a hangup while the server is away still reaches the peer (as an
//! RTCP BYE over the media path). All on 127.0.0.1.

mod common;

use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use common::process::{Home, LOOPBACK_ONLY, Proc, TONE_NO_SPEAKER, test_pattern};

/// A port free on 127.0.0.1 now, so `serve` can be started again on the same one.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("its address").port()
}

fn serve_on(home: &Home, port: u16) -> Proc {
    let addr = format!("127.0.0.1:{port}");
    let server = home.spawn("serve", &["serve", "--listen", &addr]);
    server.line_with("listening on ws://");
    server
}

fn home() -> Home {
    Home::new()
        .with_media(&test_pattern("160x120", "15"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY)
}

/// A connected call between tom (calling with `tom_extra`) and jerry through a server
/// on a port of its own; the server is SIGKILLed once both are connected, and both have
/// shown `server_lost`. Returns the port (to start a server on again), tom and jerry.
fn connected_call_then_kill_the_server(home: &Home, tom_extra: &[&str]) -> (u16, Proc, Proc) {
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}");
    let server = serve_on(home, port);
    let jerry = home.listener(&url, "jerry", &["--auto-accept"]);
    let tom = home.caller(&url, "tom", "jerry", tom_extra);
    for p in [&tom, &jerry] {
        p.event(&[("event", "state"), ("state", "connected")]);
    }
    thread::sleep(Duration::from_secs(2));
    drop(server); // SIGKILL: no goodbye to anyone
    for p in [&tom, &jerry] {
        p.event(&[("event", "server_lost")]);
    }
    (port, tom, jerry)
}

#[test]
fn a_server_killed_and_restarted_mid_call_does_not_end_or_freeze_it() {
    let _turn = common::one_call_at_a_time();
    let home = home();
    let (port, tom, jerry) = connected_call_then_kill_the_server(&home, &["--hangup-after", "9s"]);
    thread::sleep(Duration::from_secs(3));
    let _server = serve_on(&home, port);
    for p in [&tom, &jerry] {
        p.event(&[("event", "logged_in")]);
    }

    let ended = tom.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "hangup", "{ended}");
    assert_eq!(tom.wait_exit(), 0);
    let ended = jerry.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "remote-hangup", "{ended}");
    // The last stats, cumulative, come right before the end.
    let stats = jerry.last_seen(&[("event", "stats")]);
    // The video never stopped: no W3C freeze at jerry over the whole call.
    assert_eq!(stats["freeze_count"], 0, "{stats}");
    assert!(stats["frames_decoded"].as_u64().unwrap() > 60, "{stats}");
}

#[test]
fn a_hangup_while_the_server_is_away_reaches_the_peer_over_the_media_path() {
    let _turn = common::one_call_at_a_time();
    let home = home();
    let (_port, mut tom, jerry) = connected_call_then_kill_the_server(&home, &[]);
    tom.send("hangup");
    let ended = jerry.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "remote-hangup", "{ended}");
    assert_eq!(tom.wait_exit(), 0);
}
