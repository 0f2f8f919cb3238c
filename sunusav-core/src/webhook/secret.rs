//! Webhook secrets: never empty, never too short, never printed.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::SecretError;

/// A webhook signing secret (the HMAC key).
///
/// Built only through constructors that refuse empty or short keys. Its `Debug`
/// output is redacted: it never prints the key, nor its length.
///
/// ```
/// use sunusav_core::webhook::Secret;
///
/// let secret = Secret::from_text("a-long-enough-secret").unwrap();
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// assert!(Secret::from_text("short").is_err());
/// ```
#[derive(Clone)]
pub struct Secret {
    bytes: Box<[u8]>,
}

impl Secret {
    /// The minimum length of a key, in bytes.
    pub const MIN_LEN: usize = 16;

    /// The prefix of a Standard Webhooks secret.
    pub const STANDARD_WEBHOOKS_PREFIX: &'static str = "whsec_";

    /// A secret from raw key bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = bytes.into();
        match bytes.len() {
            0 => Err(SecretError::Empty),
            len if len < Self::MIN_LEN => Err(SecretError::TooShort { len, min: Self::MIN_LEN }),
            _ => Ok(Self { bytes: bytes.into_boxed_slice() }),
        }
    }

    /// A secret whose key is the UTF-8 bytes of `text`, as used by the `sha256=<hex>`
    /// scheme (GitHub, `WEBHOOK_HMAC_SECRET`).
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        Self::from_bytes(text.as_bytes())
    }

    /// A Standard Webhooks secret, `whsec_<base64>` or the bare `<base64>` (the
    /// reference libraries accept both): the key is the base64-decoded part. The
    /// decoded key must also be at least [`MIN_LEN`](Self::MIN_LEN) bytes.
    ///
    /// ```
    /// use sunusav_core::webhook::Secret;
    ///
    /// assert!(Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// assert!(Secret::from_standard_webhooks("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// ```
    pub fn from_standard_webhooks(encoded: &str) -> Result<Self, SecretError> {
        let b64 = encoded.strip_prefix(Self::STANDARD_WEBHOOKS_PREFIX).unwrap_or(encoded);
        let bytes = STANDARD.decode(b64).map_err(|_| SecretError::InvalidBase64)?;
        Self::from_bytes(bytes)
    }

    /// The key bytes, for the verifier only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Signs a message the Standard Webhooks way: the `webhook-signature`
    /// value `v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`, for
    /// sending events that receivers check with their Standard Webhooks
    /// library (or [`Verifier::standard_webhooks`](super::Verifier::standard_webhooks)).
    pub fn sign_standard_webhooks(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        use base64::Engine as _;
        use hmac::{Hmac, KeyInit, Mac};
        // HMAC takes a key of any length: a secret is never refused here.
        let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.bytes) else {
            unreachable!("HMAC accepts keys of every length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod signing_tests {
    use super::Secret;
    use crate::webhook::Verifier;

    #[test]
    fn a_standard_webhooks_signature_is_verified_by_the_verifier_and_binds_id_time_and_body() {
        let secret = Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let verifier = Verifier::standard_webhooks([secret.clone()]).unwrap();
        let signature = secret.sign_standard_webhooks("evt_1", 1_700_000_000, b"{\"a\":1}");
        assert!(signature.starts_with("v1,"));
        let ok = verifier.verify_standard_webhooks(
            b"evt_1",
            b"1700000000",
            signature.as_bytes(),
            b"{\"a\":1}",
            1_700_000_010,
        );
        assert!(ok.is_ok(), "{ok:?}");
        for (id, ts, body) in [
            ("evt_2", "1700000000", "{\"a\":1}"),
            ("evt_1", "1700000001", "{\"a\":1}"),
            ("evt_1", "1700000000", "{\"a\":2}"),
        ] {
            let refused = verifier.verify_standard_webhooks(
                id.as_bytes(),
                ts.as_bytes(),
                signature.as_bytes(),
                body.as_bytes(),
                1_700_000_010,
            );
            assert!(refused.is_err(), "{id} {ts} {body}");
        }
    }
}
