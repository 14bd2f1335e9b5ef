//! The call controller against an in-process server on 127.0.0.1: the events a
//! view sees and the exit codes, for call and listen, including glare between two
//! controllers and `listen` reconnecting across a server restart.

mod common;

use std::time::Duration;

use common::settings::loopback_media;
use common::{RawClient, TestServer, WAIT, id};
use rtc_cli::call::ViewChannels;
use rtc_cli::call::controller::{self, ControllerConfig, Mode};
use rtc_cli::call::media::VideoSlots;
use rtc_cli::call::{AppEvent, CallState, EndReason, ExitCode, TimedEvent, UserCommand};
use rtc_cli::signaling::client::ClientConfig;
use rtc_cli::signaling::protocol::{ClientMessage, ServerMessage};
use rtc_cli::signaling::server::ServerConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A controller running on a task, with its view's ends of the channels.
struct Running {
    events: mpsc::Receiver<TimedEvent>,
    commands: mpsc::Sender<UserCommand>,
    task: JoinHandle<ExitCode>,
}

fn start(server_url: &str, who: &str, mode: Mode, hangup_after: Option<Duration>) -> Running {
    let (events_tx, events) = mpsc::channel(256);
    let (commands, commands_rx) = mpsc::channel(32);
    let mut client = ClientConfig::new(vec![server_url.to_owned()], id(who), None);
    if matches!(mode, Mode::Listen { .. }) {
        client.initial_attempts = None;
    }
    let task = tokio::spawn(controller::run(
        ControllerConfig {
            mode,
            client,
            hangup_after,
            media: loopback_media((160, 120), 10, 200),
            slots: VideoSlots::new(),
            history: None,
            control: None,
            preview: false,
        },
        ViewChannels {
            events: events_tx,
            commands: commands_rx,
        },
    ));
    Running {
        events,
        commands,
        task,
    }
}

impl Running {
    /// Waits for an event matching `pred`, returning it; panics after [`WAIT`].
    async fn until(&mut self, what: &str, pred: impl Fn(&AppEvent) -> bool) -> AppEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) if pred(&ev.event) => return ev.event,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("events closed while waiting for {what}"),
                Err(_) => panic!("no {what} within {WAIT:?}"),
            }
        }
    }

    async fn until_state(&mut self, want: CallState) -> AppEvent {
        self.until(
            &format!("state {want}"),
            |e| matches!(e, AppEvent::State { state, .. } if *state == want),
        )
        .await
    }

    async fn until_ended(&mut self) -> EndReason {
        match self.until_state(CallState::Ended).await {
            AppEvent::State {
                reason: Some(r), ..
            } => r,
            other => panic!("ended without reason: {other:?}"),
        }
    }

    async fn exit_code(self) -> ExitCode {
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("controller exits")
            .expect("controller task")
    }
}

fn listen(server: &TestServer, who: &str, auto_accept: bool) -> Running {
    start(&server.url(), who, Mode::Listen { auto_accept }, None)
}

fn call(server: &TestServer, who: &str, peer: &str, hangup_after: Option<Duration>) -> Running {
    start(
        &server.url(),
        who,
        Mode::Call { peer: id(peer) },
        hangup_after,
    )
}

async fn logged_in(r: &mut Running) {
    r.until("logged_in", |e| matches!(e, AppEvent::LoggedIn { .. }))
        .await;
}

#[tokio::test]
async fn auto_accepted_call_connects_and_hangup_after_ends_it_normally() {
    let server = TestServer::open().await;
    let mut jerry = listen(&server, "jerry", true);
    logged_in(&mut jerry).await;
    let mut tom = call(&server, "tom", "jerry", Some(Duration::from_millis(300)));
    for s in [CallState::Calling, CallState::Ringing, CallState::Connected] {
        tom.until_state(s).await;
    }
    jerry
        .until(
            "incoming",
            |e| matches!(e, AppEvent::Incoming { from, .. } if from.as_str() == "tom"),
        )
        .await;
    jerry.until_state(CallState::Connected).await;
    assert_eq!(tom.until_ended().await, EndReason::Hangup);
    assert_eq!(jerry.until_ended().await, EndReason::RemoteHangup);
    assert_eq!(tom.exit_code().await, ExitCode::Ok);
    // The listener goes on listening: a second call is offered.
    let mut spike = call(&server, "spike", "jerry", None);
    jerry.until_state(CallState::Connected).await;
    spike.until_state(CallState::Connected).await;
    jerry.commands.send(UserCommand::Hangup).await.unwrap();
    assert_eq!(spike.until_ended().await, EndReason::RemoteHangup);
    assert_eq!(spike.exit_code().await, ExitCode::Ok);
}

#[tokio::test]
async fn listener_accepts_or_refuses_on_command() {
    let server = TestServer::open().await;
    let mut jerry = listen(&server, "jerry", false);
    logged_in(&mut jerry).await;
    let mut tom = call(&server, "tom", "jerry", None);
    jerry.until_state(CallState::Ringing).await;
    jerry.commands.send(UserCommand::Refuse).await.unwrap();
    assert_eq!(jerry.until_ended().await, EndReason::Refused);
    assert_eq!(tom.until_ended().await, EndReason::Refused);
    assert_eq!(tom.exit_code().await, ExitCode::Refused);

    let mut tom = call(&server, "tom", "jerry", None);
    jerry.until_state(CallState::Ringing).await;
    jerry.commands.send(UserCommand::Accept).await.unwrap();
    tom.until_state(CallState::Connected).await;
    // Mute and camera off reach the peer as peer_media.
    tom.commands.send(UserCommand::Mute).await.unwrap();
    jerry
        .until(
            "peer muted",
            |e| matches!(e, AppEvent::PeerMedia { state, .. } if state.muted),
        )
        .await;
    tom.commands.send(UserCommand::CameraOff).await.unwrap();
    jerry
        .until(
            "peer camera off",
            |e| matches!(e, AppEvent::PeerMedia { state, .. } if state.muted && !state.camera),
        )
        .await;
    // Quit hangs up first; a connected call that ends so is a normal end.
    tom.commands.send(UserCommand::Quit).await.unwrap();
    assert_eq!(jerry.until_ended().await, EndReason::RemoteHangup);
    assert_eq!(tom.exit_code().await, ExitCode::Ok);
}

#[tokio::test]
async fn caller_cancel_busy_offline_and_no_answer_have_their_exit_codes() {
    let server = TestServer::with_ring_timeout(Duration::from_millis(400)).await;
    // offline
    let mut tom = call(&server, "tom", "jerry", None);
    assert_eq!(tom.until_ended().await, EndReason::Offline);
    assert_eq!(tom.exit_code().await, ExitCode::Offline);

    // no answer (the listener does not auto-accept and nobody presses a key)
    let mut jerry = listen(&server, "jerry", false);
    logged_in(&mut jerry).await;
    let mut tom = call(&server, "tom", "jerry", None);
    assert_eq!(tom.until_ended().await, EndReason::NoAnswer);
    assert_eq!(jerry.until_ended().await, EndReason::NoAnswer);
    assert_eq!(tom.exit_code().await, ExitCode::NoAnswer);

    // canceled by the caller while ringing
    let mut tom = call(&server, "tom", "jerry", None);
    tom.until_state(CallState::Ringing).await;
    tom.commands.send(UserCommand::Hangup).await.unwrap();
    assert_eq!(jerry.until_ended().await, EndReason::Canceled);
    assert_eq!(tom.exit_code().await, ExitCode::Canceled);

    // busy: jerry is being rung by spike
    let mut spike = call(&server, "spike", "jerry", None);
    spike.until_state(CallState::Ringing).await;
    let mut tom = call(&server, "tom", "jerry", None);
    assert_eq!(tom.until_ended().await, EndReason::Busy);
    assert_eq!(tom.exit_code().await, ExitCode::Busy);
    spike.commands.send(UserCommand::Hangup).await.unwrap();
    assert_eq!(spike.exit_code().await, ExitCode::Canceled);
}

#[tokio::test]
async fn peer_vanishing_mid_call_fails_the_call_with_peer_gone() {
    let server = TestServer::open().await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let mut tom = call(&server, "tom", "jerry", None);
    let cid = match jerry.recv().await {
        ServerMessage::Incoming { call_id, .. } => call_id,
        other => panic!("{other:?}"),
    };
    jerry.send(ClientMessage::Accept { call_id: cid }).await;
    // The raw client never answers the SDP offer: the call stays connecting.
    tom.until_state(CallState::Connecting).await;
    jerry.vanish();
    assert_eq!(tom.until_ended().await, EndReason::PeerGone);
    assert_eq!(tom.exit_code().await, ExitCode::ConnectionFailed);
}

#[tokio::test]
async fn glare_between_two_callers_gives_one_connected_call() {
    let server = TestServer::open().await;
    let mut tom = call(&server, "tom", "jerry", None);
    let mut jerry = call(&server, "jerry", "tom", None);
    let t = tom.until_state(CallState::Connected).await;
    let j = jerry.until_state(CallState::Connected).await;
    let call_of = |e: &AppEvent| match e {
        AppEvent::State { call_id, .. } => call_id.clone(),
        _ => unreachable!(),
    };
    assert_eq!(call_of(&t), call_of(&j), "both sides are in the same call");
    tom.commands.send(UserCommand::Hangup).await.unwrap();
    assert_eq!(jerry.until_ended().await, EndReason::RemoteHangup);
    assert_eq!(tom.exit_code().await, ExitCode::Ok);
    assert_eq!(jerry.exit_code().await, ExitCode::Ok);
}

#[tokio::test]
async fn newer_login_elsewhere_ends_the_older_listener_with_conflict() {
    let server = TestServer::open().await;
    let mut first = listen(&server, "jerry", true);
    logged_in(&mut first).await;
    let mut second = listen(&server, "jerry", true);
    logged_in(&mut second).await;
    first
        .until("conflict", |e| matches!(e, AppEvent::Conflict { .. }))
        .await;
    assert_eq!(first.exit_code().await, ExitCode::Conflict);
    // The newer one gets the calls.
    let tom = call(&server, "tom", "jerry", Some(Duration::from_millis(100)));
    second.until_state(CallState::Connected).await;
    assert_eq!(tom.exit_code().await, ExitCode::Ok);
}

#[tokio::test]
async fn unreachable_server_exits_with_its_code() {
    // Bind and drop a listener to get a port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tom = start(
        &format!("ws://127.0.0.1:{port}"),
        "tom",
        Mode::Call { peer: id("jerry") },
        None,
    );
    assert_eq!(tom.exit_code().await, ExitCode::ServerUnreachable);
}

#[tokio::test]
async fn listen_reconnects_across_a_server_restart() {
    let server = TestServer::open().await;
    let addr = server.addr;
    let mut jerry = listen(&server, "jerry", true);
    logged_in(&mut jerry).await;
    server.stop().await;
    jerry
        .until("server lost", |e| matches!(e, AppEvent::ServerLost { .. }))
        .await;
    let server = TestServer::start(ServerConfig {
        listen: addr,
        ..ServerConfig::default()
    })
    .await;
    logged_in(&mut jerry).await;
    let mut tom = call(&server, "tom", "jerry", Some(Duration::from_millis(100)));
    tom.until_state(CallState::Connected).await;
    assert_eq!(tom.exit_code().await, ExitCode::Ok);
    jerry.until_state(CallState::Connected).await;
}
