//! The signaling client: one task that keeps a logged-in WebSocket session to the
//! server, reconnecting with backoff when it drops, and turns frames into
//! [`SignalingEvent`]s.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::protocol::{
    CallId, ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, Presence, ServerMessage, UserId,
};

/// Where and as whom to log in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://` or `wss://` URLs of the servers, tried in turn: the first at start, the
    /// next after each failed attempt or lost connection (servers sharing state
    /// through `serve --redis`, or one server given once).
    pub servers: Vec<String>,
    /// Who we are.
    pub id: UserId,
    /// JWT for servers that run `--auth token`.
    pub token: Option<String>,
    /// Connection attempts before giving up with [`Fatal::Unreachable`] while we have
    /// never logged in; `None` retries forever (`listen`). Once logged in, the client
    /// always reconnects.
    pub initial_attempts: Option<u32>,
    /// Silence from the server after which the connection is considered dead
    /// (the server pings every 5 s).
    pub dead_after: Duration,
    /// Roots trusted for `wss://` (see [`super::tls::client_config`]); `None` trusts the
    /// public webpki roots only.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Subscribe to presence (`login` with `presence: true`): who is online arrives
    /// with [`SignalingEvent::LoggedIn`] and changes as `presence_changed` messages.
    pub presence: bool,
}

impl ClientConfig {
    /// A config with the defaults for `servers` (at least one), `id` and `token`.
    pub fn new(servers: Vec<String>, id: UserId, token: Option<String>) -> Self {
        Self {
            servers,
            id,
            token,
            initial_attempts: Some(3),
            dead_after: Duration::from_secs(15),
            tls: None,
            presence: false,
        }
    }
}

/// Errors after which the client stops for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    /// The server refused the login (bad or expired token, bad id, version).
    #[error("login refused by the server: {0}")]
    AuthFailed(String),
    /// A newer login with our id replaced this session.
    #[error("{0}")]
    Conflict(String),
    /// The server could not be reached in the allowed attempts.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable {
        /// The URL we tried.
        server: String,
        /// The last connection error.
        reason: String,
    },
}

/// What the client reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalingEvent {
    /// Logged in (first time, or again after a reconnect).
    LoggedIn {
        /// Our id as the server confirmed it.
        id: UserId,
        /// The URL of the server we are logged in to (one of [`ClientConfig::servers`]).
        server: String,
        /// STUN/TURN servers the server offers for calls (its `login_ok`); each login
        /// brings fresh TURN credentials.
        ice_servers: Vec<IceServer>,
        /// Who else is online, when we subscribed and the server shares presence.
        presence: Option<Vec<Presence>>,
    },
    /// A message from the server (everything but `login_ok` and `conflict`).
    Message(ServerMessage),
    /// The connection dropped; the client is reconnecting.
    Disconnected {
        /// What happened.
        reason: String,
    },
    /// The client stopped for good.
    Fatal(Fatal),
}

/// The sending side of a running client. Dropping every handle stops the client.
#[derive(Debug, Clone)]
pub struct SignalingHandle {
    tx: mpsc::Sender<ClientMessage>,
    resume: std::sync::Arc<watch::Sender<Vec<CallId>>>,
}

impl SignalingHandle {
    /// The accepted calls to carry over when the client logs in again after a lost
    /// connection (`login`'s `resume`); empty when there are none.
    pub fn set_resume(&self, calls: Vec<CallId>) {
        self.resume.send_replace(calls);
    }

    /// Queues `msg` for the server. Messages sent while disconnected are dropped:
    /// the server ends calls of a vanished client by itself.
    pub async fn send(&self, msg: ClientMessage) {
        if self.tx.send(msg).await.is_err() {
            debug!("signaling client is gone; message dropped");
        }
    }
}

/// A running client: a handle to send with, the events it reports, and its task.
pub struct SignalingClient {
    /// Sends messages to the server.
    pub handle: SignalingHandle,
    /// Events until a [`SignalingEvent::Fatal`] or until every handle is dropped.
    pub events: mpsc::Receiver<SignalingEvent>,
    /// The client task; it ends after the handles are dropped and a `logout` (and
    /// whatever was queued before it) has been sent.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the client task.
pub fn spawn(config: ClientConfig) -> SignalingClient {
    let (out_tx, out_rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let (resume_tx, resume_rx) = watch::channel(Vec::new());
    let task = tokio::spawn(run(config, out_rx, ev_tx, resume_rx));
    SignalingClient {
        handle: SignalingHandle {
            tx: out_tx,
            resume: std::sync::Arc::new(resume_tx),
        },
        events: ev_rx,
        task,
    }
}

/// Reconnect delays: 250 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)).min(5_000))
}

/// How one connection ended.
enum Ended {
    /// Reconnect after the given delay.
    Retry {
        reason: String,
        after: Duration,
    },
    Fatal(Fatal),
    /// Every handle was dropped.
    Stopped,
}

async fn run(
    config: ClientConfig,
    mut out_rx: mpsc::Receiver<ClientMessage>,
    ev_tx: mpsc::Sender<SignalingEvent>,
    resume: watch::Receiver<Vec<CallId>>,
) {
    let mut failures = 0u32;
    let mut ever_logged_in = false;
    for attempt in 0usize.. {
        let server = &config.servers[attempt % config.servers.len().max(1)];
        let ended = match connect(&config, server).await {
            // A certificate we do not trust will not become trusted by retrying.
            Err(ConnectFailure::Untrusted(reason)) => Ended::Fatal(Fatal::Unreachable {
                server: server.clone(),
                reason,
            }),
            Err(ConnectFailure::Other(reason)) => Ended::Retry {
                reason,
                after: Duration::ZERO,
            },
            Ok(ws) => {
                let login = ClientMessage::Login {
                    version: PROTOCOL_VERSION,
                    id: config.id.clone(),
                    token: config.token.clone(),
                    presence: config.presence,
                    resume: resume.borrow().clone(),
                };
                let link = Link { server, ws, login };
                session(&config, link, &mut out_rx, &ev_tx, &mut ever_logged_in).await
            }
        };
        // Before the first login, every failed attempt counts; after it, only the
        // attempts since the last connection that logged in (they pace the backoff).
        let ended = match ended {
            Ended::Retry { reason, after } if after.is_zero() || !ever_logged_in => {
                failures += 1;
                let exhausted = config
                    .initial_attempts
                    .is_some_and(|n| !ever_logged_in && failures >= n);
                if exhausted {
                    Ended::Fatal(Fatal::Unreachable {
                        server: server.clone(),
                        reason,
                    })
                } else {
                    Ended::Retry {
                        reason,
                        after: after.max(backoff(failures)),
                    }
                }
            }
            other => {
                failures = 0;
                other
            }
        };
        match ended {
            Ended::Stopped => return,
            Ended::Fatal(f) => {
                warn!("signaling stopped: {f}");
                let _ = ev_tx.send(SignalingEvent::Fatal(f)).await;
                return;
            }
            Ended::Retry { reason, after } => {
                info!("signaling: {reason}; reconnecting in {after:?}");
                if ever_logged_in
                    && ev_tx
                        .send(SignalingEvent::Disconnected { reason })
                        .await
                        .is_err()
                {
                    return;
                }
                // Drop what was queued while disconnected, but notice if we are stopped.
                let sleep = tokio::time::sleep(after);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        msg = out_rx.recv() => match msg {
                            None => return,
                            Some(m) => debug!("not connected; dropped {m:?}"),
                        },
                    }
                }
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection attempt failed.
enum ConnectFailure {
    /// The server's TLS certificate is not trusted (fatal: retrying cannot help).
    Untrusted(String),
    /// Anything else (refused, timed out, HTTP error): worth retrying.
    Other(String),
}

async fn connect(config: &ClientConfig, server: &str) -> Result<Ws, ConnectFailure> {
    let connector = config.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    let attempt = tokio_tungstenite::connect_async_tls_with_config(server, None, false, connector);
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Err(_) => Err(ConnectFailure::Other("connection timed out".into())),
        Ok(Err(e)) if super::tls::is_untrusted_certificate(&e) => {
            Err(ConnectFailure::Untrusted(format!(
                "the server's TLS certificate is not trusted ({e}); \
                 pass --ca-file FILE if it was issued by a private CA"
            )))
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Err(ConnectFailure::Other(refusal(&response)))
        }
        Ok(Err(e)) => Err(ConnectFailure::Other(e.to_string())),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// The server's refusal of the WebSocket upgrade in words: the HTTP status and the first
/// line of its body (`serve` says why there, e.g. `too-many-connections: …`), printable
/// characters only and at most [`REFUSAL_CHARS`] of them.
fn refusal(response: &tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>) -> String {
    let status = response.status();
    let body = response
        .body()
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let reason: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(REFUSAL_CHARS)
        .collect();
    if reason.trim().is_empty() {
        format!("the server refused the connection: HTTP {status}")
    } else {
        format!(
            "the server refused the connection: HTTP {status}: {}",
            reason.trim()
        )
    }
}

/// Longest refusal reason shown.
const REFUSAL_CHARS: usize = 200;

/// One connection to log in on.
struct Link<'a> {
    /// The server's URL.
    server: &'a str,
    ws: Ws,
    /// The `login` to send first.
    login: ClientMessage,
}

async fn session(
    config: &ClientConfig,
    Link { server, ws, login }: Link<'_>,
    out_rx: &mut mpsc::Receiver<ClientMessage>,
    ev_tx: &mpsc::Sender<SignalingEvent>,
    ever_logged_in: &mut bool,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    // Whether this connection's login succeeded: login errors are fatal only before.
    let mut logged_in = false;
    let retry = |reason: String| Ended::Retry {
        reason,
        after: Duration::from_millis(250),
    };
    if let Err(e) = sink.send(Message::text(login.encode())).await {
        return retry(format!("cannot send login: {e}"));
    }
    loop {
        tokio::select! {
            frame = tokio::time::timeout(config.dead_after, stream.next()) => {
                let text = match frame {
                    Err(_) => return retry(format!("server silent for {:?}", config.dead_after)),
                    Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return retry("server closed the connection".into()),
                    Ok(Some(Err(e))) => return retry(format!("connection lost: {e}")),
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                };
                let msg = match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(msg) => msg,
                    Err(e) => {
                        warn!("ignoring a server message we cannot read: {e}: {}", text.as_str());
                        continue;
                    }
                };
                let ended = on_server_message(msg, server, ev_tx, &mut logged_in).await;
                *ever_logged_in |= logged_in;
                if let Some(ended) = ended {
                    return ended;
                }
            }
            msg = out_rx.recv() => {
                let Some(msg) = msg else {
                    let _ = sink.send(Message::text(ClientMessage::Logout.encode())).await;
                    let _ = sink.close().await;
                    return Ended::Stopped;
                };
                if let Err(e) = sink.send(Message::text(msg.encode())).await {
                    return retry(format!("cannot send: {e}"));
                }
            }
        }
    }
}

/// Handles one server message of a connection whose login has (`logged_in`) or has not
/// yet succeeded; returns how the session ends, if it does.
async fn on_server_message(
    msg: ServerMessage,
    server: &str,
    ev_tx: &mpsc::Sender<SignalingEvent>,
    logged_in: &mut bool,
) -> Option<Ended> {
    let event = match msg {
        ServerMessage::LoginOk {
            id,
            ice_servers,
            presence,
            ..
        } => {
            *logged_in = true;
            SignalingEvent::LoggedIn {
                id,
                server: server.to_owned(),
                ice_servers,
                presence,
            }
        }
        ServerMessage::Conflict { message } => return Some(Ended::Fatal(Fatal::Conflict(message))),
        ServerMessage::Error { code, message, .. } if !*logged_in && is_login_error(code) => {
            return Some(Ended::Fatal(Fatal::AuthFailed(format!(
                "{code}: {message}"
            ))));
        }
        ServerMessage::Error {
            code: ErrorCode::Unavailable,
            message,
            ..
        } if !*logged_in => {
            return Some(Ended::Retry {
                reason: format!("login not possible now: {message}"),
                after: Duration::from_secs(1),
            });
        }
        ServerMessage::Shutdown {
            message,
            retry_after_ms,
        } => {
            return Some(Ended::Retry {
                reason: message,
                after: Duration::from_millis(retry_after_ms.clamp(100, 30_000)),
            });
        }
        other => SignalingEvent::Message(other),
    };
    if ev_tx.send(event).await.is_err() {
        return Some(Ended::Stopped);
    }
    None
}

fn is_login_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AuthFailed | ErrorCode::UnsupportedVersion | ErrorCode::BadId
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refused_upgrade_says_the_status_and_the_servers_reason() {
        use tokio_tungstenite::tungstenite::http::Response;
        let full = Response::builder()
            .status(503)
            .body(Some(b"server-full: 20000 connections\r\nmore".to_vec()))
            .unwrap();
        assert_eq!(
            refusal(&full),
            "the server refused the connection: HTTP 503 Service Unavailable: server-full: 20000 connections"
        );
        let hostile = Response::builder()
            .status(503)
            .body(Some(format!("\u{1b}[2J{}", "x".repeat(500)).into_bytes()))
            .unwrap();
        let shown = refusal(&hostile);
        assert!(!shown.contains('\u{1b}') && shown.len() < 300, "{shown}");
        let bare = Response::builder().status(403).body(None).unwrap();
        assert_eq!(
            refusal(&bare),
            "the server refused the connection: HTTP 403 Forbidden"
        );
    }

    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_five_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_millis(4000));
        assert_eq!(backoff(5), Duration::from_millis(5000));
        assert_eq!(backoff(30), Duration::from_millis(5000));
    }
}
