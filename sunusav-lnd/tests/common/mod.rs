//! What the tests share: a stand-in and a node connected to it, and payouts.

#![allow(dead_code)]

use std::time::Duration;

use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::money::Msat;
use sunusav_core::domain::payout::{Bolt11, NodePubkey, PayTo, PayoutPolicy, PreimageSecret};
use sunusav_core::ports::payments::PayoutRequest;
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::StandIn;

/// A fresh stand-in and a node connected to it.
pub async fn start() -> (StandIn, LndNode) {
    let lnd = StandIn::start().await.expect("stand-in");
    let node = LndNode::connect(lnd.config()).await.expect("connect");
    (lnd, node)
}

/// A fresh stand-in and a node whose payments give up after `limit` (a
/// one-second policy plus the rest as grace).
pub async fn start_with_pay_limit(grace: Duration) -> (StandIn, LndNode) {
    let lnd = StandIn::start().await.expect("stand-in");
    let node = LndNode::connect(lnd.config().with_pay_grace(grace)).await.expect("connect");
    (lnd, node)
}

/// A keysend payout of 30,000 msat to the stand-in's payee.
pub fn keysend(lnd: &StandIn) -> PayoutRequest {
    let key = IdempotencyKey::payout(GroupId::random(), 1);
    let preimage = PreimageSecret::new([0x42; 32]).expect("secret").keysend_preimage(&key);
    PayoutRequest {
        group: GroupId::random(),
        beneficiary: MemberId::random(),
        amount: Msat::new(30_000),
        payment_hash: preimage.payment_hash(),
        pay_to: PayTo::Keysend { node: NodePubkey::from_bytes(lnd.payee_pubkey()).expect("key"), preimage },
        policy: PayoutPolicy::default(),
        key,
    }
}

/// A payout of an invoice the stand-in's payee minted.
pub fn invoice_payout(lnd: &StandIn, amount: Option<u64>) -> PayoutRequest {
    let (bolt11, _) = lnd.mint_payee_invoice(amount, Duration::from_hours(1)).expect("mint");
    let invoice = Bolt11::parse(&bolt11).expect("BOLT 11");
    PayoutRequest { payment_hash: invoice.payment_hash(), pay_to: PayTo::Invoice { bolt11 }, ..keysend(lnd) }
}

/// A policy of one second.
pub fn one_second() -> PayoutPolicy {
    PayoutPolicy::new(100, Msat::new(10_000), Duration::from_secs(1)).expect("policy")
}
