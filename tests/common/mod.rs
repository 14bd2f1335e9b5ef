//! Helpers shared by the integration tests: an in-process signaling server on
//! 127.0.0.1 and a raw protocol client here; the built binary as processes
//! ([`process`]), PulseAudio ([`pulse`]), private network namespaces ([`netns`]), and
//! checks of received media ([`audio_match`], [`media_check`]).
#![allow(dead_code)]

pub mod audio_match;
pub mod chromium;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtc_cli::signaling::protocol::{
    CallId, ClientMessage, PROTOCOL_VERSION, ServerMessage, UserId,
};
use rtc_cli::signaling::server::{Server, ServerConfig};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one expected message.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn id(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn call_id(s: &str) -> CallId {
    CallId::parse(s).unwrap()
}

/// A server running on a task; dropping `stop` (or sending on it) shuts it down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> Self {
        let server = Server::bind(config).await.unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// A server on 127.0.0.1:0 with the given ring timeout and defaults otherwise.
    pub async fn with_ring_timeout(ring_timeout: Duration) -> Self {
        Self::start(ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ring_timeout,
            ..ServerConfig::default()
        })
        .await
    }

    /// A server that pings every 100 ms and drops a client silent for 400 ms, for the
    /// tests of dead connections.
    pub async fn with_fast_heartbeat() -> Self {
        Self::start(ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            heartbeat: Duration::from_millis(100),
            dead_after: Duration::from_millis(400),
            ..ServerConfig::default()
        })
        .await
    }

    pub async fn open() -> Self {
        Self::with_ring_timeout(Duration::from_secs(45)).await
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Graceful shutdown; waits for the server task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

/// A raw protocol client for driving the server message by message.
pub struct RawClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Who this client logged in as.
    pub id: Option<UserId>,
}

impl RawClient {
    pub async fn connect(server: &TestServer) -> Self {
        Self::connect_url(&server.url()).await
    }

    /// Connects to the WebSocket at `url` (e.g. `ws://127.0.0.1:PORT/ws`).
    pub async fn connect_url(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self { ws, id: None }
    }

    /// Connects and logs in as `who`, asserting `login_ok`.
    pub async fn login(server: &TestServer, who: &str) -> Self {
        Self::login_with(server, who, false).await.0
    }

    /// Connects and logs in as `who`, subscribed to presence or not; the client and the
    /// `login_ok`'s presence list.
    pub async fn login_with(
        server: &TestServer,
        who: &str,
        presence: bool,
    ) -> (Self, Option<Vec<rtc_cli::signaling::protocol::Presence>>) {
        let mut c = Self::connect(server).await;
        c.send(ClientMessage::Login {
            version: PROTOCOL_VERSION,
            id: id(who),
            token: None,
            presence,
            resume: vec![],
        })
        .await;
        let list = match c.recv().await {
            ServerMessage::LoginOk {
                id: got, presence, ..
            } => {
                assert_eq!(got.as_str(), who);
                presence
            }
            other => panic!("expected login_ok, got {other:?}"),
        };
        c.id = Some(id(who));
        (c, list)
    }

    pub async fn send(&mut self, msg: ClientMessage) {
        self.send_raw(&msg.encode()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a text frame; false if the connection is gone.
    pub async fn try_send_raw(&mut self, text: &str) -> bool {
        self.ws.send(Message::text(text)).await.is_ok()
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }

    /// The next server message (skipping pings), or a panic after [`WAIT`].
    pub async fn recv(&mut self) -> ServerMessage {
        match self.try_recv(WAIT).await {
            Some(msg) => msg,
            None => panic!("no message within {WAIT:?}"),
        }
    }

    /// The next server message within `wait`, or None on silence or close.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<ServerMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.ok()? {
                Message::Text(t) => return Some(serde_json::from_str(t.as_str()).unwrap()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Asserts nothing but pings arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(msg) = self.try_recv(wait).await {
            panic!("expected silence, got {msg:?}");
        }
    }

    /// Whether the server closed the connection within [`WAIT`] (messages before the
    /// close are skipped).
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Drops the TCP connection without a close frame.
    pub fn vanish(self) {
        drop(self.ws);
    }
}

/// Places a call `caller` → `callee` and checks `ringing`/`incoming`.
pub async fn ring(caller: &mut RawClient, callee: &mut RawClient, cid: &str) -> CallId {
    let c = call_id(cid);
    caller
        .send(ClientMessage::Call {
            call_id: c.clone(),
            to: callee.id.clone().expect("callee logged in"),
            room: None,
        })
        .await;
    assert!(matches!(caller.recv().await, ServerMessage::Ringing { call_id, .. } if call_id == c));
    assert!(matches!(callee.recv().await, ServerMessage::Incoming { call_id, .. } if call_id == c));
    c
}
pub mod media_check;
pub mod netlab;
pub mod netns;
pub mod pki;
pub mod process;
pub mod pulse;
pub mod redis;
pub mod settings;

/// Tests that run whole calls (several processes, codecs, a browser) take turns within
/// one test binary: on a 2-core machine they would otherwise starve each other's frame
/// rates and audio timing. Hold the guard for the test's length.
pub fn one_call_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
