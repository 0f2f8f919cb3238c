//! The stand-in node's payments, with LND's per-payment-hash rules
//! (`payments/db`'s payment control, `routerrpc`'s `SendPaymentV2` and
//! `TrackPaymentV2`):
//!
//! - `InitPayment` refuses a hash whose payment succeeded (`ErrAlreadyPaid`,
//!   "invoice is already paid") and one in flight or initiated
//!   (`ErrPaymentInFlight`, "payment is in transition"); `SendPaymentV2`
//!   answers both as gRPC `AlreadyExists`. A failed payment is initialised
//!   again: the hash may be paid again.
//! - `TrackPaymentV2` of a hash never sent: `ErrPaymentNotInitiated`,
//!   "payment isn't initiated", as gRPC `NotFound`; otherwise its first
//!   update is the payment's current state.
//! - The payee decides as a receiving LND would: a keysend pays only when
//!   sha256 of the preimage record is the payment hash, an invoice only its
//!   own payee's known hash, else `INCORRECT_PAYMENT_DETAILS`; an unknown
//!   destination, or a fee limit below the route's fee (0 allows zero-fee
//!   routes only), is `NO_ROUTE`.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::script::{Answer, Outcome, SendScript};
use super::state::{RpcErr, State};
use crate::wire::{FailureReason, I64, Payment, PaymentStatus, U64};

/// Where a payment goes.
#[derive(Clone, Debug)]
pub(crate) enum Dest {
    /// A BOLT 11 invoice of this payee, for this amount (if it has one).
    Invoice {
        /// The payee's key.
        payee: [u8; 33],
        /// The invoice's amount.
        amount_msat: Option<u64>,
    },
    /// A keysend to `node`, with the preimage record (if sent).
    Keysend {
        /// The destination.
        node: [u8; 33],
        /// The keysend record.
        preimage: Option<Vec<u8>>,
    },
}

/// A payment the node was asked to make.
#[derive(Clone, Debug)]
pub(crate) struct Intent {
    pub hash: [u8; 32],
    pub amount_msat: u64,
    pub fee_limit_msat: u64,
    pub dest: Dest,
    pub payment_request: String,
}

/// A payment as the node keeps it.
#[derive(Clone)]
pub(crate) struct PaymentRecord {
    status: PaymentStatus,
    preimage: Option<[u8; 32]>,
    fee_msat: u64,
    value_msat: u64,
    reason: FailureReason,
    payment_request: String,
    created_ns: i64,
    index: u64,
    /// What the network does with it when its HTLCs resolve.
    would: Result<[u8; 32], FailureReason>,
}

impl State {
    /// The answer scripted for the next send of `hash` if it comes before
    /// the node does anything (a status, 401): taken from the script.
    pub fn take_answer_before(&mut self, hash: &[u8; 32]) -> Option<Answer> {
        let queue = self.hash_scripts.get_mut(hash)?;
        if matches!(queue.front().map(|s| &s.answer), Some(Answer::StatusBefore(_) | Answer::Unauthorized)) {
            return queue.pop_front().map(|s| s.answer);
        }
        None
    }

    /// Payment control's `InitPayment`, then the payment itself as
    /// scripted: the script of its answer.
    pub fn init_payment(&mut self, intent: &Intent) -> Result<SendScript, RpcErr> {
        match self.payments.get(&intent.hash).map(|p| p.status) {
            Some(PaymentStatus::Succeeded) => return Err(RpcErr::new(6, "invoice is already paid")),
            Some(PaymentStatus::InFlight | PaymentStatus::Initiated) => {
                return Err(RpcErr::new(6, "payment is in transition"));
            }
            Some(PaymentStatus::Failed | PaymentStatus::Unknown) | None => {}
        }
        let script = self
            .hash_scripts
            .get_mut(&intent.hash)
            .and_then(std::collections::VecDeque::pop_front)
            .or_else(|| self.next_scripts.pop_front())
            .unwrap_or_else(SendScript::succeed);
        *self.sends.entry(intent.hash).or_default() += 1;
        self.payment_index += 1;
        let created_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let record = PaymentRecord {
            status: PaymentStatus::InFlight,
            preimage: None,
            fee_msat: 0,
            value_msat: intent.amount_msat,
            reason: FailureReason::None,
            payment_request: intent.payment_request.clone(),
            created_ns,
            index: self.payment_index,
            would: self.route(intent),
        };
        self.payments.insert(intent.hash, record);
        match script.outcome {
            Outcome::Succeed => {
                self.resolve(&intent.hash, true);
            }
            Outcome::Fail(reason) => self.fail(&intent.hash, reason),
            Outcome::InFlight => {}
        }
        Ok(script)
    }

    /// What the network and the payee make of a payment.
    fn route(&self, intent: &Intent) -> Result<[u8; 32], FailureReason> {
        if intent.fee_limit_msat < self.route_fee_msat {
            return Err(FailureReason::NoRoute);
        }
        match &intent.dest {
            Dest::Invoice { payee, amount_msat } => {
                if *payee != self.payee.public() {
                    return Err(FailureReason::NoRoute);
                }
                let inv = self.payee_invoices.get(&intent.hash).ok_or(FailureReason::IncorrectPaymentDetails)?;
                match (inv.amount_msat, amount_msat) {
                    (Some(a), _) if a != intent.amount_msat => Err(FailureReason::IncorrectPaymentDetails),
                    _ => Ok(inv.preimage),
                }
            }
            Dest::Keysend { node, preimage } => {
                if *node != self.payee.public() {
                    return Err(FailureReason::NoRoute);
                }
                let preimage: [u8; 32] = preimage
                    .as_deref()
                    .and_then(|p| p.try_into().ok())
                    .ok_or(FailureReason::IncorrectPaymentDetails)?;
                let hash: [u8; 32] = Sha256::digest(preimage).into();
                if hash == intent.hash { Ok(preimage) } else { Err(FailureReason::IncorrectPaymentDetails) }
            }
        }
    }

    /// Ends an in-flight payment: succeeded if `succeed` and the payee
    /// takes it, failed otherwise. Whether it was in flight.
    pub fn resolve(&mut self, hash: &[u8; 32], succeed: bool) -> bool {
        let fee = self.route_fee_msat;
        let Some(p) = self.payments.get_mut(hash) else { return false };
        if p.status != PaymentStatus::InFlight {
            return false;
        }
        match (succeed, p.would) {
            (true, Ok(preimage)) => {
                p.status = PaymentStatus::Succeeded;
                p.preimage = Some(preimage);
                p.fee_msat = fee;
                *self.made.entry(*hash).or_default() += 1;
            }
            (true, Err(reason)) => self.fail(hash, reason),
            (false, _) => self.fail(hash, FailureReason::NoRoute),
        }
        true
    }

    fn fail(&mut self, hash: &[u8; 32], reason: FailureReason) {
        if let Some(p) = self.payments.get_mut(hash) {
            p.status = PaymentStatus::Failed;
            p.reason = reason;
        }
    }

    /// The hashes of the payments in flight.
    pub fn in_flight(&self) -> Vec<[u8; 32]> {
        self.payments.iter().filter(|(_, p)| p.status == PaymentStatus::InFlight).map(|(h, _)| *h).collect()
    }

    /// The payment as `lnrpc.Payment`, or `NotFound` ("payment isn't initiated").
    pub fn payment(&self, hash: &[u8; 32]) -> Result<Payment, RpcErr> {
        let p = self.payments.get(hash).ok_or_else(|| RpcErr::new(5, "payment isn't initiated"))?;
        let msat = |v: u64| I64(i64::try_from(v).unwrap_or(i64::MAX));
        Ok(Payment {
            payment_hash: hex::encode(hash),
            value_sat: msat(p.value_msat / 1000),
            value_msat: msat(p.value_msat),
            payment_preimage: hex::encode(p.preimage.unwrap_or([0; 32])),
            payment_request: p.payment_request.clone(),
            status: p.status,
            fee_sat: msat(p.fee_msat / 1000),
            fee_msat: msat(p.fee_msat),
            creation_time_ns: I64(p.created_ns),
            payment_index: U64(p.index),
            failure_reason: p.reason,
        })
    }
}
