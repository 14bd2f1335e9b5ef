//! HTTP/1.1 on the signaling listener (hyper): the web client's files, embedded from
//! `web/` (GET `/` and `/app.js`), a health check for operators and load balancers
//! (GET `/healthz`), and the WebSocket upgrade (RFC 6455 §4.2) at `/ws` and at `/`,
//! the path clients used before the web client existed.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::cluster::Link;
use super::session::websocket_config;
use super::{Shared, Store};

/// The byte stream of a connection after its WebSocket upgrade.
pub(super) type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The web client's page.
const INDEX_HTML: &str = include_str!("../../../web/index.html");
/// The web client's script.
const APP_JS: &str = include_str!("../../../web/app.js");

/// What the page may load: only itself, its script and its own server's WebSocket
/// (chat text is never HTML, and this keeps it so even if a bug tried).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; media-src 'self' blob:; \
    img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Largest request head hyper buffers (its floor is 8 KiB): enough for any browser's.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves HTTP on `stream` until a WebSocket upgrade, and returns the WebSocket. A
/// connection that ends without one (a browser that loaded the page, a bad request)
/// is an `Err` saying so, for the caller's debug log.
pub(super) async fn serve_until_upgrade<S>(
    stream: S,
    shared: Arc<Shared>,
) -> Result<WebSocketStream<Upgraded>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let slot = Arc::new(Mutex::new(Some(tx)));
    let service = service_fn(move |req| {
        let slot = Arc::clone(&slot);
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(respond(req, &slot, &shared)) }
    });
    let connection = http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let (served, upgraded) = tokio::join!(connection, rx);
    match (upgraded, served) {
        (Ok(ws), _) => Ok(ws),
        (Err(_), Ok(())) => Err("HTTP connection closed without a WebSocket upgrade".into()),
        (Err(_), Err(e)) => Err(format!("HTTP connection failed: {e}")),
    }
}

type UpgradeSlot = Mutex<Option<oneshot::Sender<WebSocketStream<Upgraded>>>>;

/// The answer to one request: the upgrade, a file, or an error status.
fn respond(
    mut req: Request<Incoming>,
    slot: &Arc<UpgradeSlot>,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if wants_websocket(&req) {
        if path != "/" && path != "/ws" {
            return status(StatusCode::NOT_FOUND, "no WebSocket here: use /ws\n");
        }
        return upgrade(&mut req, slot);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/healthz" {
        return health(shared);
    }
    let (body, content_type) = match path {
        "/" | "/index.html" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return status(StatusCode::NOT_FOUND, "not found\n"),
    };
    let body = if req.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from_static(body.as_bytes())
    };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// Whether the request asks for a WebSocket (RFC 6455 §4.2.1: `Upgrade: websocket`).
fn wants_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Accepts the upgrade (RFC 6455 §4.2.2): 101 with the key's accept value; the
/// WebSocket goes to `slot` once hyper hands the connection over. A request without a
/// key, or of another version than 13, gets 400 (426 with the version we speak).
fn upgrade(req: &mut Request<Incoming>, slot: &Arc<UpgradeSlot>) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if req.method() != Method::GET {
        return status(StatusCode::BAD_REQUEST, "a WebSocket upgrade is a GET\n");
    }
    if !version_ok {
        let mut r = status(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return status(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key\n");
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(tx) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return status(StatusCode::BAD_REQUEST, "one WebSocket per connection\n");
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let io = TokioIo::new(upgraded);
            let ws =
                WebSocketStream::from_raw_socket(io, Role::Server, Some(websocket_config())).await;
            let _ = tx.send(ws);
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    r
}

/// `GET /healthz`: this server's view of itself, as JSON:
/// `{"status":"ok"|"degraded","store":"memory"|"redis","redis":"joining"|"up"|"down",
/// "instance":HEX,"logged_in":N,"local":N,"calls":N,"rooms":N}`, where `logged_in`,
/// `calls` and `rooms` count every instance sharing the store and `local` the sessions
/// this one holds. 200 when ok; 503 while it cannot reach Redis, so a load balancer
/// sends clients elsewhere.
fn health(shared: &Shared) -> Response<Full<Bytes>> {
    let link = match &shared.store {
        Store::Memory => None,
        Store::Redis(cluster) => Some(cluster.link()),
    };
    let ok = link.is_none_or(|l| l == Link::Up);
    let body = {
        let state = shared.state();
        let reg = &state.registry;
        let mut body = serde_json::json!({
            "status": if ok { "ok" } else { "degraded" },
            "store": if link.is_some() { "redis" } else { "memory" },
            "instance": shared.instance.to_string(),
            "logged_in": reg.sessions.len(),
            "local": state.local.len(),
            "calls": reg.calls.len(),
            "rooms": reg.rooms.len(),
        });
        if let Some(link) = link {
            body["redis"] = link.as_str().into();
        }
        body.to_string()
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    if !ok {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A plain-text answer with `code`.
fn status(code: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
