//! Where a payout goes and how it is sent: a member's destination (a node
//! for keysend), a beneficiary's BOLT 11 invoice for one pot, the keysend
//! preimage derived under a server secret, and the fee and time limits.
//!
//! Pure: BOLT 11 is parsed by `lightning-invoice` and checked against the
//! clock the caller passes in.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use crate::domain::ids::PaymentHash;
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;

/// Why a destination, an invoice or a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// A node public key is 66 hex characters of a valid compressed secp256k1 point.
    #[error("a node public key is 66 hexadecimal characters of a compressed secp256k1 point")]
    InvalidNodeKey,
    /// Not a BOLT 11 invoice (or its signature does not verify).
    #[error("not a valid BOLT 11 invoice: {0}")]
    InvalidInvoice(String),
    /// The invoice is for another network.
    #[error("the invoice is for {found}, this node runs on {expected}")]
    WrongNetwork {
        /// The network of the node.
        expected: Network,
        /// The invoice's network.
        found: Network,
    },
    /// The invoice asks for another amount than the payout's.
    #[error(
        "the invoice asks for {found} msat; the payout is {expected} msat (use an amount-less invoice or this amount)"
    )]
    WrongAmount {
        /// The payout amount.
        expected: Msat,
        /// The invoice's amount.
        found: Msat,
    },
    /// The invoice has expired (or expires within the margin).
    #[error("the invoice has expired or expires within {0:?}")]
    Expired(Duration),
    /// A fee limit of zero (LND reads it as "zero-fee routes only").
    #[error("a fee limit must allow a fee above zero")]
    ZeroFeeLimit,
    /// A payment timeout out of bounds.
    #[error("a payment timeout is between 1 s and 1 h")]
    InvalidTimeout,
    /// More than 10,000 basis points.
    #[error("a fee limit is at most 10,000 basis points")]
    InvalidBasisPoints,
}

/// A Lightning network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Bitcoin mainnet (`lnbc`).
    Bitcoin,
    /// Testnet (`lntb`).
    Testnet,
    /// Signet (`lntbs`).
    Signet,
    /// Regtest (`lnbcrt`).
    Regtest,
}

str_enum!(Network {
    Bitcoin => "bitcoin",
    Testnet => "testnet",
    Signet => "signet",
    Regtest => "regtest",
});

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(&s.to_ascii_lowercase())
            .or_else(|| (s.eq_ignore_ascii_case("mainnet")).then_some(Self::Bitcoin))
            .ok_or_else(|| format!("unknown network `{s}`: bitcoin, testnet, signet or regtest"))
    }
}

impl Network {
    const fn of_currency(currency: &lightning_invoice::Currency) -> Option<Self> {
        use lightning_invoice::Currency;
        match currency {
            Currency::Bitcoin => Some(Self::Bitcoin),
            Currency::BitcoinTestnet => Some(Self::Testnet),
            Currency::Signet => Some(Self::Signet),
            Currency::Regtest => Some(Self::Regtest),
            Currency::Simnet => None,
        }
    }
}

/// A Lightning node's public key: 33 bytes, a compressed secp256k1 point.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodePubkey([u8; 33]);

impl NodePubkey {
    /// Checks 33 bytes are a compressed point on the curve.
    pub fn from_bytes(bytes: [u8; 33]) -> Result<Self, DestinationError> {
        bitcoin::secp256k1::PublicKey::from_slice(&bytes).map_err(|_| DestinationError::InvalidNodeKey)?;
        Ok(Self(bytes))
    }

    /// The 33 bytes.
    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// Lower-case hex, 66 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for NodePubkey {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 33];
        if s.len() != 66 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(DestinationError::InvalidNodeKey);
        }
        Self::from_bytes(out)
    }
}

impl fmt::Display for NodePubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodePubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePubkey({})", self.to_hex())
    }
}

impl Serialize for NodePubkey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for NodePubkey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A payment preimage: the secret whose SHA-256 is the payment hash. Its
/// `Debug` is redacted, and it is never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Preimage([u8; 32]);

impl Preimage {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for the node call that needs them.
    pub const fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Its payment hash.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash::of_preimage(&self.0)
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(<redacted>)")
    }
}

/// The server secret keysend preimages are derived under
/// (`PAYOUT_PREIMAGE_SECRET`). A payout's preimage is
/// `HMAC-SHA256(secret, "sunusav/keysend/v1/" + payout key)`: fixed per
/// payout, so every try of one payout is one payment hash that the node pays
/// at most once, and unknowable from public data, so no routing node can
/// settle the payment in the beneficiary's place.
///
/// It must stay the same for the life of the store: a payout in flight is
/// resent with the preimage derived again. Its `Debug` is redacted.
#[derive(Clone)]
pub struct PreimageSecret(Vec<u8>);

/// The shortest secret accepted, in bytes.
pub const MIN_PREIMAGE_SECRET_LEN: usize = 32;

impl PreimageSecret {
    /// Wraps a secret of at least [`MIN_PREIMAGE_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, String> {
        let secret = secret.into();
        if secret.len() < MIN_PREIMAGE_SECRET_LEN {
            return Err(format!("a payout preimage secret is at least {MIN_PREIMAGE_SECRET_LEN} bytes"));
        }
        Ok(Self(secret))
    }

    /// The keysend preimage of a payout.
    pub fn keysend_preimage(&self, key: &IdempotencyKey) -> Preimage {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(b"sunusav/keysend/v1/");
        mac.update(key.as_str().as_bytes());
        Preimage(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for PreimageSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreimageSecret(<redacted>)")
    }
}

/// A member's standing payout destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayoutDestination {
    /// Keysend (spontaneous payment) to this node.
    Keysend(NodePubkey),
}

/// A checked BOLT 11 invoice: its text, payment hash, amount and expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct Bolt11 {
    text: String,
    payment_hash: PaymentHash,
    amount: Option<Msat>,
    network: Network,
    expires_at: Duration,
}

/// The least time an invoice must still be payable when it is accepted or paid.
pub const INVOICE_MARGIN: Duration = Duration::from_mins(1);

impl Bolt11 {
    /// Parses an invoice and checks its signature.
    pub fn parse(text: &str) -> Result<Self, DestinationError> {
        let text = text.trim();
        let invoice = lightning_invoice::Bolt11Invoice::from_str(text)
            .map_err(|e| DestinationError::InvalidInvoice(e.to_string()))?;
        let network = Network::of_currency(&invoice.currency())
            .ok_or_else(|| DestinationError::InvalidInvoice("simnet invoices are not supported".into()))?;
        let hash: &[u8] = invoice.payment_hash().as_ref();
        let hash: [u8; 32] =
            hash.try_into().map_err(|_| DestinationError::InvalidInvoice("payment hash is not 32 bytes".into()))?;
        let expires_at =
            invoice.expires_at().ok_or_else(|| DestinationError::InvalidInvoice("its expiry overflows".into()))?;
        Ok(Self {
            text: text.to_ascii_lowercase(),
            payment_hash: PaymentHash::from_bytes(hash),
            amount: invoice.amount_milli_satoshis().map(Msat::new),
            network,
            expires_at,
        })
    }

    /// Parses an invoice and checks that it can pay `amount` on `network`
    /// at `now`: amount-less or exactly `amount`, payable for at least
    /// [`INVOICE_MARGIN`] more.
    pub fn parse_for_payout(
        text: &str,
        amount: Msat,
        network: Network,
        now: SystemTime,
    ) -> Result<Self, DestinationError> {
        let invoice = Self::parse(text)?;
        invoice.check(amount, network, now)?;
        Ok(invoice)
    }

    /// Checks the invoice can pay `amount` on `network` at `now`.
    pub fn check(&self, amount: Msat, network: Network, now: SystemTime) -> Result<(), DestinationError> {
        if self.network != network {
            return Err(DestinationError::WrongNetwork { expected: network, found: self.network });
        }
        if let Some(found) = self.amount
            && found != amount
        {
            return Err(DestinationError::WrongAmount { expected: amount, found });
        }
        if self.is_expired(now, INVOICE_MARGIN) {
            return Err(DestinationError::Expired(INVOICE_MARGIN));
        }
        Ok(())
    }

    /// Whether it expires within `margin` of `now`.
    pub fn is_expired(&self, now: SystemTime, margin: Duration) -> bool {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        now.saturating_add(margin) >= self.expires_at
    }

    /// The invoice's text (lower case).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its payment hash.
    pub const fn payment_hash(&self) -> PaymentHash {
        self.payment_hash
    }

    /// Its amount, when it has one.
    pub const fn amount(&self) -> Option<Msat> {
        self.amount
    }

    /// Its network.
    pub const fn network(&self) -> Network {
        self.network
    }

    /// When it expires (since the Unix epoch).
    pub const fn expires_at(&self) -> Duration {
        self.expires_at
    }
}

impl fmt::Debug for Bolt11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bolt11")
            .field("payment_hash", &self.payment_hash)
            .field("amount", &self.amount)
            .field("network", &self.network)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How a payment is sent: the destination the payout engine chose, with the
/// payment hash fixed before sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayTo {
    /// Keysend to a node, revealing this preimage to it (LND: custom record
    /// 5482373484).
    Keysend {
        /// The receiving node.
        node: NodePubkey,
        /// The preimage, derived under the server secret.
        preimage: Preimage,
    },
    /// Pay the beneficiary's invoice.
    Invoice {
        /// The invoice (BOLT 11).
        bolt11: String,
    },
}

/// The limits of one payment: the routing fee and the time the node may
/// spend finding a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutPolicy {
    fee_limit_bps: u16,
    fee_limit_min: Msat,
    timeout: Duration,
}

impl Default for PayoutPolicy {
    /// 1 % of the amount, at least 10 sat; 60 s to find a route.
    fn default() -> Self {
        Self { fee_limit_bps: 100, fee_limit_min: Msat::new(10_000), timeout: Duration::from_mins(1) }
    }
}

impl PayoutPolicy {
    /// A policy: fee limit of `bps` basis points of the amount, at least
    /// `min` (never zero: LND reads a zero fee limit as "zero-fee routes
    /// only"), and a payment timeout of 1 s to 1 h.
    pub fn new(bps: u16, min: Msat, timeout: Duration) -> Result<Self, DestinationError> {
        if bps > 10_000 {
            return Err(DestinationError::InvalidBasisPoints);
        }
        if min.is_zero() {
            return Err(DestinationError::ZeroFeeLimit);
        }
        if timeout < Duration::from_secs(1) || timeout > Duration::from_hours(1) {
            return Err(DestinationError::InvalidTimeout);
        }
        Ok(Self { fee_limit_bps: bps, fee_limit_min: min, timeout })
    }

    /// The fee limit for `amount`: its share in basis points, at least the minimum.
    pub fn fee_limit(&self, amount: Msat) -> Msat {
        let share = amount.basis_points(self.fee_limit_bps).unwrap_or(amount);
        share.max(self.fee_limit_min)
    }

    /// The basis points.
    pub const fn fee_limit_bps(&self) -> u16 {
        self.fee_limit_bps
    }

    /// The minimum fee limit.
    pub const fn fee_limit_min(&self) -> Msat {
        self.fee_limit_min
    }

    /// How long the node may try.
    pub const fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::GroupId;

    #[test]
    fn node_keys_must_be_points_on_the_curve() {
        // The generator point G, compressed.
        let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        assert_eq!(g.parse::<NodePubkey>().map(|k| k.to_hex()), Ok(g.to_owned()));
        // No point of secp256k1 has x = 0.
        assert_eq!(format!("02{}", "00".repeat(32)).parse::<NodePubkey>(), Err(DestinationError::InvalidNodeKey));
        assert_eq!(g[..64].parse::<NodePubkey>(), Err(DestinationError::InvalidNodeKey));
        assert_eq!(format!("04{}", &g[2..]).parse::<NodePubkey>(), Err(DestinationError::InvalidNodeKey));
    }

    #[test]
    fn keysend_preimages_are_fixed_per_payout_and_secret() {
        let secret = PreimageSecret::new([7u8; 32]).expect("secret");
        let other = PreimageSecret::new([8u8; 32]).expect("secret");
        let group = GroupId::random();
        let (a, b) = (IdempotencyKey::payout(group, 1), IdempotencyKey::payout(group, 2));
        assert_eq!(secret.keysend_preimage(&a), secret.keysend_preimage(&a));
        assert_ne!(secret.keysend_preimage(&a), secret.keysend_preimage(&b));
        assert_ne!(secret.keysend_preimage(&a), other.keysend_preimage(&a));
        assert_eq!(format!("{:?}", secret.keysend_preimage(&a)), "Preimage(<redacted>)");
        assert_eq!(format!("{secret:?}"), "PreimageSecret(<redacted>)");
        assert!(PreimageSecret::new([1u8; 31]).is_err());
    }

    #[test]
    fn the_fee_limit_is_never_zero() {
        let p = PayoutPolicy::new(100, Msat::new(1_000), Duration::from_secs(30)).expect("policy");
        assert_eq!(p.fee_limit(Msat::new(10)), Msat::new(1_000));
        assert_eq!(p.fee_limit(Msat::new(10_000_000)), Msat::new(100_000));
        assert_eq!(PayoutPolicy::new(100, Msat::ZERO, Duration::from_secs(30)), Err(DestinationError::ZeroFeeLimit));
        assert_eq!(
            PayoutPolicy::new(10_001, Msat::new(1), Duration::from_secs(30)),
            Err(DestinationError::InvalidBasisPoints)
        );
        assert_eq!(PayoutPolicy::new(1, Msat::new(1), Duration::ZERO), Err(DestinationError::InvalidTimeout));
        assert!(PayoutPolicy::default().fee_limit(Msat::ZERO) > Msat::ZERO);
    }

    #[test]
    fn garbage_is_not_an_invoice() {
        assert!(matches!(Bolt11::parse("lnbc1nope"), Err(DestinationError::InvalidInvoice(_))));
        assert!(matches!(Bolt11::parse(""), Err(DestinationError::InvalidInvoice(_))));
    }
}
