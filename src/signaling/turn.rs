//! ICE servers that `serve` hands out in `login_ok`: its STUN URLs, and its TURN URLs
//! with short-lived credentials in the TURN REST API convention that coturn's
//! `use-auth-secret` checks (draft-uberti-behave-turn-rest-00 §2.2): username
//! `<unix-expiry>:<id>`, password base64(HMAC-SHA1(secret, username)).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;

use super::protocol::{IceServer, UserId};

/// Fewest bytes a TURN secret may have: anything shorter can be guessed offline from
/// one captured credential.
pub const MIN_SECRET_BYTES: usize = 16;

/// The secret shared with coturn (`static-auth-secret`). Not `Debug`-printed.
#[derive(Clone)]
pub struct TurnSecret(Vec<u8>);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

impl TurnSecret {
    /// Reads the secret from `path`: the file's text without trailing whitespace (the
    /// same string as coturn's `static-auth-secret`).
    ///
    /// # Errors
    /// The file is missing or unreadable, or holds fewer than [`MIN_SECRET_BYTES`].
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the TURN secret file {}", path.display()))?;
        Self::new(bytes.trim_ascii_end().to_vec())
            .with_context(|| format!("bad TURN secret file {}", path.display()))
    }

    /// A secret of these bytes.
    ///
    /// # Errors
    /// Fewer than [`MIN_SECRET_BYTES`] bytes.
    pub fn new(bytes: Vec<u8>) -> anyhow::Result<Self> {
        if bytes.len() < MIN_SECRET_BYTES {
            bail!(
                "the TURN secret has {} bytes; use at least {MIN_SECRET_BYTES}",
                bytes.len()
            );
        }
        Ok(Self(bytes))
    }

    /// The password for `username`: base64(HMAC-SHA1(secret, username)) (RFC 2104,
    /// RFC 4648 §4 with padding), as coturn computes it.
    pub fn credential(&self, username: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = ring::hmac::sign(&key, username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    }
}

/// TURN servers with TURN REST credentials (`serve --turn URL… --turn-secret-file`).
#[derive(Debug, Clone)]
pub struct TurnRest {
    /// `turn:host:port` URLs (RFC 7065).
    pub urls: Vec<String>,
    /// The secret shared with the TURN server.
    pub secret: TurnSecret,
    /// How long a handed-out credential stays valid (`--turn-ttl`, 12 h).
    pub ttl: Duration,
}

impl TurnRest {
    /// The TURN entry for `id`, valid from `now` for [`TurnRest::ttl`].
    pub fn ice_server(&self, id: &UserId, now: SystemTime) -> IceServer {
        let expiry = (now + self.ttl)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let username = format!("{expiry}:{id}");
        IceServer {
            urls: self.urls.clone(),
            credential: Some(self.secret.credential(&username)),
            username: Some(username),
        }
    }
}

/// What `serve` hands out in `login_ok` (`--stun`, `--turn`).
#[derive(Debug, Clone, Default)]
pub struct IceOffer {
    /// `stun:host:port` URLs (RFC 7064).
    pub stun: Vec<String>,
    /// TURN servers and their secret, if any.
    pub turn: Option<TurnRest>,
}

impl IceOffer {
    /// The `ice_servers` of `id`'s `login_ok` at `now` (empty when nothing is offered).
    pub fn for_user(&self, id: &UserId, now: SystemTime) -> Vec<IceServer> {
        let stun = (!self.stun.is_empty()).then(|| IceServer {
            urls: self.stun.clone(),
            username: None,
            credential: None,
        });
        let turn = self.turn.as_ref().map(|t| t.ice_server(id, now));
        stun.into_iter().chain(turn).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector was computed with openssl:
    /// `printf '%s' '1700000000:tom' | openssl dgst -sha1 -hmac 'north-wind-secret-0123' -binary | base64`
    #[test]
    fn credential_matches_openssl_hmac_sha1() {
        let secret = TurnSecret::new(b"north-wind-secret-0123".to_vec()).unwrap();
        assert_eq!(
            secret.credential("1700000000:tom"),
            "5SOS1CbI3EOsOoa2HJUM07bdoUc="
        );
    }

    #[test]
    fn username_is_expiry_then_id_and_the_password_signs_it() {
        let turn = TurnRest {
            urls: vec!["turn:10.0.0.1:3478".into()],
            secret: TurnSecret::new(b"north-wind-secret-0123".to_vec()).unwrap(),
            ttl: Duration::from_secs(3600),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let id = UserId::parse("tom").unwrap();
        let offer = IceOffer {
            stun: vec!["stun:10.0.0.1:3478".into()],
            turn: Some(turn),
        };
        let servers = offer.for_user(&id, now);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:10.0.0.1:3478"]);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("1700000000:tom"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("5SOS1CbI3EOsOoa2HJUM07bdoUc=")
        );
        assert!(IceOffer::default().for_user(&id, now).is_empty());
    }

    #[test]
    fn short_or_missing_secret_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "too-short\n").unwrap();
        let e = format!("{:#}", TurnSecret::from_file(&short).unwrap_err());
        assert!(e.contains("short") && e.contains("at least 16"), "{e}");
        let missing = dir.path().join("missing");
        let e = format!("{:#}", TurnSecret::from_file(&missing).unwrap_err());
        assert!(e.contains("missing"), "{e}");
        let good = dir.path().join("good");
        std::fs::write(&good, "north-wind-secret-0123\n").unwrap();
        let secret = TurnSecret::from_file(&good).unwrap();
        assert_eq!(
            secret.credential("1700000000:tom"),
            "5SOS1CbI3EOsOoa2HJUM07bdoUc="
        );
    }
}
