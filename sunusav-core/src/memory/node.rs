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
//! - It counts the payments that succeeded per payout key (whatever hash
//!   each was sent with), so tests can assert that nothing was ever paid twice.
//! - It pays keysend (checking the preimage hashes to the payment hash, as
//!   the receiving LND does) and invoices minted by its remote payee
//!   ([`SimulatedNode::mint_payee_invoice`]); it reports settled invoices on
//!   settle streams that can be cut ([`SimulatedNode::cut_settle_streams`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

#[cfg(feature = "conformance")]
use crate::conformance::payments::NodeScript;
use crate::domain::ids::PaymentHash;
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::payout::{Network, NodePubkey, PayTo};
use crate::memory::bolt11::InvoiceSigner;
use crate::ports::payments::{
    CreatedInvoice, NodeInvoice as PortInvoice, NodeInvoiceState as PortInvoiceState, PayError, PaymentStatus,
    Payments, PaymentsError, PayoutReceipt, PayoutRequest, SettleEvents, SettledInvoice, SettledStream,
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

/// A payment the node made or tried, by payment hash (as LND's payment
/// control keeps them), with the payout key it was for and its preimage.
#[derive(Clone, Debug)]
struct Payment {
    key: IdempotencyKey,
    preimage: [u8; 32],
    state: HashState,
}

#[derive(Default)]
struct NodeState {
    payments: HashMap<PaymentHash, Payment>,
    succeeded: HashMap<IdempotencyKey, u32>,
    /// `pay` calls per key, whatever their answer.
    pay_calls: HashMap<IdempotencyKey, u32>,
    faults: VecDeque<NodeFault>,
    invoices: HashMap<PaymentHash, NodeInvoice>,
    /// Preimages of invoices minted by remote payees (the beneficiaries'
    /// nodes), so that paying one yields a proof of payment.
    payee_preimages: HashMap<PaymentHash, [u8; 32]>,
    /// Settled invoices, in settle order (settle index = position + 1).
    settled: Vec<SettledInvoice>,
    /// Bumped to cut every open settle stream.
    stream_epoch: u64,
    unreachable: bool,
}

/// An invoice the node issued, as LND keeps it: `OPEN` until settled,
/// canceled, or past its expiry (then a payer can no longer pay it).
#[derive(Clone, Copy, Debug)]
struct NodeInvoice {
    amount: Msat,
    state: NodeInvoiceState,
    expires_at: tokio::time::Instant,
    paid: Msat,
    settle_index: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeInvoiceState {
    Open,
    Settled,
    Canceled,
}

/// The simulated node. Clones share the same state.
#[derive(Clone)]
pub struct SimulatedNode {
    state: Arc<Mutex<NodeState>>,
    /// Wakes the settle streams when an invoice settles or streams are cut.
    settles: Arc<tokio::sync::Notify>,
    latency: Duration,
}

impl Default for SimulatedNode {
    fn default() -> Self {
        Self { state: Arc::default(), settles: Arc::default(), latency: Duration::ZERO }
    }
}

impl std::fmt::Debug for SimulatedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedNode").field("latency", &self.latency).finish_non_exhaustive()
    }
}

/// The key the simulated node signs its own invoices with.
const NODE_KEY: [u8; 32] = [0x11; 32];
/// The key of the remote payee (a beneficiary's node) it pays.
const PAYEE_KEY: [u8; 32] = [0x22; 32];

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
        let mut guard = self.lock();
        let st = &mut *guard;
        for (hash, p) in &mut st.payments {
            if !matches!(p.state, HashState::InFlight) {
                continue;
            }
            if succeed {
                *st.succeeded.entry(p.key.clone()).or_default() += 1;
                p.state = HashState::Succeeded(receipt(*hash, &p.preimage));
            } else {
                p.state = HashState::Failed("in-flight payment failed".into());
            }
        }
    }

    /// How many times the payout with this key was paid (never more than 1),
    /// whatever hashes it was sent with.
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

    /// The remote payee's node: a keysend destination this node pays.
    pub fn payee_node() -> NodePubkey {
        InvoiceSigner::from_bytes(PAYEE_KEY).node()
    }

    /// A BOLT 11 invoice (regtest) of the remote payee, which this node can
    /// pay: `amount` (none: amount-less), payable for `expiry`.
    pub fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> String {
        let preimage: [u8; 32] = rand::random();
        let hash = PaymentHash::of_preimage(&preimage);
        self.lock().payee_preimages.insert(hash, preimage);
        InvoiceSigner::from_bytes(PAYEE_KEY).mint(hash, amount, expiry, Network::Regtest, SystemTime::now())
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
    /// The settlement is reported on the settle streams.
    pub fn settle_invoice_paying(&self, hash: &PaymentHash, paid: Msat) -> Option<Msat> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let inv = st.invoices.get_mut(hash)?;
        let open = inv.state == NodeInvoiceState::Open && tokio::time::Instant::now() < inv.expires_at;
        let twice = inv.amount.checked_mul(2).unwrap_or(Msat::new(u64::MAX));
        if !open || paid < inv.amount || paid > twice {
            return None;
        }
        let settle_index = u64::try_from(st.settled.len()).unwrap_or(u64::MAX).saturating_add(1);
        inv.state = NodeInvoiceState::Settled;
        inv.paid = paid;
        inv.settle_index = settle_index;
        st.settled.push(SettledInvoice { payment_hash: *hash, amount_paid: paid, settle_index });
        drop(guard);
        self.settles.notify_waiters();
        Some(paid)
    }

    /// Cuts every open settle stream (they answer `Unavailable`; a new one
    /// resumes from any settle index).
    pub fn cut_settle_streams(&self) {
        self.lock().stream_epoch += 1;
        self.settles.notify_waiters();
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

    /// The preimage the payee reveals for a request, as the receiving node
    /// would: keysend carries it (and the receiver checks it hashes to the
    /// payment hash: LND's keysend acceptance); an invoice's is its payee's.
    fn preimage_for(&self, request: &PayoutRequest) -> Result<[u8; 32], PayError> {
        request.check(SystemTime::now())?;
        match &request.pay_to {
            PayTo::Keysend { preimage, .. } => Ok(*preimage.expose_bytes()),
            PayTo::Invoice { .. } => self
                .lock()
                .payee_preimages
                .get(&request.payment_hash)
                .copied()
                .ok_or_else(|| PayError::Permanent("incorrect payment details: unknown payee invoice".into())),
        }
    }
}

fn receipt(payment_hash: PaymentHash, preimage: &[u8; 32]) -> PayoutReceipt {
    PayoutReceipt { payment_hash, preimage: hex::encode(preimage), fee: Msat::ZERO }
}

fn down() -> PaymentsError {
    PaymentsError::Unavailable("simulated node is down".into())
}

#[async_trait]
impl Payments for SimulatedNode {
    async fn create_invoice(
        &self,
        amount: Msat,
        _memo: &str,
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
            return Err(down());
        }
        let preimage: [u8; 32] = rand::random();
        let payment_hash = PaymentHash::of_preimage(&preimage);
        let expires_at = tokio::time::Instant::now()
            .checked_add(expiry)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_hours(24 * 365));
        st.invoices.insert(
            payment_hash,
            NodeInvoice { amount, state: NodeInvoiceState::Open, expires_at, paid: Msat::ZERO, settle_index: 0 },
        );
        drop(st);
        let bolt11 = InvoiceSigner::from_bytes(NODE_KEY).mint(
            payment_hash,
            Some(amount),
            expiry.min(Duration::from_hours(24 * 365)),
            Network::Regtest,
            SystemTime::now(),
        );
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
            return Err(down());
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
        {
            let mut st = self.lock();
            *st.pay_calls.entry(request.key.clone()).or_default() += 1;
        }
        let preimage = self.preimage_for(request)?;
        let hash = request.payment_hash;
        let fault = {
            let mut st = self.lock();
            if st.unreachable {
                return Err(PayError::Transient("simulated node is down".into()));
            }
            // Unreachable, the node cannot say the hash is paid or in flight either.
            if st.faults.front() == Some(&NodeFault::Unreachable) {
                st.faults.pop_front();
                return Err(PayError::Transient("simulated node is unreachable".into()));
            }
            match st.payments.get(&hash).map(|p| &p.state) {
                Some(HashState::Succeeded(_)) => return Err(PayError::AlreadyPaid),
                Some(HashState::InFlight) => return Err(PayError::InTransition),
                Some(HashState::Failed(_)) | None => {}
            }
            let fault = st.faults.pop_front();
            st.payments.insert(hash, Payment { key: request.key.clone(), preimage, state: HashState::InFlight });
            fault
        };
        self.wait().await;
        let mut st = self.lock();
        let mut end = |state: HashState| {
            if matches!(state, HashState::Succeeded(_)) {
                *st.succeeded.entry(request.key.clone()).or_default() += 1;
            }
            st.payments.insert(hash, Payment { key: request.key.clone(), preimage, state });
        };
        match fault {
            // `Unreachable` was answered above, before anything was sent.
            None | Some(NodeFault::Unreachable) => {
                let receipt = receipt(hash, &preimage);
                end(HashState::Succeeded(receipt.clone()));
                Ok(receipt)
            }
            Some(NodeFault::TimeoutPaid) => {
                end(HashState::Succeeded(receipt(hash, &preimage)));
                Err(PayError::Timeout)
            }
            Some(NodeFault::TimeoutInFlight) => Err(PayError::Timeout),
            Some(NodeFault::Transient) => {
                end(HashState::Failed("no route".into()));
                Err(PayError::Transient("no route (injected)".into()))
            }
            Some(NodeFault::Permanent) => {
                end(HashState::Failed("incorrect payment details".into()));
                Err(PayError::Permanent("incorrect payment details (injected)".into()))
            }
        }
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<PaymentStatus, PaymentsError> {
        self.wait().await;
        let st = self.lock();
        if st.unreachable {
            return Err(down());
        }
        Ok(match st.payments.get(hash).map(|p| &p.state) {
            None => PaymentStatus::Unknown,
            Some(HashState::InFlight) => PaymentStatus::InFlight,
            Some(HashState::Succeeded(r)) => PaymentStatus::Succeeded(r.clone()),
            Some(HashState::Failed(e)) => PaymentStatus::Failed(e.clone()),
        })
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<PortInvoice>, PaymentsError> {
        self.wait().await;
        let st = self.lock();
        if st.unreachable {
            return Err(down());
        }
        Ok(st.invoices.get(hash).map(|i| {
            let expired = tokio::time::Instant::now() >= i.expires_at;
            let state = match i.state {
                NodeInvoiceState::Open if expired => PortInvoiceState::Canceled,
                NodeInvoiceState::Open => PortInvoiceState::Open,
                NodeInvoiceState::Settled => PortInvoiceState::Settled,
                NodeInvoiceState::Canceled => PortInvoiceState::Canceled,
            };
            PortInvoice { payment_hash: *hash, state, amount_paid: i.paid, settle_index: i.settle_index }
        }))
    }

    async fn ping(&self) -> Result<(), PaymentsError> {
        if self.lock().unreachable {
            return Err(down());
        }
        Ok(())
    }
}

#[async_trait]
impl SettleEvents for SimulatedNode {
    async fn subscribe_settled(&self, after_settle_index: u64) -> Result<Box<dyn SettledStream>, PaymentsError> {
        let epoch = {
            let st = self.lock();
            if st.unreachable {
                return Err(down());
            }
            st.stream_epoch
        };
        Ok(Box::new(SimulatedStream { node: self.clone(), next: after_settle_index, epoch }))
    }
}

struct SimulatedStream {
    node: SimulatedNode,
    /// The settle index of the last invoice sent.
    next: u64,
    epoch: u64,
}

#[async_trait]
impl SettledStream for SimulatedStream {
    async fn next(&mut self) -> Result<Option<SettledInvoice>, PaymentsError> {
        loop {
            let notified = self.node.settles.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.node.lock();
                if st.stream_epoch != self.epoch || st.unreachable {
                    return Err(PaymentsError::Unavailable("simulated settle stream cut".into()));
                }
                let at = usize::try_from(self.next).unwrap_or(usize::MAX);
                if let Some(found) = st.settled.get(at) {
                    self.next += 1;
                    return Ok(Some(found.clone()));
                }
            }
            notified.await;
        }
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

    async fn payee_node(&self) -> Result<NodePubkey, PaymentsError> {
        Ok(Self::payee_node())
    }

    async fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> Result<String, PaymentsError> {
        Ok(SimulatedNode::mint_payee_invoice(self, amount, expiry))
    }

    async fn pay_invoice(&self, hash: &PaymentHash, amount: Msat) -> Result<bool, PaymentsError> {
        Ok(self.settle_invoice_paying(hash, amount).is_some())
    }

    async fn cut_settle_streams(&self) -> Result<(), PaymentsError> {
        SimulatedNode::cut_settle_streams(self);
        Ok(())
    }
}
