//! The stand-in keeps LND's rules: request decoding, destinations, fees,
//! invoice expiry and settlement.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::StandIn;
use sunusav_lnd::transport::CallError;
use sunusav_lnd::wire::{
    AddInvoiceRequest, B64, FailureReason, I64, InvoiceState, KEYSEND_RECORD, Payment, PaymentStatus, SecretB64,
    SendPaymentRequest, StreamLine,
};

async fn rest(lnd: &StandIn) -> sunusav_lnd::LndRest {
    LndNode::connect(lnd.config()).await.expect("connect").rest().clone()
}

fn keysend_to(dest: [u8; 33], preimage: [u8; 32], fee_limit_msat: i64) -> SendPaymentRequest {
    let hash: [u8; 32] = Sha256::digest(preimage).into();
    let mut records = BTreeMap::new();
    records.insert(KEYSEND_RECORD.to_string(), SecretB64(B64(preimage.to_vec())));
    SendPaymentRequest {
        dest: B64(dest.to_vec()),
        amt_msat: I64(10_000),
        payment_hash: B64(hash.to_vec()),
        dest_custom_records: records,
        fee_limit_msat: I64(fee_limit_msat),
        no_inflight_updates: true,
        ..Default::default()
    }
}

async fn final_update(rest: &sunusav_lnd::LndRest, req: &SendPaymentRequest) -> Payment {
    let mut stream = rest.send_payment(req, Duration::from_secs(5)).await.expect("send");
    match stream.next::<Payment>().await.expect("a line") {
        Some(StreamLine::Result(p)) => p,
        other => panic!("expected an update, got {other:?}"),
    }
}

#[tokio::test]
async fn a_keysend_to_an_unknown_node_or_under_the_route_fee_fails_with_no_route() {
    let lnd = StandIn::start().await.unwrap();
    let rest = rest(&lnd).await;
    let unknown = final_update(&rest, &keysend_to(lnd.node_pubkey(), [1; 32], 5_000)).await;
    assert_eq!((unknown.status, unknown.failure_reason), (PaymentStatus::Failed, FailureReason::NoRoute));
    // fee_limit_msat 0: zero-fee routes only.
    let zero_fee = final_update(&rest, &keysend_to(lnd.payee_pubkey(), [2; 32], 0)).await;
    assert_eq!(zero_fee.failure_reason, FailureReason::NoRoute);
    lnd.set_route_fee_msat(0);
    let free = final_update(&rest, &keysend_to(lnd.payee_pubkey(), [3; 32], 0)).await;
    assert_eq!(free.status, PaymentStatus::Succeeded);
}

#[tokio::test]
async fn the_receiver_refuses_a_keysend_whose_preimage_record_does_not_hash_to_the_payment_hash() {
    let lnd = StandIn::start().await.unwrap();
    let rest = rest(&lnd).await;
    let mut req = keysend_to(lnd.payee_pubkey(), [4; 32], 5_000);
    req.payment_hash = B64(Sha256::digest([5u8; 32]).to_vec());
    let p = final_update(&rest, &req).await;
    assert_eq!((p.status, p.failure_reason), (PaymentStatus::Failed, FailureReason::IncorrectPaymentDetails));
    assert_eq!(lnd.max_payments_made(), 0);
}

#[tokio::test]
async fn the_gateway_refuses_unknown_fields_with_invalid_argument() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config()).await.unwrap();
    let bogus = serde_json::json!({ "value_msat": "1000", "no_such_field": true });
    let err = node
        .rest()
        .raw()
        .unary::<serde_json::Value>(http::Method::POST, "/v1/invoices", Some(&bogus))
        .await
        .expect_err("refused");
    assert!(matches!(&err, CallError::Rpc { http, status } if http.as_u16() == 400 && status.code == 3), "{err}");
}

#[tokio::test]
async fn an_open_invoice_past_its_expiry_is_canceled_and_takes_no_payment() {
    let lnd = StandIn::start().await.unwrap();
    let rest = rest(&lnd).await;
    let req = AddInvoiceRequest { value_msat: I64(1_000), expiry: I64(1), ..Default::default() };
    let added = rest.add_invoice(&req).await.unwrap();
    let hash: [u8; 32] = added.r_hash.0.try_into().unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(lnd.pay_invoice(&hash, None), None);
    assert_eq!(rest.lookup_invoice(&hash).await.unwrap().state, InvoiceState::Canceled);
}

#[tokio::test]
async fn settle_indexes_increase_and_invoices_list_by_add_index() {
    let lnd = StandIn::start().await.unwrap();
    let rest = rest(&lnd).await;
    let mut hashes = Vec::new();
    for _ in 0..3 {
        let added =
            rest.add_invoice(&AddInvoiceRequest { value_msat: I64(1_000), ..Default::default() }).await.unwrap();
        hashes.push(<[u8; 32]>::try_from(added.r_hash.0).unwrap());
    }
    let a = lnd.pay_invoice(&hashes[2], None).unwrap();
    let b = lnd.pay_invoice(&hashes[0], Some(1_500)).unwrap();
    assert!(b > a);
    assert_eq!(lnd.pay_invoice(&hashes[0], None), None, "settled once");
    let page = rest.list_invoices(1, 10).await.unwrap();
    let listed: Vec<u64> = page.invoices.iter().map(|i| i.add_index.0).collect();
    assert_eq!((listed, page.last_index_offset.0), (vec![2, 3], 3));
}
