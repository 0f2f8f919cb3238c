//! The REST client against the stand-in, endpoint by endpoint: LND's shapes
//! and encodings, TLS and the macaroon.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::StandIn;
use sunusav_lnd::transport::CallError;
use sunusav_lnd::wire::{
    AddInvoiceRequest, B64, I64, InvoiceState, KEYSEND_RECORD, PaymentStatus, SecretB64, SendPaymentRequest, StreamLine,
};

async fn node(lnd: &StandIn) -> LndNode {
    LndNode::connect(lnd.config()).await.expect("connect")
}

#[tokio::test]
async fn getinfo_answers_with_the_node_key_and_sync_state() {
    let lnd = StandIn::start().await.unwrap();
    let info = node(&lnd).await.rest().get_info().await.expect("getinfo");
    assert_eq!(info.identity_pubkey, hex::encode(lnd.node_pubkey()));
    assert!(info.synced_to_chain);
}

#[tokio::test]
async fn an_invoice_is_added_looked_up_by_hex_hash_and_cancelled() {
    let lnd = StandIn::start().await.unwrap();
    let rest = node(&lnd).await.rest().clone();
    let req = AddInvoiceRequest { memo: "m".into(), value_msat: I64(5_000), expiry: I64(600), ..Default::default() };
    let added = rest.add_invoice(&req).await.expect("add");
    assert!(added.payment_request.starts_with("lnbcrt50n1"), "{}", added.payment_request);
    let hash: [u8; 32] = added.r_hash.0.clone().try_into().unwrap();
    let inv = rest.lookup_invoice(&hash).await.expect("lookup");
    assert_eq!((inv.state, inv.value_msat, inv.add_index), (InvoiceState::Open, I64(5_000), added.add_index));
    rest.cancel_invoice(&hash).await.expect("cancel");
    assert_eq!(lnd.invoice_state(&hash), Some(InvoiceState::Canceled));
    let unknown = rest.lookup_invoice(&[9; 32]).await.expect_err("unknown");
    assert_eq!(unknown.rpc_code(), Some(5), "{unknown}");
}

#[tokio::test]
async fn a_keysend_streams_one_final_update_with_hex_hash_and_preimage() {
    let lnd = StandIn::start().await.unwrap();
    let rest = node(&lnd).await.rest().clone();
    let preimage = [3u8; 32];
    let hash: [u8; 32] = Sha256::digest(preimage).into();
    let mut records = BTreeMap::new();
    records.insert(KEYSEND_RECORD.to_string(), SecretB64(B64(preimage.to_vec())));
    let req = SendPaymentRequest {
        dest: B64(lnd.payee_pubkey().to_vec()),
        amt_msat: I64(10_000),
        payment_hash: B64(hash.to_vec()),
        dest_custom_records: records,
        fee_limit_msat: I64(5_000),
        timeout_seconds: 60,
        no_inflight_updates: true,
        ..Default::default()
    };
    let mut stream = rest.send_payment(&req, std::time::Duration::from_secs(5)).await.expect("send");
    let Some(StreamLine::Result(p)) = stream.next::<sunusav_lnd::wire::Payment>().await.expect("line") else {
        panic!("a result")
    };
    assert_eq!(
        (p.status, p.payment_hash.as_str(), p.payment_preimage.as_str()),
        (PaymentStatus::Succeeded, hex::encode(hash).as_str(), hex::encode(preimage).as_str())
    );
    assert!(stream.next::<serde_json::Value>().await.expect("end").is_none(), "the stream ends");
    let again = rest.send_payment(&req, std::time::Duration::from_secs(5)).await.err().expect("refused");
    assert!(again.is_rpc(6, "already paid"), "{again}");
    assert_eq!(lnd.payments_made(&hash), 1);

    let mut track = rest.track_payment(&hash).await.expect("track");
    assert!(matches!(track.next::<sunusav_lnd::wire::Payment>().await, Ok(Some(StreamLine::Result(_)))));
    let never = rest.track_payment(&[1; 32]).await.err().expect("never sent");
    assert!(matches!(&never, CallError::Rpc { http, .. } if http.as_u16() == 404), "{never}");
}
