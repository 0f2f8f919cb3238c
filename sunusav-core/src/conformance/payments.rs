//! Conformance suite of the payments port: LND's per-hash rules.
//!
//! Run it with a fresh, healthy node per call:
//! `sunusav_core::conformance::payments::run_all(|| async { Arc::new(node) as Arc<dyn Payments> }).await`.

use std::future::Future;
use std::sync::Arc;

use crate::domain::ids::{GroupId, MemberId};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::ports::payments::{PayError, PaymentStatus, Payments, PaymentsError, PayoutRequest};

fn request() -> PayoutRequest {
    let group = GroupId::random();
    PayoutRequest {
        key: IdempotencyKey::payout(group, 1),
        group,
        beneficiary: MemberId::random(),
        amount: Msat::new(30_000),
    }
}

/// Invoices get distinct payment hashes; a zero amount is refused.
pub async fn invoices_are_distinct_and_zero_is_refused(node: Arc<dyn Payments>) {
    let a = node.create_invoice(Msat::new(1_000), "a").await.expect("create invoice");
    let b = node.create_invoice(Msat::new(1_000), "b").await.expect("create invoice");
    assert_ne!(a.payment_hash, b.payment_hash, "two invoices share a payment hash");
    assert!(!a.bolt11.is_empty());
    assert!(matches!(node.create_invoice(Msat::ZERO, "zero").await, Err(PaymentsError::Invalid(_))));
}

/// A payout is unknown before, succeeded after, and a second payment is refused.
pub async fn a_payout_is_paid_once_by_key(node: Arc<dyn Payments>) {
    let req = request();
    assert_eq!(node.lookup(&req.key).await.expect("lookup"), PaymentStatus::Unknown);
    let receipt = node.pay(&req).await.expect("first payment succeeds");
    assert_eq!(node.pay(&req).await, Err(PayError::AlreadyPaid), "second payment of one key");
    match node.lookup(&req.key).await.expect("lookup") {
        PaymentStatus::Succeeded(r) => assert_eq!(r, receipt),
        other => panic!("expected Succeeded, got {other:?}"),
    }
}

/// Different keys are different payments.
pub async fn different_keys_are_different_payments(node: Arc<dyn Payments>) {
    let a = request();
    let mut b = request();
    b.key = IdempotencyKey::payout(a.group, 2);
    let ra = node.pay(&a).await.expect("pay a");
    let rb = node.pay(&b).await.expect("pay b");
    assert_ne!(ra.payment_hash, rb.payment_hash);
}

/// The node answers a ping.
pub async fn a_healthy_node_answers_ping(node: Arc<dyn Payments>) {
    node.ping().await.expect("ping");
}

/// Runs every case, each on a fresh node from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Payments>>,
{
    invoices_are_distinct_and_zero_is_refused(make().await).await;
    a_payout_is_paid_once_by_key(make().await).await;
    different_keys_are_different_payments(make().await).await;
    a_healthy_node_answers_ping(make().await).await;
}
