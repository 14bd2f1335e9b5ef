//! The signaling server, driven message by message by raw protocol clients on
//! 127.0.0.1: every call outcome, presence, conflict, glare, spoofing, bad input,
//! token auth and flooding.

mod common;

use std::time::Duration;

use common::{RawClient, TestServer, call_id, id, ring};
use rtc_cli::signaling::auth::{Auth, issue_token};
use rtc_cli::signaling::protocol::{
    ClientMessage, ErrorCode, IceCandidate, MAX_MESSAGE_BYTES, MediaState, PROTOCOL_VERSION,
    PresenceStatus, ServerEndReason, ServerMessage,
};
use rtc_cli::signaling::server::{PresenceSharing, ServerConfig};

fn expect_error(msg: ServerMessage, want: ErrorCode) {
    match msg {
        ServerMessage::Error { code, .. } => assert_eq!(code, want),
        other => panic!("expected error {want}, got {other:?}"),
    }
}

#[tokio::test]
async fn accepted_call_relays_sdp_and_candidates_then_caller_hangs_up() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;

    jerry
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    assert_eq!(
        tom.recv().await,
        ServerMessage::Accept {
            call_id: c.clone(),
            from: id("jerry")
        }
    );
    tom.send(ClientMessage::Offer {
        call_id: c.clone(),
        sdp: "v=0 offer".into(),
    })
    .await;
    assert_eq!(
        jerry.recv().await,
        ServerMessage::Offer {
            call_id: c.clone(),
            from: id("tom"),
            sdp: "v=0 offer".into()
        }
    );
    jerry
        .send(ClientMessage::Answer {
            call_id: c.clone(),
            sdp: "v=0 answer".into(),
        })
        .await;
    assert!(matches!(tom.recv().await, ServerMessage::Answer { sdp, .. } if sdp == "v=0 answer"));
    let cand = IceCandidate {
        candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    tom.send(ClientMessage::Candidate {
        call_id: c.clone(),
        candidate: cand.clone(),
    })
    .await;
    assert!(
        matches!(jerry.recv().await, ServerMessage::Candidate { candidate, from, .. } if candidate == cand && from == id("tom"))
    );
    tom.send(ClientMessage::EndOfCandidates { call_id: c.clone() })
        .await;
    assert!(matches!(
        jerry.recv().await,
        ServerMessage::EndOfCandidates { .. }
    ));
    let muted = MediaState {
        muted: true,
        camera: false,
    };
    jerry
        .send(ClientMessage::MediaState {
            call_id: c.clone(),
            state: muted,
        })
        .await;
    assert!(matches!(tom.recv().await, ServerMessage::MediaState { state, .. } if state == muted));

    tom.send(ClientMessage::Hangup { call_id: c.clone() }).await;
    assert_eq!(
        jerry.recv().await,
        ServerMessage::Hangup {
            call_id: c.clone(),
            from: id("tom")
        }
    );
    // The call is gone: both can call again.
    let c2 = ring(&mut jerry, &mut tom, "c2").await;
    assert_ne!(c, c2);
}

#[tokio::test]
async fn callee_can_hang_up_an_accepted_call() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    tom.recv().await;
    jerry
        .send(ClientMessage::Hangup { call_id: c.clone() })
        .await;
    assert!(matches!(tom.recv().await, ServerMessage::Hangup { from, .. } if from == id("jerry")));
}

#[tokio::test]
async fn refused_call_tells_the_caller() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry
        .send(ClientMessage::Refuse { call_id: c.clone() })
        .await;
    assert_eq!(
        tom.recv().await,
        ServerMessage::Refuse {
            call_id: c,
            from: id("jerry")
        }
    );
}

#[tokio::test]
async fn canceled_call_tells_the_callee() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    tom.send(ClientMessage::Cancel { call_id: c.clone() }).await;
    assert_eq!(
        jerry.recv().await,
        ServerMessage::Cancel {
            call_id: c.clone(),
            from: id("tom")
        }
    );
    // Accepting a canceled call is an error, not a zombie call.
    jerry.send(ClientMessage::Accept { call_id: c }).await;
    expect_error(jerry.recv().await, ErrorCode::UnknownCall);
}

#[tokio::test]
async fn busy_callee_gets_busy_and_no_second_incoming() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let mut spike = RawClient::login(&server, "spike").await;
    ring(&mut tom, &mut jerry, "c1").await;
    spike
        .send(ClientMessage::Call {
            call_id: call_id("c2"),
            to: id("jerry"),
            room: None,
        })
        .await;
    assert_eq!(
        spike.recv().await,
        ServerMessage::Busy {
            call_id: call_id("c2"),
            from: id("jerry")
        }
    );
    jerry.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn calling_an_offline_user_ends_with_offline() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    tom.send(ClientMessage::Call {
        call_id: call_id("c1"),
        to: id("nobody"),
        room: None,
    })
    .await;
    assert!(matches!(
        tom.recv().await,
        ServerMessage::CallEnded {
            reason: ServerEndReason::Offline,
            ..
        }
    ));
}

#[tokio::test]
async fn unanswered_call_ends_with_no_answer_for_both() {
    let server = TestServer::with_ring_timeout(Duration::from_millis(300)).await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    for client in [&mut tom, &mut jerry] {
        assert_eq!(
            client.recv().await,
            ServerMessage::CallEnded {
                call_id: c.clone(),
                reason: ServerEndReason::NoAnswer,
                replaced_by: None
            }
        );
    }
}

#[tokio::test]
async fn accepted_call_does_not_time_out() {
    let server = TestServer::with_ring_timeout(Duration::from_millis(200)).await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry.send(ClientMessage::Accept { call_id: c }).await;
    tom.recv().await;
    tom.expect_silence(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn vanished_client_ends_the_call_with_peer_gone() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    tom.recv().await;
    jerry.vanish();
    assert_eq!(
        tom.recv().await,
        ServerMessage::CallEnded {
            call_id: c,
            reason: ServerEndReason::PeerGone,
            replaced_by: None
        }
    );
    // jerry is offline now.
    tom.send(ClientMessage::Call {
        call_id: call_id("c2"),
        to: id("jerry"),
        room: None,
    })
    .await;
    assert!(matches!(
        tom.recv().await,
        ServerMessage::CallEnded {
            reason: ServerEndReason::Offline,
            ..
        }
    ));
}

#[tokio::test]
async fn silent_client_is_declared_gone_after_the_heartbeat_window() {
    let server = TestServer::with_fast_heartbeat().await;
    let mut tom = RawClient::login(&server, "tom").await;
    // jerry logs in and then never reads again, so never answers a ping.
    let mut jerry = RawClient::login(&server, "jerry").await;
    tom.send(ClientMessage::Call {
        call_id: call_id("c1"),
        to: id("jerry"),
        room: None,
    })
    .await;
    assert!(matches!(tom.recv().await, ServerMessage::Ringing { .. }));
    // tom keeps reading (answering pings); jerry is silent.
    assert!(matches!(
        tom.recv().await,
        ServerMessage::CallEnded {
            reason: ServerEndReason::PeerGone,
            ..
        }
    ));
    assert!(jerry.closed().await);
}

#[tokio::test]
async fn newer_login_wins_and_the_older_session_gets_conflict() {
    let server = TestServer::open().await;
    let mut old = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut old, &mut jerry, "c1").await;
    let mut new = RawClient::login(&server, "tom").await;
    assert!(matches!(old.recv().await, ServerMessage::Conflict { .. }));
    assert!(old.closed().await);
    // The old session's call ended for the peer.
    assert_eq!(
        jerry.recv().await,
        ServerMessage::CallEnded {
            call_id: c,
            reason: ServerEndReason::PeerGone,
            replaced_by: None
        }
    );
    // Calls now reach the new session.
    ring(&mut jerry, &mut new, "c2").await;
}

#[tokio::test]
async fn glare_results_in_exactly_one_call_both_sides_agree_on() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    tom.send(ClientMessage::Call {
        call_id: call_id("from-tom"),
        to: id("jerry"),
        room: None,
    })
    .await;
    jerry
        .send(ClientMessage::Call {
            call_id: call_id("from-jerry"),
            to: id("tom"),
            room: None,
        })
        .await;
    // Gather what each side hears.
    let mut heard = Vec::new();
    for client in [&mut tom, &mut jerry] {
        let mut msgs = Vec::new();
        while let Some(m) = client.try_recv(Duration::from_millis(300)).await {
            msgs.push(m);
        }
        heard.push(msgs);
    }
    let all: Vec<&ServerMessage> = heard.iter().flatten().collect();
    let survivors: Vec<_> = all
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Incoming { call_id, .. } => Some(call_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(survivors.len(), 1, "exactly one incoming: {all:?}");
    let kept = &survivors[0];
    let glare: Vec<_> = all
        .iter()
        .filter_map(|m| match m {
            ServerMessage::CallEnded {
                reason: ServerEndReason::Glare,
                replaced_by,
                ..
            } => Some(replaced_by.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(glare, vec![Some(kept.clone())], "{all:?}");
    // The surviving call works: the callee accepts it.
    let (caller, callee) = if heard[0]
        .iter()
        .any(|m| matches!(m, ServerMessage::Incoming { .. }))
    {
        (&mut jerry, &mut tom)
    } else {
        (&mut tom, &mut jerry)
    };
    callee
        .send(ClientMessage::Accept {
            call_id: kept.clone(),
        })
        .await;
    assert!(
        matches!(caller.recv().await, ServerMessage::Accept { call_id, .. } if call_id == *kept)
    );
}

#[tokio::test]
async fn nobody_can_act_on_or_speak_into_a_call_they_are_not_in() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let mut spike = RawClient::login(&server, "spike").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    for msg in [
        ClientMessage::Accept { call_id: c.clone() },
        ClientMessage::Hangup { call_id: c.clone() },
        ClientMessage::Offer {
            call_id: c.clone(),
            sdp: "evil".into(),
        },
    ] {
        spike.send(msg).await;
        expect_error(spike.recv().await, ErrorCode::UnknownCall);
    }
    // The caller cannot accept its own call, and SDP waits for acceptance.
    tom.send(ClientMessage::Accept { call_id: c.clone() }).await;
    expect_error(tom.recv().await, ErrorCode::BadState);
    tom.send(ClientMessage::Offer {
        call_id: c.clone(),
        sdp: "early".into(),
    })
    .await;
    expect_error(tom.recv().await, ErrorCode::BadState);
    jerry.expect_silence(Duration::from_millis(200)).await;
    // A forged `from` is ignored: the server stamps the real sender.
    jerry
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    tom.recv().await;
    tom.send_raw(&format!(
        r#"{{"type":"media_state","call_id":"{c}","muted":true,"camera":true,"from":"spike"}}"#
    ))
    .await;
    assert!(
        matches!(jerry.recv().await, ServerMessage::MediaState { from, .. } if from == id("tom"))
    );
}

#[tokio::test]
async fn malformed_input_gets_coded_errors_and_the_connection_stays_open() {
    let server = TestServer::open().await;
    let mut c = RawClient::connect(&server).await;
    c.send(ClientMessage::Call {
        call_id: call_id("early"),
        to: id("jerry"),
        room: None,
    })
    .await;
    expect_error(c.recv().await, ErrorCode::NotLoggedIn);
    c.send_raw(r#"{"type":"login","version":1,"id":"bad id"}"#)
        .await;
    expect_error(c.recv().await, ErrorCode::BadId);
    let mut c = RawClient::login(&server, "tom").await;
    let cases: [(&str, ErrorCode); 5] = [
        ("this is not json", ErrorCode::BadJson),
        (r#"{"no_type":1}"#, ErrorCode::BadJson),
        (r#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (r#"{"type":"call","to":"jerry"}"#, ErrorCode::BadMessage),
        (
            r#"{"type":"call","call_id":"c","to":"j e r r y"}"#,
            ErrorCode::BadId,
        ),
    ];
    for (text, code) in cases {
        c.send_raw(text).await;
        expect_error(c.recv().await, code);
    }
    c.send_raw(&format!(
        r#"{{"type":"offer","call_id":"c","sdp":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    ))
    .await;
    expect_error(c.recv().await, ErrorCode::TooLarge);
    c.send_binary(b"\x00\x01").await;
    expect_error(c.recv().await, ErrorCode::BinaryFrame);
    c.send(ClientMessage::Login {
        version: PROTOCOL_VERSION,
        id: id("tom"),
        token: None,
        presence: false,
        resume: vec![],
    })
    .await;
    expect_error(c.recv().await, ErrorCode::AlreadyLoggedIn);
    c.send(ClientMessage::Call {
        call_id: call_id("self"),
        to: id("tom"),
        room: None,
    })
    .await;
    expect_error(c.recv().await, ErrorCode::SelfCall);
    // Still logged in and served.
    let mut jerry = RawClient::login(&server, "jerry").await;
    ring(&mut c, &mut jerry, "c-after").await;
}

#[tokio::test]
async fn wrong_protocol_version_is_refused_and_closed() {
    let server = TestServer::open().await;
    let mut c = RawClient::connect(&server).await;
    c.send(ClientMessage::Login {
        version: 99,
        id: id("tom"),
        token: None,
        presence: false,
        resume: vec![],
    })
    .await;
    expect_error(c.recv().await, ErrorCode::UnsupportedVersion);
    assert!(c.closed().await);
}

#[tokio::test]
async fn a_flooding_client_does_not_delay_a_call_between_others() {
    let server = TestServer::open().await;
    let mut flooder = RawClient::login(&server, "flood").await;
    let flood = tokio::spawn(async move {
        // Never reads its replies: its own queue fills and replies are dropped.
        for _ in 0..20_000 {
            flooder.send_raw("garbage").await;
        }
        flooder
    });
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry.send(ClientMessage::Accept { call_id: c }).await;
    assert!(matches!(tom.recv().await, ServerMessage::Accept { .. }));
    let _ = flood.await;
}

async fn token_login(
    server: &common::TestServer,
    who: &str,
    token: Option<String>,
) -> ServerMessage {
    let mut c = RawClient::connect(server).await;
    c.send(ClientMessage::Login {
        version: PROTOCOL_VERSION,
        id: id(who),
        token,
        presence: false,
        resume: vec![],
    })
    .await;
    c.recv().await
}

#[tokio::test]
async fn token_auth_accepts_good_tokens_and_refuses_expired_forged_and_missing_ones() {
    let secret = b"an-hs256-secret-of-at-least-32-bytes!".to_vec();
    let server = TestServer::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: Auth::Token {
            secret: secret.clone(),
        },
        ..ServerConfig::default()
    })
    .await;
    let good = issue_token(&secret, &id("tom"), Duration::from_secs(60)).unwrap();
    assert!(matches!(
        token_login(&server, "tom", Some(good.clone())).await,
        ServerMessage::LoginOk { .. }
    ));
    // Someone else's token does not log in as them.
    expect_error(
        token_login(&server, "jerry", Some(good)).await,
        ErrorCode::AuthFailed,
    );
    let forged = issue_token(
        b"not-the-servers-secret-but-long-enough",
        &id("tom"),
        Duration::from_secs(60),
    )
    .unwrap();
    expect_error(
        token_login(&server, "tom", Some(forged)).await,
        ErrorCode::AuthFailed,
    );
    let expired = issue_token(&secret, &id("tom"), Duration::ZERO).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    expect_error(
        token_login(&server, "tom", Some(expired)).await,
        ErrorCode::AuthFailed,
    );
    expect_error(
        token_login(&server, "tom", None).await,
        ErrorCode::AuthFailed,
    );
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_to_come_back() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    server.stop().await;
    assert!(
        matches!(tom.recv().await, ServerMessage::Shutdown { retry_after_ms, .. } if retry_after_ms > 0)
    );
    assert!(tom.closed().await);
}

#[tokio::test]
async fn logout_ends_the_call_as_a_hangup_or_cancel() {
    let server = TestServer::open().await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c1").await;
    jerry
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    tom.recv().await;
    jerry.send(ClientMessage::Logout).await;
    assert_eq!(
        tom.recv().await,
        ServerMessage::Hangup {
            call_id: c,
            from: id("jerry")
        }
    );
    assert!(jerry.closed().await);

    let mut jerry = RawClient::login(&server, "jerry").await;
    let c = ring(&mut tom, &mut jerry, "c2").await;
    tom.send(ClientMessage::Logout).await;
    assert_eq!(
        jerry.recv().await,
        ServerMessage::Cancel {
            call_id: c,
            from: id("tom")
        }
    );
}

#[tokio::test]
async fn login_ok_hands_out_stun_and_turn_rest_credentials_that_expire_after_the_ttl() {
    use rtc_cli::signaling::turn::{IceOffer, TurnRest, TurnSecret};
    use std::time::{SystemTime, UNIX_EPOCH};
    let secret = TurnSecret::new(b"north-wind-secret-0123".to_vec()).unwrap();
    let server = TestServer::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ice: IceOffer {
            stun: vec!["stun:10.0.0.1:3478".into()],
            turn: Some(TurnRest {
                urls: vec!["turn:10.0.0.1:3478".into()],
                secret: secret.clone(),
                ttl: Duration::from_secs(3600),
            }),
        },
        ..ServerConfig::default()
    })
    .await;
    let mut tom = RawClient::connect(&server).await;
    tom.send_raw(r#"{"type":"login","version":1,"id":"tom"}"#)
        .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ServerMessage::LoginOk { ice_servers, .. } = tom.recv().await else {
        panic!("expected login_ok");
    };
    assert_eq!(ice_servers.len(), 2, "{ice_servers:?}");
    assert_eq!(ice_servers[0].urls, ["stun:10.0.0.1:3478"]);
    assert_eq!(ice_servers[0].credential, None);
    let turn = &ice_servers[1];
    assert_eq!(turn.urls, ["turn:10.0.0.1:3478"]);
    let username = turn.username.as_deref().unwrap();
    let (expiry, who) = username.split_once(':').unwrap();
    assert_eq!(who, "tom");
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (now + 3590..=now + 3610).contains(&expiry),
        "expiry {expiry} vs now {now}"
    );
    assert_eq!(
        turn.credential.as_deref(),
        Some(secret.credential(username).as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn login_ok_without_ice_servers_leaves_the_field_out() {
    let server = TestServer::open().await;
    let mut tom = RawClient::connect(&server).await;
    tom.send_raw(r#"{"type":"login","version":1,"id":"tom"}"#)
        .await;
    let msg = tom.recv().await;
    let json = serde_json::to_string(&msg).unwrap();
    assert!(!json.contains("ice_servers"), "{json}");
    server.stop().await;
}

/// The statuses of a `presence_changed` as (id, status) pairs.
fn presence_changes(msg: ServerMessage) -> Vec<(String, PresenceStatus)> {
    match msg {
        ServerMessage::PresenceChanged { users } => users
            .into_iter()
            .map(|p| (p.id.as_str().to_owned(), p.status))
            .collect(),
        other => panic!("expected presence_changed, got {other:?}"),
    }
}

#[tokio::test]
async fn presence_subscribers_see_logins_calls_and_logouts_within_a_second() {
    let server = TestServer::with_ring_timeout(Duration::from_secs(45)).await;
    let mut spike = RawClient::login(&server, "spike").await;
    let (mut tom, list) = RawClient::login_with(&server, "tom", true).await;
    let list = list.expect("the server shares presence by default");
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].status),
        ("spike", PresenceStatus::Available)
    );
    let wait = Duration::from_secs(1);
    // The batch of spike's and tom's own logins, which the snapshot already covered.
    while let Some(msg) = tom.try_recv(Duration::from_millis(400)).await {
        presence_changes(msg);
    }
    let mut jerry = RawClient::login(&server, "jerry").await;
    let changed = tom.try_recv(wait).await.expect("jerry's login within 1 s");
    assert_eq!(
        presence_changes(changed),
        [("jerry".to_owned(), PresenceStatus::Available)]
    );
    ring(&mut jerry, &mut spike, "c1").await;
    let changed = tom.try_recv(wait).await.expect("the call within 1 s");
    assert_eq!(
        presence_changes(changed),
        [
            ("jerry".to_owned(), PresenceStatus::Busy),
            ("spike".to_owned(), PresenceStatus::Busy)
        ]
    );
    spike.send(ClientMessage::Logout).await;
    let changed = tom.try_recv(wait).await.expect("spike's logout within 1 s");
    assert_eq!(
        presence_changes(changed),
        [
            ("jerry".to_owned(), PresenceStatus::Available),
            ("spike".to_owned(), PresenceStatus::Offline)
        ]
    );
    // jerry did not subscribe: it hears only of its call.
    let about_call = jerry.recv().await;
    assert!(about_call.call_id().is_some(), "{about_call:?}");
    jerry.expect_silence(Duration::from_millis(600)).await;
}

#[tokio::test]
async fn presence_none_shares_nothing() {
    let server = TestServer::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        presence: PresenceSharing::None,
        ..ServerConfig::default()
    })
    .await;
    let (mut tom, list) = RawClient::login_with(&server, "tom", true).await;
    assert_eq!(list, None, "no list in login_ok");
    let _jerry = RawClient::login(&server, "jerry").await;
    tom.expect_silence(Duration::from_millis(700)).await;
}
