//! Minting real, signed BOLT 11 invoices, for the simulated node and tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};

use crate::domain::ids::PaymentHash;
use crate::domain::money::Msat;
use crate::domain::payout::{Network, NodePubkey};

/// A node's signing key, for minting invoices as that node.
#[derive(Clone)]
pub struct InvoiceSigner {
    key: SecretKey,
}

impl std::fmt::Debug for InvoiceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvoiceSigner(<redacted>)")
    }
}

impl InvoiceSigner {
    /// A signer from 32 secret bytes (any value but zero and those past the
    /// curve order; `[n; 32]` for small `n` is fine).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { key: SecretKey::from_slice(&bytes).expect("a valid secp256k1 secret key") }
    }

    /// The node's public key.
    pub fn node(&self) -> NodePubkey {
        let public = self.key.public_key(&Secp256k1::signing_only());
        NodePubkey::from_bytes(public.serialize()).expect("a public key of the curve")
    }

    /// A signed invoice of `hash`, for `amount` (none: amount-less), payable
    /// for `expiry` from `now`, on `network`.
    pub fn mint(
        &self,
        hash: PaymentHash,
        amount: Option<Msat>,
        expiry: Duration,
        network: Network,
        now: SystemTime,
    ) -> String {
        let currency = match network {
            Network::Bitcoin => Currency::Bitcoin,
            Network::Testnet => Currency::BitcoinTestnet,
            Network::Signet => Currency::Signet,
            Network::Regtest => Currency::Regtest,
        };
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        // BOLT 11 timestamps are whole seconds.
        let since_epoch = Duration::from_secs(since_epoch.as_secs());
        let builder = InvoiceBuilder::new(currency)
            .description("sunusav".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array(*hash.as_bytes()))
            .payment_secret(PaymentSecret(*hash.as_bytes()))
            .duration_since_epoch(since_epoch)
            .min_final_cltv_expiry_delta(144)
            .expiry_time(expiry);
        let secp = Secp256k1::signing_only();
        let sign = |m: &Message| secp.sign_ecdsa_recoverable(m, &self.key);
        let invoice = match amount {
            Some(a) => builder.amount_milli_satoshis(a.get()).build_signed(sign),
            None => builder.build_signed(sign),
        };
        invoice.expect("a well-formed invoice").to_string()
    }
}
