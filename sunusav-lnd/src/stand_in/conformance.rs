//! The conformance suite's `NodeScript` for the stand-in: the core's
//! faults as LND would meet them.

use std::time::Duration;

use async_trait::async_trait;
use sunusav_core::conformance::payments::NodeScript;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::money::Msat;
use sunusav_core::domain::payout::NodePubkey;
use sunusav_core::memory::NodeFault;
use sunusav_core::ports::payments::PaymentsError;

use super::{SendScript, StandIn};
use crate::wire::FailureReason;

fn invalid(e: impl std::fmt::Display) -> PaymentsError {
    PaymentsError::Invalid(e.to_string())
}

#[async_trait]
impl NodeScript for StandIn {
    /// - `Transient`: `FAILED`, `NO_ROUTE`.
    /// - `Permanent`: `FAILED`, `INCORRECT_PAYMENT_DETAILS`.
    /// - `TimeoutInFlight`: the payment stays in flight and the stream is
    ///   cut before its first message (the caller's stream breaks).
    /// - `TimeoutPaid`: the payment succeeds and the stream is cut before
    ///   its only message.
    /// - `Unreachable`: the next connection is dropped before TLS.
    async fn script_next_payment(&self, fault: NodeFault) -> Result<(), PaymentsError> {
        match fault {
            NodeFault::Transient => self.script_next_payment(SendScript::fail(FailureReason::NoRoute)),
            NodeFault::Permanent => self.script_next_payment(SendScript::fail(FailureReason::IncorrectPaymentDetails)),
            NodeFault::TimeoutInFlight => self.script_next_payment(SendScript::in_flight().cut_after(0)),
            NodeFault::TimeoutPaid => self.script_next_payment(SendScript::succeed().cut_after(0)),
            NodeFault::Unreachable => self.refuse_next_connections(1).await,
        }
        Ok(())
    }

    async fn resolve_in_flight_payments(&self, succeed: bool) -> Result<(), PaymentsError> {
        self.resolve_all_in_flight(succeed);
        Ok(())
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), PaymentsError> {
        StandIn::set_reachable(self, reachable).await;
        Ok(())
    }

    async fn payee_node(&self) -> Result<NodePubkey, PaymentsError> {
        NodePubkey::from_bytes(self.payee_pubkey()).map_err(invalid)
    }

    async fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> Result<String, PaymentsError> {
        StandIn::mint_payee_invoice(self, amount.map(Msat::get), expiry).map(|(bolt11, _)| bolt11).map_err(invalid)
    }

    async fn pay_invoice(&self, hash: &PaymentHash, amount: Msat) -> Result<bool, PaymentsError> {
        Ok(StandIn::pay_invoice(self, hash.as_bytes(), Some(amount.get())).is_some())
    }

    async fn cut_settle_streams(&self) -> Result<(), PaymentsError> {
        self.cut_subscriptions();
        Ok(())
    }
}
