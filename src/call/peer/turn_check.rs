//! Why a TURN server gave no relay candidate: one Allocate (RFC 8656 §7.1-7.2) with the
//! call's credentials, run when a call fails ICE without a relay candidate.
//!
//! webrtc 0.21 only logs a failed allocation; this check asks the server again with the
//! same TURN client (rtc's Sans-I/O `turn::client`) and reports what it answered, so the
//! user reads "refused our credentials" instead of a bare `ice-failed`. A granted
//! allocation is released at once (a Refresh with lifetime 0, RFC 8656 §7.3).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtc::ice::url::{ProtoType, SchemeType, Url};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};
use tokio::net::UdpSocket;

use super::IceServer;

/// What a TURN server answered one Allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnCheck {
    /// It granted a relayed address (released again right away).
    Allocated(SocketAddr),
    /// It rejected our long-term credentials: error 401 Unauthorized or 441 Wrong
    /// Credentials to the authenticated Allocate (RFC 8656 §7.2, §19).
    CredentialsRefused(String),
    /// It refused the allocation for another reason (e.g. 486 Allocation Quota Reached,
    /// 508 Insufficient Capacity); the server's error text.
    Refused(String),
    /// Nothing came back before the deadline.
    NoAnswer(Duration),
    /// The URL cannot be checked here: a `turns:` or TCP URL (webrtc 0.21 gathers over
    /// UDP only), an unresolvable host, or a local socket error.
    Unchecked(String),
}

impl TurnCheck {
    /// One line for the user about `url`'s answer, or `None` when it granted a relay.
    pub fn explain(&self, url: &str) -> Option<String> {
        let text = match self {
            Self::Allocated(_) => return None,
            Self::CredentialsRefused(detail) => format!(
                "TURN authentication failed at {url}: the server refused our credentials \
                 ({detail}); check the TURN secret shared by coturn and `serve`"
            ),
            Self::Refused(detail) => format!("TURN server {url} refused a relay: {detail}"),
            Self::NoAnswer(after) => {
                format!("TURN server {url} did not answer within {after:?}")
            }
            Self::Unchecked(why) => format!("TURN server {url} not checked: {why}"),
        };
        Some(text)
    }
}

/// The TURN error codes that mean "your credentials are wrong" (RFC 8656 §19).
const CREDENTIAL_ERRORS: [u16; 2] = [401, 441];

/// Checks every UDP `turn:` URL of `servers` from an ephemeral port on `bind` (the
/// unspecified IPv4 address when `None`), each within `deadline`, one after another.
/// Returns `(url, answer)` pairs in the servers' order.
pub async fn check_all(
    servers: &[IceServer],
    bind: Option<IpAddr>,
    deadline: Duration,
) -> Vec<(String, TurnCheck)> {
    let mut answers = Vec::new();
    for server in servers {
        for url in &server.urls {
            if !url.starts_with("turn") {
                continue;
            }
            let username = server.username.clone().unwrap_or_default();
            let password = server.credential.clone().unwrap_or_default();
            let answer = check(url, username, password, bind, deadline).await;
            answers.push((url.clone(), answer));
        }
    }
    answers
}

/// One Allocate at the TURN server of `url` with `username`/`password`.
pub async fn check(
    url: &str,
    username: String,
    password: String,
    bind: Option<IpAddr>,
    deadline: Duration,
) -> TurnCheck {
    let parsed = match Url::parse_url(url) {
        Ok(u) => u,
        Err(e) => return TurnCheck::Unchecked(format!("bad URL: {e}")),
    };
    if parsed.scheme != SchemeType::Turn || parsed.proto != ProtoType::Udp {
        return TurnCheck::Unchecked("only UDP turn: URLs are used by this build".into());
    }
    let server = match resolve(&parsed).await {
        Ok(addr) => addr,
        Err(why) => return TurnCheck::Unchecked(why),
    };
    let bind = bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let socket = match UdpSocket::bind((bind, 0)).await {
        Ok(s) => s,
        Err(e) => return TurnCheck::Unchecked(format!("binding a UDP socket on {bind}: {e}")),
    };
    match tokio::time::timeout(deadline, allocate(&socket, server, username, password)).await {
        Ok(answer) => answer,
        Err(_) => TurnCheck::NoAnswer(deadline),
    }
}

async fn resolve(url: &Url) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("resolving {}: {e}", url.host))?;
    addrs
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("{} has no IPv4 address", url.host))
}

/// Drives the Sans-I/O TURN client through an Allocate on `socket`; no deadline of its
/// own (the caller's `timeout` bounds it).
async fn allocate(
    socket: &UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
) -> TurnCheck {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => return TurnCheck::Unchecked(format!("local address: {e}")),
    };
    let provider = match rtc::crypto::default_provider() {
        Ok(p) => p,
        Err(e) => return TurnCheck::Unchecked(format!("crypto provider: {e}")),
    };
    let config = ClientConfig {
        turn_serv_addr: server.to_string(),
        local_addr: local,
        transport_protocol: TransportProtocol::UDP,
        username,
        password,
        ..ClientConfig::default()
    };
    let mut client = match Client::new(config, provider) {
        Ok(c) => c,
        Err(e) => return TurnCheck::Unchecked(format!("TURN client: {e}")),
    };
    if let Err(e) = client.allocate(Instant::now()) {
        return TurnCheck::Unchecked(format!("Allocate: {e}"));
    }
    let mut buf = vec![0u8; 1500];
    loop {
        if let Some(answer) = flush(&mut client, socket).await {
            return answer;
        }
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_millis(100), |at| {
                at.saturating_duration_since(Instant::now())
            });
        tokio::select! {
            read = socket.recv_from(&mut buf) => {
                let Ok((len, from)) = read else { continue };
                let msg = TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: buf[..len].into(),
                };
                if let Err(e) = client.handle_read(msg) {
                    tracing::debug!("TURN check: unreadable answer: {e}");
                }
            }
            () = tokio::time::sleep(wait) => {
                let _ = client.handle_timeout(Instant::now());
            }
        }
    }
}

/// Sends what the client queued and reads its events; the answer once there is one.
async fn flush(client: &mut Client, socket: &UdpSocket) -> Option<TurnCheck> {
    while let Some(out) = client.poll_write() {
        if let Err(e) = socket.send_to(&out.message, out.transport.peer_addr).await {
            return Some(TurnCheck::Unchecked(format!("sending to the server: {e}")));
        }
    }
    while let Some(event) = client.poll_event() {
        match event {
            Event::AllocateResponse(_, relayed) => {
                release(client, socket, relayed).await;
                return Some(TurnCheck::Allocated(relayed));
            }
            Event::AllocateError(_, e) => return Some(classify(&e.to_string())),
            Event::TransactionTimeout(_) => {
                return Some(TurnCheck::NoAnswer(Duration::ZERO));
            }
            _ => {}
        }
    }
    None
}

/// Frees the allocation the check made (best effort: it expires on its own anyway).
async fn release(client: &mut Client, socket: &UdpSocket, relayed: SocketAddr) {
    if let Ok(mut relay) = client.relay(relayed) {
        let _ = relay.close(Instant::now());
    }
    while let Some(out) = client.poll_write() {
        let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
    }
}

/// Sorts an Allocate error by the code in rtc's text (`… (error 401: Unauthorized)`).
fn classify(detail: &str) -> TurnCheck {
    let code = detail
        .rsplit("error ")
        .next()
        .and_then(|rest| rest.get(..3))
        .and_then(|digits| digits.parse::<u16>().ok());
    match code {
        Some(code) if CREDENTIAL_ERRORS.contains(&code) => {
            TurnCheck::CredentialsRefused(detail.to_owned())
        }
        _ => TurnCheck::Refused(detail.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_to_the_authenticated_allocate_is_a_credentials_failure() {
        let detail = "Allocate error response (error 401: Unauthorized)";
        assert_eq!(
            classify(detail),
            TurnCheck::CredentialsRefused(detail.into())
        );
        let quota = "Allocate error response (error 486: Allocation Quota Reached)";
        assert_eq!(classify(quota), TurnCheck::Refused(quota.into()));
        assert_eq!(
            classify("no error code"),
            TurnCheck::Refused("no error code".into())
        );
    }

    #[test]
    fn the_explanation_names_turn_authentication() {
        let refused = TurnCheck::CredentialsRefused("error 401".into());
        let line = refused.explain("turn:h:3478").unwrap();
        assert!(
            line.contains("TURN authentication failed at turn:h:3478"),
            "{line}"
        );
        assert_eq!(
            TurnCheck::Allocated("1.2.3.4:5".parse().unwrap()).explain("x"),
            None
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_reported_within_the_deadline() {
        // A bound socket that reads nothing: the Allocate goes unanswered.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("turn:{}?transport=udp", silent.local_addr().unwrap());
        let started = Instant::now();
        let answer = check(
            &url,
            "u".into(),
            "p".into(),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(answer, TurnCheck::NoAnswer(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn turns_and_tcp_urls_are_not_checked() {
        for url in ["turns:h:5349", "turn:h:3478?transport=tcp", "stun:h:3478"] {
            let answer = check(url, "u".into(), "p".into(), None, Duration::from_secs(1)).await;
            assert!(
                matches!(answer, TurnCheck::Unchecked(_)),
                "{url}: {answer:?}"
            );
        }
    }
}
