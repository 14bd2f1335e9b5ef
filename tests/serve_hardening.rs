//! `rtc-cli serve` under hostile or careless clients, on 127.0.0.0/8: half-open
//! connections are closed, connection caps refuse with a reason, a real client still
//! logs in and completes a call while 500 half-open connections are held (also when
//! the server has only 256 file handles), and a call timer only ends its own call.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::process::{Home, LOOPBACK_ONLY, TONE_NO_SPEAKER, test_pattern};
use common::{RawClient, TestServer, WAIT, call_id, ring};
use futures_util::StreamExt;
use rtc_cli::signaling::protocol::{ClientMessage, ServerEndReason, ServerMessage};
use rtc_cli::signaling::server::{ConnectionLimits, ServerConfig, raise_open_file_limit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, Message};

/// The first half of a WebSocket upgrade request: a client that stalls mid-request.
const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";

fn config(edit: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    edit(&mut config);
    config
}

/// A TCP connection to `to` from source address `from` (any 127.x address works).
async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// `n` connections that send half an upgrade request and stall.
async fn half_open(n: usize, to: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(to).await.unwrap();
        stream.write_all(HALF_REQUEST).await.unwrap();
        held.push(stream);
    }
    held
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_open_connections_are_closed_after_the_upgrade_timeout() {
    let timeout = Duration::from_secs(1);
    let server = TestServer::start(config(|c| c.upgrade_timeout = timeout)).await;
    let mut held = half_open(20, server.addr).await;
    for (i, stream) in held.iter_mut().enumerate() {
        assert!(
            closed_within(stream, timeout + WAIT).await,
            "half-open connection {i} still open"
        );
    }
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed_with_a_reason() {
    let server = TestServer::start(config(|c| c.login_timeout = Duration::from_secs(1))).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT + Duration::from_secs(1), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within the login timeout")
    .expect("the close frame has a code and reason");
    assert_eq!(u16::from(frame.code), 1008);
    assert!(frame.reason.starts_with("login-timeout"), "{frame:?}");
}

#[tokio::test]
async fn the_per_address_cap_refuses_the_next_connection_with_a_reason() {
    let server = TestServer::start(config(|c| {
        c.limits = ConnectionLimits {
            total: 100,
            per_address: 2,
        }
    }))
    .await;
    let _a = RawClient::login(&server, "tom").await;
    let _b = RawClient::login(&server, "jerry").await;
    let refused = tokio_tungstenite::connect_async(server.url()).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.starts_with("too-many-connections"), "{body}");
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected an HTTP 503 refusal, got {other:?}"),
    }
    // Another address is not affected.
    let stream = connect_from([127, 0, 0, 2].into(), server.addr).await;
    let (mut ws, _) = tokio_tungstenite::client_async(server.url(), stream)
        .await
        .expect("another address is admitted");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_full_server_sheds_a_pending_connection_for_a_new_login() {
    let server = TestServer::start(config(|c| {
        c.upgrade_timeout = Duration::from_secs(60);
        c.limits = ConnectionLimits {
            total: 10,
            per_address: 100,
        }
    }))
    .await;
    let _held = half_open(10, server.addr).await;
    // The server is full of connections that never upgrade; a login still gets in.
    let _tom = RawClient::login(&server, "tom").await;
}

#[tokio::test]
async fn a_reused_call_id_after_a_cancel_rings_for_the_full_ring_timeout() {
    let ring_timeout = Duration::from_secs(3);
    let server = TestServer::with_ring_timeout(ring_timeout).await;
    let mut tom = RawClient::login(&server, "tom").await;
    let mut jerry = RawClient::login(&server, "jerry").await;
    let x = ring(&mut tom, &mut jerry, "x").await;
    tom.send(ClientMessage::Cancel { call_id: x.clone() }).await;
    assert!(matches!(jerry.recv().await, ServerMessage::Cancel { .. }));
    // The first call's timer is still pending; the second call must outlive it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let again = ring(&mut tom, &mut jerry, "x").await;
    assert_eq!(again, call_id("x"));
    let ended = tom.try_recv(ring_timeout + WAIT).await;
    let rang = started.elapsed();
    assert!(
        matches!(
            ended,
            Some(ServerMessage::CallEnded {
                reason: ServerEndReason::NoAnswer,
                ..
            })
        ),
        "{ended:?}"
    );
    assert!(
        rang >= ring_timeout - Duration::from_millis(100),
        "the second call rang {rang:?}, not the full {ring_timeout:?}"
    );
}

/// Sets the open-file limit (soft and hard) of process `pid`.
fn set_file_limit(pid: u32, files: u64) {
    let limit = libc::rlimit {
        rlim_cur: files,
        rlim_max: files,
    };
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: prlimit on our own child; reads `limit`, writes nothing back.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// A real `listen` and `call` complete a call through a `serve` process while 500
/// half-open connections are held against it (with `file_limit` handles, if given).
fn call_completes_while_500_half_open_connections_are_held(file_limit: Option<u64>) {
    let _turn = common::one_call_at_a_time();
    raise_open_file_limit().expect("room for 500 connections in the test");
    let home = Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY);
    let (server, url) = home.serve(&[
        "--upgrade-timeout",
        "120s",
        "--max-connections-per-address",
        "2000",
    ]);
    if let Some(files) = file_limit {
        set_file_limit(server.pid(), files);
    }
    let addr: SocketAddr = url.trim_start_matches("ws://").parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let held = runtime.block_on(half_open(500, addr));

    home.showing_log_on_panic("serve", || {
        let jerry = home.listener(&url, "jerry", &["--auto-accept"]);
        let tom = home.caller(&url, "tom", "jerry", &["--hangup-after", "1s"]);
        tom.event(&[("event", "state"), ("state", "connected")]);
        tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
        assert_eq!(tom.wait_exit(), 0);
        jerry.event(&[
            ("event", "state"),
            ("state", "ended"),
            ("reason", "remote-hangup"),
        ]);
    });
    if file_limit.is_some() {
        let log = std::fs::read_to_string(home.log("serve")).unwrap_or_default();
        assert!(
            log.contains("out of file handles"),
            "the server never ran out of file handles, so shedding was not tested:\n{}",
            home.log_tail("serve")
        );
    }
    drop(held);
}

#[test]
fn a_call_completes_while_500_half_open_connections_are_held() {
    call_completes_while_500_half_open_connections_are_held(None);
}

#[test]
fn a_call_completes_while_500_half_open_connections_are_held_with_256_file_handles() {
    call_completes_while_500_half_open_connections_are_held(Some(256));
}
