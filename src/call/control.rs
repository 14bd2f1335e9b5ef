//! The local control socket of a running `rtc-cli listen`: a second `rtc-cli call ID` or
//! `rtc-cli who` on the same machine asks the running client instead of logging in
//! itself (which would kick it with `conflict`).
//!
//! The socket is `$XDG_RUNTIME_DIR/rtc-cli/<id>.sock` (without `XDG_RUNTIME_DIR`:
//! `$TMPDIR/rtc-cli-<uid>/<id>.sock`), in a directory only its owner may enter (0700)
//! and with mode 0600; the listener also checks each connecting process's uid
//! (`SO_PEERCRED`) and refuses other users. A socket file left by a crashed run (nobody
//! answers on it) is replaced.
//!
//! The exchange is JSON lines: one request from the dialer, then replies until the
//! listener closes. `{"request":"call","to":"tom","hangup_after_secs":5}` is answered
//! with the call's events (the headless `state`, `error` and `notice` objects) and a
//! last `{"event":"done","exit_code":N}` with `rtc-cli call`'s exit code for the
//! outcome (the dialer closing the connection before that hangs the call up, as
//! stopping `rtc-cli call` would); `{"request":"who"}` with one `{"event":"presence","users":[…]}`, or
//! `{"event":"done","exit_code":1,"message":…}` when the server shares no presence.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{AppEvent, ExitCode, Presence, TimedEvent, UserId};
use crate::ui::headless::event_value;

/// Longest request line accepted, bytes.
const MAX_REQUEST_BYTES: u64 = 4096;

/// Numbers the dialing connections, so a vanished dialer ends its own call only.
static NEXT_DIALER: AtomicU64 = AtomicU64::new(1);

/// Time a connected dialer gets to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a dialer asks the running client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Place a call to `to`; the call shows on the listener's screen.
    Call {
        /// Who to call.
        to: UserId,
        /// End the call this many seconds after it connects (`call --hangup-after`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hangup_after_secs: Option<u64>,
    },
    /// Who is online.
    Who,
}

/// One line of the listener's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// The outcome: the exit code `rtc-cli call` would have ended with, and why when
    /// the request could not be served.
    Done {
        /// Always `done`.
        event: DoneTag,
        /// The exit code.
        exit_code: i32,
        /// Why the request was not served, if it was not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// An event of the call, as the headless view prints it.
    Event(serde_json::Value),
}

/// The `event` value of [`Reply::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneTag {
    /// The last line.
    Done,
}

impl Reply {
    /// The last line, with `code` and an optional reason.
    pub fn done(code: ExitCode, message: Option<String>) -> Self {
        Self::Done {
            event: DoneTag::Done,
            exit_code: code as i32,
            message,
        }
    }

    /// An event line, as the headless view prints it (with its `ts`).
    pub fn event(event: &TimedEvent) -> Self {
        Self::Event(event_value(event))
    }
}

/// A request handed to the controller, with where its answers go.
#[derive(Debug)]
pub enum ControlRequest {
    /// Place a call; its events and the final [`Reply::Done`] go to `replies`.
    Call {
        /// Who to call.
        to: UserId,
        /// Overrides `--hangup-after` for this call.
        hangup_after: Option<Duration>,
        /// The dialer's answer lines.
        replies: mpsc::Sender<Reply>,
        /// The dialing connection, for [`ControlRequest::DialerGone`].
        dialer: u64,
    },
    /// The process that asked for call `dialer` went away before the call ended
    /// (Ctrl-C, killed): hang that call up, as the `call` process would have.
    DialerGone {
        /// The dialing connection.
        dialer: u64,
    },
    /// Who is online: `None` when the server shares no presence.
    Who {
        /// The answer.
        reply: oneshot::Sender<Option<Vec<Presence>>>,
    },
}

/// The directory of the control sockets of this user: `$XDG_RUNTIME_DIR/rtc-cli`, else
/// `$TMPDIR/rtc-cli-<uid>`.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("rtc-cli"),
        None => std::env::temp_dir().join(format!("rtc-cli-{}", uid())),
    }
}

/// The control socket of the running client of `id`.
pub fn socket_path(id: &UserId) -> PathBuf {
    socket_dir().join(format!("{id}.sock"))
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

/// Creates `dir` (0700) if needed and checks that it is ours and closed to others: a
/// directory someone else made in a shared temp dir must not hold our socket.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if meta.uid() != uid() {
        bail!("{} belongs to another user", dir.display());
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// The listening end, in a running `listen`. Dropping it removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlServer {
    /// Binds the control socket of `id` and serves it, handing requests to `requests`.
    ///
    /// # Errors
    /// The directory cannot be made private, another running client of `id` answers
    /// on the socket, or the socket cannot be bound.
    pub async fn bind(id: &UserId, requests: mpsc::Sender<ControlRequest>) -> anyhow::Result<Self> {
        let path = socket_path(id);
        if let Some(dir) = path.parent() {
            private_dir(dir)?;
        }
        if UnixStream::connect(&path).await.is_ok() {
            bail!(
                "another rtc-cli of {id} is running (its control socket {} answers)",
                path.display()
            );
        }
        match std::fs::remove_file(&path) {
            Ok(()) => info!(path = %path.display(), "replaced a stale control socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        let listener =
            UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        info!(path = %path.display(), "control socket ready");
        let task = tokio::spawn(accept_loop(listener, requests));
        Ok(Self { path, task })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, requests: mpsc::Sender<ControlRequest>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_dialer(stream, requests.clone()));
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: checks its uid, reads its request, answers it.
async fn serve_dialer(stream: UnixStream, requests: mpsc::Sender<ControlRequest>) {
    let (read, mut write) = stream.into_split();
    let peer_uid = write.as_ref().peer_cred().map(|c| c.uid());
    if peer_uid.as_ref().ok() != Some(&uid()) {
        warn!(
            ?peer_uid,
            "control socket: refused a process of another user"
        );
        let refusal = Reply::done(
            ExitCode::Error,
            Some("refused: this control socket serves its owner only".into()),
        );
        let _ = write_line(&mut write, &refusal).await;
        return;
    }
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => serde_json::from_str::<Request>(line.trim()),
        _ => {
            debug!("control socket: no request");
            return;
        }
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            let bad = Reply::done(ExitCode::Usage, Some(format!("bad request: {e}")));
            let _ = write_line(&mut write, &bad).await;
            return;
        }
    };
    info!(?request, "control socket request");
    match request {
        Request::Call {
            to,
            hangup_after_secs,
        } => {
            let dialer = NEXT_DIALER.fetch_add(1, Ordering::Relaxed);
            let (tx, mut rx) = mpsc::channel(64);
            let asked = ControlRequest::Call {
                to,
                hangup_after: hangup_after_secs.map(Duration::from_secs),
                replies: tx,
                dialer,
            };
            if requests.send(asked).await.is_err() {
                return;
            }
            // The request line is read: anything more from the dialer is its end.
            let mut read = reader.into_inner().into_inner();
            let mut byte = [0u8; 1];
            loop {
                tokio::select! {
                    reply = rx.recv() => match reply {
                        Some(reply) => {
                            if write_line(&mut write, &reply).await.is_err() {
                                let _ = requests.send(ControlRequest::DialerGone { dialer }).await;
                                break;
                            }
                        }
                        None => break, // the call is over (its `done` was written)
                    },
                    _ = read.read(&mut byte) => {
                        let _ = requests.send(ControlRequest::DialerGone { dialer }).await;
                        break;
                    }
                }
            }
        }
        Request::Who => {
            let (tx, rx) = oneshot::channel();
            if requests
                .send(ControlRequest::Who { reply: tx })
                .await
                .is_err()
            {
                return;
            }
            let reply = match rx.await {
                Ok(Some(users)) => Reply::event(&TimedEvent::now(AppEvent::Presence { users })),
                _ => Reply::done(
                    ExitCode::Error,
                    Some("the server does not share presence".into()),
                ),
            };
            let _ = write_line(&mut write, &reply).await;
        }
    }
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await
}

/// The dialing end: connects to the running client of `id`, if there is one.
///
/// Returns `None` when no client of `id` runs here (no socket, or nobody answers on
/// it), so the caller goes on by itself; else the stream of answer lines.
pub async fn connect(id: &UserId, request: &Request) -> Option<Answers> {
    let path = socket_path(id);
    let mut stream = UnixStream::connect(&path).await.ok()?;
    let mut line = serde_json::to_string(request).ok()?;
    line.push('\n');
    stream.write_all(line.as_bytes()).await.ok()?;
    Some(Answers {
        lines: BufReader::new(stream).lines(),
    })
}

/// The answer lines of a running client.
pub struct Answers {
    lines: tokio::io::Lines<BufReader<UnixStream>>,
}

impl Answers {
    /// The next answer; `None` once the client closed the connection.
    pub async fn next(&mut self) -> Option<Reply> {
        loop {
            let line = self.lines.next_line().await.ok()??;
            match serde_json::from_str(&line) {
                Ok(reply) => return Some(reply),
                Err(e) => warn!("control socket: unreadable answer: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_their_documented_shape() {
        let call = Request::Call {
            to: UserId::parse("tom").unwrap(),
            hangup_after_secs: None,
        };
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"request":"call","to":"tom"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"request":"who"}"#).unwrap(),
            Request::Who
        );
        let done = Reply::done(ExitCode::Busy, None);
        let text = serde_json::to_string(&done).unwrap();
        assert_eq!(text, r#"{"event":"done","exit_code":4}"#);
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), done);
        let state = r#"{"event":"state","state":"ringing"}"#;
        assert!(matches!(
            serde_json::from_str::<Reply>(state).unwrap(),
            Reply::Event(_)
        ));
    }
}
