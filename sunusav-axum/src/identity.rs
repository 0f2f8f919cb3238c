//! Who is calling the group API: the [`Authenticate`] trait a host
//! implements (its sessions, JWTs, mTLS…), the [`Identity`] extractor the
//! group routes use, and a ready implementation on bearer tokens
//! ([`BearerTokens`]: the operator's token and [`MemberTokens`]).
//!
//! What a caller may do is decided by the domain
//! ([`sunusav_core::domain::access`]); this module only says who they are.
//! A request without credentials is answered 401 `unauthorized`, one whose
//! caller may not act 403 with the rule's code (`organizer_only`,
//! `members_only`, `self_only`, `beneficiary_only`, `create_as_organizer`).
//!
//! A host whose own middleware already authenticated the request can also
//! put a [`Caller`] in the request's extensions: the extractor takes it
//! first (clients cannot set extensions).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::FromRequestParts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use http::header::AUTHORIZATION;
use http::request::Parts;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use sunusav_core::{Caller, MemberId};

use crate::auth::AdminToken;
use crate::clock::{Clock, system_clock};
use crate::error::ApiError;
use crate::state::AppState;

/// A boxed future, as [`Authenticate::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Caller>, ApiError>> + Send + 'a>>;

/// How a host tells sunusav who is calling.
///
/// `Ok(None)` means the request carries no credentials (the group API
/// answers 401 `unauthorized`); `Err` refuses credentials that are present
/// but wrong (answer 401 with a code of the host's choosing); never a 5xx
/// for bad input.
pub trait Authenticate: Send + Sync + 'static {
    /// The caller of a request, from its head.
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> AuthFuture<'a>;
}

/// The caller of a group API request: from a [`Caller`] the host's middleware
/// put in the request's extensions, else from the state's
/// [`Authenticate`] ([`AppState::with_identity`]); 401 `unauthorized` when
/// neither says who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity(pub Caller);

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Self(*caller));
        }
        let Some(authenticator) = state.inner.identity.as_ref() else {
            return Err(ApiError::unauthorized());
        };
        match authenticator.authenticate(parts).await? {
            Some(caller) => Ok(Self(caller)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The bearer token of a request's `Authorization` header, if any.
pub fn bearer(parts: &Parts) -> Option<&[u8]> {
    parts
        .headers
        .get(AUTHORIZATION)
        .map(http::HeaderValue::as_bytes)
        .and_then(|v| v.strip_prefix(b"Bearer ").or_else(|| v.strip_prefix(b"bearer ")))
}

/// Why a member token was refused at configuration time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenSecretTooShort {
    /// The minimum length, in bytes.
    pub min: usize,
}

impl std::fmt::Display for TokenSecretTooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the member token secret must be at least {} bytes", self.min)
    }
}

impl std::error::Error for TokenSecretTooShort {}

/// Why a presented member token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a member token, or not signed with this secret.
    Invalid,
    /// Signed with this secret, but past its expiry.
    Expired,
}

impl TokenError {
    /// The answer: 401 `unauthorized` or 401 `token_expired`.
    pub fn into_api_error(self) -> ApiError {
        match self {
            Self::Invalid => ApiError::unauthorized(),
            Self::Expired => ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", "the token has expired"),
        }
    }
}

/// A member token as issued.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// The member it names.
    pub member: MemberId,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("member", &self.member)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Stateless member tokens: `sv1.<member>.<expiry>.<mac>`, where the MAC is
/// HMAC-SHA256 under a server secret over the rest. Nothing is stored: a
/// token is valid until its expiry or until the secret changes (which
/// revokes every token). Verified in constant time. `Debug` is redacted.
#[derive(Clone)]
pub struct MemberTokens {
    key: [u8; 32],
    ttl: Duration,
    clock: Clock,
}

const PREFIX: &str = "sv1";

impl MemberTokens {
    /// The shortest secret accepted, in bytes.
    pub const MIN_SECRET_LEN: usize = 32;
    /// How long an issued token is valid unless set otherwise: 30 days.
    pub const DEFAULT_TTL: Duration = Duration::from_hours(30 * 24);

    /// Tokens under `secret` (at least [`MIN_SECRET_LEN`](Self::MIN_SECRET_LEN) bytes).
    ///
    /// # Errors
    /// A secret that is too short.
    pub fn new(secret: &[u8]) -> Result<Self, TokenSecretTooShort> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(TokenSecretTooShort { min: Self::MIN_SECRET_LEN });
        }
        // The key is derived, so the secret itself is never a MAC key of
        // anything a client sees.
        let key = Self::mac_of(secret, b"sunusav member tokens v1");
        Ok(Self { key, ttl: Self::DEFAULT_TTL, clock: system_clock() })
    }

    /// Tokens that last `ttl` from their issue.
    #[must_use]
    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Reads the time from `clock` (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn mac_of(key: &[u8], message: &[u8]) -> [u8; 32] {
        // HMAC accepts a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Issues a token naming `member`.
    pub fn issue(&self, member: MemberId) -> IssuedToken {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_at = (self.clock)().saturating_add(ttl);
        let claims = format!("{PREFIX}.{}.{expires_at}", member.as_uuid().simple());
        let mac = URL_SAFE_NO_PAD.encode(Self::mac_of(&self.key, claims.as_bytes()));
        IssuedToken { token: format!("{claims}.{mac}"), member, expires_at }
    }

    /// The member a token names, if it is genuine and unexpired.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] or [`TokenError::Expired`].
    pub fn verify(&self, token: &[u8]) -> Result<MemberId, TokenError> {
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Invalid)?;
        let (claims, mac) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let presented = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Invalid)?;
        let expected = Self::mac_of(&self.key, claims.as_bytes());
        if !bool::from(presented.as_slice().ct_eq(&expected)) {
            return Err(TokenError::Invalid);
        }
        // Genuine from here: the claims are ours.
        let mut parts = claims.split('.');
        let (Some(PREFIX), Some(member), Some(expiry), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let member: MemberId = member.parse().map_err(|_| TokenError::Invalid)?;
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Invalid)?;
        if (self.clock)() >= expiry {
            return Err(TokenError::Expired);
        }
        Ok(member)
    }
}

impl std::fmt::Debug for MemberTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberTokens").field("key", &"<redacted>").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// [`Authenticate`] on bearer tokens: the operator's token (e.g. the admin
/// token) is [`Caller::Operator`]; a [`MemberTokens`] token is that member.
/// A request without `Authorization: Bearer` has no credentials; a bearer
/// that is neither is refused (401 `unauthorized`, or `token_expired`).
#[derive(Clone, Debug)]
pub struct BearerTokens {
    operator: AdminToken,
    members: Option<MemberTokens>,
}

impl BearerTokens {
    /// The operator's token only.
    pub const fn operator(operator: AdminToken) -> Self {
        Self { operator, members: None }
    }

    /// Also accepts member tokens.
    #[must_use]
    pub fn with_members(mut self, members: MemberTokens) -> Self {
        self.members = Some(members);
        self
    }

    /// Who a bearer token names.
    ///
    /// # Errors
    /// 401 `unauthorized` or `token_expired`.
    pub fn caller_of(&self, token: &[u8]) -> Result<Caller, ApiError> {
        if self.operator.matches(token) {
            return Ok(Caller::Operator);
        }
        match &self.members {
            Some(members) => members.verify(token).map(Caller::Member).map_err(TokenError::into_api_error),
            None => Err(ApiError::unauthorized()),
        }
    }
}

impl Authenticate for BearerTokens {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> AuthFuture<'a> {
        let result = bearer(parts).map(|token| self.caller_of(token)).transpose();
        if let Err(e) = &result {
            tracing::debug!(code = e.code(), "group API request with refused credentials");
        }
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fixed_clock;

    const SECRET: &[u8] = b"a-member-token-secret-of-32-bytes!!";

    #[test]
    fn a_token_names_its_member_until_it_expires() {
        let tokens = MemberTokens::new(SECRET).unwrap().with_ttl(Duration::from_mins(1)).with_clock(fixed_clock(1_000));
        let m = MemberId::random();
        let issued = tokens.issue(m);
        assert_eq!(issued.expires_at, 1_060);
        assert_eq!(tokens.verify(issued.token.as_bytes()), Ok(m));
        let later = tokens.clone().with_clock(fixed_clock(1_060));
        assert_eq!(later.verify(issued.token.as_bytes()), Err(TokenError::Expired));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let tokens = MemberTokens::new(SECRET).unwrap();
        let (m, other) = (MemberId::random(), MemberId::random());
        let token = tokens.issue(m).token;
        // Another member's id with the same MAC.
        let swapped = token.replace(&m.as_uuid().simple().to_string(), &other.as_uuid().simple().to_string());
        assert_eq!(tokens.verify(swapped.as_bytes()), Err(TokenError::Invalid));
        // A later expiry with the same MAC.
        let (claims, mac) = token.rsplit_once('.').unwrap();
        let (head, _) = claims.rsplit_once('.').unwrap();
        assert_eq!(tokens.verify(format!("{head}.99999999999.{mac}").as_bytes()), Err(TokenError::Invalid));
        // Under another secret.
        let foreign = MemberTokens::new(b"another-secret-that-is-32-bytes-long").unwrap();
        assert_eq!(foreign.verify(token.as_bytes()), Err(TokenError::Invalid));
        for junk in ["", "sv1", "sv1.x.y.z", "not a token", "sv1...."] {
            assert_eq!(tokens.verify(junk.as_bytes()), Err(TokenError::Invalid), "{junk:?}");
        }
        assert!(MemberTokens::new(b"short").is_err());
    }

    #[test]
    fn bearer_tokens_tell_the_operator_from_members_and_refuse_the_rest() {
        let members = MemberTokens::new(SECRET).unwrap();
        let m = MemberId::random();
        let member_token = members.issue(m).token;
        let bearer =
            BearerTokens::operator(AdminToken::new("operator-token-0123456789").unwrap()).with_members(members);
        assert_eq!(bearer.caller_of(b"operator-token-0123456789").unwrap(), Caller::Operator);
        assert_eq!(bearer.caller_of(member_token.as_bytes()).unwrap(), Caller::Member(m));
        assert_eq!(bearer.caller_of(b"operator-token-012345678").unwrap_err().code(), "unauthorized");
        let no_members = BearerTokens::operator(AdminToken::new("operator-token-0123456789").unwrap());
        assert_eq!(no_members.caller_of(member_token.as_bytes()).unwrap_err().code(), "unauthorized");
    }

    #[test]
    fn secrets_and_tokens_never_reach_debug_output() {
        let tokens = MemberTokens::new(SECRET).unwrap();
        let issued = tokens.issue(MemberId::random());
        let shown = format!("{tokens:?} {issued:?}");
        assert!(!shown.contains(&issued.token), "{shown}");
        assert!(!shown.contains("a-member-token-secret"), "{shown}");
    }
}
