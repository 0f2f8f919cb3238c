//! Identifiers: groups, members and Lightning payment hashes, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random identifier.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::InvalidUuid)
            }
        }
    };
}

uuid_id!(
    /// A tontine group.
    GroupId
);
uuid_id!(
    /// A member of a group (the embedding service's user id).
    MemberId
);

/// Why an identifier could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not a UUID.
    #[error("not a valid UUID")]
    InvalidUuid,
    /// A payment hash is 64 hexadecimal characters.
    #[error("a payment hash is 64 hexadecimal characters")]
    InvalidPaymentHash,
}

/// A Lightning payment hash: the SHA-256 of the preimage, 32 bytes, written as 64 hex chars.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaymentHash([u8; 32]);

impl PaymentHash {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash of a preimage (what a Lightning node does when it issues an invoice).
    pub fn of_preimage(preimage: &[u8; 32]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(preimage).into())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for PaymentHash {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(IdError::InvalidPaymentHash);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| IdError::InvalidPaymentHash)?;
        Ok(Self(out))
    }
}

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({})", self.to_hex())
    }
}

impl Serialize for PaymentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PaymentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_hash_round_trips_through_hex_and_rejects_bad_input() {
        let h = PaymentHash::of_preimage(&[7; 32]);
        assert_eq!(h.to_hex().parse::<PaymentHash>(), Ok(h));
        assert_eq!("ab".parse::<PaymentHash>(), Err(IdError::InvalidPaymentHash));
        assert_eq!("zz".repeat(32).parse::<PaymentHash>(), Err(IdError::InvalidPaymentHash));
        let upper = h.to_hex().to_uppercase();
        assert_eq!(upper.parse::<PaymentHash>(), Ok(h));
    }

    #[test]
    fn group_ids_parse_and_reject_garbage() {
        let id = GroupId::random();
        assert_eq!(id.to_string().parse::<GroupId>(), Ok(id));
        assert_eq!("nope".parse::<GroupId>(), Err(IdError::InvalidUuid));
    }
}
