//! One client connection, from the WebSocket upgrade to its close: the upgrade and
//! first-`login` deadlines, the reader loop (frames → messages → login or call
//! control), and the writer task that drains a bounded queue and pings.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tracing::{debug, info, warn};

use super::Shared;
use super::command::Command;
use super::http::serve_until_upgrade;
use super::limits::{LoggedInPermit, PendingGuard};
use super::local::{Outbound, SessionHandle};
use super::presence::PresenceSharing;
use crate::signaling::protocol::{
    CallId, ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, UserId,
};

/// Messages queued for one client. Bounded so that a client that does not read
/// cannot make the server buffer without limit.
const OUTBOUND_QUEUE: usize = 256;

/// Largest frame tungstenite reads before it drops the connection; frames between
/// [`MAX_MESSAGE_BYTES`] and this get a `too-large` error and the connection stays.
const MAX_FRAME_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// Bytes tungstenite reads from the socket at a time. Its default (128 KiB, eagerly
/// allocated per connection) is sized for bulk data and cost ~130 KB per idle client;
/// signaling messages are small (an SDP offer is ~5 KiB), so a few reads per offer
/// are cheaper than the memory.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The WebSocket settings of every server connection: small buffers for small
/// messages, frames capped at [`MAX_FRAME_BYTES`].
pub(super) fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each message as it is sent (the writer flushes every send anyway).
        .write_buffer_size(0)
        // Room for a few of the largest relayed messages while the socket is slow.
        .max_write_buffer_size(4 * MAX_FRAME_BYTES)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// A connection the listener admitted.
pub(super) struct Accepted<S> {
    /// The accepted byte stream (TCP); TLS, if any, is put over it under the upgrade deadline.
    pub(super) stream: S,
    pub(super) peer: SocketAddr,
    /// Connection number, growing with accept order.
    pub(super) conn: u64,
    /// Its place among the connections that may be shed until it logs in.
    pub(super) pending: PendingGuard,
}

/// Serves one accepted connection to its end, or until the listener sheds it while
/// it has not logged in.
pub(super) async fn serve_connection<S>(
    shared: Arc<Shared>,
    accepted: Accepted<S>,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shed = accepted.pending.shed_token();
    let (peer, conn) = (accepted.peer, accepted.conn);
    tokio::select! {
        _ = shed.cancelled() => debug!(%peer, conn, "shed before login to make room"),
        _ = upgrade_and_serve(shared, accepted, stop) => {}
    }
}

async fn upgrade_and_serve<S>(
    shared: Arc<Shared>,
    accepted: Accepted<S>,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Accepted {
        stream,
        peer,
        conn,
        pending,
    } = accepted;
    let upgrade_timeout = shared.config.upgrade_timeout;
    let tls = shared.config.tls.clone();
    let Some(tls) = tls else {
        match within(
            upgrade_timeout,
            serve_until_upgrade(stream, Arc::clone(&shared)),
        )
        .await
        {
            Ok(ws) => serve_upgraded(shared, ws, peer, conn, pending, stop).await,
            Err(e) => debug!(%peer, "{e}"),
        }
        return;
    };
    let shared_for_http = Arc::clone(&shared);
    let secure = async {
        let stream = tokio_rustls::TlsAcceptor::from(tls)
            .accept(stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        serve_until_upgrade(stream, shared_for_http).await
    };
    match within(upgrade_timeout, secure).await {
        Ok(ws) => serve_upgraded(shared, ws, peer, conn, pending, stop).await,
        Err(e) => debug!(%peer, "{e}"),
    }
}

/// The way from an accepted byte stream (TCP, or TLS over it) to a WebSocket (HTTP, the
/// web client's files, then the upgrade: [`serve_until_upgrade`]) under the
/// `--upgrade-timeout` deadline; with TLS, one deadline covers accept → TLS → WebSocket,
/// so half-open connections cannot hold the server. An error says what failed.
async fn within<T>(
    deadline: std::time::Duration,
    upgrade: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, upgrade).await {
        Ok(result) => result,
        Err(_) => Err(format!("no upgrade within {deadline:?}: closed")),
    }
}

/// Runs the session of an upgraded connection to its end.
async fn serve_upgraded<S>(
    shared: Arc<Shared>,
    ws: WebSocketStream<S>,
    peer: SocketAddr,
    conn: u64,
    pending: PendingGuard,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    debug!(%peer, conn, "client connected");
    let login_deadline = Instant::now() + shared.config.login_timeout;
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx, shared.config.heartbeat));
    let mut session = Session {
        shared,
        handle: SessionHandle {
            conn,
            tx,
            presence: false,
            logged_in: false,
        },
        id: None,
        peer,
        pending,
        permit: None,
    };
    session.read_loop(stream, stop, login_deadline).await;
    session.depart().await;
    drop(session);
    let _ = writer.await;
    debug!(%peer, conn, "client disconnected");
}

type WsSink<S> = SplitSink<WebSocketStream<S>, Message>;
type WsStream<S> = SplitStream<WebSocketStream<S>>;

/// Drains a session's queue into the socket and pings every `heartbeat`.
async fn write_loop<S>(
    mut sink: WsSink<S>,
    mut rx: mpsc::Receiver<Outbound>,
    heartbeat: std::time::Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
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
            Some(Outbound::Text(text)) => {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            Some(Outbound::Shared(text)) => {
                if sink.send(Message::text(&*text)).await.is_err() {
                    break;
                }
            }
            Some(Outbound::Close(frame)) => {
                let _ = sink.send(Message::Close(frame)).await;
                break;
            }
            None => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    let _ = sink.close().await;
}

/// One client connection's reader side.
pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) handle: SessionHandle,
    /// Set once logged in.
    pub(super) id: Option<UserId>,
    pub(super) peer: SocketAddr,
    /// The connection's place among those that may be shed, until it logs in.
    pending: PendingGuard,
    /// The connection's slot once logged in (never shed).
    permit: Option<LoggedInPermit>,
}

/// What the reader loop does after a frame.
pub(super) enum Flow {
    Continue,
    Close,
}

impl Session {
    async fn read_loop<S>(
        &mut self,
        mut stream: WsStream<S>,
        mut stop: watch::Receiver<bool>,
        login_deadline: Instant,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let dead_after = self.shared.config.dead_after;
        loop {
            let deadline = match self.id {
                Some(_) => Instant::now() + dead_after,
                None => login_deadline,
            };
            let frame = tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    self.reply(ServerMessage::Shutdown {
                        message: "server is shutting down".into(),
                        retry_after_ms: 1000,
                    });
                    self.handle.close(None);
                    return;
                }
                frame = tokio::time::timeout_at(deadline, stream.next()) => frame,
            };
            let flow = match frame {
                Err(_) if self.id.is_none() => {
                    self.close_without_login();
                    return;
                }
                Err(_) => {
                    info!(peer = %self.peer, id = ?self.id, "client silent for {dead_after:?}: gone");
                    Flow::Close
                }
                Ok(None) => Flow::Close,
                Ok(Some(Err(e))) => {
                    debug!(peer = %self.peer, "read error: {e}");
                    Flow::Close
                }
                Ok(Some(Ok(msg))) => self.on_frame(msg).await,
            };
            if let Flow::Close = flow {
                self.handle.close(None);
                return;
            }
        }
    }

    /// Closes a connection that did not log in within `--login-timeout`, with a
    /// close frame (1008, policy violation) that says so.
    fn close_without_login(&self) {
        let timeout = self.shared.config.login_timeout;
        debug!(peer = %self.peer, "no login within {timeout:?}: closed");
        self.handle.close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: format!("login-timeout: log in within {timeout:?}").into(),
        }));
    }

    async fn on_frame(&mut self, msg: Message) -> Flow {
        match msg {
            Message::Text(text) => match ClientMessage::decode(text.as_str()) {
                Ok(msg) => self.on_message(msg).await,
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

    pub(super) fn reply(&self, msg: ServerMessage) {
        self.handle.send(msg);
    }

    pub(super) fn error(
        &self,
        code: ErrorCode,
        message: impl Into<String>,
        call_id: Option<CallId>,
    ) {
        self.reply(ServerMessage::Error {
            code,
            message: message.into(),
            call_id,
        });
    }

    async fn on_message(&mut self, msg: ClientMessage) -> Flow {
        let Some(me) = self.id.clone() else {
            return self.on_login(msg).await;
        };
        let flow = match msg {
            ClientMessage::Login { .. } => {
                self.error(
                    ErrorCode::AlreadyLoggedIn,
                    format!("already logged in as {me}"),
                    None,
                );
                return Flow::Continue;
            }
            ClientMessage::Logout => Flow::Close,
            _ => Flow::Continue,
        };
        let call_id = msg.call_id().cloned();
        let cmd = Command::Message {
            id: me,
            session: self.key(),
            msg,
        };
        if let Err(e) = self.shared.submit(cmd).await {
            self.error(ErrorCode::Unavailable, e.to_string(), call_id);
        }
        flow
    }

    /// This session's key in the registry.
    fn key(&self) -> super::registry::SessionKey {
        self.shared.key(self.handle.conn)
    }

    async fn on_login(&mut self, msg: ClientMessage) -> Flow {
        let ClientMessage::Login {
            version,
            id,
            token,
            presence,
            resume,
        } = msg
        else {
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
        let Some(permit) = self.pending.logged_in() else {
            // Shed by the listener a moment ago; the task is about to stop.
            return Flow::Close;
        };
        let sharing = self.shared.config.presence == PresenceSharing::All;
        self.handle.presence = presence && sharing;
        // Held before the login is applied, so `login_ok` finds the session.
        self.shared
            .state()
            .local
            .insert(self.handle.conn, self.handle.clone());
        let cmd = Command::LogIn {
            id: id.clone(),
            session: self.key(),
            resume,
        };
        if let Err(e) = self.shared.submit(cmd).await {
            warn!(peer = %self.peer, %id, "login failed: {e}");
            self.shared.state().local.remove(&self.handle.conn);
            self.error(ErrorCode::Unavailable, e.to_string(), None);
            return Flow::Close;
        }
        self.permit = Some(permit);
        info!(peer = %self.peer, %id, "logged in");
        self.id = Some(id);
        Flow::Continue
    }

    /// Unregisters this session (unless a newer login already replaced it), which
    /// ends its call and room.
    async fn depart(&mut self) {
        self.shared.state().local.remove(&self.handle.conn);
        let Some(id) = self.id.take() else { return };
        let cmd = Command::LogOut {
            id,
            session: self.key(),
        };
        self.shared.submit_departure(cmd).await;
    }
}
