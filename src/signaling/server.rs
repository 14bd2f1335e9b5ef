//! The signaling server behind `rtc-cli serve`: a listener that accepts WebSocket
//! connections, one session task per client, and a registry of who is online and
//! which calls exist. Media never passes through it.
//!
//! Shape after tokio's mini-redis: the [`Server`] accepts, each connection gets a
//! session (reader loop + writer task with a bounded queue), and all routing goes
//! through one `Registry` behind a mutex that is never held across an await.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

use super::auth::Auth;
use super::protocol::{
    CallId, ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerEndReason, ServerMessage, UserId,
};

/// How the server is run (`rtc-cli serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`--listen`, default `127.0.0.1:8787`).
    pub listen: SocketAddr,
    /// Who may log in (`--auth`).
    pub auth: Auth,
    /// How long a call may ring before it ends with `no-answer` (`--ring-timeout`, 45 s).
    pub ring_timeout: Duration,
    /// Interval of the server's WebSocket pings (5 s).
    pub heartbeat: Duration,
    /// Silence after which a client is considered gone (15 s, three heartbeats).
    pub dead_after: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            auth: Auth::Open,
            ring_timeout: Duration::from_secs(45),
            heartbeat: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
        }
    }
}

/// Messages queued for one client. Bounded so that a client that does not read
/// cannot make the server buffer without limit.
const OUTBOUND_QUEUE: usize = 256;

/// Largest frame tungstenite reads before it drops the connection; frames between
/// [`MAX_MESSAGE_BYTES`] and this get a `too-large` error and the connection stays.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// What a session's writer task sends.
#[derive(Debug)]
enum Outbound {
    Message(ServerMessage),
    /// Send a close frame and end the session.
    Close,
}

/// Handle to one connected, logged-in client.
#[derive(Debug, Clone)]
struct SessionHandle {
    /// Distinguishes a session from a newer one with the same id.
    conn: u64,
    tx: mpsc::Sender<Outbound>,
}

impl SessionHandle {
    /// Queues a message without waiting; a full queue drops it (and says so).
    fn send(&self, msg: ServerMessage) -> bool {
        match self.tx.try_send(Outbound::Message(msg)) {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    conn = self.conn,
                    "outbound queue full or closed, dropped: {e}"
                );
                false
            }
        }
    }

    fn close(&self) {
        let _ = self.tx.try_send(Outbound::Close);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    Ringing,
    Active,
}

#[derive(Debug, Clone)]
struct Call {
    caller: UserId,
    callee: UserId,
    phase: CallPhase,
}

impl Call {
    fn other(&self, id: &UserId) -> &UserId {
        if *id == self.caller {
            &self.callee
        } else {
            &self.caller
        }
    }
}

/// Who is online and which calls exist.
#[derive(Debug, Default)]
struct Registry {
    sessions: HashMap<UserId, SessionHandle>,
    calls: HashMap<CallId, Call>,
    /// The one call each user is a party of.
    call_of: HashMap<UserId, CallId>,
}

impl Registry {
    fn send_to(&self, id: &UserId, msg: ServerMessage) {
        if let Some(s) = self.sessions.get(id) {
            s.send(msg);
        }
    }

    fn remove_call(&mut self, call_id: &CallId) -> Option<Call> {
        let call = self.calls.remove(call_id)?;
        for id in [&call.caller, &call.callee] {
            if self.call_of.get(id) == Some(call_id) {
                self.call_of.remove(id);
            }
        }
        Some(call)
    }

    /// Ends `id`'s call because `id` left; the other party learns `peer-gone`.
    fn end_calls_of_departed(&mut self, id: &UserId) {
        if let Some(call_id) = self.call_of.get(id).cloned()
            && let Some(call) = self.remove_call(&call_id)
        {
            self.send_to(
                call.other(id),
                ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::PeerGone,
                    replaced_by: None,
                },
            );
        }
    }
}

/// State shared by every session.
#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    registry: Mutex<Registry>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // worse than stopping the server would; keep serving.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound, not yet running signaling server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds `config.listen` (port 0 picks a free port; see [`Server::local_addr`]).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(config: ServerConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                registry: Mutex::default(),
            }),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Accepts clients until `shutdown` resolves, then tells every client the server is
    /// going away (`shutdown`, retry after 1 s) and waits briefly for their sessions.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut next_conn = 0u64;
        tokio::pin!(shutdown);
        info!(addr = %self.local_addr(), "signaling server listening");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        next_conn += 1;
                        let shared = Arc::clone(&self.shared);
                        let stop = stop_rx.clone();
                        tokio::spawn(serve_connection(shared, stream, peer, next_conn, stop));
                    }
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        info!("signaling server shutting down");
        let _ = stop_tx.send(true);
        // Give the writer tasks a moment to deliver `shutdown` and close frames.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.shared.registry().sessions.is_empty() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    conn: u64,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(ws) => ws,
        Err(e) => {
            debug!(%peer, "WebSocket handshake failed: {e}");
            return;
        }
    };
    debug!(%peer, conn, "client connected");
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let heartbeat = shared.config.heartbeat;
    let writer = tokio::spawn(write_loop(sink, rx, heartbeat));
    let mut session = Session {
        shared,
        handle: SessionHandle { conn, tx },
        id: None,
        peer,
    };
    session.read_loop(stream, stop).await;
    session.depart();
    drop(session);
    let _ = writer.await;
    debug!(%peer, conn, "client disconnected");
}

type WsSink =
    futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<TcpStream>, Message>;
type WsStream = futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<TcpStream>>;

/// Drains a session's queue into the socket and pings every `heartbeat`.
async fn write_loop(mut sink: WsSink, mut rx: mpsc::Receiver<Outbound>, heartbeat: Duration) {
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    loop {
        let out = tokio::select! {
            out = rx.recv() => out,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        match out {
            Some(Outbound::Message(msg)) => {
                if sink.send(Message::text(msg.encode())).await.is_err() {
                    break;
                }
            }
            Some(Outbound::Close) | None => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    let _ = sink.close().await;
}

/// One client connection's reader side.
struct Session {
    shared: Arc<Shared>,
    handle: SessionHandle,
    /// Set once logged in.
    id: Option<UserId>,
    peer: SocketAddr,
}

/// What the reader loop does after a frame.
enum Flow {
    Continue,
    Close,
}

impl Session {
    async fn read_loop(&mut self, mut stream: WsStream, mut stop: watch::Receiver<bool>) {
        let dead_after = self.shared.config.dead_after;
        loop {
            let frame = tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    self.reply(ServerMessage::Shutdown {
                        message: "server is shutting down".into(),
                        retry_after_ms: 1000,
                    });
                    self.handle.close();
                    return;
                }
                frame = tokio::time::timeout(dead_after, stream.next()) => frame,
            };
            let flow = match frame {
                Err(_) => {
                    info!(peer = %self.peer, id = ?self.id, "client silent for {dead_after:?}: gone");
                    Flow::Close
                }
                Ok(None) => Flow::Close,
                Ok(Some(Err(e))) => {
                    debug!(peer = %self.peer, "read error: {e}");
                    Flow::Close
                }
                Ok(Some(Ok(msg))) => self.on_frame(msg),
            };
            if let Flow::Close = flow {
                self.handle.close();
                return;
            }
        }
    }

    fn on_frame(&mut self, msg: Message) -> Flow {
        match msg {
            Message::Text(text) => match ClientMessage::decode(text.as_str()) {
                Ok(msg) => self.on_message(msg),
                Err(e) => {
                    warn!(peer = %self.peer, id = ?self.id, code = %e.code, "bad message: {}", e.message);
                    self.error(e.code, e.message, None);
                    Flow::Continue
                }
            },
            Message::Binary(_) => {
                self.error(
                    ErrorCode::BinaryFrame,
                    "only text frames are accepted",
                    None,
                );
                Flow::Continue
            }
            Message::Close(_) => Flow::Close,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn reply(&self, msg: ServerMessage) {
        self.handle.send(msg);
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>, call_id: Option<CallId>) {
        self.reply(ServerMessage::Error {
            code,
            message: message.into(),
            call_id,
        });
    }

    fn on_message(&mut self, msg: ClientMessage) -> Flow {
        let Some(me) = self.id.clone() else {
            return self.on_login(msg);
        };
        match msg {
            ClientMessage::Login { .. } => {
                self.error(
                    ErrorCode::AlreadyLoggedIn,
                    format!("already logged in as {me}"),
                    None,
                );
            }
            ClientMessage::Logout => {
                info!(id = %me, "logout");
                self.leave_call(&me);
                return Flow::Close;
            }
            ClientMessage::Call { call_id, to } => self.on_call(&me, call_id, to),
            other => {
                if let Err((code, text)) = self.route(&me, other.clone()) {
                    self.error(code, text, other.call_id().cloned());
                }
            }
        }
        Flow::Continue
    }

    fn on_login(&mut self, msg: ClientMessage) -> Flow {
        let ClientMessage::Login { version, id, token } = msg else {
            self.error(ErrorCode::NotLoggedIn, "log in first", None);
            return Flow::Continue;
        };
        if version != PROTOCOL_VERSION {
            self.error(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"),
                None,
            );
            return Flow::Close;
        }
        if let Err(e) = self.shared.config.auth.verify(&id, token.as_deref()) {
            warn!(peer = %self.peer, %id, "login refused: {e}");
            self.error(ErrorCode::AuthFailed, e.to_string(), None);
            return Flow::Close;
        }
        let replaced = {
            let mut reg = self.shared.registry();
            let old = reg.sessions.insert(id.clone(), self.handle.clone());
            if old.is_some() {
                reg.end_calls_of_departed(&id);
            }
            old
        };
        if let Some(old) = replaced {
            info!(%id, "newer login replaces the older session");
            old.send(ServerMessage::Conflict {
                message: format!("{id} logged in from another place"),
            });
            old.close();
        }
        info!(peer = %self.peer, %id, "logged in");
        self.reply(ServerMessage::LoginOk {
            id: id.clone(),
            version: PROTOCOL_VERSION,
            heartbeat_secs: self.shared.config.heartbeat.as_secs().max(1),
        });
        self.id = Some(id);
        Flow::Continue
    }

    fn on_call(&self, me: &UserId, call_id: CallId, to: UserId) {
        let reply_err = |code, text: String| self.error(code, text, Some(call_id.clone()));
        if *me == to {
            return reply_err(ErrorCode::SelfCall, "you cannot call yourself".into());
        }
        let mut reg = self.shared.registry();
        if reg.calls.contains_key(&call_id) {
            return reply_err(
                ErrorCode::DuplicateCall,
                format!("call id {call_id} is in use"),
            );
        }
        if let Some(current) = reg.call_of.get(me).cloned() {
            let theirs = &reg.calls[&current];
            if theirs.phase == CallPhase::Ringing && theirs.caller == to && theirs.callee == *me {
                // Glare: the call that reached the server first survives. We already
                // got `incoming` for it; this one gives way.
                info!(a = %me, b = %to, kept = %current, "glare resolved");
                self.reply(ServerMessage::CallEnded {
                    call_id,
                    reason: ServerEndReason::Glare,
                    replaced_by: Some(current),
                });
                return;
            }
            return reply_err(
                ErrorCode::AlreadyInCall,
                format!("you are already in call {current}"),
            );
        }
        if !reg.sessions.contains_key(&to) {
            info!(from = %me, %to, "call to offline user");
            self.reply(ServerMessage::CallEnded {
                call_id,
                reason: ServerEndReason::Offline,
                replaced_by: None,
            });
            return;
        }
        if reg.call_of.contains_key(&to) {
            info!(from = %me, %to, "callee busy");
            self.reply(ServerMessage::Busy { call_id, from: to });
            return;
        }
        reg.calls.insert(
            call_id.clone(),
            Call {
                caller: me.clone(),
                callee: to.clone(),
                phase: CallPhase::Ringing,
            },
        );
        reg.call_of.insert(me.clone(), call_id.clone());
        reg.call_of.insert(to.clone(), call_id.clone());
        reg.send_to(
            &to,
            ServerMessage::Incoming {
                call_id: call_id.clone(),
                from: me.clone(),
            },
        );
        drop(reg);
        info!(from = %me, %to, %call_id, "ringing");
        self.reply(ServerMessage::Ringing {
            call_id: call_id.clone(),
            to,
        });
        self.start_ring_timer(call_id);
    }

    fn start_ring_timer(&self, call_id: CallId) {
        let shared = Arc::clone(&self.shared);
        let timeout = shared.config.ring_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let mut reg = shared.registry();
            if reg.calls.get(&call_id).map(|c| c.phase) != Some(CallPhase::Ringing) {
                return;
            }
            if let Some(call) = reg.remove_call(&call_id) {
                info!(%call_id, "no answer within {timeout:?}");
                for id in [&call.caller, &call.callee] {
                    reg.send_to(
                        id,
                        ServerMessage::CallEnded {
                            call_id: call_id.clone(),
                            reason: ServerEndReason::NoAnswer,
                            replaced_by: None,
                        },
                    );
                }
            }
        });
    }

    /// Applies a call-control or relayed message from `me`.
    fn route(&self, me: &UserId, msg: ClientMessage) -> Result<(), (ErrorCode, String)> {
        let call_id = msg
            .call_id()
            .cloned()
            .ok_or((ErrorCode::BadMessage, "message needs a call_id".to_owned()))?;
        let mut reg = self.shared.registry();
        let call = reg
            .calls
            .get(&call_id)
            .filter(|c| c.caller == *me || c.callee == *me)
            .cloned()
            .ok_or_else(|| {
                (
                    ErrorCode::UnknownCall,
                    format!("no call {call_id} of yours"),
                )
            })?;
        let is_caller = call.caller == *me;
        let other = call.other(me).clone();
        let from = me.clone();
        let bad_state =
            |what: &str| Err((ErrorCode::BadState, format!("{what} in this call's state")));
        let relay = match (msg, call.phase, is_caller) {
            (ClientMessage::Accept { call_id }, CallPhase::Ringing, false) => {
                if let Some(c) = reg.calls.get_mut(&call_id) {
                    c.phase = CallPhase::Active;
                }
                ServerMessage::Accept { call_id, from }
            }
            (ClientMessage::Refuse { call_id }, CallPhase::Ringing, false)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, false) => {
                reg.remove_call(&call_id);
                ServerMessage::Refuse { call_id, from }
            }
            (ClientMessage::Cancel { call_id }, CallPhase::Ringing, true)
            | (ClientMessage::Hangup { call_id }, CallPhase::Ringing, true) => {
                reg.remove_call(&call_id);
                ServerMessage::Cancel { call_id, from }
            }
            (ClientMessage::Hangup { call_id }, CallPhase::Active, _)
            | (ClientMessage::Cancel { call_id }, CallPhase::Active, true) => {
                reg.remove_call(&call_id);
                ServerMessage::Hangup { call_id, from }
            }
            (ClientMessage::Offer { call_id, sdp }, CallPhase::Active, _) => {
                ServerMessage::Offer { call_id, from, sdp }
            }
            (ClientMessage::Answer { call_id, sdp }, CallPhase::Active, _) => {
                ServerMessage::Answer { call_id, from, sdp }
            }
            (ClientMessage::Candidate { call_id, candidate }, CallPhase::Active, _) => {
                ServerMessage::Candidate {
                    call_id,
                    from,
                    candidate,
                }
            }
            (ClientMessage::EndOfCandidates { call_id }, CallPhase::Active, _) => {
                ServerMessage::EndOfCandidates { call_id, from }
            }
            (ClientMessage::MediaState { call_id, state }, _, _) => ServerMessage::MediaState {
                call_id,
                from,
                state,
            },
            (msg, _, _) => {
                let kind = serde_json::to_value(&msg)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                return bad_state(&kind);
            }
        };
        let delivered = reg.sessions.get(&other).is_some_and(|s| s.send(relay));
        drop(reg);
        if delivered {
            Ok(())
        } else {
            Err((
                ErrorCode::RateLimited,
                format!("{other} is not keeping up; message dropped"),
            ))
        }
    }

    /// Ends `me`'s call as if `me` hung up (a cancel or refusal while it rings), so a
    /// logout reads as a hangup to the peer rather than as a vanished client.
    fn leave_call(&self, me: &UserId) {
        let call_id = self.shared.registry().call_of.get(me).cloned();
        if let Some(call_id) = call_id
            && let Err((code, text)) = self.route(me, ClientMessage::Hangup { call_id })
        {
            debug!(%me, %code, "hangup on logout: {text}");
        }
    }

    /// Unregisters this session (unless a newer login already replaced it) and ends its call.
    fn depart(&mut self) {
        let Some(id) = self.id.take() else { return };
        let mut reg = self.shared.registry();
        if reg.sessions.get(&id).map(|s| s.conn) == Some(self.handle.conn) {
            reg.sessions.remove(&id);
            reg.end_calls_of_departed(&id);
            info!(%id, "offline");
        }
    }
}
