//! Signed-webhook verification: pure, no IO, no clock, no allocation per webhook.
//!
//! A [`Verifier`] is built from one or more [`Secret`]s (rotation: any one matching
//! passes) and a [`Scheme`]:
//!
//! - [`Scheme::HexSha256`]: `sha256=<hex>` of HMAC-SHA256 over the raw body, in a
//!   configurable header ([`DEFAULT_SIGNATURE_HEADER`] by default; GitHub's
//!   [`GITHUB_SIGNATURE_HEADER`] is the same form).
//! - [`Scheme::StandardWebhooks`]: `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature: v1,<base64> …` over `{id}.{timestamp}.{body}`, with a
//!   tolerance window ([`DEFAULT_TOLERANCE_SECS`], past and future).
//!
//! Headers come through [`HeaderSource`] (case-insensitive names, byte values).
//! Tags are compared in constant time with `Mac::verify_slice`. Rejections are
//! [`VerifyError`]s with a stable [`code`](VerifyError::code):
//! `missing_signature`, `malformed_signature`, `invalid_signature`,
//! `timestamp_out_of_tolerance`, `invalid_timestamp`. No message ever contains the
//! expected signature or secret material, and [`Secret`]'s `Debug` is redacted.

mod error;
mod headers;
mod secret;
mod verifier;

pub use error::{Malformed, SecretError, VerifyError};
pub use headers::HeaderSource;
pub use secret::Secret;
pub use verifier::{
    DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECS, GITHUB_SIGNATURE_HEADER, Scheme, Verified, Verifier,
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
