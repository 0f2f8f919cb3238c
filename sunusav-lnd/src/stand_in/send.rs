//! `POST /v2/router/send` (`SendPaymentV2`): the request read as LND
//! reads it, payment control, the scripted outcome, and the stream of
//! updates (only the final one with `no_inflight_updates`).

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use super::respond::{self, Reply};
use super::routes::{answer_cut, decode, delay, intent_of, stream_payment};
use super::script::Answer;
use super::server::Shared;
use super::state::RpcErr;
use crate::wire::{I64, SendPaymentRequest};

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
