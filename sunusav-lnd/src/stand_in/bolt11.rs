//! Real BOLT 11 invoices on regtest (`lnbcrt`), signed with a node's key,
//! and node identities.

use std::time::{Duration, SystemTime};

use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};

/// A node's key pair.
#[derive(Clone)]
pub struct NodeKey {
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A random key.
    pub fn random() -> Self {
        let secp = Secp256k1::new();
        loop {
            if let Ok(secret) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                return Self { public: secret.public_key(&secp), secret };
            }
        }
    }

    /// The 33-byte compressed public key.
    pub fn public(&self) -> [u8; 33] {
        self.public.serialize()
    }

    /// An invoice of this node for `hash`, signed.
    pub fn invoice(
        &self,
        hash: &[u8; 32],
        amount_msat: Option<u64>,
        memo: &str,
        expiry: Duration,
        created: SystemTime,
    ) -> Result<String, String> {
        let secp = Secp256k1::new();
        let builder = InvoiceBuilder::new(Currency::Regtest)
            .description(memo.to_owned())
            .payment_hash(sha256::Hash::from_byte_array(*hash))
            .payment_secret(PaymentSecret(rand::random()))
            .timestamp(created)
            .min_final_cltv_expiry_delta(80)
            .expiry_time(expiry);
        let builder = match amount_msat {
            Some(a) => builder.amount_milli_satoshis(a),
            None => builder,
        };
        builder
            .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &self.secret))
            .map(|i| i.to_string())
            .map_err(|e| format!("building an invoice: {e}"))
    }
}

/// What the node reads of an invoice it is asked to pay.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The payment hash.
    pub hash: [u8; 32],
    /// The amount, if any.
    pub amount_msat: Option<u64>,
    /// The payee.
    pub payee: [u8; 33],
    /// Whether it expired (LND: "invoice expired. Valid until …").
    pub expired_until: Option<String>,
    /// Whether it is for regtest.
    pub regtest: bool,
}

/// Decodes and checks the signature of a BOLT 11 invoice.
pub fn decode(bolt11: &str) -> Result<Decoded, String> {
    let invoice: Bolt11Invoice = bolt11.parse().map_err(|e| format!("{e}"))?;
    let hash: [u8; 32] = invoice.payment_hash().to_byte_array();
    let expires = invoice.duration_since_epoch() + invoice.expiry_time();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Ok(Decoded {
        hash,
        amount_msat: invoice.amount_milli_satoshis(),
        payee: invoice.get_payee_pub_key().serialize(),
        expired_until: (now > expires).then(|| format!("{} seconds after the Unix epoch", expires.as_secs())),
        regtest: invoice.currency() == Currency::Regtest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_is_real_bolt11_on_regtest_and_decodes_back() {
        let key = NodeKey::random();
        let hash = [7u8; 32];
        let s = key.invoice(&hash, Some(30_000), "memo", Duration::from_mins(10), SystemTime::now()).unwrap();
        assert!(s.starts_with("lnbcrt300n1"), "{s}");
        let d = decode(&s).unwrap();
        assert_eq!((d.hash, d.amount_msat, d.payee, d.regtest), (hash, Some(30_000), key.public(), true));
        assert!(d.expired_until.is_none());
    }
}
