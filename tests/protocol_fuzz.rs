//! Property tests (proptest, a bounded number of cases so the suite stays fast) of the
//! protocol decoder and of the server's message handling: hostile text never panics
//! the decoder, valid messages survive a round trip, and a server fed random sequences
//! of messages keeps serving, never routes a message to someone outside the call, and
//! never echoes a client's own message back as relayed from itself.

mod common;

use std::time::Duration;

use common::{RawClient, TestServer, id, ring};
use proptest::prelude::*;
use rtc_cli::signaling::protocol::{
    CallId, ClientMessage, IceCandidate, MediaState, RoomId, ServerMessage, UserId,
};

/// Ids the generated messages use: the fuzzed clients' own and strangers (never the
/// bystander's, so nothing may reach it).
const IDS: [&str; 4] = ["tom", "jerry", "nobody", "x.y-z_0"];
const CALL_IDS: [&str; 3] = ["c1", "c2", "c3"];

fn user_id() -> impl Strategy<Value = UserId> {
    prop::sample::select(&IDS[..]).prop_map(|s| UserId::parse(s).unwrap())
}

fn call_id() -> impl Strategy<Value = CallId> {
    prop::sample::select(&CALL_IDS[..]).prop_map(|s| CallId::parse(s).unwrap())
}

/// A room name from a small set, so members actually meet.
fn room_id() -> impl Strategy<Value = RoomId> {
    prop_oneof![Just("r1"), Just("r2")].prop_map(|s| RoomId::parse(s).unwrap())
}

/// Any valid client message, with ids from a small set so calls actually form.
fn client_message() -> impl Strategy<Value = ClientMessage> {
    let sdp = "[ -~]{0,64}";
    prop_oneof![
        (user_id(), 0u32..3).prop_map(|(id, version)| ClientMessage::Login {
            version,
            id,
            token: None,
            presence: false,
            resume: vec![],
        }),
        (call_id(), user_id(), proptest::option::of(room_id()))
            .prop_map(|(call_id, to, room)| ClientMessage::Call { call_id, to, room }),
        room_id().prop_map(|room| ClientMessage::JoinRoom { room }),
        room_id().prop_map(|room| ClientMessage::LeaveRoom { room }),
        call_id().prop_map(|call_id| ClientMessage::Accept { call_id }),
        call_id().prop_map(|call_id| ClientMessage::Refuse { call_id }),
        call_id().prop_map(|call_id| ClientMessage::Cancel { call_id }),
        call_id().prop_map(|call_id| ClientMessage::Hangup { call_id }),
        (call_id(), sdp).prop_map(|(call_id, sdp)| ClientMessage::Offer { call_id, sdp }),
        (call_id(), sdp).prop_map(|(call_id, sdp)| ClientMessage::Answer { call_id, sdp }),
        (call_id(), "[ -~]{0,80}").prop_map(|(call_id, candidate)| ClientMessage::Candidate {
            call_id,
            candidate: IceCandidate {
                candidate,
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
        }),
        call_id().prop_map(|call_id| ClientMessage::EndOfCandidates { call_id }),
        (call_id(), any::<bool>(), any::<bool>()).prop_map(|(call_id, muted, camera)| {
            ClientMessage::MediaState {
                call_id,
                state: MediaState { muted, camera },
            }
        }),
        Just(ClientMessage::Logout),
    ]
}

/// Text a hostile client might send: valid messages, mangled ones, and noise.
fn frame_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => client_message().prop_map(|m| m.encode()),
        2 => (client_message(), any::<prop::sample::Index>(), any::<u8>()).prop_map(
            |(m, at, byte)| {
                let mut bytes = m.encode().into_bytes();
                let i = at.index(bytes.len());
                bytes[i] = byte;
                String::from_utf8_lossy(&bytes).into_owned()
            }
        ),
        1 => r#"\{"type":"[a-z_]{0,12}"(,"[a-z_]{1,8}":("[ -~]{0,8}"|[0-9]{1,3}|null|\[\]|\{\}))*\}"#,
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_decoder_never_panics_and_every_error_has_a_code(text in frame_text()) {
        if let Err(e) = ClientMessage::decode(&text) {
            prop_assert!(!e.code.to_string().is_empty());
        }
    }

    #[test]
    fn valid_messages_survive_a_round_trip(msg in client_message()) {
        prop_assert_eq!(ClientMessage::decode(&msg.encode()).unwrap(), msg);
    }
}

/// Every message a client got within `wait`, until silence or close.
async fn drain(client: &mut RawClient, wait: Duration) -> Vec<ServerMessage> {
    let mut got = Vec::new();
    while let Some(msg) = client.try_recv(wait).await {
        got.push(msg);
    }
    got
}

/// A relayed message's sender, if the message is one.
fn relayed_from(msg: &ServerMessage) -> Option<&UserId> {
    match msg {
        ServerMessage::Accept { from, .. }
        | ServerMessage::Refuse { from, .. }
        | ServerMessage::Cancel { from, .. }
        | ServerMessage::Hangup { from, .. }
        | ServerMessage::Offer { from, .. }
        | ServerMessage::Answer { from, .. }
        | ServerMessage::Candidate { from, .. }
        | ServerMessage::EndOfCandidates { from, .. }
        | ServerMessage::MediaState { from, .. }
        | ServerMessage::Incoming { from, .. } => Some(from),
        _ => None,
    }
}

proptest! {
    // Each case runs a server and three clients: keep the count small.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn a_server_fed_random_messages_keeps_serving_and_routes_nothing_astray(
        frames in prop::collection::vec((0usize..2, frame_text()), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = TestServer::open().await;
            let mut clients = [
                RawClient::login(&server, "tom").await,
                RawClient::login(&server, "jerry").await,
            ];
            let mut bystander = RawClient::login(&server, "bystander").await;
            for (who, text) in &frames {
                // A client the server closed (logout, bad version) just stops sending.
                clients[*who].try_send_raw(text).await;
            }
            let quiet = Duration::from_millis(200);
            for client in &mut clients {
                let me = client.id.clone().unwrap();
                for msg in drain(client, quiet).await {
                    if let Some(from) = relayed_from(&msg) {
                        prop_assert_ne!(from, &me, "a client got its own message back: {:?}", msg);
                    }
                }
            }
            // Nobody called the bystander, so nothing may reach it.
            let astray = drain(&mut bystander, quiet).await;
            prop_assert!(astray.is_empty(), "the bystander got {:?}", astray);
            // The server still serves: two fresh users can ring each other.
            let mut a = RawClient::login(&server, "fresh-a").await;
            let mut b = RawClient::login(&server, "fresh-b").await;
            let c = ring(&mut a, &mut b, "fresh-call").await;
            prop_assert_eq!(c.as_str(), "fresh-call");
            prop_assert_eq!(a.id.clone(), Some(id("fresh-a")));
            server.stop().await;
            Ok(())
        })?;
    }
}
