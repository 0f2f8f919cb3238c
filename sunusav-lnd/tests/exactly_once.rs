//! Exactly once: a thousand concurrent payments of one payout, each its
//! own REST call, make one payment.

mod common;

use std::sync::Arc;

use common::{invoice_payout, keysend, start};
use sunusav_core::ports::payments::{PayError, PaymentStatus, Payments};
use sunusav_lnd::stand_in::SendScript;

const N: usize = 1_000;

async fn pay_concurrently(node: Arc<sunusav_lnd::LndNode>, req: sunusav_core::ports::payments::PayoutRequest) -> usize {
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (node, req) = (Arc::clone(&node), req.clone());
            tokio::spawn(async move { node.pay(&req).await })
        })
        .collect();
    let mut paid = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => paid += 1,
            Err(PayError::AlreadyPaid | PayError::InTransition) => {}
            Err(e) => panic!("a concurrent payment answered {e:?}"),
        }
    }
    paid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_keysends_of_one_payout_make_one_payment() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);

    let paid = pay_concurrently(Arc::new(node.clone()), req.clone()).await;

    assert_eq!(paid, 1, "exactly one call succeeds");
    assert_eq!(lnd.payments_made(req.payment_hash.as_bytes()), 1, "one payment reached the payee");
    assert_eq!(lnd.sends(req.payment_hash.as_bytes()), 1, "payment control let one through");
    assert!(matches!(node.lookup(&req.payment_hash).await, Ok(PaymentStatus::Succeeded(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_payments_of_one_invoice_while_it_is_in_flight_make_one_payment() {
    let (lnd, node) = start().await;
    let req = invoice_payout(&lnd, None);
    let hash = *req.payment_hash.as_bytes();
    lnd.script_payment(&hash, SendScript::in_flight());
    let node = Arc::new(node);

    let resolver = {
        let lnd = lnd.clone();
        tokio::spawn(async move {
            while lnd.sends(&hash) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            lnd.resolve(&hash, true)
        })
    };
    let paid = pay_concurrently(Arc::clone(&node), req.clone()).await;

    assert!(resolver.await.expect("resolver"), "the payment was in flight");
    assert_eq!(paid, 1, "exactly one call succeeds, when its payment resolves");
    assert_eq!(lnd.payments_made(&hash), 1);
    assert_eq!(node.pay(&req).await, Err(PayError::AlreadyPaid));
}
