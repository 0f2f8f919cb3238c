//! The admin bearer token and the middleware that requires it.
//!
//! The token is kept only as its SHA-256 digest; a presented token is hashed
//! too and the digests are compared in constant time, so neither the content
//! nor the length of the token leaks through timing.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Why an admin token was refused at configuration time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminTokenTooShort {
    /// The minimum length, in bytes.
    pub min: usize,
}

impl std::fmt::Display for AdminTokenTooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the admin token must be at least {} bytes", self.min)
    }
}

impl std::error::Error for AdminTokenTooShort {}

/// The admin routes' bearer token. Its `Debug` is redacted.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// The shortest token accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A token; refuses one shorter than [`MIN_LEN`](Self::MIN_LEN) bytes.
    pub fn new(token: &str) -> Result<Self, AdminTokenTooShort> {
        if token.len() < Self::MIN_LEN {
            return Err(AdminTokenTooShort { min: Self::MIN_LEN });
        }
        Ok(Self { digest: Sha256::digest(token.as_bytes()).into() })
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Middleware: 401 `unauthorized` unless `Authorization: Bearer <token>` holds the token.
pub async fn require_admin(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .map(http::HeaderValue::as_bytes)
        .and_then(|v| v.strip_prefix(b"Bearer ").or_else(|| v.strip_prefix(b"bearer ")));
    match presented {
        Some(p) if token.matches(p) => next.run(request).await,
        _ => {
            tracing::warn!("admin request with a missing or wrong token");
            ApiError::unauthorized().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only_and_short_tokens_are_refused() {
        let token = AdminToken::new("correct-horse-battery").unwrap();
        assert!(token.matches(b"correct-horse-battery"));
        assert!(!token.matches(b"correct-horse-batter"));
        assert!(!token.matches(b""));
        assert!(AdminToken::new("short").is_err());
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }
}
