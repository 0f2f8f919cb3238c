//! `POST /v2/router/send` (`SendPaymentV2`): the request read as LND
//! reads it, payment control, the scripted outcome, and the stream of
//! updates (only the final one with `no_inflight_updates`).

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use super::respond::{self, Reply};
use std::time::Duration;

use super::bolt11;
use super::payments::{Dest, Intent};
use super::routes::{decode, make_hash, stream_payment};
use super::script::Answer;
use super::server::Shared;
use super::state::RpcErr;
use crate::wire::{I64, KEYSEND_RECORD, SendPaymentRequest};

/// Serves one `SendPaymentV2` call.
pub async fn send_payment(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    cut: Option<usize>,
) -> Result<Reply, std::io::Error> {
    let send: SendPaymentRequest = match decode(req).await {
        Ok(s) => s,
        Err(e) => return Ok(respond::unary_error(&e)),
    };
    if send.fee_limit_sat != I64(0) && send.fee_limit_msat != I64(0) {
        return Ok(respond::stream_error(&RpcErr::unknown("sat and msat arguments are mutually exclusive")));
    }
    let fee_limit =
        if send.fee_limit_sat.0 != 0 { send.fee_limit_sat.0.saturating_mul(1000) } else { send.fee_limit_msat.0 };
    let Ok(fee_limit) = u64::try_from(fee_limit) else {
        return Ok(respond::stream_error(&RpcErr::unknown("amount cannot be negative")));
    };
    let intent = match intent_of(&send, fee_limit) {
        Ok(i) => i,
        Err(e) => return Ok(respond::stream_error(&e)),
    };
    let before = shared.lock().take_answer_before(&intent.hash);
    match before {
        Some(Answer::StatusBefore(code)) => return Ok(respond::foreign(code)),
        Some(_) => return Ok(respond::unauthorized()),
        None => {}
    }
    let script = shared.lock().init_payment(&intent);
    shared.payments_changed();
    let script = match script {
        Ok(s) => s,
        Err(e) => return Ok(respond::stream_error(&e)),
    };
    delay(script.delay).await;
    match script.answer {
        Answer::StatusAfter(code) => return Ok(respond::foreign(code)),
        Answer::ErrorLine { code, message } => {
            let (w, reply) = respond::stream();
            tokio::spawn(async move {
                let _ = w.line(respond::error_line(&RpcErr::new(code, &message))).await;
            });
            return reply.ready().await;
        }
        Answer::Normal | Answer::CutAfter(_) | Answer::StatusBefore(_) | Answer::Unauthorized => {}
    }
    let (mut w, reply) = respond::stream();
    w.cut_after(answer_cut(&script.answer, cut));
    tokio::spawn(stream_payment(Arc::clone(shared), intent.hash, w, !send.no_inflight_updates));
    reply.ready().await
}

/// What `SendPaymentV2` reads of a request (`extractIntentFromSendRequest`).
fn intent_of(req: &SendPaymentRequest, now_fee_limit: u64) -> Result<Intent, RpcErr> {
    let amt = if req.amt.0 != 0 { req.amt.0.saturating_mul(1000) } else { req.amt_msat.0 };
    if req.amt.0 != 0 && req.amt_msat.0 != 0 {
        return Err(RpcErr::unknown("amount and amount_msat are mutually exclusive"));
    }
    let amt = u64::try_from(amt).map_err(|_| RpcErr::unknown("amount must be positive"))?;
    if !req.payment_request.is_empty() {
        if !req.dest.0.is_empty() {
            return Err(RpcErr::unknown("dest and payment_request cannot appear together"));
        }
        if !req.payment_hash.0.is_empty() {
            return Err(RpcErr::unknown("payment_hash and payment_request cannot appear together"));
        }
        let d = bolt11::decode(&req.payment_request).map_err(|e| RpcErr::unknown(&e))?;
        if !d.regtest {
            return Err(RpcErr::unknown("invoice not for current active network 'regtest'"));
        }
        if let Some(until) = d.expired_until {
            return Err(RpcErr::unknown(&format!("invoice expired. Valid until {until}")));
        }
        let amount_msat = match (d.amount_msat, amt) {
            (None, 0) => return Err(RpcErr::unknown("amount must be specified when paying a zero amount invoice")),
            (Some(_), a) if a != 0 => {
                return Err(RpcErr::unknown("amount must not be specified when paying a non-zero amount invoice"));
            }
            (Some(a), _) | (None, a) => a,
        };
        return Ok(Intent {
            hash: d.hash,
            amount_msat,
            fee_limit_msat: now_fee_limit,
            dest: Dest::Invoice { payee: d.payee, amount_msat: d.amount_msat },
            payment_request: req.payment_request.clone(),
        });
    }
    let node: [u8; 33] = req.dest.0.as_slice().try_into().map_err(|_| RpcErr::unknown("invalid vertex length"))?;
    if amt == 0 {
        return Err(RpcErr::unknown("amount must be specified"));
    }
    let hash = make_hash(&req.payment_hash.0)?;
    let preimage = req.dest_custom_records.get(&KEYSEND_RECORD.to_string()).map(|r| r.0.0.clone());
    Ok(Intent {
        hash,
        amount_msat: amt,
        fee_limit_msat: now_fee_limit,
        dest: Dest::Keysend { node, preimage },
        payment_request: String::new(),
    })
}

/// The HTTP answer of a scripted send, once the payment is decided.
fn answer_cut(answer: &Answer, route_cut: Option<usize>) -> Option<usize> {
    match answer {
        Answer::CutAfter(n) => Some(*n),
        _ => route_cut,
    }
}

/// A payment's wait before the headers.
async fn delay(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
