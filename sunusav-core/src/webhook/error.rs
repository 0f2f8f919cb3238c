//! Errors of the webhook verifier and of its secrets.

/// Why a [`Secret`](super::Secret) or a [`Verifier`](super::Verifier) could not be built.
///
/// The messages never contain secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret has no bytes at all.
    #[error("webhook secret is empty")]
    Empty,
    /// The secret is shorter than [`Secret::MIN_LEN`](super::Secret::MIN_LEN) bytes.
    #[error("webhook secret is too short: {len} bytes, at least {min} required")]
    TooShort {
        /// The length of the refused secret, in bytes.
        len: usize,
        /// The minimum length, in bytes.
        min: usize,
    },
    /// A Standard Webhooks secret does not start with `whsec_`. No longer
    /// returned: [`Secret::from_standard_webhooks`](super::Secret::from_standard_webhooks)
    /// accepts the bare base64 too, as the reference libraries do.
    #[error("standard webhooks secret must start with `whsec_`")]
    MissingPrefix,
    /// A Standard Webhooks secret is not valid standard base64 (after `whsec_`, if present).
    #[error("standard webhooks secret is not valid base64")]
    InvalidBase64,
    /// A verifier was given no secret at all.
    #[error("a verifier needs at least one secret")]
    NoSecrets,
}

/// The precise reason a signature (or one of the headers beside it) was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A header value is not valid UTF-8.
    #[error("header value is not UTF-8")]
    NotUtf8,
    /// The hex scheme's value does not start with `sha256=` (e.g. `sha1=` or no prefix).
    #[error("expected a `sha256=` prefix")]
    Prefix,
    /// The signature (digest or header) is empty.
    #[error("signature is empty")]
    Empty,
    /// The hex digest has an odd number of digits.
    #[error("hex digest has an odd length")]
    OddLength,
    /// The hex digest contains a character that is not a hex digit.
    #[error("digest is not hex")]
    NotHex,
    /// The decoded digest is not 32 bytes (HMAC-SHA256).
    #[error("digest has the wrong length")]
    WrongLength,
    /// A Standard Webhooks signature is not valid standard base64.
    #[error("signature is not valid base64")]
    NotBase64,
    /// A Standard Webhooks signature list has no `v1,` entry.
    #[error("no supported signature version (expected `v1,`)")]
    UnknownVersion,
}

/// Why a webhook was rejected.
///
/// Each variant maps to a stable, machine-readable [`code`](Self::code):
///
/// | code | variants |
/// | --- | --- |
/// | `missing_signature` | [`MissingSignature`](Self::MissingSignature), [`MissingId`](Self::MissingId), [`MissingTimestamp`](Self::MissingTimestamp) |
/// | `malformed_signature` | [`Malformed`](Self::Malformed) |
/// | `invalid_signature` | [`InvalidSignature`](Self::InvalidSignature) |
/// | `timestamp_out_of_tolerance` | [`TimestampTooOld`](Self::TimestampTooOld), [`TimestampTooNew`](Self::TimestampTooNew) |
/// | `invalid_timestamp` | [`InvalidTimestamp`](Self::InvalidTimestamp) |
///
/// Messages never contain the expected signature nor any secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("missing signature header")]
    MissingSignature,
    /// The `webhook-id` header is absent (Standard Webhooks).
    #[error("missing webhook-id header")]
    MissingId,
    /// The `webhook-timestamp` header is absent (Standard Webhooks).
    #[error("missing webhook-timestamp header")]
    MissingTimestamp,
    /// The signature or a header beside it cannot be parsed.
    #[error("malformed signature: {0}")]
    Malformed(Malformed),
    /// The signature is well formed but matches none of the secrets.
    #[error("signature does not match")]
    InvalidSignature,
    /// The timestamp is older than the tolerance window.
    #[error("webhook timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance window.
    #[error("webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// The timestamp is not a non-negative integer number of seconds.
    #[error("webhook timestamp is not an integer number of seconds")]
    InvalidTimestamp,
}

impl VerifyError {
    /// Every code [`code`](Self::code) can return.
    pub const CODES: [&'static str; 5] = [
        "missing_signature",
        "malformed_signature",
        "invalid_signature",
        "timestamp_out_of_tolerance",
        "invalid_timestamp",
    ];

    /// The stable, machine-readable code of this error (see the table on [`VerifyError`]).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature | Self::MissingId | Self::MissingTimestamp => "missing_signature",
            Self::Malformed(_) => "malformed_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::TimestampTooOld | Self::TimestampTooNew => "timestamp_out_of_tolerance",
            Self::InvalidTimestamp => "invalid_timestamp",
        }
    }
}

impl From<Malformed> for VerifyError {
    fn from(reason: Malformed) -> Self {
        Self::Malformed(reason)
    }
}
