//! Who may log in: anyone with a valid id (`--auth open`), or holders of a JWT
//! (RFC 7519) signed HS256 with the server's secret whose `sub` is the id.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::protocol::UserId;

/// The server's login policy.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Any valid id may log in.
    Open,
    /// A token signed with this HS256 secret is required.
    Token {
        /// The shared secret (the contents of `--token-secret-file`, trimmed).
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("Open"),
            Self::Token { .. } => f.write_str("Token { secret: <redacted> }"),
        }
    }
}

/// JWT claims we issue and accept (RFC 7519 §4.1).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id the token logs in.
    sub: String,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    /// Issued at, seconds since the Unix epoch.
    iat: u64,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The server requires a token and none was given.
    #[error("this server requires a token (rtc-cli login <id> --token TOKEN)")]
    Missing,
    /// The token's `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// The token is for another id.
    #[error("the token is for {0}, not for this id")]
    WrongSubject(String),
    /// Bad signature, malformed token, wrong algorithm.
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Smallest secret we accept, in bytes (HS256 wants at least the hash size, RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

impl Auth {
    /// Token auth with the secret read from `path` (surrounding whitespace trimmed).
    ///
    /// # Errors
    /// The file cannot be read, or the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn from_secret_file(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)
            .with_context(|| format!("cannot read token secret file {}", path.display()))?;
        let secret = raw.trim_ascii().to_vec();
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "token secret in {} is {} bytes; use at least {MIN_SECRET_BYTES} \
             (e.g. `head -c 48 /dev/urandom | base64 > {}`)",
            path.display(),
            secret.len(),
            path.display()
        );
        Ok(Self::Token { secret })
    }

    /// Checks a login of `id` presenting `token`.
    ///
    /// # Errors
    /// [`AuthError`] when token auth is on and the token is missing or not valid for `id`.
    pub fn verify(&self, id: &UserId, token: Option<&str>) -> Result<(), AuthError> {
        let Self::Token { secret } = self else {
            return Ok(());
        };
        let token = token.ok_or(AuthError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
                .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        if data.claims.sub != id.as_str() {
            return Err(AuthError::WrongSubject(data.claims.sub));
        }
        Ok(())
    }
}

/// Issues a token for `id` valid for `ttl`, signed HS256 with `secret`
/// (what `rtc-cli serve token` prints).
///
/// # Errors
/// Signing failed (does not happen for HS256 with a non-empty secret).
pub fn issue_token(secret: &[u8], id: &UserId, ttl: Duration) -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_secs();
    let claims = Claims {
        sub: id.to_string(),
        exp: now + ttl.as_secs(),
        iat: now,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .context("cannot sign token")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn id(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn token_auth() -> Auth {
        Auth::Token {
            secret: SECRET.to_vec(),
        }
    }

    #[test]
    fn issued_token_logs_in_its_subject_only() {
        let t = issue_token(SECRET, &id("tom"), Duration::from_secs(60)).unwrap();
        assert_eq!(token_auth().verify(&id("tom"), Some(&t)), Ok(()));
        assert_eq!(
            token_auth().verify(&id("jerry"), Some(&t)),
            Err(AuthError::WrongSubject("tom".into()))
        );
    }

    #[test]
    fn forged_expired_and_missing_tokens_are_refused() {
        let forged = issue_token(
            b"another-secret-another-secret-xx",
            &id("tom"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(
            token_auth().verify(&id("tom"), Some(&forged)),
            Err(AuthError::Invalid(_))
        ));
        let claims = Claims {
            sub: "tom".into(),
            exp: 1,
            iat: 0,
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            token_auth().verify(&id("tom"), Some(&expired)),
            Err(AuthError::Expired)
        );
        assert_eq!(
            token_auth().verify(&id("tom"), None),
            Err(AuthError::Missing)
        );
        assert_eq!(Auth::Open.verify(&id("tom"), None), Ok(()));
    }

    #[test]
    fn short_secret_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        let err = Auth::from_secret_file(&path).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
        std::fs::write(&path, format!("{}\n", "k".repeat(40))).unwrap();
        assert!(
            matches!(Auth::from_secret_file(&path), Ok(Auth::Token { secret }) if secret.len() == 40)
        );
    }
}
