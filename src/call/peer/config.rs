//! What one PeerConnection is built from: STUN/TURN servers and the local addresses to bind.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use webrtc::peer_connection::{
    RTCConfiguration, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
};

use crate::config::IceServerConfig;

/// A STUN or TURN server (W3C webrtc-pc §4.2.1 `RTCIceServer`).
///
/// webrtc 0.21 gathers through `stun:` and UDP `turn:` only; `stuns:`, `turns:` and
/// `?transport=tcp` URLs are accepted by [`PeerConfig::validate`] but skipped by the
/// ICE agent (FIELD-NOTES), and a warning is logged for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host[:port]` or `turn:host[:port][?transport=udp]` URLs (RFC 7064, RFC 7065).
    pub urls: Vec<String>,
    /// TURN username (RFC 8656 §9.2); required for `turn:` URLs.
    pub username: Option<String>,
    /// TURN password (long-term credential, RFC 8489 §9.2); required for `turn:` URLs.
    pub credential: Option<String>,
}

impl From<IceServerConfig> for IceServer {
    fn from(c: IceServerConfig) -> Self {
        Self {
            urls: c.urls,
            username: c.username,
            credential: c.credential,
        }
    }
}

/// Which candidates ICE may use (W3C webrtc-pc §4.2.4 `RTCIceTransportPolicy`):
/// `--ice-transport-policy`, `ice_transport_policy` in `[media]`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Every candidate: host, server-reflexive and relay.
    #[default]
    All,
    /// Relay (TURN) candidates only: the peer never learns our addresses.
    Relay,
}

impl From<IceTransportPolicy> for RTCIceTransportPolicy {
    fn from(policy: IceTransportPolicy) -> Self {
        match policy {
            IceTransportPolicy::All => Self::All,
            IceTransportPolicy::Relay => Self::Relay,
        }
    }
}

/// How to build the PeerConnection of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// STUN/TURN servers, from the config file and `--ice-server`.
    pub ice_servers: Vec<IceServer>,
    /// Local addresses to gather host candidates on (`--bind`, repeatable). Empty means
    /// every interface, and loopback where there is no other (see `udp_addrs`).
    pub bind: Vec<IpAddr>,
    /// Most the congestion controller may let us send, kbit/s of RTP (audio and video
    /// with their headers); also where its estimate starts.
    pub max_send_bitrate_kbps: u32,
    /// Which candidates ICE may use (`relay`: TURN only).
    pub ice_transport_policy: IceTransportPolicy,
    /// What to do with files the peer sends.
    pub files: super::files::FilePolicy,
}

/// [`PeerConfig::max_send_bitrate_kbps`] when nothing says otherwise: the default video
/// and audio bitrates (800 + 32 kbit/s) with room for RTP/SRTP headers.
pub const DEFAULT_MAX_SEND_BITRATE_KBPS: u32 = 1000;

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            bind: Vec::new(),
            max_send_bitrate_kbps: DEFAULT_MAX_SEND_BITRATE_KBPS,
            ice_transport_policy: IceTransportPolicy::All,
            files: super::files::FilePolicy::default(),
        }
    }
}

/// Why a [`PeerConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerConfigError {
    /// An ICE server entry without any URL.
    #[error("an ICE server has no URL")]
    NoUrl,
    /// A URL whose scheme is not `stun:`, `stuns:`, `turn:` or `turns:` (RFC 7064/7065).
    #[error("ICE server URL {0:?} must start with stun:, stuns:, turn: or turns:")]
    Scheme(String),
    /// A URL with nothing after the scheme.
    #[error("ICE server URL {0:?} has no host")]
    NoHost(String),
    /// A TURN URL without both a username and a credential.
    #[error(
        "TURN server {0:?} needs a username and a credential (--ice-username/--ice-credential)"
    )]
    TurnCredentials(String),
}

/// The scheme of an ICE server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Stun,
    Stuns,
    Turn,
    Turns,
}

fn parse_scheme(url: &str) -> Result<(Scheme, &str), PeerConfigError> {
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| PeerConfigError::Scheme(url.to_owned()))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "stun" => Scheme::Stun,
        "stuns" => Scheme::Stuns,
        "turn" => Scheme::Turn,
        "turns" => Scheme::Turns,
        _ => return Err(PeerConfigError::Scheme(url.to_owned())),
    };
    if rest.trim_start_matches('/').is_empty() {
        return Err(PeerConfigError::NoHost(url.to_owned()));
    }
    Ok((scheme, rest))
}

impl IceServer {
    /// Checks every URL's scheme and that TURN URLs come with credentials.
    ///
    /// # Errors
    /// A [`PeerConfigError`] naming the first bad URL.
    pub fn validate(&self) -> Result<(), PeerConfigError> {
        if self.urls.is_empty() {
            return Err(PeerConfigError::NoUrl);
        }
        for url in &self.urls {
            let (scheme, rest) = parse_scheme(url)?;
            let is_turn = matches!(scheme, Scheme::Turn | Scheme::Turns);
            if is_turn && (self.username.is_none() || self.credential.is_none()) {
                return Err(PeerConfigError::TurnCredentials(url.clone()));
            }
            if matches!(scheme, Scheme::Stuns | Scheme::Turns) || rest.contains("transport=tcp") {
                tracing::warn!(%url, "webrtc 0.21 gathers over UDP STUN/TURN only; skipping");
            }
        }
        Ok(())
    }

    fn to_rtc(&self) -> RTCIceServer {
        RTCIceServer {
            urls: self.urls.clone(),
            username: self.username.clone().unwrap_or_default(),
            credential: self.credential.clone().unwrap_or_default(),
        }
    }
}

impl PeerConfig {
    /// Checks every ICE server (see [`IceServer::validate`]).
    ///
    /// # Errors
    /// The first [`PeerConfigError`] found.
    pub fn validate(&self) -> Result<(), PeerConfigError> {
        self.ice_servers.iter().try_for_each(IceServer::validate)
    }

    /// The webrtc configuration: ICE servers and transport policy; everything else is
    /// WebRTC's default (max-bundle, rtcp-mux required).
    pub(crate) fn rtc_configuration(&self) -> RTCConfiguration {
        RTCConfigurationBuilder::new()
            .with_ice_servers(self.ice_servers.iter().map(IceServer::to_rtc).collect())
            .with_ice_transport_policy(self.ice_transport_policy.into())
            .build()
    }

    /// UDP sockets to bind, one per address, each on an ephemeral port.
    ///
    /// With no `--bind`, every interface (`0.0.0.0`, which webrtc expands to the
    /// non-loopback ones), and `127.0.0.1` only where there is no other IPv4 interface
    /// (a network namespace where only `lo` is up, an offline machine), so two clients
    /// there still find a path. Like browsers, a networked host offers no loopback
    /// candidate: the peer cannot reach it, and its pairs only cost checks (and a TURN
    /// CreatePermission the server refuses) before the pairs that work.
    pub(crate) fn udp_addrs(&self) -> Vec<SocketAddr> {
        if !self.bind.is_empty() {
            return self.bind.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
        }
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        if has_routable_ipv4() {
            vec![any]
        } else {
            vec![any, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)]
        }
    }
}

/// Whether this host has an IPv4 address webrtc would gather a host candidate on: not
/// loopback, unspecified or link-local (as webrtc's own wildcard expansion, driver.rs).
/// An unreadable interface list counts as none.
fn has_routable_ipv4() -> bool {
    rtc::shared::ifaces::ifaces().is_ok_and(|interfaces| {
        any_routable_ipv4(interfaces.iter().filter_map(|i| i.addr).map(|a| a.ip()))
    })
}

/// Whether `ips` hold an IPv4 address that is not loopback, unspecified or link-local.
fn any_routable_ipv4(mut ips: impl Iterator<Item = IpAddr>) -> bool {
    ips.any(|ip| match ip {
        IpAddr::V4(ip) => !(ip.is_loopback() || ip.is_unspecified() || ip.is_link_local()),
        IpAddr::V6(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str, user: Option<&str>, cred: Option<&str>) -> IceServer {
        IceServer {
            urls: vec![url.to_owned()],
            username: user.map(str::to_owned),
            credential: cred.map(str::to_owned),
        }
    }

    #[test]
    fn stun_needs_no_credentials_but_turn_does() {
        assert_eq!(server("stun:127.0.0.1:3478", None, None).validate(), Ok(()));
        assert_eq!(
            server("turn:127.0.0.1:3478", Some("u"), None).validate(),
            Err(PeerConfigError::TurnCredentials(
                "turn:127.0.0.1:3478".into()
            ))
        );
        assert_eq!(
            server("turn:127.0.0.1:3478", Some("u"), Some("p")).validate(),
            Ok(())
        );
    }

    #[test]
    fn unknown_schemes_and_empty_hosts_are_refused() {
        assert!(matches!(
            server("http://example", None, None).validate(),
            Err(PeerConfigError::Scheme(_))
        ));
        assert!(matches!(
            server("127.0.0.1", None, None).validate(),
            Err(PeerConfigError::Scheme(_))
        ));
        assert!(matches!(
            server("stun:", None, None).validate(),
            Err(PeerConfigError::NoHost(_))
        ));
        let empty = IceServer {
            urls: vec![],
            username: None,
            credential: None,
        };
        assert_eq!(empty.validate(), Err(PeerConfigError::NoUrl));
    }

    #[test]
    fn transport_policy_reaches_the_webrtc_configuration() {
        let default = PeerConfig::default().rtc_configuration();
        assert_eq!(default.ice_transport_policy(), RTCIceTransportPolicy::All);
        let relay = PeerConfig {
            ice_transport_policy: IceTransportPolicy::Relay,
            ..Default::default()
        };
        assert_eq!(
            relay.rtc_configuration().ice_transport_policy(),
            RTCIceTransportPolicy::Relay
        );
    }

    #[test]
    fn loopback_is_offered_only_where_no_other_ipv4_interface_is() {
        let ips = |list: &[&str]| {
            list.iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(!any_routable_ipv4(ips(&["127.0.0.1", "::1"])));
        assert!(!any_routable_ipv4(ips(&[
            "169.254.3.4",
            "0.0.0.0",
            "fe80::1"
        ])));
        assert!(any_routable_ipv4(ips(&["127.0.0.1", "192.0.2.2"])));
        assert!(any_routable_ipv4(ips(&["10.77.0.1"])));
    }

    #[test]
    fn bind_addresses_are_taken_as_given() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let lo = PeerConfig {
            bind: vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(lo.udp_addrs(), vec![addr("127.0.0.1:0"), addr("[::1]:0")]);
    }
}
