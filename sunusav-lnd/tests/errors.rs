//! The error table of `sunusav_lnd::error`, one test per row, against the
//! stand-in: what LND answers, and what the port makes of it.

mod common;

use std::time::Duration;

use common::{invoice_payout, keysend, one_second, start, start_with_pay_limit};
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::money::Msat;
use sunusav_core::domain::payout::{PayTo, PreimageSecret};
use sunusav_core::ports::payments::{PayError, PaymentStatus, Payments, PaymentsError, PayoutRequest};
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::{Route, RouteFault, SendScript, StandIn};
use sunusav_lnd::wire::FailureReason;

fn hash(req: &PayoutRequest) -> [u8; 32] {
    *req.payment_hash.as_bytes()
}

#[tokio::test]
async fn a_second_payment_of_a_paid_hash_is_already_paid() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    node.pay(&req).await.expect("first");
    assert_eq!(node.pay(&req).await, Err(PayError::AlreadyPaid));
    assert_eq!(lnd.payments_made(&hash(&req)), 1);
}

#[tokio::test]
async fn a_payment_of_a_hash_in_flight_is_in_transition() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    lnd.script_payment(&hash(&req), SendScript::in_flight().cut_after(0));
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout), "the cut stream");
    assert_eq!(node.pay(&req).await, Err(PayError::InTransition));
    assert_eq!(node.lookup(&req.payment_hash).await, Ok(PaymentStatus::InFlight));
}

#[tokio::test]
async fn payment_exists_of_an_initiated_payment_is_in_transition() {
    let (lnd, node) = start().await;
    lnd.script_route(Route::SendPayment, RouteFault::Rpc { code: 6, message: "payment already exists".into() });
    assert_eq!(node.pay(&keysend(&lnd)).await, Err(PayError::InTransition));
}

#[tokio::test]
async fn no_route_insufficient_balance_and_timeout_failures_are_transient() {
    for reason in [FailureReason::NoRoute, FailureReason::InsufficientBalance, FailureReason::Timeout] {
        let (lnd, node) = start().await;
        let req = keysend(&lnd);
        lnd.script_payment(&hash(&req), SendScript::fail(reason));
        assert!(matches!(node.pay(&req).await, Err(PayError::Transient(_))), "{reason:?}");
        assert!(matches!(node.lookup(&req.payment_hash).await, Ok(PaymentStatus::Failed(_))), "{reason:?}");
        node.pay(&req).await.expect("a failed hash may be paid again");
    }
}

#[tokio::test]
async fn a_fee_limit_below_every_route_fails_with_no_route_as_transient() {
    let (lnd, node) = start().await;
    lnd.set_route_fee_msat(1_000_000);
    assert!(matches!(node.pay(&keysend(&lnd)).await, Err(PayError::Transient(_))));
}

#[tokio::test]
async fn incorrect_payment_details_and_errors_are_permanent() {
    for reason in [FailureReason::IncorrectPaymentDetails, FailureReason::Error] {
        let (lnd, node) = start().await;
        let req = keysend(&lnd);
        lnd.script_payment(&hash(&req), SendScript::fail(reason));
        assert!(matches!(node.pay(&req).await, Err(PayError::Permanent(_))), "{reason:?}");
    }
}

#[tokio::test]
async fn a_keysend_preimage_that_does_not_match_the_hash_is_permanent_and_never_sent() {
    // The adapter checks it before sending; the receiver's own check (as
    // LND's) is in `stand_in.rs`.
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    let other = PreimageSecret::new([9; 32]).unwrap().keysend_preimage(&req.key);
    let PayTo::Keysend { node: dest, .. } = req.pay_to.clone() else { unreachable!() };
    let wrong = PayoutRequest { pay_to: PayTo::Keysend { node: dest, preimage: other }, ..req };
    assert!(matches!(node.pay(&wrong).await, Err(PayError::Permanent(_))), "refused before sending");
    assert_eq!(lnd.requests(), 0, "nothing sent");
}

#[tokio::test]
async fn an_expired_invoice_is_permanent_whether_the_adapter_or_lnd_sees_it() {
    let (lnd, node) = start().await;
    let (bolt11, h) = lnd.mint_payee_invoice(Some(30_000), Duration::from_secs(1)).unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let expired =
        PayoutRequest { payment_hash: PaymentHash::from_bytes(h), pay_to: PayTo::Invoice { bolt11 }, ..keysend(&lnd) };
    assert!(matches!(node.pay(&expired).await, Err(PayError::Permanent(_))));

    let req = invoice_payout(&lnd, Some(30_000));
    let message = "invoice expired. Valid until 2026-01-01 00:00:00 +0000 UTC".to_owned();
    lnd.script_route(Route::SendPayment, RouteFault::Rpc { code: 2, message });
    assert!(matches!(node.pay(&req).await, Err(PayError::Permanent(_))));
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_sends_nothing() {
    let (lnd, _) = start().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = lnd.config();
    let config = sunusav_lnd::LndConfig::new(
        format!("https://127.0.0.1:{port}"),
        config.macaroon_path(),
        config.tls_cert_path(),
    );
    let node = LndNode::connect(config).await.unwrap();
    assert!(matches!(node.pay(&keysend(&lnd)).await, Err(PayError::Transient(_))));
    assert!(matches!(node.lookup(&PaymentHash::from_bytes([1; 32])).await, Err(PaymentsError::Unavailable(_))));
}

#[tokio::test]
async fn a_tls_failure_is_transient_and_sends_nothing() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config_with_cert(&StandIn::other_certificate().unwrap()).unwrap()).await.unwrap();
    let req = keysend(&lnd);
    assert!(matches!(node.pay(&req).await, Err(PayError::Transient(_))));
    assert_eq!((lnd.requests(), lnd.sends(&hash(&req))), (0, 0));
}

#[tokio::test]
async fn a_stream_cut_after_sending_is_a_timeout_and_the_lookup_tells_what_happened() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    lnd.script_payment(&hash(&req), SendScript::succeed().cut_after(0));
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout));
    assert!(matches!(node.lookup(&req.payment_hash).await, Ok(PaymentStatus::Succeeded(_))));
    assert_eq!(lnd.payments_made(&hash(&req)), 1);
}

#[tokio::test]
async fn an_error_line_after_sending_is_a_timeout() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    lnd.script_payment(&hash(&req), SendScript::succeed().error_line(13, "transport is closing"));
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout));
}

#[tokio::test]
async fn a_5xx_after_the_body_is_a_timeout_though_the_payment_was_made() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    lnd.script_payment(&hash(&req), SendScript::succeed().status_after(502));
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout));
    assert_eq!(lnd.payments_made(&hash(&req)), 1);
    assert_eq!(node.pay(&req).await, Err(PayError::AlreadyPaid), "and the retry is refused");
}

#[tokio::test]
async fn a_5xx_before_the_body_is_a_timeout_and_the_lookup_finds_nothing_sent() {
    let (lnd, node) = start().await;
    let req = keysend(&lnd);
    lnd.script_route(Route::SendPayment, RouteFault::Status(503));
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout), "the client cannot tell it from a lost answer");
    assert_eq!(node.lookup(&req.payment_hash).await, Ok(PaymentStatus::Unknown));
    node.pay(&req).await.expect("then it pays");

    let per_hash = keysend(&lnd);
    lnd.script_payment(&hash(&per_hash), SendScript::status_before(502));
    assert_eq!(node.pay(&per_hash).await, Err(PayError::Timeout), "scripted for one hash");
    assert_eq!(lnd.sends(&hash(&per_hash)), 0, "payment control was not reached");
}

#[tokio::test]
async fn no_answer_within_the_policy_timeout_and_grace_is_a_timeout() {
    let (lnd, node) = start_with_pay_limit(Duration::from_millis(200)).await;
    let req = PayoutRequest { policy: one_second(), ..keysend(&lnd) };
    lnd.script_payment(&hash(&req), SendScript::succeed().slow_headers(Duration::from_secs(5)));
    let started = tokio::time::Instant::now();
    assert_eq!(node.pay(&req).await, Err(PayError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after the policy's timeout and the grace");
}

#[tokio::test]
async fn a_401_is_transient_for_a_payment_and_unavailable_elsewhere() {
    let (lnd, node) = start().await;
    lnd.script_route(Route::SendPayment, RouteFault::Unauthorized);
    assert!(matches!(node.pay(&keysend(&lnd)).await, Err(PayError::Transient(_))));
    let req = keysend(&lnd);
    lnd.script_payment(&hash(&req), SendScript::unauthorized());
    assert!(matches!(node.pay(&req).await, Err(PayError::Transient(_))));
    assert_eq!(lnd.sends(&hash(&req)), 0);
    lnd.script_route(Route::GetInfo, RouteFault::Unauthorized);
    assert!(matches!(node.ping().await, Err(PaymentsError::Unavailable(_))));
}

#[tokio::test]
async fn a_wrong_macaroon_is_transient_for_a_payment_and_unavailable_elsewhere() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config_with_macaroon(b"not the macaroon").unwrap()).await.unwrap();
    let req = keysend(&lnd);
    assert!(matches!(node.pay(&req).await, Err(PayError::Transient(_))));
    assert!(matches!(node.ping().await, Err(PaymentsError::Unavailable(_))));
    assert!(matches!(node.lookup(&req.payment_hash).await, Err(PaymentsError::Unavailable(_))));
    assert!(matches!(node.invoice(&req.payment_hash).await, Err(PaymentsError::Unavailable(_))));
    assert!(matches!(
        node.create_invoice(Msat::new(1_000), "m", Duration::from_mins(1)).await,
        Err(PaymentsError::Unavailable(_))
    ));
    assert_eq!(lnd.sends(&hash(&req)), 0);
}

#[tokio::test]
async fn track_of_a_hash_never_sent_is_unknown() {
    let (_lnd, node) = start().await;
    assert_eq!(node.lookup(&PaymentHash::from_bytes([7; 32])).await, Ok(PaymentStatus::Unknown));
}

#[tokio::test]
async fn an_unreadable_lookup_is_unavailable_never_unknown() {
    let faults = [
        RouteFault::Garbage,
        RouteFault::Status(502),
        RouteFault::Unauthorized,
        RouteFault::CutAfter(0),
        RouteFault::Rpc { code: 2, message: "some other error".into() },
        RouteFault::Rpc { code: 14, message: "the server is starting".into() },
    ];
    for fault in faults {
        let (lnd, node) = start().await;
        lnd.script_route(Route::TrackPayment, fault.clone());
        let got = node.lookup(&PaymentHash::from_bytes([7; 32])).await;
        assert!(matches!(got, Err(PaymentsError::Unavailable(_))), "{fault:?}: {got:?}");
    }
}

#[tokio::test]
async fn a_node_not_synced_to_the_chain_is_unavailable() {
    let (lnd, node) = start().await;
    node.ping().await.expect("synced");
    lnd.set_synced_to_chain(false);
    assert!(matches!(node.ping().await, Err(PaymentsError::Unavailable(_))));
}

#[tokio::test]
async fn cancelling_a_settled_invoice_is_done_and_an_unknown_one_invalid() {
    let (lnd, node) = start().await;
    let inv = node.create_invoice(Msat::new(2_000), "m", Duration::from_mins(1)).await.unwrap();
    assert!(lnd.pay_invoice(inv.payment_hash.as_bytes(), None).is_some());
    node.cancel_invoice(&inv.payment_hash).await.expect("a settled invoice: its payment arrives as a settle event");
    assert!(matches!(node.cancel_invoice(&PaymentHash::from_bytes([5; 32])).await, Err(PaymentsError::Invalid(_))));
}

#[tokio::test]
async fn an_invoice_for_another_amount_is_refused_before_sending() {
    let (lnd, node) = start().await;
    let req = invoice_payout(&lnd, Some(31_000));
    assert!(matches!(node.pay(&req).await, Err(PayError::Permanent(_))));
    assert_eq!(lnd.requests(), 0);
}
