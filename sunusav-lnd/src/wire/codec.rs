//! protojson's encodings, as LND's REST gateway uses them: 64-bit integers
//! as JSON strings (a number is accepted on input), `bytes` as standard
//! base64 (URL-safe and unpadded accepted on input), and secrets whose
//! `Debug` prints nothing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Decodes protojson `bytes`: standard or URL-safe base64, padded or not
/// (Go's protojson accepts all four).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let url = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    engine.decode(trimmed).or_else(|_| url.decode(trimmed)).ok()
}

/// Standard padded base64, as protojson writes `bytes`.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Padded URL-safe base64: a `bytes` path parameter (`/v2/router/track/{}`).
pub fn encode_base64_url(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// `bytes`: base64 in JSON.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl fmt::Debug for B64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B64({})", hex::encode(&self.0))
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_base64(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        decode_base64(&s).map(B64).ok_or_else(|| de::Error::custom("invalid base64 in a bytes field"))
    }
}

/// Secret `bytes` (a preimage not yet revealed by a payment): base64 in
/// JSON, nothing in `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretB64(pub B64);

impl fmt::Debug for SecretB64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretB64(<redacted>)")
    }
}

/// `int64` / `uint64`: a JSON string out, a string or a number in.
macro_rules! int_as_string {
    ($name:ident, $t:ty) => {
        /// A protojson 64-bit integer: a JSON string (a number is accepted on input).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $t);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a 64-bit integer, as a string or a number")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(|_| E::custom(format!("not a 64-bit integer: {v:?}")))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        <$t>::try_from(v).map_err(|_| E::custom("integer out of range"))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        <$t>::try_from(v).map_err(|_| E::custom("integer out of range"))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$t, E> {
                        Ok(0)
                    }
                }
                d.deserialize_any(V).map($name)
            }
        }
    };
}

int_as_string!(I64, i64);
int_as_string!(U64, u64);

/// Whether a field holds its default (protojson omits nothing on output,
/// but our requests need not send defaults).
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_bit_integers_are_strings_out_and_either_in() {
        assert_eq!(serde_json::to_string(&I64(-5)).unwrap(), r#""-5""#);
        assert_eq!(serde_json::from_str::<U64>(r#""18446744073709551615""#).unwrap(), U64(u64::MAX));
        assert_eq!(serde_json::from_str::<U64>("7").unwrap(), U64(7));
        assert!(serde_json::from_str::<U64>(r#""-1""#).is_err());
    }

    #[test]
    fn bytes_are_standard_base64_out_and_any_base64_in() {
        let bytes = vec![0xfb, 0xff, 0xfe];
        assert_eq!(serde_json::to_string(&B64(bytes.clone())).unwrap(), r#""+//+""#);
        assert_eq!(serde_json::from_str::<B64>(r#""-__-""#).unwrap(), B64(bytes.clone()));
        assert_eq!(decode_base64("+//+"), Some(bytes));
        assert_eq!(encode_base64_url(&[0xfb; 32]).len(), 44, "padded");
    }

    #[test]
    fn a_secret_never_prints() {
        let s = SecretB64(B64(vec![0xab; 32]));
        assert!(!format!("{s:?}").contains("abab"));
    }
}
