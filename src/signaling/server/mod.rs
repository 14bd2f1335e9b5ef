//! The signaling server behind `rtc-cli serve`. Media never passes through it.
//!
//! Shape after tokio's mini-redis:
//! - `listener`: accepts TCP connections under the connection caps, refuses the rest
//!   with HTTP 503 and a reason, and keeps accepting when file handles run out;
//! - `limits`: the caps, the pending (not logged in) connections that can be shed,
//!   and the open-file limit;
//! - `session`: one client from WebSocket upgrade to close (reader loop + writer
//!   task with a bounded queue), with upgrade and first-login deadlines;
//! - `registry`: who is online and which calls and rooms exist: a deterministic state
//!   machine that changes only by `command`s and answers with effects;
//! - `command`: the commands (a session's message, a login, a timer, a gone instance);
//! - `calls`, `rooms`: call control and rooms in the registry;
//! - `local`: the sessions this process holds, and carrying out effects for them;
//! - `cluster`: several processes sharing one registry through Redis (`--redis`);
//! - `presence`: who is online, batched to the clients that subscribe;
//! - `memory`: handing freed heap back to the system after a mass disconnect.

mod calls;
mod cluster;
mod command;
mod http;
mod limits;
mod listener;
mod local;
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
use tracing::{info, warn};

pub use cluster::Unavailable;
pub use limits::{ConnectionLimits, Refusal, raise_open_file_limit};
pub use presence::PresenceSharing;

use self::cluster::Cluster;
use self::command::Command;
use self::limits::{Admission, Pending};
use self::local::State;
use self::registry::{CallInstance, InstanceId, Registry, SessionKey};
use super::auth::Auth;
use super::turn::IceOffer;
use crate::signaling::protocol::{CallId, ServerMessage};

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
    /// Redis shared with other instances (`--redis redis://HOST:PORT[/DB]`); `None`
    /// keeps everything in this process.
    pub redis: Option<String>,
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
            redis: None,
        }
    }
}

/// State shared by every session.
#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    /// This process among those sharing a store.
    instance: InstanceId,
    state: Mutex<State>,
    store: Store,
}

/// Where commands go to be ordered.
#[derive(Debug)]
enum Store {
    /// This process alone: a command is applied as it is submitted.
    Memory,
    /// Redis, shared with other instances.
    Redis(Arc<Cluster>),
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // worse than stopping the server would; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of this instance's connection `conn`.
    fn key(&self, conn: u64) -> SessionKey {
        SessionKey {
            instance: self.instance,
            conn,
        }
    }

    /// Submits `cmd`: applied now on a single server, appended to the shared log with
    /// `--redis` (and applied when read back).
    ///
    /// # Errors
    /// The shared store is unreachable; the command was not taken.
    async fn submit(self: &Arc<Self>, cmd: Command) -> Result<(), Unavailable> {
        match &self.store {
            Store::Memory => {
                self.apply(cmd);
                Ok(())
            }
            Store::Redis(cluster) => cluster.append(&cmd).await,
        }
    }

    /// Submits a session's departure; with `--redis`, one that cannot be appended now is
    /// retried once Redis is back, so its user does not stay online.
    async fn submit_departure(self: &Arc<Self>, cmd: Command) {
        match &self.store {
            Store::Memory => self.apply(cmd),
            Store::Redis(cluster) => cluster.append_departure(cmd).await,
        }
    }

    /// Applies `cmd` to the registry and carries out its effects for this instance.
    fn apply(self: &Arc<Self>, cmd: Command) {
        let evicted =
            matches!(cmd, Command::InstanceGone { instance } if instance == self.instance);
        let timers = {
            let mut state = self.state();
            state.registry.apply(cmd);
            let timers = state.carry_out(self.instance, &self.config);
            if evicted {
                self.close_all(&state, "this server lost its shared store for too long");
            }
            timers
        };
        for (call_id, instance) in timers {
            self.start_ring_timer(call_id, instance);
        }
    }

    /// Tells every session of this instance to reconnect (the others declared it gone).
    fn close_all(&self, state: &State, why: &str) {
        warn!("{why}: closing every session so their clients log in again");
        for s in state.local.values() {
            s.send(ServerMessage::Shutdown {
                message: why.into(),
                retry_after_ms: 500,
            });
            s.close(None);
        }
    }

    /// Submits [`Command::RingTimeout`] for call `instance` after `--ring-timeout`
    /// (retrying while the shared store is unreachable).
    fn start_ring_timer(self: &Arc<Self>, call_id: CallId, instance: CallInstance) {
        let shared = Arc::clone(self);
        let timeout = shared.config.ring_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            for _ in 0..60 {
                let cmd = Command::RingTimeout {
                    call_id: call_id.clone(),
                    instance,
                };
                if shared.submit(cmd).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
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
        let store = match &config.redis {
            Some(url) => Store::Redis(Arc::new(Cluster::new(url)?)),
            None => Store::Memory,
        };
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                instance: InstanceId::random(),
                state: Mutex::new(State {
                    registry,
                    local: Default::default(),
                }),
                store,
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
        let cluster = match &self.shared.store {
            Store::Redis(cluster) => Some(tokio::spawn(cluster::run(
                Arc::clone(&self.shared),
                Arc::clone(cluster),
            ))),
            Store::Memory => None,
        };
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
        while !self.shared.state().local.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(reader) = cluster {
            // Tell the other instances now rather than after the heartbeat expires.
            if let Store::Redis(cluster) = &self.shared.store {
                let gone = Command::InstanceGone {
                    instance: self.shared.instance,
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), cluster.append(&gone)).await;
            }
            reader.abort();
        }
    }
}
