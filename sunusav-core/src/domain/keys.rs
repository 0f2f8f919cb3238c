//! Idempotency keys and advisory lock keys.
//!
//! An [`IdempotencyKey`] names one effect that must happen at most once. The same
//! key is the payment attempt's unique key, the queue job id and the log field.
//! A [`LockKey`] is the signed 64-bit key of a PostgreSQL advisory lock (or of the
//! in-memory lock table).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::ids::{GroupId, PaymentHash};

/// The longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// Why a string is not an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Empty.
    #[error("an idempotency key cannot be empty")]
    Empty,
    /// Over [`MAX_KEY_LEN`] bytes.
    #[error("an idempotency key is at most 255 bytes")]
    TooLong,
    /// Holds a byte outside printable ASCII (`!` to `~`).
    #[error("an idempotency key holds printable ASCII only")]
    NotPrintable,
    /// A lock namespace is `[a-z0-9_]+`: a `:` in it would make two
    /// (namespace, id) pairs share one key.
    #[error("a lock namespace is made of a-z, 0-9 and _")]
    InvalidNamespace,
}

/// A deterministic, printable (ASCII `!`..=`~`), bounded (≤ 255 bytes) key.
///
/// Forms: `payout:<group>:<cycle>`, `contribution:<payment_hash>`,
/// `webhook:<event id>` or `webhook:sha256:<body digest>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a key received from outside (a queue, a database row).
    pub fn parse(s: impl Into<String>) -> Result<Self, KeyError> {
        let s = s.into();
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        if s.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::NotPrintable);
        }
        Ok(Self(s))
    }

    /// The key of the payout of one cycle of one group: `payout:<group>:<cycle>`.
    pub fn payout(group: GroupId, cycle: u32) -> Self {
        Self(format!("payout:{group}:{cycle}"))
    }

    /// The key of one contribution: `contribution:<payment_hash>`.
    pub fn contribution(hash: &PaymentHash) -> Self {
        Self(format!("contribution:{hash}"))
    }

    /// The key of one webhook delivery.
    ///
    /// With a sender's event id that is printable and short enough, `webhook:<id>`;
    /// otherwise `webhook:sha256:<hex digest>` of the id, or of the raw body when
    /// there is no id.
    pub fn webhook(event_id: Option<&str>, body: &[u8]) -> Self {
        const PREFIX: &str = "webhook:";
        match event_id {
            Some(id)
                if !id.is_empty()
                    && PREFIX.len() + id.len() <= MAX_KEY_LEN
                    && id.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Self(format!("{PREFIX}{id}"))
            }
            Some(id) => Self(format!("{PREFIX}sha256:{}", hex::encode(Sha256::digest(id.as_bytes())))),
            None => Self(format!("{PREFIX}sha256:{}", hex::encode(Sha256::digest(body)))),
        }
    }

    /// The queue job id of generation `n` of the work this key names.
    ///
    /// Generation 0 is the key itself (the job a settlement or an outbox row
    /// publishes). An operator's retry or replay starts generation `n > 0`:
    /// `r<n>:<key>`, a new job id that the dedup window still holding the
    /// earlier generation's id cannot absorb. A key too long for the prefix
    /// gives `r<n>:sha256:<hex digest of the key>`. The job's payload carries
    /// the key itself: the id is never parsed back.
    #[must_use]
    pub fn for_generation(&self, n: u32) -> Self {
        if n == 0 {
            return self.clone();
        }
        let id = format!("r{n}:{}", self.0);
        if id.len() <= MAX_KEY_LEN {
            return Self(id);
        }
        Self(format!("r{n}:sha256:{}", hex::encode(Sha256::digest(self.0.as_bytes()))))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> Self {
        k.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

/// A stable signed 64-bit lock key from a namespace and an id.
///
/// The key is the first 8 bytes, big-endian, of SHA-256 of
/// `"sunusav:" + namespace + ":" + id`. Different namespaces never share a key
/// by construction of the input, and two ids collide with odds of 2^-64, not the
/// 2^-32 of PostgreSQL's `hashtext` (about 1 % for 10,000 groups). The values are
/// part of the on-disk contract between processes of different versions: they
/// never change (see the fixed values in the tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(i64);

impl LockKey {
    /// The key of `id` in `namespace` (`[a-z0-9_]+`).
    pub fn new(namespace: &str, id: &str) -> Result<Self, KeyError> {
        let valid = !namespace.is_empty()
            && namespace.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(KeyError::InvalidNamespace);
        }
        Ok(Self::hash(namespace, id))
    }

    fn hash(namespace: &str, id: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"sunusav:");
        h.update(namespace.as_bytes());
        h.update(b":");
        h.update(id.as_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(i64::from_be_bytes(first))
    }

    /// The lock of one group: namespace `group`, the hyphenated lower-case UUID.
    pub fn group(id: GroupId) -> Self {
        Self::hash("group", &id.to_string())
    }

    /// The signed 64-bit value (the argument of `pg_advisory_xact_lock(bigint)`).
    pub const fn value(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn gid(s: &str) -> GroupId {
        GroupId::from_uuid(Uuid::parse_str(s).unwrap())
    }

    #[test]
    fn lock_keys_are_stable_across_versions() {
        // Fixed values: changing them would let two versions of the service lock
        // the same group under different keys. Computed once with
        // python3 -c "import hashlib;print(int.from_bytes(hashlib.sha256(b'sunusav:group:<uuid>').digest()[:8],'big',signed=True))"
        let g = gid("00000000-0000-0000-0000-000000000000");
        assert_eq!(LockKey::group(g).value(), LOCK_ZERO);
        let g = gid("6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f");
        assert_eq!(LockKey::group(g).value(), LOCK_SAMPLE);
        assert_eq!(LockKey::new("payout", "x").unwrap().value(), LOCK_PAYOUT_X);
    }

    #[test]
    fn lock_keys_differ_by_namespace() {
        assert_ne!(LockKey::new("group", "a"), LockKey::new("payout", "a"));
        // "group" + "a:b" and "group:a" + "b" would hash the same input: such a
        // namespace is refused.
        assert_eq!(LockKey::new("group:a", "b"), Err(KeyError::InvalidNamespace));
        assert_eq!(LockKey::new("", "b"), Err(KeyError::InvalidNamespace));
        assert_eq!(LockKey::new("Group", "b"), Err(KeyError::InvalidNamespace));
    }

    const LOCK_ZERO: i64 = -5_772_133_328_509_313_141;
    const LOCK_SAMPLE: i64 = -7_295_068_529_597_637_847;
    const LOCK_PAYOUT_X: i64 = -5_835_522_765_602_867_385;

    #[test]
    fn idempotency_keys_are_stable() {
        let g = gid("6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f");
        assert_eq!(IdempotencyKey::payout(g, 3).as_str(), "payout:6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f:3");
        let h = PaymentHash::from_bytes([0xab; 32]);
        assert_eq!(IdempotencyKey::contribution(&h).as_str(), format!("contribution:{}", "ab".repeat(32)));
        assert_eq!(IdempotencyKey::webhook(Some("msg_2Kx"), b"{}").as_str(), "webhook:msg_2Kx");
        // sha256("") = e3b0c442...
        assert_eq!(
            IdempotencyKey::webhook(None, b"").as_str(),
            "webhook:sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // An id with a space is hashed, never stored raw.
        assert!(IdempotencyKey::webhook(Some("a b"), b"").as_str().starts_with("webhook:sha256:"));
        assert!(IdempotencyKey::webhook(Some(&"x".repeat(300)), b"").as_str().len() <= MAX_KEY_LEN);
    }

    #[test]
    fn each_generation_of_a_key_is_its_own_bounded_job_id() {
        let g = gid("6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f");
        let key = IdempotencyKey::payout(g, 3);
        assert_eq!(key.for_generation(0), key, "generation 0 keeps today's id");
        assert_eq!(key.for_generation(1).as_str(), "r1:payout:6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f:3");
        assert_ne!(key.for_generation(1), key.for_generation(2));
        let long = IdempotencyKey::parse(format!("webhook:{}", "x".repeat(247))).unwrap();
        for n in [1, 2, u32::MAX] {
            let id = long.for_generation(n);
            assert!(id.as_str().len() <= MAX_KEY_LEN, "{id}");
            assert!(id.as_str().starts_with(&format!("r{n}:sha256:")), "{id}");
            assert!(IdempotencyKey::parse(id.as_str()).is_ok());
        }
        assert_ne!(long.for_generation(1), long.for_generation(2));
    }

    #[test]
    fn parse_refuses_empty_long_and_unprintable_keys() {
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::parse("x".repeat(256)), Err(KeyError::TooLong));
        assert_eq!(IdempotencyKey::parse("a b"), Err(KeyError::NotPrintable));
        assert_eq!(IdempotencyKey::parse("é"), Err(KeyError::NotPrintable));
        assert!(IdempotencyKey::parse("x".repeat(255)).is_ok());
    }
}
