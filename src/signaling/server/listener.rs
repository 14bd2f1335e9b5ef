//! The accept loop: admits connections under the caps, answers the refused ones with
//! HTTP 503 and a reason, and keeps accepting when the process runs out of file
//! handles by shedding the oldest connections that have not logged in.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tracing::{debug, warn};

use super::Shared;
use super::limits::{Admission, Pending, Permit, Refusal};
use super::session::{Accepted, serve_connection};

/// Pending connections shed at once when file handles run out.
const SHED_PER_EMFILE: usize = 16;

/// Pause after shedding, so the shed tasks close their sockets before the next accept.
const AFTER_SHEDDING: Duration = Duration::from_millis(10);

/// Pause when out of file handles with nothing to shed (all connections logged in).
const OUT_OF_FILES_BACKOFF: Duration = Duration::from_millis(100);

/// Refusals being answered at once; beyond this a refused connection is just closed,
/// so refusing cannot itself exhaust file handles.
const MAX_REFUSING: usize = 128;

/// Time a refused client gets to send its upgrade request and read the 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u32 = 5;

/// The accept loop's state.
pub(super) struct Listener {
    pub(super) listener: TcpListener,
    pub(super) shared: Arc<Shared>,
    pub(super) admission: Arc<Admission>,
    pub(super) pending: Arc<Pending>,
    /// Turns true when the server shuts down; every session watches it.
    pub(super) stop: watch::Receiver<bool>,
}

impl Listener {
    /// Accepts until `shutdown` resolves.
    pub(super) async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let refusing = Arc::new(AtomicUsize::new(0));
        let mut next_conn = 0u64;
        let mut last_warning: Option<Instant> = None;
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    next_conn += 1;
                    self.admit(stream, peer, next_conn, &refusing);
                }
                Err(e) if is_out_of_files(&e) => {
                    let shed = self.pending.shed_oldest(SHED_PER_EMFILE);
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        last_warning = Some(Instant::now());
                        warn!(
                            shed,
                            pending = self.pending.len(),
                            "accept failed, out of file handles: {e}"
                        );
                    }
                    let pause = if shed > 0 {
                        AFTER_SHEDDING
                    } else {
                        OUT_OF_FILES_BACKOFF
                    };
                    tokio::time::sleep(pause).await;
                }
                // Errors of one connection (it was reset before we took it): go on.
                Err(e) => debug!("accept failed: {e}"),
            }
        }
    }

    /// Starts a session for `stream` under a permit, or refuses it.
    fn admit(&self, stream: TcpStream, peer: SocketAddr, conn: u64, refusing: &Arc<AtomicUsize>) {
        let permit = match self.permit_for(peer) {
            Ok(permit) => permit,
            Err(refusal) => {
                debug!(%peer, "connection refused: {refusal}");
                refuse(stream, refusal, refusing);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let pending = self.pending.insert(conn, permit);
        let shared = Arc::clone(&self.shared);
        let stop = self.stop.clone();
        let accepted = Accepted {
            stream,
            peer,
            conn,
            pending,
        };
        tokio::spawn(serve_connection(shared, accepted, stop));
    }

    /// A permit for `peer`; a full server first sheds its oldest pending connection,
    /// so connections that never log in cannot keep a new login out.
    fn permit_for(&self, peer: SocketAddr) -> Result<Permit, Refusal> {
        match self.admission.admit(peer.ip()) {
            Err(Refusal::ServerFull { .. }) if self.pending.shed_oldest(1) == 1 => {
                self.admission.admit(peer.ip())
            }
            other => other,
        }
    }
}

/// Whether an accept error means the process or system has no file handles left.
fn is_out_of_files(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Answers the client's upgrade request with HTTP 503 and `refusal` as the body, within
/// [`REFUSAL_TIMEOUT`]; past [`MAX_REFUSING`] answers in flight, just closes.
fn refuse(stream: TcpStream, refusal: Refusal, refusing: &Arc<AtomicUsize>) {
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = Arc::clone(refusing);
    tokio::spawn(async move {
        // The callback's type is tungstenite's; its error is the response to send.
        #[allow(clippy::result_large_err)]
        let answer = move |_: &Request, _: Response| -> Result<Response, ErrorResponse> {
            Err(refusal_response(refusal))
        };
        let handshake = tokio_tungstenite::accept_hdr_async(stream, answer);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, handshake).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

/// `503 Service Unavailable` with `Retry-After` and the reason as a text body.
fn refusal_response(refusal: Refusal) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(refusal.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert("Retry-After", RETRY_AFTER_SECS.into());
    response
}
