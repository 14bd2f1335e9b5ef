//! Load generator for `rtc-cli serve` (used by `scripts/bench-serve.sh`), on 127.0.0.1.
//!
//! - `idle N [PREFIX]`: logs in N clients (ids `PREFIX-0`…, default `idle`), answers
//!   pings, prints `logged_in N <ms>`, then waits for a line on stdin, closes them all
//!   and prints `closed N`.
//! - `calls PAIRS SECONDS`: PAIRS caller/callee pairs repeat the call handshake
//!   (call → incoming → accept → offer → answer → hangup) for SECONDS; prints the rate
//!   and the p50/p99 of one handshake. With two URLs, callers log in to the first and
//!   callees to the second (servers sharing a Redis).
//! - `half-open N LOGINS`: holds N connections that sent half an upgrade request, then
//!   times LOGINS fresh connect + login in a row; prints p50/max.
//!
//! Every wait is bounded; the first argument is the server URL (`ws://127.0.0.1:PORT`),
//! or two of them joined by a comma.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtc_cli::signaling::protocol::{
    CallId, ClientMessage, PROTOCOL_VERSION, ServerMessage, UserId,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The bound on any one wait for the server.
const WAIT: Duration = Duration::from_secs(30);

/// Connects and logs in at most this many clients at once.
const CONNECT_CONCURRENCY: usize = 64;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<usize> {
        Ok(args
            .get(i)
            .ok_or("usage: serve_load URL (idle N | calls PAIRS SECONDS | half-open N LOGINS)")?
            .parse()?)
    };
    let urls: Vec<String> = args
        .first()
        .ok_or("no URL")?
        .split(',')
        .map(str::to_owned)
        .collect();
    if urls.iter().any(|u| !u.starts_with("ws://127.")) {
        return Err("serve_load only talks to 127.0.0.0/8".into());
    }
    let url = urls[0].clone();
    match args.get(1).map(String::as_str) {
        Some("idle") => {
            let prefix = args.get(3).map_or("idle", String::as_str);
            idle(&url, arg(2)?, prefix).await
        }
        Some("calls") => {
            let callee_url = urls.get(1).unwrap_or(&url).clone();
            let length = Duration::from_secs(arg(3)? as u64);
            calls(&url, &callee_url, arg(2)?, length).await
        }
        Some("half-open") => half_open(&url, arg(2)?, arg(3)?).await,
        _ => Err("unknown mode".into()),
    }
}

/// Small client buffers: 10 000 clients in one process must not cost 128 KiB each.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

async fn login(url: &str, who: &str) -> Result<Ws> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true).await?;
    send(
        &mut ws,
        ClientMessage::Login {
            version: PROTOCOL_VERSION,
            id: UserId::parse(who)?,
            token: None,
            presence: false,
            resume: vec![],
        },
    )
    .await?;
    match recv(&mut ws).await? {
        ServerMessage::LoginOk { .. } => Ok(ws),
        other => Err(format!("{who}: expected login_ok, got {other:?}").into()),
    }
}

async fn send(ws: &mut Ws, msg: ClientMessage) -> Result<()> {
    ws.send(Message::text(msg.encode())).await?;
    Ok(())
}

/// The next server message, skipping pings, within [`WAIT`].
async fn recv(ws: &mut Ws) -> Result<ServerMessage> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

async fn idle(url: &str, n: usize, prefix: &str) -> Result<()> {
    let started = Instant::now();
    let clients: Vec<Ws> = futures_util::stream::iter(0..n)
        .map(|i| async move { login(url, &format!("{prefix}-{i}")).await })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    println!(
        "logged_in {} {}",
        clients.len(),
        started.elapsed().as_millis()
    );
    // Each client reads, so pings get their pongs and the server keeps it.
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let mut stop = stop_tx.subscribe();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.recv() => break,
                        frame = ws.next() => if !matches!(frame, Some(Ok(_))) { return false },
                    }
                }
                let _ = ws.close(None).await;
                true
            })
        })
        .collect();
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    let _ = stop_tx.send(());
    let mut still_open = 0;
    for task in tasks {
        if task.await? {
            still_open += 1;
        }
    }
    println!("closed {still_open}");
    Ok(())
}

/// One call handshake from `caller` to `callee` (`to`) under `call_id`.
async fn handshake(caller: &mut Ws, callee: &mut Ws, to: &UserId, call_id: CallId) -> Result<()> {
    send(
        caller,
        ClientMessage::Call {
            call_id: call_id.clone(),
            to: to.clone(),
            room: None,
        },
    )
    .await?;
    expect(caller, "ringing").await?;
    expect(callee, "incoming").await?;
    send(
        callee,
        ClientMessage::Accept {
            call_id: call_id.clone(),
        },
    )
    .await?;
    expect(caller, "accept").await?;
    let sdp = "v=0\r\n".repeat(200);
    send(
        caller,
        ClientMessage::Offer {
            call_id: call_id.clone(),
            sdp: sdp.clone(),
        },
    )
    .await?;
    expect(callee, "offer").await?;
    send(
        callee,
        ClientMessage::Answer {
            call_id: call_id.clone(),
            sdp,
        },
    )
    .await?;
    expect(caller, "answer").await?;
    send(caller, ClientMessage::Hangup { call_id }).await?;
    expect(callee, "hangup").await
}

async fn expect(ws: &mut Ws, kind: &str) -> Result<()> {
    let msg = recv(ws).await?;
    let value = serde_json::to_value(&msg)?;
    if value["type"] == kind {
        Ok(())
    } else {
        Err(format!("expected {kind}, got {msg:?}").into())
    }
}

async fn calls(url: &str, callee_url: &str, pairs: usize, length: Duration) -> Result<()> {
    let mut tasks = Vec::new();
    for p in 0..pairs {
        let (url, callee_url) = (url.to_owned(), callee_url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut caller = login(&url, &format!("caller-{p}")).await?;
            let callee_id = UserId::parse(&format!("callee-{p}"))?;
            let mut callee = login(&callee_url, callee_id.as_str()).await?;
            let mut times = Vec::new();
            let end = Instant::now() + length;
            while Instant::now() < end {
                let started = Instant::now();
                handshake(&mut caller, &mut callee, &callee_id, CallId::random()).await?;
                times.push(started.elapsed());
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    times.sort();
    println!(
        "handshakes {} per_second {:.0} p50_ms {:.2} p99_ms {:.2}",
        times.len(),
        times.len() as f64 / length.as_secs_f64(),
        percentile_ms(&times, 0.50),
        percentile_ms(&times, 0.99),
    );
    Ok(())
}

async fn half_open(url: &str, n: usize, logins: usize) -> Result<()> {
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            .await?;
        held.push(stream);
    }
    let mut times = Vec::new();
    for i in 0..logins {
        let started = Instant::now();
        let ws = tokio::time::timeout(WAIT, login(url, &format!("fresh-{i}"))).await??;
        times.push(started.elapsed());
        drop(ws);
    }
    times.sort();
    println!(
        "held {} logins {} p50_ms {:.2} max_ms {:.2}",
        held.len(),
        times.len(),
        percentile_ms(&times, 0.50),
        percentile_ms(&times, 1.0),
    );
    Ok(())
}

/// The `q` quantile of sorted `times`, in milliseconds.
fn percentile_ms(times: &[Duration], q: f64) -> f64 {
    if times.is_empty() {
        return f64::NAN;
    }
    let i = ((times.len() - 1) as f64 * q).round() as usize;
    times[i].as_secs_f64() * 1000.0
}
