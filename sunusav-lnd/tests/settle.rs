//! Settle events over `SubscribeInvoices`: only settled invoices, resumable
//! after a stored settle index with no gap and no double.

mod common;

use std::time::Duration;

use common::start;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::payments::{Payments, PaymentsError, SettleEvents, SettledInvoice, SettledStream};
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::{Route, RouteFault, StandIn};

const WAIT: Duration = Duration::from_secs(10);

async fn invoices(node: &LndNode, n: u64) -> Vec<PaymentHash> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(node.create_invoice(Msat::new(1_000 + i), "s", Duration::from_mins(10)).await.unwrap().payment_hash);
    }
    out
}

async fn next(stream: &mut Box<dyn SettledStream>) -> SettledInvoice {
    tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("next").expect("one")
}

#[tokio::test]
async fn a_cut_stream_resumes_from_the_stored_index_with_no_gap_and_no_double() {
    let (lnd, node) = start().await;
    let hashes = invoices(&node, 6).await;
    for h in &hashes[..2] {
        lnd.pay_invoice(h.as_bytes(), None).expect("settle");
    }
    let mut stream = node.subscribe_settled(0).await.expect("subscribe");
    let mut stored = 0;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let s = next(&mut stream).await;
        assert!(s.settle_index > stored, "in settle order");
        stored = s.settle_index;
        seen.push(s.payment_hash);
    }
    lnd.pay_invoice(hashes[2].as_bytes(), None).expect("settle live");
    let live = next(&mut stream).await;
    stored = live.settle_index;
    seen.push(live.payment_hash);

    lnd.cut_subscriptions();
    let cut = tokio::time::timeout(WAIT, stream.next()).await.expect("the cut is seen");
    assert!(matches!(cut, Err(PaymentsError::Unavailable(_))), "{cut:?}");
    // Settled while nobody listened.
    for h in &hashes[3..5] {
        lnd.pay_invoice(h.as_bytes(), None).expect("settle");
    }

    let mut resumed = node.subscribe_settled(stored).await.expect("resume");
    for _ in 0..2 {
        let s = next(&mut resumed).await;
        assert!(s.settle_index > stored);
        stored = s.settle_index;
        seen.push(s.payment_hash);
    }
    lnd.pay_invoice(hashes[5].as_bytes(), None).expect("settle live");
    seen.push(next(&mut resumed).await.payment_hash);

    assert_eq!(seen, hashes, "every settlement once, in order");
}

#[tokio::test]
async fn only_settled_invoices_come_with_what_was_paid_an_overpayment_too() {
    let (lnd, node) = start().await;
    let mut stream = node.subscribe_settled(0).await.expect("subscribe");
    let hashes = invoices(&node, 3).await; // added (open) invoices stream too, and are skipped
    node.cancel_invoice(&hashes[0]).await.expect("cancel");
    assert_eq!(lnd.pay_invoice(hashes[0].as_bytes(), None), None, "a cancelled invoice takes no payment");
    assert_eq!(lnd.pay_invoice(hashes[1].as_bytes(), Some(1_000)), None, "an underpayment is refused");
    let index = lnd.pay_invoice(hashes[1].as_bytes(), Some(1_700)).expect("an overpayment settles");

    let s = next(&mut stream).await;

    assert_eq!((s.payment_hash, s.amount_paid, s.settle_index), (hashes[1], Msat::new(1_700), index));
}

#[tokio::test]
async fn a_subscription_after_an_index_replays_only_what_settled_after_it() {
    let (lnd, node) = start().await;
    let hashes = invoices(&node, 3).await;
    let indexes: Vec<u64> = hashes.iter().map(|h| lnd.pay_invoice(h.as_bytes(), None).expect("settle")).collect();
    let mut stream = node.subscribe_settled(indexes[0]).await.expect("subscribe");
    assert_eq!(next(&mut stream).await.payment_hash, hashes[1]);
    assert_eq!(next(&mut stream).await.payment_hash, hashes[2]);
}

#[tokio::test]
async fn a_quiet_subscription_opens_at_once_and_waits_for_the_first_settlement() {
    let (lnd, node) = start().await;
    let hash = invoices(&node, 1).await[0];
    let mut stream = tokio::time::timeout(Duration::from_secs(2), node.subscribe_settled(0))
        .await
        .expect("no status line is needed to open it")
        .expect("subscribe");
    tokio::time::sleep(Duration::from_millis(100)).await;
    lnd.pay_invoice(hash.as_bytes(), None).expect("settle");
    assert_eq!(next(&mut stream).await.payment_hash, hash);
}

#[tokio::test]
async fn an_error_line_or_an_unreachable_node_is_unavailable() {
    let (lnd, node) = start().await;
    lnd.script_route(Route::SubscribeInvoices, RouteFault::Rpc { code: 14, message: "shutting down".into() });
    let mut stream = node.subscribe_settled(5).await.expect("opened");
    let got = tokio::time::timeout(WAIT, stream.next()).await.expect("in time");
    assert!(matches!(got, Err(PaymentsError::Unavailable(_))), "{got:?}");

    lnd.set_reachable(false).await;
    assert!(matches!(node.subscribe_settled(5).await.err(), Some(PaymentsError::Unavailable(_))));
}

#[tokio::test]
async fn a_wrong_certificate_cannot_subscribe() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config_with_cert(&StandIn::other_certificate().unwrap()).unwrap()).await.unwrap();
    assert!(matches!(node.subscribe_settled(1).await.err(), Some(PaymentsError::Unavailable(_))));
    assert_eq!(lnd.requests(), 0);
}
