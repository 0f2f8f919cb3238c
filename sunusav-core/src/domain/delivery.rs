//! [`BodyDigest`]: what tells a replay of a webhook delivery from a conflict.
//!
//! A delivery is recorded once by its key (the sender's event id, or the
//! body's digest when it gives none). A second delivery of the same key is a
//! replay when its raw body is the same, byte for byte, and a **conflict**
//! when it is not: one event id cannot mean two things, so the second body is
//! recorded beside the first for an operator and never acted on. Stores keep
//! the digest of the first body (it outlives the body itself, which
//! retention drops) and compare it with [`BodyDigest::of`] the new one.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 of a delivery's raw body, as verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BodyDigest([u8; 32]);

impl BodyDigest {
    /// The digest of `body`.
    pub fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }

    /// A digest a store kept.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyDigest({})", hex::encode(self.0))
    }
}

impl fmt::Display for BodyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_exact_bytes() {
        assert_eq!(BodyDigest::of(b"").to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_ne!(BodyDigest::of(b"{\"a\":1}"), BodyDigest::of(b"{\"a\": 1}"), "one byte apart is another body");
        let d = BodyDigest::of(b"x");
        assert_eq!(BodyDigest::from_bytes(*d.as_bytes()), d);
    }
}
