//! The stand-in's endpoints, each as LND's gateway answers it.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::respond::{self, LineWriter, Reply};
use super::script::Route;
use super::server::{Shared, body_of};
use super::state::RpcErr;
use crate::wire::{
    AddInvoiceRequest, AddInvoiceResponse, CancelInvoiceMsg, ListInvoiceResponse, PaymentStatus, U64, codec,
};

/// Serves `route`; `cut` cuts a stream after that many lines.
pub async fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    req: Request<Incoming>,
    cut: Option<usize>,
) -> Result<Reply, std::io::Error> {
    shared.lock().expire_invoices();
    let result = match route {
        Route::GetInfo => Ok(get_info(shared)),
        Route::AddInvoice => add_invoice(shared, req).await,
        Route::ListInvoices => list_invoices(shared, req.uri().query()),
        Route::LookupInvoice => lookup_invoice(shared, req.uri().path()),
        Route::CancelInvoice => cancel_invoice(shared, req).await,
        Route::SendPayment => return super::send::send_payment(shared, req, cut).await,
        Route::TrackPayment => return track_payment(shared, req.uri().path(), cut).await,
        Route::SubscribeInvoices => return super::subscribe::subscribe(shared, req.uri().query(), cut).await,
    };
    Ok(result.unwrap_or_else(|e| respond::unary_error(&e)))
}

/// Decodes a request as the gateway's protojson unmarshaler does: unknown
/// fields are refused (`InvalidArgument`).
pub async fn decode<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, RpcErr> {
    let body = body_of(req).await?;
    let body = if body.is_empty() { &b"{}"[..] } else { &body[..] };
    serde_json::from_slice(body).map_err(|e| RpcErr::new(3, &format!("proto: {e}")))
}

fn get_info(shared: &Shared) -> Reply {
    let st = shared.lock();
    respond::json(&serde_json::json!({
        "version": "0.19.0-beta commit=stand-in",
        "commit_hash": "",
        "identity_pubkey": hex::encode(st.node.public()),
        "alias": "sunusav-stand-in",
        "color": "#3399ff",
        "num_pending_channels": 0,
        "num_active_channels": 1,
        "num_inactive_channels": 0,
        "num_peers": 1,
        "block_height": 500,
        "block_hash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        "best_header_timestamp": "1700000000",
        "synced_to_chain": st.synced_to_chain,
        "synced_to_graph": true,
        "testnet": false,
        "chains": [{ "chain": "bitcoin", "network": "regtest" }],
        "uris": [],
        "features": {},
        "require_htlc_interceptor": false,
        "store_final_htlc_resolutions": false,
    }))
}

async fn add_invoice(shared: &Shared, req: Request<Incoming>) -> Result<Reply, RpcErr> {
    let add: AddInvoiceRequest = decode(req).await?;
    if add.value.0 != 0 && add.value_msat.0 != 0 {
        return Err(RpcErr::unknown("value and value_msat are mutually exclusive"));
    }
    let msat = if add.value.0 != 0 { add.value.0.saturating_mul(1000) } else { add.value_msat.0 };
    let msat = u64::try_from(msat).map_err(|_| RpcErr::unknown("amount must be positive"))?;
    // `invoicesrpc.AddInvoice`: a zero expiry is the default, a day.
    let expiry = u64::try_from(add.expiry.0).map_err(|_| RpcErr::unknown("expiry must be positive"))?;
    let expiry = if expiry == 0 { 86_400 } else { expiry };
    if add.memo.len() > 1024 {
        return Err(RpcErr::unknown("memo too large"));
    }
    let inv = shared.lock().add_invoice(&add.memo, msat, expiry)?;
    Ok(respond::json(&AddInvoiceResponse {
        r_hash: inv.r_hash,
        payment_request: inv.payment_request,
        add_index: inv.add_index,
        payment_addr: inv.payment_addr,
    }))
}

/// `ListInvoices`, forward only: the invoices added after `index_offset`,
/// at most `num_max_invoices` (LND's default 100 when 0).
fn list_invoices(shared: &Shared, query: Option<&str>) -> Result<Reply, RpcErr> {
    let (mut offset, mut max) = (0u64, 0u64);
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (k, v.parse::<u64>()) {
            ("index_offset", Ok(n)) => offset = n,
            ("num_max_invoices", Ok(n)) => max = n,
            ("pending_only" | "reversed", _) if v == "false" => {}
            _ => return Err(RpcErr::new(3, &format!("unsupported query parameter {k:?}"))),
        }
    }
    let max = if max == 0 { 100 } else { max };
    let invoices = shared.lock().invoices_added_after(offset, max);
    let first = invoices.first().map_or(U64(0), |i| i.add_index);
    let last = invoices.last().map_or(U64(0), |i| i.add_index);
    Ok(respond::json(&ListInvoiceResponse { invoices, last_index_offset: last, first_index_offset: first }))
}

/// `/v1/invoice/{r_hash_str}`: the hash in hex (`LookupInvoice`).
fn lookup_invoice(shared: &Shared, path: &str) -> Result<Reply, RpcErr> {
    let hex_hash = path.trim_start_matches("/v1/invoice/");
    let bytes = hex::decode(hex_hash).map_err(|e| RpcErr::unknown(&format!("encoding/hex: {e}")))?;
    let hash: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        RpcErr::unknown(&format!("payment hash must be exactly 32 bytes, is instead {}", b.len()))
    })?;
    let st = shared.lock();
    let inv = st.lookup_invoice(&hash)?;
    let mut v = serde_json::to_value(&inv).unwrap_or_default();
    // The fields of `lnrpc.Invoice` the wire type leaves out, as LND fills them.
    let preimage = st.own_preimage(&hash).map(|p| codec::encode_base64(&p)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("r_preimage".into(), preimage.into());
        for (k, d) in [("description_hash", ""), ("fallback_addr", ""), ("amt_paid", "0")] {
            o.insert(k.into(), d.into());
        }
        o.insert("amt_paid".into(), inv.amt_paid_sat.0.to_string().into());
        for k in ["route_hints", "htlcs"] {
            o.insert(k.into(), serde_json::json!([]));
        }
        for k in ["features", "amp_invoice_state"] {
            o.insert(k.into(), serde_json::json!({}));
        }
        o.insert("is_blinded".into(), false.into());
        o.insert("blinded_path_config".into(), serde_json::Value::Null);
    }
    Ok(respond::json(&v))
}

async fn cancel_invoice(shared: &Shared, req: Request<Incoming>) -> Result<Reply, RpcErr> {
    let msg: CancelInvoiceMsg = decode(req).await?;
    let hash = make_hash(&msg.payment_hash.0)?;
    shared.lock().cancel_invoice(&hash)?;
    Ok(respond::json(&serde_json::json!({})))
}

/// `lntypes.MakeHash`.
pub fn make_hash(bytes: &[u8]) -> Result<[u8; 32], RpcErr> {
    bytes.try_into().map_err(|_| RpcErr::unknown(&format!("invalid hash length of {}, want 32", bytes.len())))
}

/// `/v2/router/track/{payment_hash}`: `bytes` in a path, base64 (standard
/// or URL-safe, as grpc-gateway's `runtime.Bytes` accepts).
async fn track_payment(shared: &Arc<Shared>, path: &str, cut: Option<usize>) -> Result<Reply, std::io::Error> {
    let raw = path.trim_start_matches("/v2/router/track/");
    let Some(bytes) = codec::decode_base64(raw) else {
        return Ok(respond::unary_error(&RpcErr::new(3, "type mismatch, parameter: payment_hash")));
    };
    let hash = match make_hash(&bytes) {
        Ok(h) => h,
        Err(e) => return Ok(respond::stream_error(&e)),
    };
    if let Err(e) = shared.lock().payment(&hash) {
        return Ok(respond::stream_error(&e));
    }
    let (mut w, reply) = respond::stream();
    w.cut_after(cut);
    tokio::spawn(stream_payment(Arc::clone(shared), hash, w, true));
    reply.ready().await
}

/// Streams a payment's state: its current one (if `current`), then each
/// change, until it is final.
pub async fn stream_payment(shared: Arc<Shared>, hash: [u8; 32], w: LineWriter, current: bool) {
    let mut changed = shared.changed.subscribe();
    let Some(mut w) = w.start() else { return };
    let mut last = None;
    loop {
        let Ok(p) = shared.lock().payment(&hash) else { return };
        let final_state = matches!(p.status, PaymentStatus::Succeeded | PaymentStatus::Failed);
        if (current || final_state) && last.as_ref() != Some(&p) {
            let Some(next) = w.line(respond::result_line(&payment_json(&p))).await else { return };
            w = next;
            last = Some(p);
        }
        if final_state {
            return;
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// `lnrpc.Payment` with the deprecated and repeated fields LND also emits.
pub fn payment_json(p: &crate::wire::Payment) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("value".into(), p.value_sat.0.to_string().into());
        o.insert("creation_date".into(), (p.creation_time_ns.0 / 1_000_000_000).to_string().into());
        o.insert("fee".into(), p.fee_sat.0.to_string().into());
        o.insert("htlcs".into(), serde_json::json!([]));
        o.insert("first_hop_custom_records".into(), serde_json::json!({}));
    }
    v
}
