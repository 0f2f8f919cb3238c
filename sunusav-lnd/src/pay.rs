//! A payout over `SendPaymentV2`: the request (keysend or invoice), the
//! stream of updates read to the final one, and the error table of
//! [`crate::error`].
//!
//! The request sends `no_inflight_updates` (only the final update comes),
//! `timeout_seconds` and `fee_limit_msat` from the payout's policy (0 would
//! mean zero-fee routes only; the policy never gives 0). The whole call is
//! bounded by the policy's timeout plus [`LndConfig::pay_grace`](crate::LndConfig::pay_grace):
//! past it, or when the stream is cut, the answer is `Timeout` and the
//! payout engine looks the payment up by its hash.

use std::time::Duration;

use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::ports::payments::{PayError, PayoutReceipt};

use crate::error::{failed, pay_error};
use crate::node::{LndNode, receipt_of};
use crate::transport::CallError;
use crate::wire::{self, SendPaymentRequest, StreamLine};

impl LndNode {
    /// Sends `req` for `hash` and reads its updates to the final one.
    pub(crate) async fn send(
        &self,
        req: &SendPaymentRequest,
        hash: &PaymentHash,
        policy_timeout: Duration,
    ) -> Result<PayoutReceipt, PayError> {
        let limit = policy_timeout.saturating_add(self.config.pay_grace());
        tokio::time::timeout(limit, self.send_within(req, hash, limit)).await.unwrap_or_else(|_| {
            tracing::warn!(payment_hash = %hash, ?limit, "no final payment update in time; it may be in flight");
            Err(PayError::Timeout)
        })
    }

    async fn send_within(
        &self,
        req: &SendPaymentRequest,
        hash: &PaymentHash,
        limit: Duration,
    ) -> Result<PayoutReceipt, PayError> {
        let mut stream = self.rest.send_payment(req, limit).await.map_err(pay_error)?;
        loop {
            let line = stream.next::<wire::Payment>().await.map_err(pay_error)?;
            let payment = match line {
                Some(StreamLine::Result(p)) => p,
                Some(StreamLine::Error(status)) => {
                    // An error after the stream began: the payment may be in flight.
                    return Err(pay_error(CallError::Rpc { http: http::StatusCode::OK, status }));
                }
                None => return Err(pay_error(CallError::Lost("the stream ended without a final update".into()))),
            };
            if !payment.payment_hash.eq_ignore_ascii_case(&hash.to_hex()) {
                return Err(pay_error(CallError::Decode("an update of another payment hash".into())));
            }
            match payment.status {
                wire::PaymentStatus::Succeeded => return receipt_of(hash, &payment).map_err(pay_error),
                wire::PaymentStatus::Failed => return Err(failed(payment.failure_reason)),
                wire::PaymentStatus::InFlight | wire::PaymentStatus::Initiated => {}
                wire::PaymentStatus::Unknown => {
                    return Err(pay_error(CallError::Decode("payment status UNKNOWN".into())));
                }
            }
        }
    }
}
