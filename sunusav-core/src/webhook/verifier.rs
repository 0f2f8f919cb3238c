//! The verifier itself: keyed HMAC states, header parsing, constant-time checks.

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeSliceError, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{HeaderSource, Malformed, Secret, SecretError, VerifyError};

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag, in bytes.
const TAG_LEN: usize = 32;

/// The default header of the `sha256=<hex>` scheme.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-sunu-signature";
/// GitHub's header for the same `sha256=<hex>` form.
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Standard Webhooks: the event id header.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: the timestamp header (Unix seconds).
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: the signature list header.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";
/// Standard Webhooks: the default tolerance, in seconds, in the past and in the future.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The signature scheme of a [`Verifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `sha256=<hex>` of HMAC-SHA256 over the raw body, in one header.
    HexSha256,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature: v1,<base64> …` over `{id}.{timestamp}.{body}`.
    StandardWebhooks,
}

/// What a successful verification tells about the webhook.
///
/// It borrows from the headers it was verified with, so verifying allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'h> {
    /// The Standard Webhooks `webhook-id` (the event id); `None` for the hex scheme.
    pub webhook_id: Option<&'h str>,
    /// The Standard Webhooks `webhook-timestamp`, Unix seconds; `None` for the hex scheme.
    pub timestamp: Option<i64>,
}

/// A signed-webhook verifier: one scheme and one or more secrets.
///
/// Any one secret matching is enough (secret rotation). The keyed HMAC state of
/// each secret is computed once, here, and cloned for each verification; tags are
/// compared in constant time with [`Mac::verify_slice`]. Verifying does no IO,
/// reads no clock (`now` is an argument) and does not allocate.
///
/// ```
/// use sunusav_core::webhook::{Secret, Verifier};
///
/// let secret = Secret::from_text("It's a Secret to Everybody").unwrap();
/// let verifier = Verifier::hex_sha256([secret])
///     .unwrap()
///     .with_header("x-hub-signature-256");
/// let headers = [(
///     "X-Hub-Signature-256",
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
/// )];
/// let verified = verifier.verify(&headers, b"Hello, World!", 0).unwrap();
/// assert_eq!(verified.webhook_id, None);
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Box<[HmacSha256]>,
    scheme: Scheme,
    signature_header: Box<str>,
    tolerance_secs: i64,
}

impl Verifier {
    /// A verifier of `sha256=<hex>` signatures in the [`DEFAULT_SIGNATURE_HEADER`]
    /// (change it with [`with_header`](Self::with_header)).
    pub fn hex_sha256(secrets: impl IntoIterator<Item = Secret>) -> Result<Self, SecretError> {
        Self::new(Scheme::HexSha256, secrets)
    }

    /// A Standard Webhooks verifier with a tolerance of [`DEFAULT_TOLERANCE_SECS`]
    /// (change it with [`with_tolerance`](Self::with_tolerance)).
    pub fn standard_webhooks(secrets: impl IntoIterator<Item = Secret>) -> Result<Self, SecretError> {
        Self::new(Scheme::StandardWebhooks, secrets)
    }

    /// A verifier of `scheme` with `secrets`; refuses an empty list.
    pub fn new(scheme: Scheme, secrets: impl IntoIterator<Item = Secret>) -> Result<Self, SecretError> {
        let keys: Box<[HmacSha256]> = secrets
            .into_iter()
            .map(|secret| {
                // HMAC accepts keys of any length; `Secret` already refused short ones.
                HmacSha256::new_from_slice(secret.expose()).map_err(|_| SecretError::Empty)
            })
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        let signature_header = match scheme {
            Scheme::HexSha256 => DEFAULT_SIGNATURE_HEADER,
            Scheme::StandardWebhooks => WEBHOOK_SIGNATURE_HEADER,
        };
        Ok(Self {
            keys,
            scheme,
            signature_header: signature_header.into(),
            tolerance_secs: i64::try_from(DEFAULT_TOLERANCE_SECS).unwrap_or(i64::MAX),
        })
    }

    /// Reads the signature from the header `name` (any case) instead of the default:
    /// e.g. [`GITHUB_SIGNATURE_HEADER`] for the hex scheme. For Standard Webhooks it
    /// renames the signature-list header only; `webhook-id` and `webhook-timestamp`
    /// stay.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>) -> Self {
        self.signature_header = name.into().into_boxed_str();
        self
    }

    /// Accepts Standard Webhooks timestamps at most `secs` seconds in the past or in
    /// the future. The hex scheme has no timestamp and ignores it.
    #[must_use]
    pub fn with_tolerance(mut self, secs: u64) -> Self {
        self.tolerance_secs = i64::try_from(secs).unwrap_or(i64::MAX);
        self
    }

    /// The scheme of this verifier.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The name of the header the signature is read from.
    pub fn signature_header(&self) -> &str {
        &self.signature_header
    }

    /// The Standard Webhooks tolerance, in seconds.
    pub fn tolerance_secs(&self) -> u64 {
        u64::try_from(self.tolerance_secs).unwrap_or(0)
    }

    /// Verifies a webhook: its `headers`, its raw `body` bytes, exactly as received,
    /// and the current time `now_unix_secs` (used by Standard Webhooks only).
    pub fn verify<'h, H: HeaderSource + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<Verified<'h>, VerifyError> {
        let signature = headers.header(&self.signature_header).ok_or(VerifyError::MissingSignature);
        match self.scheme {
            Scheme::HexSha256 => {
                self.verify_hex_signature(signature?, body)?;
                Ok(Verified { webhook_id: None, timestamp: None })
            }
            Scheme::StandardWebhooks => {
                let id = headers.header(WEBHOOK_ID_HEADER).ok_or(VerifyError::MissingId)?;
                let timestamp = headers.header(WEBHOOK_TIMESTAMP_HEADER).ok_or(VerifyError::MissingTimestamp)?;
                self.verify_standard_webhooks(id, timestamp, signature?, body, now_unix_secs)
            }
        }
    }

    /// Verifies one `sha256=<hex>` header value against the raw `body`, whatever the
    /// verifier's scheme.
    pub fn verify_hex_signature(&self, header_value: &[u8], body: &[u8]) -> Result<(), VerifyError> {
        let tag = parse_hex_signature(header_value)?;
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(body);
            if mac.verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
        Err(VerifyError::InvalidSignature)
    }

    /// Verifies Standard Webhooks header values (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`) against the raw `body` at `now_unix_secs`, whatever the
    /// verifier's scheme.
    ///
    /// The signature list is space-separated; entries of other versions than `v1`
    /// are skipped, and any `v1` entry matching any secret is enough.
    pub fn verify_standard_webhooks<'h>(
        &self,
        id: &'h [u8],
        timestamp: &[u8],
        signature: &[u8],
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<Verified<'h>, VerifyError> {
        let id = core::str::from_utf8(id).map_err(|_| Malformed::NotUtf8)?;
        if id.is_empty() {
            return Err(VerifyError::MissingId);
        }
        let timestamp_str = core::str::from_utf8(timestamp).map_err(|_| Malformed::NotUtf8)?;
        let signature = core::str::from_utf8(signature).map_err(|_| Malformed::NotUtf8)?;
        let ts = parse_timestamp(timestamp_str)?;
        self.check_tolerance(ts, now_unix_secs)?;

        // First pass: is there at least one well-formed `v1` entry? Decide the error
        // before spending an HMAC on the body.
        let mut well_formed = 0_usize;
        let mut first_malformed = None;
        for encoded in v1_entries(signature) {
            let mut buf = [0_u8; 64];
            match decode_v1(encoded, &mut buf) {
                Ok(_) => well_formed += 1,
                Err(reason) => {
                    first_malformed.get_or_insert(reason);
                }
            }
        }
        if well_formed == 0 {
            return Err(first_malformed
                .unwrap_or(if signature.trim().is_empty() { Malformed::Empty } else { Malformed::UnknownVersion })
                .into());
        }

        for key in &self.keys {
            // One pass over the content per secret, fed in pieces (no string built).
            let mut mac = key.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp_str.as_bytes());
            mac.update(b".");
            mac.update(body);
            for encoded in v1_entries(signature) {
                let mut buf = [0_u8; 64];
                if let Ok(tag) = decode_v1(encoded, &mut buf)
                    && mac.clone().verify_slice(tag).is_ok()
                {
                    return Ok(Verified { webhook_id: Some(id), timestamp: Some(ts) });
                }
            }
        }
        Err(VerifyError::InvalidSignature)
    }

    fn check_tolerance(&self, ts: i64, now: i64) -> Result<(), VerifyError> {
        let age = i128::from(now) - i128::from(ts);
        let tolerance = i128::from(self.tolerance_secs);
        if age > tolerance {
            Err(VerifyError::TimestampTooOld)
        } else if -age > tolerance {
            Err(VerifyError::TimestampTooNew)
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &self.keys.len())
            .field("signature_header", &self.signature_header)
            .field("tolerance_secs", &self.tolerance_secs)
            .finish_non_exhaustive()
    }
}

/// Parses `sha256=<64 hex digits>` into the tag, on the stack.
fn parse_hex_signature(value: &[u8]) -> Result<[u8; TAG_LEN], Malformed> {
    let value = core::str::from_utf8(value).map_err(|_| Malformed::NotUtf8)?;
    let hex_digits = value.strip_prefix("sha256=").ok_or(Malformed::Prefix)?;
    if hex_digits.is_empty() {
        return Err(Malformed::Empty);
    }
    let mut tag = [0_u8; TAG_LEN];
    hex::decode_to_slice(hex_digits, &mut tag).map_err(|e| match e {
        hex::FromHexError::OddLength => Malformed::OddLength,
        hex::FromHexError::InvalidStringLength => Malformed::WrongLength,
        hex::FromHexError::InvalidHexCharacter { .. } => Malformed::NotHex,
    })?;
    Ok(tag)
}

/// Parses a non-negative integer number of seconds (ASCII digits only).
fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    value.parse::<i64>().map_err(|_| VerifyError::InvalidTimestamp)
}

/// The base64 parts of the `v1,` entries of a signature list.
fn v1_entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, encoded)| encoded)
}

/// Decodes one `v1` signature into `buf`, returning the 32-byte tag.
fn decode_v1<'b>(encoded: &str, buf: &'b mut [u8; 64]) -> Result<&'b [u8], Malformed> {
    if encoded.is_empty() {
        return Err(Malformed::Empty);
    }
    match STANDARD.decode_slice(encoded, buf) {
        Ok(TAG_LEN) => Ok(&buf[..TAG_LEN]),
        Ok(_) | Err(DecodeSliceError::OutputSliceTooSmall) => Err(Malformed::WrongLength),
        Err(DecodeSliceError::DecodeError(_)) => Err(Malformed::NotBase64),
    }
}
