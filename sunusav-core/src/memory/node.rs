//! A simulated Lightning node that follows LND's rules per payment hash.
//!
//! - A second payment of a hash that succeeded answers "already paid"
//!   ([`PayError::AlreadyPaid`]); of one in flight, "in transition"
//!   ([`PayError::InTransition`]); a hash whose payment failed may be paid again.
//! - Faults can be injected, one per payment, in order: transient and permanent
//!   failures, a time-out that leaves the payment in flight, and a time-out after
//!   which the payment did succeed (the answer was lost: the crash window between
//!   "paid" and "recorded"), and a call that finds the node unreachable.
//! - It implements the conformance suite's
//!   the conformance suite's `NodeScript` with that API.
//! - It counts the payments that succeeded per key, so tests can assert that
//!   nothing was ever paid twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

#[cfg(feature = "conformance")]
use crate::conformance::payments::NodeScript;
use crate::domain::ids::PaymentHash;
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::ports::payments::{
    CreatedInvoice, PayError, PaymentStatus, Payments, PaymentsError, PayoutReceipt, PayoutRequest,
};

/// A fault to inject into the next payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeFault {
    /// Fails, retryable; the hash may be paid again.
    Transient,
    /// Fails for good.
    Permanent,
    /// No answer; the payment stays in flight until [`SimulatedNode::resolve_in_flight`].
    TimeoutInFlight,
    /// No answer, but the payment succeeded.
    TimeoutPaid,
    /// The next `pay` call, whatever its key, finds the node unreachable: it
    /// answers [`PayError::Transient`] and nothing is sent.
    Unreachable,
}

#[derive(Clone, Debug)]
enum HashState {
    InFlight,
    Succeeded(PayoutReceipt),
    Failed(String),
}

#[derive(Default)]
struct NodeState {
    payments: HashMap<IdempotencyKey, HashState>,
    succeeded: HashMap<IdempotencyKey, u32>,
    /// `pay` calls per key, whatever their answer.
    pay_calls: HashMap<IdempotencyKey, u32>,
    faults: VecDeque<NodeFault>,
    invoices: HashMap<PaymentHash, NodeInvoice>,
    unreachable: bool,
}

/// An invoice the node issued, as LND keeps it: `OPEN` until settled,
/// canceled, or past its expiry (then a payer can no longer pay it).
#[derive(Clone, Copy, Debug)]
struct NodeInvoice {
    amount: Msat,
    state: NodeInvoiceState,
    expires_at: tokio::time::Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeInvoiceState {
    Open,
    Settled,
    Canceled,
}

/// The simulated node. Clones share the same state.
#[derive(Clone, Default)]
pub struct SimulatedNode {
    state: Arc<Mutex<NodeState>>,
    latency: Duration,
}

impl std::fmt::Debug for SimulatedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedNode").field("latency", &self.latency).finish_non_exhaustive()
    }
}

/// The preimage the node uses for a payout key (deterministic, so the hash is too).
fn preimage_of(key: &IdempotencyKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sunusav:simulated-preimage:");
    h.update(key.as_str().as_bytes());
    h.finalize().into()
}

impl SimulatedNode {
    /// A node that answers at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// A node that takes `latency` for each call.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Queues faults for the next payments, one each, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = NodeFault>) {
        self.lock().faults.extend(faults);
    }

    /// Makes every call fail as if the node were down (or back up).
    pub fn set_unreachable(&self, down: bool) {
        self.lock().unreachable = down;
    }

    /// Ends every in-flight payment: succeeded when `succeed`, failed otherwise.
    pub fn resolve_in_flight(&self, succeed: bool) {
        let mut st = self.lock();
        let keys: Vec<_> =
            st.payments.iter().filter(|(_, s)| matches!(s, HashState::InFlight)).map(|(k, _)| k.clone()).collect();
        for k in keys {
            if succeed {
                let receipt = receipt_for(&k);
                *st.succeeded.entry(k.clone()).or_default() += 1;
                st.payments.insert(k, HashState::Succeeded(receipt));
            } else {
                st.payments.insert(k, HashState::Failed("in-flight payment failed".into()));
            }
        }
    }

    /// How many times the payout with this key was paid (never more than 1).
    pub fn times_paid(&self, key: &IdempotencyKey) -> u32 {
        self.lock().succeeded.get(key).copied().unwrap_or(0)
    }

    /// How many times `pay` was called for this key, whatever the answer
    /// (a payer that reconciles first calls it only when it must).
    pub fn pay_calls(&self, key: &IdempotencyKey) -> u32 {
        self.lock().pay_calls.get(key).copied().unwrap_or(0)
    }

    /// The largest number of successful payments of any one key.
    pub fn max_times_paid(&self) -> u32 {
        self.lock().succeeded.values().copied().max().unwrap_or(0)
    }

    /// Keys paid at least once.
    pub fn paid_keys(&self) -> Vec<IdempotencyKey> {
        self.lock().succeeded.keys().cloned().collect()
    }

    /// The payer pays an invoice this node issued its amount: returns the
    /// amount, once. `None` for an unknown, settled, cancelled or expired
    /// invoice (LND refuses an HTLC for an invoice that is not open).
    pub fn settle_invoice(&self, hash: &PaymentHash) -> Option<Msat> {
        let amount = self.lock().invoices.get(hash)?.amount;
        self.settle_invoice_paying(hash, amount)
    }

    /// The payer pays `paid` for an invoice this node issued: LND settles an
    /// invoice paid at least its amount (an overpayment is accepted, up to
    /// twice the amount). Returns what was paid, once; `None` for an unknown,
    /// settled, cancelled or expired invoice, or for less than its amount.
    pub fn settle_invoice_paying(&self, hash: &PaymentHash, paid: Msat) -> Option<Msat> {
        let mut st = self.lock();
        let inv = st.invoices.get_mut(hash)?;
        let open = inv.state == NodeInvoiceState::Open && tokio::time::Instant::now() < inv.expires_at;
        let twice = inv.amount.checked_mul(2).unwrap_or(Msat::new(u64::MAX));
        if !open || paid < inv.amount || paid > twice {
            return None;
        }
        inv.state = NodeInvoiceState::Settled;
        Some(paid)
    }

    /// Whether the node holds this invoice as cancelled.
    pub fn is_invoice_cancelled(&self, hash: &PaymentHash) -> bool {
        self.lock().invoices.get(hash).is_some_and(|i| i.state == NodeInvoiceState::Canceled)
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

fn receipt_for(key: &IdempotencyKey) -> PayoutReceipt {
    let preimage = preimage_of(key);
    PayoutReceipt {
        payment_hash: PaymentHash::of_preimage(&preimage),
        preimage: hex::encode(preimage),
        fee: Msat::ZERO,
    }
}

#[async_trait]
impl Payments for SimulatedNode {
    async fn create_invoice(
        &self,
        amount: Msat,
        memo: &str,
        expiry: Duration,
    ) -> Result<CreatedInvoice, PaymentsError> {
        if amount.is_zero() {
            return Err(PaymentsError::Invalid("amount must be more than zero".into()));
        }
        if expiry.is_zero() {
            return Err(PaymentsError::Invalid("expiry must be more than zero".into()));
        }
        self.wait().await;
        let mut st = self.lock();
        if st.unreachable {
            return Err(PaymentsError::Unavailable("simulated node is down".into()));
        }
        let preimage: [u8; 32] = rand::random();
        let payment_hash = PaymentHash::of_preimage(&preimage);
        let expires_at = tokio::time::Instant::now()
            .checked_add(expiry)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_hours(24 * 365));
        st.invoices.insert(payment_hash, NodeInvoice { amount, state: NodeInvoiceState::Open, expires_at });
        let memo_len = memo.len();
        let bolt11 = format!("lnbcrt{}n1sim{}{}", amount.get(), memo_len, &payment_hash.to_hex()[..32]);
        Ok(CreatedInvoice { payment_hash, bolt11 })
    }

    /// LND's `CancelInvoice`: an open invoice becomes canceled; canceling a
    /// canceled one is a no-op; a settled one answers an error there
    /// ("invoice already settled"), which the port reads as done: its
    /// payment arrives as a settle event. An unknown hash is refused.
    async fn cancel_invoice(&self, hash: &PaymentHash) -> Result<(), PaymentsError> {
        self.wait().await;
        let mut st = self.lock();
        if st.unreachable {
            return Err(PaymentsError::Unavailable("simulated node is down".into()));
        }
        let inv = st.invoices.get_mut(hash).ok_or_else(|| PaymentsError::Invalid("unknown invoice".into()))?;
        if inv.state == NodeInvoiceState::Open {
            inv.state = NodeInvoiceState::Canceled;
        }
        Ok(())
    }

    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError> {
        if request.amount.is_zero() {
            return Err(PayError::Permanent("amount must be more than zero".into()));
        }
        let fault = {
            let mut st = self.lock();
            *st.pay_calls.entry(request.key.clone()).or_default() += 1;
            if st.unreachable {
                return Err(PayError::Transient("simulated node is down".into()));
            }
            // Unreachable, the node cannot say the key is paid or in flight either.
            if st.faults.front() == Some(&NodeFault::Unreachable) {
                st.faults.pop_front();
                return Err(PayError::Transient("simulated node is unreachable".into()));
            }
            match st.payments.get(&request.key) {
                Some(HashState::Succeeded(_)) => return Err(PayError::AlreadyPaid),
                Some(HashState::InFlight) => return Err(PayError::InTransition),
                Some(HashState::Failed(_)) | None => {}
            }
            let fault = st.faults.pop_front();
            st.payments.insert(request.key.clone(), HashState::InFlight);
            fault
        };
        self.wait().await;
        let mut st = self.lock();
        match fault {
            // `Unreachable` was answered above, before anything was sent.
            None | Some(NodeFault::Unreachable) => {
                let receipt = receipt_for(&request.key);
                *st.succeeded.entry(request.key.clone()).or_default() += 1;
                st.payments.insert(request.key.clone(), HashState::Succeeded(receipt.clone()));
                Ok(receipt)
            }
            Some(NodeFault::TimeoutPaid) => {
                let receipt = receipt_for(&request.key);
                *st.succeeded.entry(request.key.clone()).or_default() += 1;
                st.payments.insert(request.key.clone(), HashState::Succeeded(receipt));
                Err(PayError::Timeout)
            }
            Some(NodeFault::TimeoutInFlight) => Err(PayError::Timeout),
            Some(NodeFault::Transient) => {
                st.payments.insert(request.key.clone(), HashState::Failed("no route".into()));
                Err(PayError::Transient("no route (injected)".into()))
            }
            Some(NodeFault::Permanent) => {
                st.payments.insert(request.key.clone(), HashState::Failed("incorrect payment details".into()));
                Err(PayError::Permanent("incorrect payment details (injected)".into()))
            }
        }
    }

    async fn lookup(&self, key: &IdempotencyKey) -> Result<PaymentStatus, PaymentsError> {
        self.wait().await;
        let st = self.lock();
        if st.unreachable {
            return Err(PaymentsError::Unavailable("simulated node is down".into()));
        }
        Ok(match st.payments.get(key) {
            None => PaymentStatus::Unknown,
            Some(HashState::InFlight) => PaymentStatus::InFlight,
            Some(HashState::Succeeded(r)) => PaymentStatus::Succeeded(r.clone()),
            Some(HashState::Failed(e)) => PaymentStatus::Failed(e.clone()),
        })
    }

    async fn ping(&self) -> Result<(), PaymentsError> {
        if self.lock().unreachable {
            return Err(PaymentsError::Unavailable("simulated node is down".into()));
        }
        Ok(())
    }
}

/// The conformance suite's script: the fault API above, through the port's
/// error type (it never fails here).
#[cfg(feature = "conformance")]
#[async_trait]
impl NodeScript for SimulatedNode {
    async fn script_next_payment(&self, fault: NodeFault) -> Result<(), PaymentsError> {
        self.inject([fault]);
        Ok(())
    }

    async fn resolve_in_flight_payments(&self, succeed: bool) -> Result<(), PaymentsError> {
        self.resolve_in_flight(succeed);
        Ok(())
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), PaymentsError> {
        self.set_unreachable(!reachable);
        Ok(())
    }
}
