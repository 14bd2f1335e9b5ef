//! Several `serve` instances sharing presence, calls and rooms through Redis
//! (`serve --redis redis://HOST:PORT[/DB]`).
//!
//! **Design: one ordered command log, applied by every instance.** Each instance keeps
//! a full copy of the [`Registry`]. A session does not change it directly: its
//! instance appends the [`Command`] to one Redis stream (`XADD`), and every instance
//! reads the stream (`XREAD`) and applies each command, in stream order, to its copy.
//! The registry is deterministic, so every copy makes the same decisions (busy, glare,
//! the room that is full, which login wins a conflict) exactly once each, and each
//! instance carries out only the effects addressed to the sessions it holds. Routing
//! falls out of it: a message for a user on another instance reaches that instance
//! in the stream, after everything its sender did before it (per-sender order, and
//! also the order between call control and the relayed SDP that depends on it). A
//! per-instance pub/sub channel would route relayed messages with less reading, but
//! would lose that order and leave the call state to be shared some other way.
//!
//! Keys (all under `rtc-cli:`):
//! - `rtc-cli:log`: the stream; entry field `c` holds a command (JSON), field `s` an
//!   instance asking for a snapshot. Trimmed to about [`LOG_LENGTH`] entries.
//! - `rtc-cli:instances`: sorted set, instance id (hex) → the time its heartbeat
//!   expires (Unix ms). An instance refreshes it every [`HEARTBEAT`]; the others submit
//!   [`Command::InstanceGone`] for one absent for [`INSTANCE_TTL`], which logs its
//!   users out (so the users of a dead instance expire with it).
//! - `rtc-cli:snapshot:<id>`: the state handed to joining instance `<id>` (JSON, 60 s).
//!
//! **Joining.** A starting instance appends a snapshot request and notes its stream id
//! R. If no other instance is live (heartbeating: an instance starts to once it has
//! joined), it starts empty from R: nothing before R can concern it. Otherwise each live
//! instance, on reading R, writes its registry as it stands before R; the joiner loads
//! it and reads on from R.
//!
//! **Redis down.** Commands cannot be ordered, so they fail: logins and messages get
//! `unavailable`, `/healthz` says `degraded` (503). The reader and the connection
//! manager reconnect with backoff; departures that could not be appended are retried
//! once Redis is back. Redis without persistence loses the stream on a restart; the
//! copies in the instances carry on from where they were.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::Shared;
use super::command::Command;
use super::registry::{InstanceId, Registry};

/// The command stream.
const LOG_KEY: &str = "rtc-cli:log";
/// The live instances and their heartbeat expiry.
const INSTANCES_KEY: &str = "rtc-cli:instances";
/// Entries kept in the stream (`XADD MAXLEN ~`). An instance reads the stream live,
/// milliseconds behind; at the measured peak (about 1 000 call setups per second, 8
/// entries each) this is 6 s of history, and at most ~75 MB of Redis memory with SDPs.
pub(super) const LOG_LENGTH: u64 = 50_000;
/// How often an instance refreshes its heartbeat and looks for gone instances.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long an instance may miss heartbeats before its sessions are logged out.
pub(super) const INSTANCE_TTL: Duration = Duration::from_secs(10);
/// Longest wait for a snapshot when joining live instances.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);
/// Entries read per `XREAD`, and how long it blocks.
const READ_COUNT: usize = 512;
const READ_BLOCK_MS: u64 = 1000;

/// Why a command could not be submitted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the server cannot reach its shared store (Redis): {0}")]
pub struct Unavailable(pub String);

/// The store's state, for `/healthz` and for refusing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Link {
    /// Connecting, or loading the state from the other instances.
    Joining = 0,
    /// Reading and appending.
    Up = 1,
    /// Redis unreachable; reconnecting.
    Down = 2,
}

impl Link {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// The Redis side of one instance.
pub(super) struct Cluster {
    client: redis::Client,
    /// The URL without its password, for logs.
    shown: String,
    /// Appends (and everything but the blocking read).
    manager: ConnectionManager,
    link: AtomicU8,
    /// Departures that could not be appended, retried on every heartbeat.
    undelivered: Mutex<Vec<Command>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.shown)
            .field("link", &self.link())
            .finish()
    }
}

/// What a joining instance gets from a live one.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// The stream id of the snapshot request: the state is the one before it.
    after: String,
    registry: Registry,
}

impl Cluster {
    /// A cluster link to the Redis at `url` (not connected yet: see [`run`]).
    ///
    /// # Errors
    /// `url` is not a Redis URL.
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("--redis {}: {e}", redact(url)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| anyhow::anyhow!("--redis {}: {e}", redact(url)))?;
        Ok(Self {
            client,
            shown: redact(url),
            manager,
            link: AtomicU8::new(Link::Joining as u8),
            undelivered: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn link(&self) -> Link {
        match self.link.load(Ordering::Relaxed) {
            0 => Link::Joining,
            1 => Link::Up,
            _ => Link::Down,
        }
    }

    fn set_link(&self, link: Link) {
        let old = self.link.swap(link as u8, Ordering::Relaxed);
        if old != link as u8 {
            match link {
                Link::Up => info!(redis = %self.shown, "shared store up"),
                Link::Down => warn!(redis = %self.shown, "shared store unreachable; retrying"),
                Link::Joining => {}
            }
        }
    }

    /// Appends `cmd` to the stream; it takes effect when the reader applies it.
    ///
    /// # Errors
    /// Redis is unreachable or the instance has not joined yet.
    pub(super) async fn append(&self, cmd: &Command) -> Result<(), Unavailable> {
        if self.link() == Link::Joining {
            return Err(Unavailable("still joining the other servers".into()));
        }
        let json = serde_json::to_string(cmd).map_err(|e| Unavailable(e.to_string()))?;
        self.add_entry("c", &json).await.map(drop)
    }

    /// Appends a departure, keeping it for a retry if Redis is unreachable.
    pub(super) async fn append_departure(&self, cmd: Command) {
        if let Err(e) = self.append(&cmd).await {
            debug!("departure kept for later: {e}");
            self.undelivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cmd);
        }
    }

    async fn add_entry(&self, field: &str, value: &str) -> Result<String, Unavailable> {
        let mut conn = self.manager.clone();
        redis::cmd("XADD")
            .arg(LOG_KEY)
            .arg("MAXLEN")
            .arg("~")
            .arg(LOG_LENGTH)
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| {
                self.set_link(Link::Down);
                Unavailable(e.to_string())
            })
    }
}

/// Runs the instance's side of the cluster until aborted: joins (retrying until Redis
/// answers), then reads and applies the stream, heartbeats, and logs out gone
/// instances.
pub(super) async fn run(shared: Arc<Shared>, cluster: Arc<Cluster>) {
    let after = join(&shared, &cluster).await;
    cluster.set_link(Link::Up);
    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&shared), Arc::clone(&cluster)));
    read(&shared, &cluster, after).await;
    heartbeat.abort();
}

/// Joins the other instances; the stream id to read on from.
async fn join(shared: &Arc<Shared>, cluster: &Cluster) -> String {
    let me = shared.instance;
    let mut attempt = 0u32;
    loop {
        match try_join(shared, cluster).await {
            Ok(after) => return after,
            Err(e) => {
                attempt += 1;
                let wait = backoff(attempt);
                warn!(redis = %cluster.shown, %me, "cannot join through Redis ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn try_join(shared: &Arc<Shared>, cluster: &Cluster) -> anyhow::Result<String> {
    let me = shared.instance;
    let request = cluster.add_entry("s", &me.to_string()).await?;
    let mut conn = cluster.manager.clone();
    // Live instances have state to hand over: an instance heartbeats only once joined.
    let others = live_instances(&mut conn).await?;
    let others: Vec<_> = others.into_iter().filter(|i| *i != me).collect();
    if others.is_empty() {
        info!(%me, "first instance on this Redis: starting with an empty registry");
        return Ok(request);
    }
    let key = snapshot_key(me);
    let deadline = Instant::now() + SNAPSHOT_WAIT;
    while Instant::now() < deadline {
        if let Some(json) = conn.get::<_, Option<String>>(&key).await? {
            let snapshot: Snapshot = serde_json::from_str(&json)?;
            let users = snapshot.registry.sessions.len();
            shared.state().registry.load(snapshot.registry);
            let _: () = conn.del(&key).await?;
            info!(%me, instances = others.len(), users, "joined: state loaded from the other instances");
            return Ok(snapshot.after);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warn!(%me, "no snapshot from the live instances in {SNAPSHOT_WAIT:?}; starting empty");
    Ok(request)
}

/// Reads the stream from after `last` and applies it, reconnecting when Redis goes.
async fn read(shared: &Arc<Shared>, cluster: &Cluster, mut last: String) {
    let mut attempt = 0u32;
    loop {
        let mut conn = match reader_connection(&cluster.client).await {
            Ok(c) => c,
            Err(e) => {
                cluster.set_link(Link::Down);
                attempt += 1;
                debug!("reader cannot connect: {e}");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
        };
        attempt = 0;
        loop {
            let reply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(READ_BLOCK_MS)
                .arg("STREAMS")
                .arg(LOG_KEY)
                .arg(&last)
                .query_async::<Option<StreamReadReply>>(&mut conn)
                .await;
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    debug!("stream read failed: {e}");
                    cluster.set_link(Link::Down);
                    break;
                }
            };
            cluster.set_link(Link::Up);
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                on_entry(shared, cluster, &entry.id, &entry.map);
                last = entry.id;
            }
        }
    }
}

/// Applies one stream entry.
fn on_entry(
    shared: &Arc<Shared>,
    cluster: &Cluster,
    id: &str,
    map: &HashMap<String, redis::Value>,
) {
    if let Some(value) = map.get("c") {
        match redis::from_redis_value_ref::<String>(value)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<Command>(&s).map_err(|e| e.to_string()))
        {
            Ok(cmd) => shared.apply(cmd),
            Err(e) => warn!(entry = id, "skipping a stream entry we cannot read: {e}"),
        }
    } else if let Some(value) = map.get("s") {
        let Ok(from) = redis::from_redis_value_ref::<String>(value) else {
            return;
        };
        if from != shared.instance.to_string() {
            send_snapshot(shared, cluster, id, &from);
        }
    }
}

/// Writes the registry as it stands before entry `id` for joining instance `to`.
fn send_snapshot(shared: &Arc<Shared>, cluster: &Cluster, id: &str, to: &str) {
    let json = {
        let state = shared.state();
        serde_json::to_string(&SnapshotRef {
            after: id,
            registry: &state.registry,
        })
    };
    let Ok(json) = json else { return };
    let key = format!("rtc-cli:snapshot:{to}");
    let mut conn = cluster.manager.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.set_ex::<_, _, ()>(&key, json, 60).await {
            warn!("cannot hand the state to a joining instance: {e}");
        }
    });
}

/// [`Snapshot`] by reference, to serialize without a copy.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    after: &'a str,
    registry: &'a Registry,
}

/// Every [`HEARTBEAT`]: refreshes this instance's expiry, retries kept departures, and
/// submits [`Command::InstanceGone`] for instances absent for [`INSTANCE_TTL`].
async fn heartbeat(shared: Arc<Shared>, cluster: Arc<Cluster>) {
    let me = shared.instance;
    let mut missing: HashMap<InstanceId, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut conn = cluster.manager.clone();
        let live = match beat(&mut conn, me).await {
            Ok(()) => live_instances(&mut conn).await,
            Err(e) => Err(e),
        };
        let live: HashSet<InstanceId> = match live {
            Ok(live) => live.into_iter().collect(),
            Err(e) => {
                // Our own link is the problem: judge nobody until it is back.
                debug!("heartbeat failed: {e}");
                cluster.set_link(Link::Down);
                missing.clear();
                continue;
            }
        };
        retry_departures(&cluster).await;
        let referenced = shared.state().registry.instances();
        missing.retain(|i, _| referenced.contains(i) && !live.contains(i));
        let now = Instant::now();
        for instance in referenced
            .into_iter()
            .filter(|i| *i != me && !live.contains(i))
        {
            let since = *missing.entry(instance).or_insert(now);
            if now.duration_since(since) >= INSTANCE_TTL {
                warn!(%instance, "instance silent for {INSTANCE_TTL:?}: logging its users out");
                if cluster
                    .append(&Command::InstanceGone { instance })
                    .await
                    .is_ok()
                {
                    missing.remove(&instance);
                }
            }
        }
    }
}

async fn retry_departures(cluster: &Cluster) {
    let kept = std::mem::take(
        &mut *cluster
            .undelivered
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    for cmd in kept {
        cluster.append_departure(cmd).await;
    }
}

/// Refreshes `me`'s heartbeat expiry and drops long-expired entries.
async fn beat(conn: &mut ConnectionManager, me: InstanceId) -> redis::RedisResult<()> {
    let now = unix_ms();
    let expires = now + INSTANCE_TTL.as_millis() as u64;
    redis::pipe()
        .zadd(INSTANCES_KEY, me.to_string(), expires)
        .ignore()
        .zrembyscore(
            INSTANCES_KEY,
            0,
            now.saturating_sub(10 * INSTANCE_TTL.as_millis() as u64),
        )
        .ignore()
        .query_async(conn)
        .await
}

/// The instances whose heartbeat has not expired.
async fn live_instances(conn: &mut ConnectionManager) -> redis::RedisResult<Vec<InstanceId>> {
    let ids: Vec<String> = conn.zrangebyscore(INSTANCES_KEY, unix_ms(), "+inf").await?;
    Ok(ids
        .iter()
        .filter_map(|s| u64::from_str_radix(s, 16).ok().map(InstanceId))
        .collect())
}

async fn reader_connection(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(
            Duration::from_millis(READ_BLOCK_MS) + Duration::from_secs(3),
        ));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

fn snapshot_key(me: InstanceId) -> String {
    format!("rtc-cli:snapshot:{me}")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Retry delays: 250 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)).min(5_000))
}

/// `url` without a password (`redis://user:secret@host` → `redis://user:***@host`).
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".into()
            };
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

impl Registry {
    /// Replaces the replicated state with a snapshot's (presence changes and effects
    /// stay as they are).
    pub(super) fn load(&mut self, snapshot: Registry) {
        let changes = std::mem::take(&mut self.presence_changes);
        *self = snapshot;
        self.presence_changes = changes;
    }

    /// The instances that hold at least one session.
    pub(super) fn instances(&self) -> HashSet<InstanceId> {
        self.sessions.values().map(|s| s.instance).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_the_log() {
        assert_eq!(
            redact("redis://user:hunter2@127.0.0.1:6379/0"),
            "redis://user:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("not a url"), "(not a URL)");
        assert_eq!(redact("redis://:pw@h:1"), "redis://:***@h:1");
    }
}
