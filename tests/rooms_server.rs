//! Rooms on the signaling server (issue 12), driven by raw protocol clients on
//! 127.0.0.1: joining and the member list, `member_joined`/`member_left`, room calls
//! between members (several at once per member), the fifth member refused with
//! `room-full`, a member whose connection dies removed within the heartbeat window,
//! and rooms kept apart from 1:1 calls.

mod common;

use common::{RawClient, TestServer, call_id, id};
use rtc_cli::signaling::protocol::{
    ClientMessage, ErrorCode, RoomId, ServerEndReason, ServerMessage,
};

fn room(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

/// Sends `join_room` and returns the `members` of the `room_joined` answer.
async fn join(c: &mut RawClient, name: &str) -> Vec<String> {
    c.send(ClientMessage::JoinRoom { room: room(name) }).await;
    match c.recv().await {
        ServerMessage::RoomJoined { room: r, members } => {
            assert_eq!(r, room(name));
            members.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected room_joined, got {other:?}"),
    }
}

fn expect_error(msg: ServerMessage, want: ErrorCode) {
    match msg {
        ServerMessage::Error { code, .. } => assert_eq!(code, want, "{msg:?}"),
        other => panic!("expected error {want}, got {other:?}"),
    }
}

/// `caller` places room call `cid` to `callee` in `name`; `callee` sees `incoming`
/// with the room and accepts; both see the call set up.
async fn room_call(caller: &mut RawClient, callee: &mut RawClient, name: &str, cid: &str) {
    let c = call_id(cid);
    caller
        .send(ClientMessage::Call {
            call_id: c.clone(),
            to: callee.id.clone().unwrap(),
            room: Some(room(name)),
        })
        .await;
    assert!(matches!(caller.recv().await, ServerMessage::Ringing { call_id, .. } if call_id == c));
    assert_eq!(
        callee.recv().await,
        ServerMessage::Incoming {
            call_id: c.clone(),
            from: caller.id.clone().unwrap(),
            room: Some(room(name)),
        }
    );
    callee
        .send(ClientMessage::Accept { call_id: c.clone() })
        .await;
    assert!(matches!(caller.recv().await, ServerMessage::Accept { call_id, .. } if call_id == c));
}

#[tokio::test]
async fn members_see_each_other_join_and_call_the_newcomer_in_a_mesh() {
    let server = TestServer::open().await;
    let mut a = RawClient::login(&server, "a").await;
    let mut b = RawClient::login(&server, "b").await;
    let mut c = RawClient::login(&server, "c").await;
    assert!(
        join(&mut a, "r").await.is_empty(),
        "the first member creates it"
    );
    assert_eq!(join(&mut b, "r").await, ["a"]);
    assert_eq!(
        a.recv().await,
        ServerMessage::MemberJoined {
            room: room("r"),
            id: id("b")
        }
    );
    room_call(&mut a, &mut b, "r", "ab").await;
    assert_eq!(join(&mut c, "r").await, ["a", "b"]);
    for m in [&mut a, &mut b] {
        assert!(
            matches!(m.recv().await, ServerMessage::MemberJoined { id: who, .. } if who == id("c"))
        );
    }
    // a and b each call c; each member now has two calls at once.
    room_call(&mut a, &mut c, "r", "ac").await;
    room_call(&mut b, &mut c, "r", "bc").await;
    // SDP travels per pair, as in a 1:1 call.
    b.send(ClientMessage::Offer {
        call_id: call_id("bc"),
        sdp: "v=0 from b".into(),
    })
    .await;
    assert_eq!(
        c.recv().await,
        ServerMessage::Offer {
            call_id: call_id("bc"),
            from: id("b"),
            sdp: "v=0 from b".into()
        }
    );
    // A second call between the same pair is refused.
    a.send(ClientMessage::Call {
        call_id: call_id("ab2"),
        to: id("b"),
        room: Some(room("r")),
    })
    .await;
    expect_error(a.recv().await, ErrorCode::AlreadyInCall);
}

#[tokio::test]
async fn a_member_that_leaves_hangs_up_its_calls_and_the_others_are_told() {
    let server = TestServer::open().await;
    let mut a = RawClient::login(&server, "a").await;
    let mut b = RawClient::login(&server, "b").await;
    let mut c = RawClient::login(&server, "c").await;
    join(&mut a, "r").await;
    join(&mut b, "r").await;
    a.recv().await; // member_joined b
    room_call(&mut a, &mut b, "r", "ab").await;
    join(&mut c, "r").await;
    a.recv().await; // member_joined c
    b.recv().await; // member_joined c
    room_call(&mut a, &mut c, "r", "ac").await;
    room_call(&mut b, &mut c, "r", "bc").await;

    a.send(ClientMessage::LeaveRoom { room: room("r") }).await;
    for (m, cid) in [(&mut b, "ab"), (&mut c, "ac")] {
        assert_eq!(
            m.recv().await,
            ServerMessage::Hangup {
                call_id: call_id(cid),
                from: id("a")
            }
        );
        assert_eq!(
            m.recv().await,
            ServerMessage::MemberLeft {
                room: room("r"),
                id: id("a")
            }
        );
    }
    // b and c's own call goes on.
    c.send(ClientMessage::Answer {
        call_id: call_id("bc"),
        sdp: "v=0 answer".into(),
    })
    .await;
    assert!(
        matches!(b.recv().await, ServerMessage::Answer { call_id: got, .. } if got == call_id("bc"))
    );
    // a is out: it cannot leave again, and a new member meets only b and c.
    a.send(ClientMessage::LeaveRoom { room: room("r") }).await;
    expect_error(a.recv().await, ErrorCode::NotInRoom);
    let mut d = RawClient::login(&server, "d").await;
    assert_eq!(join(&mut d, "r").await, ["b", "c"]);
}

#[tokio::test]
async fn a_fifth_member_is_refused_with_room_full() {
    let server = TestServer::open().await;
    let mut members = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let mut m = RawClient::login(&server, name).await;
        join(&mut m, "full").await;
        members.push(m);
    }
    let mut e = RawClient::login(&server, "e").await;
    e.send(ClientMessage::JoinRoom { room: room("full") }).await;
    expect_error(e.recv().await, ErrorCode::RoomFull);
    // Another room is still open to e.
    assert!(join(&mut e, "other").await.is_empty());
}

#[tokio::test]
async fn a_member_whose_connection_dies_is_removed_within_the_heartbeat_window() {
    let server = TestServer::with_fast_heartbeat().await;
    let mut a = RawClient::login(&server, "a").await;
    let mut b = RawClient::login(&server, "b").await;
    join(&mut a, "r").await;
    join(&mut b, "r").await;
    a.recv().await; // member_joined b
    room_call(&mut a, &mut b, "r", "ab").await;
    // b stops reading (never answers a ping): gone after the window.
    let _b = b;
    assert_eq!(
        a.recv().await,
        ServerMessage::CallEnded {
            call_id: call_id("ab"),
            reason: ServerEndReason::PeerGone,
            replaced_by: None
        }
    );
    assert_eq!(
        a.recv().await,
        ServerMessage::MemberLeft {
            room: room("r"),
            id: id("b")
        }
    );
}

#[tokio::test]
async fn rooms_and_one_to_one_calls_stay_apart() {
    let server = TestServer::open().await;
    let mut a = RawClient::login(&server, "a").await;
    let mut b = RawClient::login(&server, "b").await;
    let mut x = RawClient::login(&server, "x").await;
    join(&mut a, "r").await;
    // A member is busy for 1:1 calls, and cannot place one.
    x.send(ClientMessage::Call {
        call_id: call_id("xa"),
        to: id("a"),
        room: None,
    })
    .await;
    assert!(matches!(x.recv().await, ServerMessage::Busy { .. }));
    a.send(ClientMessage::Call {
        call_id: call_id("ax"),
        to: id("x"),
        room: None,
    })
    .await;
    expect_error(a.recv().await, ErrorCode::AlreadyInCall);
    // A room call to someone outside the room is refused.
    a.send(ClientMessage::Call {
        call_id: call_id("ab"),
        to: id("b"),
        room: Some(room("r")),
    })
    .await;
    expect_error(a.recv().await, ErrorCode::NotInRoom);
    // Someone in a 1:1 call cannot join a room.
    common::ring(&mut x, &mut b, "xb").await;
    b.send(ClientMessage::JoinRoom { room: room("r") }).await;
    expect_error(b.recv().await, ErrorCode::AlreadyInCall);
    // A bad room name is a bad id.
    a.send_raw(r#"{"type":"join_room","room":"no spaces"}"#)
        .await;
    expect_error(a.recv().await, ErrorCode::BadId);
}
