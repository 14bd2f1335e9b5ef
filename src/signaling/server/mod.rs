//! The signaling server behind `rtc-cli serve`. Media never passes through it.
//!
//! Shape after tokio's mini-redis:
//! - `listener`: accepts TCP connections under the connection caps, refuses the rest
//!   with HTTP 503 and a reason, and keeps accepting when file handles run out;
//! - `limits`: the caps, the pending (not logged in) connections that can be shed,
//!   and the open-file limit;
//! - `session`: one client from WebSocket upgrade to close (reader loop + writer
//!   task with a bounded queue), with upgrade and first-login deadlines;
//! - `calls`: call control and relaying between the two parties of a call;
//! - `registry`: who is online and which calls exist, behind one mutex that is never
//!   held across an await;
//! - `presence`: who is online, batched to the clients that subscribe;
//! - `memory`: handing freed heap back to the system after a mass disconnect.

mod calls;
mod http;
mod limits;
mod listener;
mod memory;
mod presence;
mod registry;
mod rooms;
mod session;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

pub use limits::{ConnectionLimits, Refusal, raise_open_file_limit};
pub use presence::PresenceSharing;

use self::limits::{Admission, Pending};
use self::registry::Registry;
use super::auth::Auth;
use super::turn::IceOffer;

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
    /// Time from TCP accept to a finished WebSocket upgrade before the connection is
    /// closed (`--upgrade-timeout`, 5 s).
    pub upgrade_timeout: Duration,
    /// Time from the upgrade to a successful `login` before the connection is closed
    /// with a `login-timeout` close frame (`--login-timeout`, 5 s).
    pub login_timeout: Duration,
    /// Caps on concurrent connections (`--max-connections`, `--max-connections-per-address`).
    pub limits: ConnectionLimits,
    /// TLS certificate and key (`--tls-cert`/`--tls-key`): serve `wss://`; `None`
    /// serves plain `ws://`. The TLS handshake counts against `upgrade_timeout`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// STUN/TURN servers handed out in every `login_ok` (`--stun`, `--turn`).
    pub ice: IceOffer,
    /// Whether subscribers learn who is online (`--presence`, default all).
    pub presence: PresenceSharing,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            auth: Auth::Open,
            ring_timeout: Duration::from_secs(45),
            heartbeat: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            upgrade_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(5),
            limits: ConnectionLimits::default(),
            tls: None,
            ice: IceOffer::default(),
            presence: PresenceSharing::All,
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
        let registry = match config.presence {
            PresenceSharing::All => Registry::with_presence(),
            PresenceSharing::None => Registry::default(),
        };
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(registry),
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
        info!(addr = %self.local_addr(), limits = ?self.shared.config.limits, "signaling server listening");
        let admission = Admission::new(self.shared.config.limits);
        let trimmer = tokio::spawn(memory::trim_after_disconnects(Arc::clone(&admission)));
        let presence = tokio::spawn(presence::publish(Arc::clone(&self.shared)));
        let listener = listener::Listener {
            listener: self.listener,
            shared: Arc::clone(&self.shared),
            admission,
            pending: Arc::new(Pending::default()),
            stop: stop_rx,
        };
        listener.run(shutdown).await;
        trimmer.abort();
        presence.abort();
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
