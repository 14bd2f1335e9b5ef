//! Several `serve` instances sharing one real Redis (`serve --redis`): calls, busy,
//! refuse, cancel, no-answer, glare, conflict and rooms across instances give the same
//! messages as one server; a killed instance's caller moves to the other instance and
//! its call goes on; a restarted Redis is recovered from without restarting anyone.
//! Redis is Debian's `redis-server` on 127.0.0.1 (see `common::redis`).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::process::{Home, LOOPBACK_ONLY, TONE_NO_SPEAKER, test_pattern};
use common::redis::{Redis, health, wait_for_link};
use common::{RawClient, TestServer, call_id, id};
use rtc_cli::signaling::auth::{Auth, issue_token};
use rtc_cli::signaling::protocol::{
    ClientMessage, ErrorCode, RoomId, ServerEndReason, ServerMessage,
};
use rtc_cli::signaling::server::{PresenceSharing, ServerConfig};

/// Ring timeout of the in-process servers (short, for the no-answer case).
const RING: Duration = Duration::from_millis(2500);

/// A server on 127.0.0.1:0 with `redis` (or alone), once it has joined.
async fn instance(redis: Option<String>) -> TestServer {
    instance_with(redis, Auth::Open).await
}

async fn instance_with(redis: Option<String>, auth: Auth) -> TestServer {
    let clustered = redis.is_some();
    let server = TestServer::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ring_timeout: RING,
        redis,
        auth,
        presence: PresenceSharing::All,
        ..ServerConfig::default()
    })
    .await;
    if clustered {
        until_link(&server.url(), "up").await;
    }
    server
}

async fn until_link(url: &str, link: &'static str) -> serde_json::Value {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || wait_for_link(&url, link, Duration::from_secs(20)))
        .await
        .unwrap()
}

/// Two instances on one fresh Redis.
async fn pair(redis: &Redis) -> (TestServer, TestServer) {
    let a = instance(Some(redis.url())).await;
    let b = instance(Some(redis.url())).await;
    (a, b)
}

fn call(cid: &str, to: &str) -> ClientMessage {
    ClientMessage::Call {
        call_id: call_id(cid),
        to: id(to),
        room: None,
    }
}

/// The messages a client got during a scenario, in order.
type Transcript = Vec<ServerMessage>;

/// Everything that arrives within `wait` (the quiet period closes a step).
async fn drain(c: &mut RawClient, wait: Duration) -> Transcript {
    let mut got = Vec::new();
    while let Some(msg) = c.try_recv(wait).await {
        got.push(msg);
    }
    got
}

/// busy, refuse, cancel, no-answer and glare between tom and spike (on `a`) and jerry
/// (on `b`, which may be `a`): what each of the three received, step by step.
async fn call_outcomes(a: &TestServer, b: &TestServer) -> Vec<(String, Transcript)> {
    let quiet = Duration::from_millis(300);
    let mut tom = RawClient::login(a, "tom").await;
    let mut spike = RawClient::login(a, "spike").await;
    let mut jerry = RawClient::login(b, "jerry").await;
    let mut log = Vec::new();
    let mut step =
        async |name: &str, tom: &mut RawClient, spike: &mut RawClient, jerry: &mut RawClient| {
            for (who, c) in [("tom", tom), ("spike", spike), ("jerry", jerry)] {
                log.push((format!("{name}/{who}"), drain(c, quiet).await));
            }
        };
    // busy, then refuse: spike calls once tom's call rings, so which of two connections
    // reaches jerry first is not a race (across instances it was, on a loaded machine)
    tom.send(call("c1", "jerry")).await;
    assert!(matches!(tom.recv().await, ServerMessage::Ringing { .. }));
    spike.send(call("c2", "jerry")).await;
    step("busy", &mut tom, &mut spike, &mut jerry).await;
    jerry
        .send(ClientMessage::Refuse {
            call_id: call_id("c1"),
        })
        .await;
    step("refuse", &mut tom, &mut spike, &mut jerry).await;
    // cancel
    tom.send(call("c3", "jerry")).await;
    tom.send(ClientMessage::Cancel {
        call_id: call_id("c3"),
    })
    .await;
    step("cancel", &mut tom, &mut spike, &mut jerry).await;
    // no answer: the ring timer runs out
    tom.send(call("c4", "jerry")).await;
    tokio::time::sleep(RING).await;
    step("no-answer", &mut tom, &mut spike, &mut jerry).await;
    // glare: jerry calls tom while tom's call to jerry rings; tom's reached the server
    // first and survives
    tom.send(call("c5", "jerry")).await;
    assert!(matches!(tom.recv().await, ServerMessage::Ringing { .. }));
    jerry.send(call("c6", "tom")).await;
    step("glare", &mut tom, &mut spike, &mut jerry).await;
    // accept, SDP relay, hangup
    jerry
        .send(ClientMessage::Accept {
            call_id: call_id("c5"),
        })
        .await;
    assert!(matches!(tom.recv().await, ServerMessage::Accept { .. }));
    tom.send(ClientMessage::Offer {
        call_id: call_id("c5"),
        sdp: "v=0 offer".into(),
    })
    .await;
    assert!(matches!(jerry.recv().await, ServerMessage::Offer { .. }));
    jerry
        .send(ClientMessage::Answer {
            call_id: call_id("c5"),
            sdp: "v=0 answer".into(),
        })
        .await;
    jerry
        .send(ClientMessage::Hangup {
            call_id: call_id("c5"),
        })
        .await;
    step("connect-and-hang-up", &mut tom, &mut spike, &mut jerry).await;
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_across_two_instances_give_the_messages_of_one_server() {
    let alone = instance(None).await;
    let single = call_outcomes(&alone, &alone).await;
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let clustered = call_outcomes(&a, &b).await;
    // The single server's transcript is the reference; it must hold what each step is
    // about, so a server that said nothing could not pass.
    let of = |step: &str| &single.iter().find(|(s, _)| s == step).unwrap().1;
    assert!(
        matches!(&of("busy/spike")[..], [ServerMessage::Busy { .. }]),
        "{single:?}"
    );
    assert!(matches!(
        &of("refuse/tom")[..],
        [ServerMessage::Refuse { .. }]
    ));
    assert!(matches!(
        &of("cancel/jerry")[..],
        [ServerMessage::Incoming { .. }, ServerMessage::Cancel { .. }]
    ));
    assert!(matches!(
        &of("no-answer/jerry")[..],
        [
            ServerMessage::Incoming { .. },
            ServerMessage::CallEnded {
                reason: ServerEndReason::NoAnswer,
                ..
            }
        ]
    ));
    assert!(of("glare/jerry").iter().any(|m| matches!(
        m,
        ServerMessage::CallEnded { reason: ServerEndReason::Glare, replaced_by: Some(c), .. } if *c == call_id("c5")
    )));
    assert!(matches!(
        &of("connect-and-hang-up/tom")[..],
        [ServerMessage::Answer { .. }, ServerMessage::Hangup { .. }]
    ));
    for ((step, want), (_, got)) in single.iter().zip(&clustered) {
        assert_eq!(got, want, "{step}: across instances vs one server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_login_on_another_instance_kicks_the_older_exactly_once() {
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let mut tom = RawClient::login(&a, "tom").await;
    let mut old = RawClient::login(&a, "jerry").await;
    let mut new = RawClient::login(&b, "jerry").await;
    let got = drain(&mut old, Duration::from_millis(500)).await;
    assert!(
        matches!(&got[..], [ServerMessage::Conflict { .. }]),
        "exactly one conflict: {got:?}"
    );
    assert!(old.closed().await);
    // tom's call now reaches the newer session on the other instance.
    tom.send(call("c", "jerry")).await;
    assert!(matches!(tom.recv().await, ServerMessage::Ringing { .. }));
    assert!(matches!(new.recv().await, ServerMessage::Incoming { .. }));
    let stray = drain(&mut new, Duration::from_millis(300)).await;
    assert!(
        stray.is_empty(),
        "no conflict for the newer session: {stray:?}"
    );
}

/// Logs `who` in on `server` with `token`, subscribed to presence; the presence list
/// of its `login_ok`.
async fn login_with_token(
    server: &TestServer,
    who: &str,
    token: &str,
) -> (RawClient, Vec<rtc_cli::signaling::protocol::Presence>) {
    let mut c = RawClient::connect(server).await;
    c.send(ClientMessage::Login {
        version: rtc_cli::signaling::protocol::PROTOCOL_VERSION,
        id: id(who),
        token: Some(token.to_owned()),
        presence: true,
        resume: vec![],
    })
    .await;
    match c.recv().await {
        ServerMessage::LoginOk {
            presence: Some(list),
            ..
        } => (c, list),
        other => panic!("{who}: expected login_ok with presence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_presence_hold_across_instances() {
    let redis = Redis::start();
    let secret = b"0123456789abcdef0123456789abcdef".to_vec();
    let auth = || Auth::Token {
        secret: secret.clone(),
    };
    let a = instance_with(Some(redis.url()), auth()).await;
    let b = instance_with(Some(redis.url()), auth()).await;
    let token = |who: &str| issue_token(&secret, &id(who), Duration::from_secs(60)).unwrap();
    // A token signed with the shared secret is good on either instance.
    let (_jerry, _) = login_with_token(&b, "jerry", &token("jerry")).await;
    let (mut tom, online) = login_with_token(&a, "tom", &token("tom")).await;
    let ids: Vec<&str> = online.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["jerry"], "tom on A sees jerry on B online");
    let (_spike, _) = login_with_token(&b, "spike", &token("spike")).await;
    let change = tom.recv().await;
    assert!(
        matches!(&change, ServerMessage::PresenceChanged { users } if users.iter().any(|p| p.id == id("spike"))),
        "{change:?}"
    );
    let (_, h) = health(&a.url()).unwrap();
    assert_eq!(
        (
            h["store"].as_str(),
            h["logged_in"].as_u64(),
            h["local"].as_u64()
        ),
        (Some("redis"), Some(3), Some(1)),
        "{h}"
    );
    // A token for another id is refused on the other instance too.
    let mut bad = RawClient::connect(&a).await;
    bad.send(ClientMessage::Login {
        version: rtc_cli::signaling::protocol::PROTOCOL_VERSION,
        id: id("mallory"),
        token: Some(token("jerry")),
        presence: false,
        resume: vec![],
    })
    .await;
    assert!(matches!(
        bad.recv().await,
        ServerMessage::Error {
            code: ErrorCode::AuthFailed,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spread_over_two_instances_works() {
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let room = RoomId::parse("standup").unwrap();
    let join = |room: &RoomId| ClientMessage::JoinRoom { room: room.clone() };
    let mut ann = RawClient::login(&a, "ann").await;
    let mut bob = RawClient::login(&b, "bob").await;
    let mut cid = RawClient::login(&a, "cid").await;
    ann.send(join(&room)).await;
    assert!(
        matches!(ann.recv().await, ServerMessage::RoomJoined { members, .. } if members.is_empty())
    );
    bob.send(join(&room)).await;
    assert!(
        matches!(bob.recv().await, ServerMessage::RoomJoined { members, .. } if members == [id("ann")])
    );
    assert!(
        matches!(ann.recv().await, ServerMessage::MemberJoined { id: who, .. } if who == id("bob"))
    );
    cid.send(join(&room)).await;
    assert!(
        matches!(cid.recv().await, ServerMessage::RoomJoined { members, .. } if members == [id("ann"), id("bob")])
    );
    for c in [&mut ann, &mut bob] {
        assert!(
            matches!(c.recv().await, ServerMessage::MemberJoined { id: who, .. } if who == id("cid"))
        );
    }
    // A room call from ann (instance a) to bob (instance b).
    ann.send(ClientMessage::Call {
        call_id: call_id("ab"),
        to: id("bob"),
        room: Some(room.clone()),
    })
    .await;
    assert!(matches!(ann.recv().await, ServerMessage::Ringing { .. }));
    assert!(matches!(bob.recv().await, ServerMessage::Incoming { room: Some(r), .. } if r == room));
    bob.send(ClientMessage::Accept {
        call_id: call_id("ab"),
    })
    .await;
    assert!(matches!(ann.recv().await, ServerMessage::Accept { .. }));
    // bob leaves: ann's call with him ends with his hangup; ann and cid see him go.
    bob.send(ClientMessage::LeaveRoom { room: room.clone() })
        .await;
    assert!(matches!(ann.recv().await, ServerMessage::Hangup { from, .. } if from == id("bob")));
    assert!(
        matches!(ann.recv().await, ServerMessage::MemberLeft { id: who, .. } if who == id("bob"))
    );
    assert!(
        matches!(cid.recv().await, ServerMessage::MemberLeft { id: who, .. } if who == id("bob"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_recover_from_a_redis_restart_without_being_restarted() {
    let mut redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let mut jerry = RawClient::login(&b, "jerry").await;
    redis.kill();
    let h = until_link(&a.url(), "down").await;
    assert_eq!(h["status"], "degraded", "{h}");
    let (status, _) = health(&a.url()).unwrap();
    assert_eq!(status, 503);
    // A login now is refused with a code that says why, and the connection closes.
    let mut late = RawClient::connect(&a).await;
    late.send(ClientMessage::Login {
        version: rtc_cli::signaling::protocol::PROTOCOL_VERSION,
        id: id("late"),
        token: None,
        presence: false,
        resume: vec![],
    })
    .await;
    assert!(matches!(
        late.recv().await,
        ServerMessage::Error {
            code: ErrorCode::Unavailable,
            ..
        }
    ));
    assert!(late.closed().await);

    redis.start_again();
    for s in [&a, &b] {
        until_link(&s.url(), "up").await;
    }
    // jerry, logged in before the outage, is still reachable from the other instance.
    let mut tom = RawClient::login(&a, "tom").await;
    tom.send(call("after", "jerry")).await;
    assert!(matches!(tom.recv().await, ServerMessage::Ringing { .. }));
    assert!(matches!(jerry.recv().await, ServerMessage::Incoming { .. }));
    let (status, h) = health(&b.url()).unwrap();
    assert_eq!((status, h["calls"].as_u64()), (200, Some(1)), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_before_redis_serves_once_redis_answers() {
    let mut redis = Redis::start();
    redis.kill();
    let a = TestServer::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis: Some(redis.url()),
        ..ServerConfig::default()
    })
    .await;
    let (status, h) = health(&a.url()).unwrap();
    assert_eq!((status, h["redis"].as_str()), (503, Some("joining")), "{h}");
    let mut early = RawClient::connect(&a).await;
    early
        .send(ClientMessage::Login {
            version: rtc_cli::signaling::protocol::PROTOCOL_VERSION,
            id: id("early"),
            token: None,
            presence: false,
            resume: vec![],
        })
        .await;
    assert!(matches!(
        early.recv().await,
        ServerMessage::Error {
            code: ErrorCode::Unavailable,
            ..
        }
    ));
    redis.start_again();
    until_link(&a.url(), "up").await;
    RawClient::login(&a, "early").await;
}

/// `kill -9` of the instance the caller is on, mid-call: the caller logs in on the
/// other instance within 5 s carrying the call over (`resume`), the media never stops
/// (no video freeze, no audio gap over 1 s at the callee), and the call ends normally
/// later with a hangup the other instance relays. A user who knew only the killed
/// instance expires with it.
#[test]
fn a_killed_instance_mid_call_moves_its_caller_to_the_other_and_the_call_goes_on() {
    let _turn = common::one_call_at_a_time();
    let redis = Redis::start();
    let home = Home::new()
        .with_media(&test_pattern("160x120", "15"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY);
    let (a, url_a) = serve(&home, "serve-a", &redis);
    let (_b, url_b) = serve(&home, "serve-b", &redis);
    for u in [&url_a, &url_b] {
        wait_for_link(u, "up", Duration::from_secs(20));
    }
    let wav = home.path("jerry.wav");
    let wav_arg = wav.to_str().unwrap();
    let jerry = home.listener(
        &url_b,
        "jerry",
        &["--auto-accept", "--record-audio", wav_arg],
    );
    let _spike = home.listener(&url_a, "spike", &[]);
    let mut tom_args = vec!["--headless", "--server", &url_a, "--server", &url_b];
    tom_args.extend(["--id", "tom", "call", "jerry", "--hangup-after", "12s"]);
    let tom = home.spawn("tom", &tom_args);
    for p in [&tom, &jerry] {
        p.event(&[("event", "state"), ("state", "connected")]);
    }
    thread::sleep(Duration::from_secs(2));
    let killed = Instant::now();
    drop(a); // SIGKILL: no goodbye to anyone
    tom.event(&[("event", "server_lost")]);
    let back = tom.event(&[("event", "logged_in")]);
    let moved_after = killed.elapsed();
    assert_eq!(back["server"], url_b, "{back}");
    assert!(
        moved_after < Duration::from_secs(5),
        "back after {moved_after:?}"
    );
    // The other instance holds the call for the moved caller.
    let (_, h) = health(&url_b).unwrap();
    assert_eq!(
        (h["local"].as_u64(), h["calls"].as_u64()),
        (Some(2), Some(1)),
        "{h}"
    );
    // spike (on A only) is logged out once A has been silent for 10 s.
    let deadline = killed + Duration::from_secs(20);
    while health(&url_b).unwrap().1["logged_in"] != 2 {
        assert!(
            Instant::now() < deadline,
            "spike never expired: {:?}",
            health(&url_b)
        );
        thread::sleep(Duration::from_millis(200));
    }
    let expired_after = killed.elapsed();
    assert!(
        expired_after >= Duration::from_secs(9),
        "expired after {expired_after:?}"
    );

    let ended = tom.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "hangup", "{ended}");
    let ended = jerry.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "remote-hangup", "{ended}");
    let stats = jerry.last_seen(&[("event", "stats")]);
    assert_eq!(stats["freeze_count"], 0, "{stats}");
    assert_eq!(tom.wait_exit(), 0);
    drop(jerry);
    let gap = longest_silence(&common::media_check::read_wav_48k(&wav));
    assert!(gap < Duration::from_secs(1), "the tone stopped for {gap:?}");
}

/// `serve --redis` as process `name`, with the ws:// URL it printed.
fn serve(home: &Home, name: &str, redis: &Redis) -> (common::process::Proc, String) {
    let url = redis.url();
    let server = home.spawn(name, &["serve", "--listen", "127.0.0.1:0", "--redis", &url]);
    let line = server.line_with("listening on ");
    let ws = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no ws:// URL in {line:?}"))
        .to_owned();
    (server, ws)
}

/// The longest run of 20 ms windows below -40 dBFS between the first and the last
/// window of the tone.
fn longest_silence(samples: &[f32]) -> Duration {
    let loud: Vec<bool> = samples
        .chunks(960)
        .map(|w| common::audio_match::rms(w) > 0.01)
        .collect();
    let (Some(first), Some(last)) = (loud.iter().position(|&l| l), loud.iter().rposition(|&l| l))
    else {
        return Duration::MAX;
    };
    let mut longest = 0;
    let mut run = 0;
    for &l in &loud[first..=last] {
        run = if l { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    Duration::from_millis(20 * longest as u64)
}
