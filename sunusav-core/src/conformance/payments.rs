//! The conformance suite of the [`Payments`] port: LND's per-hash rules, the
//! ones the payout engine ([`crate::services`]) relies on.
//!
//! The cases provoke the node's behaviours through [`NodeScript`], a control
//! trait every simulated node implements: the next payment fails, times out in
//! flight or after it succeeded, in-flight payments resolve, the node goes
//! down and comes back. Each case gets a fresh node and its script from a
//! factory `Fn() -> impl Future<Output = PaymentsHarness>`. Run every case as
//! one test:
//!
//! ```no_run
//! # use sunusav_core::conformance::payments::{run_all, PaymentsHarness};
//! # use sunusav_core::memory::SimulatedNode;
//! # async fn example() {
//! run_all(|| async { PaymentsHarness::of(SimulatedNode::new()) }).await;
//! # }
//! ```
//!
//! or one `#[tokio::test]` per case with
//! [`payments_conformance_tests!`](crate::payments_conformance_tests) (the
//! calling crate needs `tokio` with the `macros` and `rt-multi-thread` features):
//!
//! ```text
//! sunusav_core::payments_conformance_tests!(|| async { PaymentsHarness::of(SimulatedNode::new()) });
//! ```
//!
//! The rules, and the LND behaviour each follows (`channeldb`'s payment
//! control, `routerrpc.SendPaymentV2` and `TrackPaymentV2`):
//!
//! - A hash whose payment succeeded refuses another: `ErrAlreadyPaid`,
//!   "invoice is already paid" ([`PayError::AlreadyPaid`]); the look-up
//!   returns the receipt of the payment that succeeded.
//! - A hash with a payment in flight refuses another: `ErrPaymentInFlight`,
//!   "payment is in transition" ([`PayError::InTransition`]); the look-up
//!   says `IN_FLIGHT`.
//! - A hash whose payment failed may be paid again (payment control
//!   re-initialises a `FAILED` payment); the look-up says `FAILED` until then.
//! - A call that times out leaves the payment where the network left it: in
//!   flight until its HTLCs settle or fail, or succeeded with the answer lost.
//!   The look-up tells which.
//! - A hash never sent is unknown (`ErrPaymentNotInitiated`); a node that
//!   cannot be reached (gRPC `Unavailable`) is an error, never "unknown", and
//!   sends nothing.
//! - Concurrent payments of one hash: payment control lets one through.
//! - Keysend carries the preimage, which the receiver checks against the
//!   payment hash; an invoice is paid by its own hash, and a payment of it
//!   proves payment with the payee's preimage.
//! - An issued invoice reports its state and the amount paid (which may
//!   exceed its amount); settled invoices stream in settle order, resumable
//!   after any settle index (`SubscribeInvoices` with `settle_index`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::harness::run_named;
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::payout::{Bolt11, NodePubkey, PayTo, PayoutPolicy, PreimageSecret};
use crate::memory::NodeFault;
use crate::ports::payments::{
    NodeInvoiceState, PayError, PaymentStatus, Payments, PaymentsError, PayoutReceipt, PayoutRequest, SettleEvents,
};

/// The expiry of the invoices the cases create.
const EXPIRY: Duration = Duration::from_hours(1);

/// Scripts a simulated node's behaviour, so that generic cases can provoke
/// what a real node does on its own (no route, a lost answer, an outage).
#[async_trait]
pub trait NodeScript: Send + Sync {
    /// The next payment actually sent (one the node does not refuse as
    /// already paid or in transition) meets `fault`:
    /// - [`NodeFault::Transient`]: it fails, retryable (LND: `FAILED`,
    ///   reason `NO_ROUTE`); the hash may be paid again.
    /// - [`NodeFault::Permanent`]: it fails for good (LND: `FAILED`, reason
    ///   `INCORRECT_PAYMENT_DETAILS`); the hash may still be paid again.
    /// - [`NodeFault::TimeoutInFlight`]: the call answers [`PayError::Timeout`]
    ///   and the payment stays in flight until [`resolve_in_flight_payments`](Self::resolve_in_flight_payments).
    /// - [`NodeFault::TimeoutPaid`]: the call answers [`PayError::Timeout`],
    ///   but the payment succeeded.
    /// - [`NodeFault::Unreachable`]: the next `pay` call, whatever its key,
    ///   finds the node unreachable: it answers [`PayError::Transient`] and
    ///   sends nothing.
    ///
    /// Faults queue up, one per payment, in order.
    async fn script_next_payment(&self, fault: NodeFault) -> Result<(), PaymentsError>;

    /// Ends every payment in flight: succeeded (its HTLCs settled) when
    /// `succeed`, failed otherwise.
    async fn resolve_in_flight_payments(&self, succeed: bool) -> Result<(), PaymentsError>;

    /// Makes the node unreachable (`false`) or reachable again (`true`). While
    /// unreachable, `pay` answers [`PayError::Transient`] and sends nothing;
    /// `lookup`, `create_invoice` and `ping` answer [`PaymentsError::Unavailable`].
    async fn set_reachable(&self, reachable: bool) -> Result<(), PaymentsError>;

    /// A remote node this node can pay by keysend.
    async fn payee_node(&self) -> Result<NodePubkey, PaymentsError>;

    /// A BOLT 11 invoice of a remote payee this node can pay (`amount`
    /// none: amount-less), payable for `expiry`.
    async fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> Result<String, PaymentsError>;

    /// A payer pays `amount` for an invoice this node issued; `false` when
    /// the node refuses it (not open, less than its amount).
    async fn pay_invoice(&self, hash: &PaymentHash, amount: Msat) -> Result<bool, PaymentsError>;

    /// Cuts every open settle stream.
    async fn cut_settle_streams(&self) -> Result<(), PaymentsError>;
}

/// A fresh node under test and the script that controls it.
#[derive(Clone)]
pub struct PaymentsHarness {
    /// The node, through the port.
    pub node: Arc<dyn Payments>,
    /// Its settle stream.
    pub events: Arc<dyn SettleEvents>,
    /// Its script.
    pub script: Arc<dyn NodeScript>,
}

impl PaymentsHarness {
    /// The harness of a node that is its own script.
    pub fn of<N: Payments + SettleEvents + NodeScript>(node: N) -> Self {
        let node = Arc::new(node);
        Self {
            node: Arc::clone(&node) as Arc<dyn Payments>,
            events: Arc::clone(&node) as Arc<dyn SettleEvents>,
            script: node,
        }
    }
}

impl std::fmt::Debug for PaymentsHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsHarness").finish_non_exhaustive()
    }
}

/// A boxed case future.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name (its function's name).
    pub name: &'static str,
    /// The case.
    pub run: fn(PaymentsHarness) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish_non_exhaustive()
    }
}

macro_rules! case {
    ($name:ident) => {
        Case { name: stringify!($name), run: |h| Box::pin($name(h)) }
    };
}

/// Every case.
pub fn cases() -> Vec<Case> {
    vec![
        case!(invoices_are_distinct_and_zero_is_refused),
        case!(a_payout_is_paid_once_by_key),
        case!(different_keys_are_different_payments),
        case!(a_healthy_node_answers_ping),
        case!(a_payment_in_flight_refuses_another_as_in_transition),
        case!(a_failed_payment_may_be_paid_again),
        case!(a_timeout_in_flight_looks_up_in_flight_until_it_resolves),
        case!(a_timeout_after_success_looks_up_as_succeeded),
        case!(already_paid_looks_up_the_first_receipt),
        case!(an_unreachable_node_is_unavailable_never_unknown),
        case!(a_permanent_failure_pays_nothing),
        case!(concurrent_payments_of_one_key_pay_it_once),
        case!(an_invoice_is_cancelled_idempotently),
        case!(a_payee_invoice_is_paid_by_its_hash_once),
        case!(a_wrong_keysend_preimage_is_refused),
        case!(an_invoice_reports_what_was_paid),
        case!(settled_invoices_stream_in_order_and_resume_after_an_index),
    ]
}

fn find(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no payments conformance case named `{name}`"))
}

/// Runs one case by name against a fresh node from `make`.
///
/// # Panics
/// When the case fails (the message names it), or takes longer than 30 s.
pub async fn run_case<F, Fut>(make: &F, name: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = PaymentsHarness>,
{
    let case = find(name);
    let harness = make().await;
    run_named("payments", name, (case.run)(harness)).await;
}

/// Runs every case, each against a fresh node from `make`.
///
/// # Panics
/// On the first failing case, naming it.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = PaymentsHarness>,
{
    for case in cases() {
        run_case(&make, case.name).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance case of the payments port,
/// given a factory `Fn() -> impl Future<Output = PaymentsHarness>` that
/// returns a fresh, healthy node on each call.
///
/// ```text
/// mod simulated_node {
///     use sunusav_core::conformance::payments::PaymentsHarness;
///     use sunusav_core::memory::SimulatedNode;
///
///     sunusav_core::payments_conformance_tests!(|| async { PaymentsHarness::of(SimulatedNode::new()) });
/// }
/// ```
///
/// With `skip_unless = <bool expression>`, each test first evaluates the
/// expression and returns at once when it is false (a backing service that
/// is not configured; the expression decides whether that is an error).
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! payments_conformance_tests {
    ($make:expr $(, skip_unless = $ready:expr)? $(,)?) => {
        $crate::payments_conformance_tests!(@cases $make; { $(if !$ready { return; })? };
            invoices_are_distinct_and_zero_is_refused,
            a_payout_is_paid_once_by_key,
            different_keys_are_different_payments,
            a_healthy_node_answers_ping,
            a_payment_in_flight_refuses_another_as_in_transition,
            a_failed_payment_may_be_paid_again,
            a_timeout_in_flight_looks_up_in_flight_until_it_resolves,
            a_timeout_after_success_looks_up_as_succeeded,
            already_paid_looks_up_the_first_receipt,
            an_unreachable_node_is_unavailable_never_unknown,
            a_permanent_failure_pays_nothing,
            concurrent_payments_of_one_key_pay_it_once,
            an_invoice_is_cancelled_idempotently,
            a_payee_invoice_is_paid_by_its_hash_once,
            a_wrong_keysend_preimage_is_refused,
            an_invoice_reports_what_was_paid,
            settled_invoices_stream_in_order_and_resume_after_an_index,
        );
    };
    (@cases $make:expr; $guard:block; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $guard
                $crate::conformance::payments::run_case(&$make, stringify!($case)).await;
            }
        )*

        #[test]
        fn payments_conformance_macro_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let known: ::std::vec::Vec<&str> =
                $crate::conformance::payments::cases().iter().map(|c| c.name).collect();
            assert_eq!(listed, known.as_slice(), "payments_conformance_tests! and cases() disagree");
        }
    };
}

// ---------------------------------------------------------------- helpers

/// The secret the cases derive keysend preimages under.
fn secret() -> PreimageSecret {
    PreimageSecret::new([0x5a; 32]).expect("secret")
}

/// A keysend payout of `key` to the script's payee node.
async fn keysend(h: &PaymentsHarness, key: IdempotencyKey) -> PayoutRequest {
    let node = h.script.payee_node().await.expect("payee node");
    let preimage = secret().keysend_preimage(&key);
    PayoutRequest {
        group: GroupId::random(),
        beneficiary: MemberId::random(),
        amount: Msat::new(30_000),
        payment_hash: preimage.payment_hash(),
        pay_to: PayTo::Keysend { node, preimage },
        policy: PayoutPolicy::default(),
        key,
    }
}

async fn request(h: &PaymentsHarness) -> PayoutRequest {
    keysend(h, IdempotencyKey::payout(GroupId::random(), 1)).await
}

async fn script(h: &PaymentsHarness, fault: NodeFault) {
    let what = format!("{fault:?}");
    h.script.script_next_payment(fault).await.unwrap_or_else(|e| panic!("script {what}: {e}"));
}

async fn resolve(h: &PaymentsHarness, succeed: bool) {
    h.script.resolve_in_flight_payments(succeed).await.expect("resolve in-flight payments");
}

async fn reachable(h: &PaymentsHarness, up: bool) {
    h.script.set_reachable(up).await.expect("set reachable");
}

async fn lookup(h: &PaymentsHarness, hash: &PaymentHash) -> PaymentStatus {
    h.node.lookup(hash).await.unwrap_or_else(|e| panic!("lookup {hash}: {e}"))
}

/// The receipt of a hash the look-up says succeeded.
async fn succeeded(h: &PaymentsHarness, hash: &PaymentHash) -> PayoutReceipt {
    match lookup(h, hash).await {
        PaymentStatus::Succeeded(r) => r,
        other => panic!("{hash}: expected Succeeded, got {other:?}"),
    }
}

/// A receipt is a proof of payment: its preimage hashes to its payment hash.
fn assert_proves_payment(r: &PayoutReceipt) {
    let bytes = hex::decode(&r.preimage).unwrap_or_else(|e| panic!("preimage {:?} is not hex: {e}", r.preimage));
    let preimage: [u8; 32] = bytes.try_into().unwrap_or_else(|b: Vec<u8>| panic!("a {}-byte preimage", b.len()));
    assert_eq!(PaymentHash::of_preimage(&preimage), r.payment_hash, "the preimage does not hash to the payment hash");
}

// ---------------------------------------------------------------- cases

/// Invoices get distinct payment hashes; a zero amount is refused.
pub async fn invoices_are_distinct_and_zero_is_refused(h: PaymentsHarness) {
    let node = h.node;
    let a = node.create_invoice(Msat::new(1_000), "a", EXPIRY).await.expect("create invoice");
    let b = node.create_invoice(Msat::new(1_000), "b", EXPIRY).await.expect("create invoice");
    assert_ne!(a.payment_hash, b.payment_hash, "two invoices share a payment hash");
    assert!(!a.bolt11.is_empty());
    assert!(matches!(node.create_invoice(Msat::ZERO, "zero", EXPIRY).await, Err(PaymentsError::Invalid(_))));
}

/// An invoice is cancelled (LND's `CancelInvoice`); cancelling it again is
/// no error; an unknown hash and a zero expiry are `Invalid`; an unreachable
/// node is `Unavailable`.
pub async fn an_invoice_is_cancelled_idempotently(h: PaymentsHarness) {
    let node = h.node;
    let a = node.create_invoice(Msat::new(1_000), "a", EXPIRY).await.expect("create invoice");
    node.cancel_invoice(&a.payment_hash).await.expect("cancel");
    node.cancel_invoice(&a.payment_hash).await.expect("cancel again");
    let unknown = PaymentHash::from_bytes([0xee; 32]);
    assert!(matches!(node.cancel_invoice(&unknown).await, Err(PaymentsError::Invalid(_))));
    assert!(matches!(
        node.create_invoice(Msat::new(1_000), "no expiry", Duration::ZERO).await,
        Err(PaymentsError::Invalid(_))
    ));
    let b = node.create_invoice(Msat::new(1_000), "b", EXPIRY).await.expect("create invoice");
    h.script.set_reachable(false).await.expect("script");
    assert!(matches!(node.cancel_invoice(&b.payment_hash).await, Err(PaymentsError::Unavailable(_))));
    h.script.set_reachable(true).await.expect("script");
    node.cancel_invoice(&b.payment_hash).await.expect("cancel once reachable");
}

/// A payout is unknown before, succeeded after, and a second payment is refused.
pub async fn a_payout_is_paid_once_by_key(h: PaymentsHarness) {
    let req = request(&h).await;
    let node = h.node;
    assert_eq!(node.lookup(&req.payment_hash).await.expect("lookup"), PaymentStatus::Unknown);
    let receipt = node.pay(&req).await.expect("first payment succeeds");
    assert_eq!(node.pay(&req).await, Err(PayError::AlreadyPaid), "second payment of one key");
    match node.lookup(&req.payment_hash).await.expect("lookup") {
        PaymentStatus::Succeeded(r) => assert_eq!(r, receipt),
        other => panic!("expected Succeeded, got {other:?}"),
    }
}

/// Different keys are different payments.
pub async fn different_keys_are_different_payments(h: PaymentsHarness) {
    let a = request(&h).await;
    let b = keysend(&h, IdempotencyKey::payout(a.group, 2)).await;
    let node = h.node;
    let ra = node.pay(&a).await.expect("pay a");
    let rb = node.pay(&b).await.expect("pay b");
    assert_ne!(ra.payment_hash, rb.payment_hash);
}

/// The node answers a ping.
pub async fn a_healthy_node_answers_ping(h: PaymentsHarness) {
    h.node.ping().await.expect("ping");
}

/// While a payment of a key is in flight, paying it again answers
/// `InTransition` (LND: "payment is in transition") and the look-up says
/// `InFlight`; once it failed, the key may be paid again.
pub async fn a_payment_in_flight_refuses_another_as_in_transition(h: PaymentsHarness) {
    let req = request(&h).await;
    script(&h, NodeFault::TimeoutInFlight).await;
    assert_eq!(h.node.pay(&req).await, Err(PayError::Timeout));
    assert_eq!(lookup(&h, &req.payment_hash).await, PaymentStatus::InFlight);
    for _ in 0..3 {
        assert_eq!(h.node.pay(&req).await, Err(PayError::InTransition), "paid again while in flight");
    }
    assert_eq!(lookup(&h, &req.payment_hash).await, PaymentStatus::InFlight, "a refused payment changes nothing");

    resolve(&h, false).await;
    assert!(matches!(lookup(&h, &req.payment_hash).await, PaymentStatus::Failed(_)), "the in-flight payment failed");
    let receipt = h.node.pay(&req).await.expect("a failed payment may be paid again");
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipt);
}

/// A payment that failed (LND: `FAILED`, no route) looks up as `Failed`, and
/// paying the key again is allowed; the look-up then returns that receipt.
pub async fn a_failed_payment_may_be_paid_again(h: PaymentsHarness) {
    let req = request(&h).await;
    script(&h, NodeFault::Transient).await;
    assert!(matches!(h.node.pay(&req).await, Err(PayError::Transient(_))), "the scripted failure");
    assert!(
        matches!(lookup(&h, &req.payment_hash).await, PaymentStatus::Failed(_)),
        "a failed payment looks up as Failed"
    );
    let receipt = h.node.pay(&req).await.expect("paying a failed key again succeeds");
    assert_proves_payment(&receipt);
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipt);
    assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid), "and only once");
}

/// A time-out that left the payment in flight looks up `InFlight`; when its
/// HTLCs settle it looks up `Succeeded` with a receipt, and is not paid again.
pub async fn a_timeout_in_flight_looks_up_in_flight_until_it_resolves(h: PaymentsHarness) {
    let req = request(&h).await;
    script(&h, NodeFault::TimeoutInFlight).await;
    assert_eq!(h.node.pay(&req).await, Err(PayError::Timeout));
    assert_eq!(lookup(&h, &req.payment_hash).await, PaymentStatus::InFlight, "a time-out is not a failure");
    resolve(&h, true).await;
    let receipt = succeeded(&h, &req.payment_hash).await;
    assert_proves_payment(&receipt);
    assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid));
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipt, "the receipt does not change");
}

/// A time-out after the payment succeeded (the answer was lost) looks up
/// `Succeeded`, with a receipt; paying again is refused.
pub async fn a_timeout_after_success_looks_up_as_succeeded(h: PaymentsHarness) {
    let req = request(&h).await;
    script(&h, NodeFault::TimeoutPaid).await;
    assert_eq!(h.node.pay(&req).await, Err(PayError::Timeout));
    let receipt = succeeded(&h, &req.payment_hash).await;
    assert_proves_payment(&receipt);
    assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid));
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipt);
}

/// After `AlreadyPaid`, the look-up returns the receipt the first payment
/// returned: the payout engine records it as the proof of payment.
pub async fn already_paid_looks_up_the_first_receipt(h: PaymentsHarness) {
    let req = request(&h).await;
    let first = h.node.pay(&req).await.expect("first payment");
    assert_proves_payment(&first);
    for _ in 0..3 {
        assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid));
        assert_eq!(succeeded(&h, &req.payment_hash).await, first, "the look-up returns the first payment's receipt");
    }
}

/// A node that cannot be reached never answers `Unknown` (which would let the
/// payout engine pay again): the look-up is `Unavailable`, and `pay` is
/// `Transient` and sends nothing, for a paid key as for a new one. A single
/// unreachable call sends nothing either.
pub async fn an_unreachable_node_is_unavailable_never_unknown(h: PaymentsHarness) {
    let (paid, new) = (request(&h).await, request(&h).await);
    let receipt = h.node.pay(&paid).await.expect("pay");

    reachable(&h, false).await;
    for hash in [&paid.payment_hash, &new.payment_hash] {
        assert!(
            matches!(h.node.lookup(hash).await, Err(PaymentsError::Unavailable(_))),
            "a look-up on an unreachable node must be Unavailable"
        );
    }
    for req in [&paid, &new] {
        assert!(matches!(h.node.pay(req).await, Err(PayError::Transient(_))), "pay on an unreachable node");
    }
    assert!(matches!(h.node.ping().await, Err(PaymentsError::Unavailable(_))));
    assert!(matches!(
        h.node.create_invoice(Msat::new(1_000), "down", EXPIRY).await,
        Err(PaymentsError::Unavailable(_))
    ));

    reachable(&h, true).await;
    h.node.ping().await.expect("ping once reachable");
    assert_eq!(lookup(&h, &new.payment_hash).await, PaymentStatus::Unknown, "nothing was sent while unreachable");
    assert_eq!(succeeded(&h, &paid.payment_hash).await, receipt);

    script(&h, NodeFault::Unreachable).await;
    assert!(matches!(h.node.pay(&new).await, Err(PayError::Transient(_))), "one unreachable call");
    assert_eq!(lookup(&h, &new.payment_hash).await, PaymentStatus::Unknown, "nothing was sent by the unreachable call");
    let receipt = h.node.pay(&new).await.expect("pay once reachable");
    assert_eq!(succeeded(&h, &new.payment_hash).await, receipt);
}

/// A permanent failure (LND: `FAILED`, incorrect payment details) pays
/// nothing and looks up `Failed`; a refused amount records nothing. Paying
/// again (an operator's retry) is allowed.
pub async fn a_permanent_failure_pays_nothing(h: PaymentsHarness) {
    let req = request(&h).await;
    script(&h, NodeFault::Permanent).await;
    assert!(matches!(h.node.pay(&req).await, Err(PayError::Permanent(_))), "the scripted failure");
    assert!(
        matches!(lookup(&h, &req.payment_hash).await, PaymentStatus::Failed(_)),
        "a permanent failure looks up as Failed"
    );

    let zero = PayoutRequest { amount: Msat::ZERO, ..request(&h).await };
    assert!(matches!(h.node.pay(&zero).await, Err(PayError::Permanent(_))), "a zero amount is refused");
    assert_eq!(lookup(&h, &zero.payment_hash).await, PaymentStatus::Unknown, "a refused amount sends nothing");

    let receipt = h.node.pay(&req).await.expect("an operator's retry pays");
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipt);
}

/// 50 payments of one key at once: exactly one succeeds, every other is
/// refused as already paid or in transition, and the look-up returns the
/// receipt of the one that succeeded.
pub async fn concurrent_payments_of_one_key_pay_it_once(h: PaymentsHarness) {
    const N: usize = 50;
    let req = request(&h).await;
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (node, req) = (Arc::clone(&h.node), req.clone());
            tokio::spawn(async move { node.pay(&req).await })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        match t.await.expect("pay task") {
            Ok(r) => receipts.push(r),
            Err(PayError::AlreadyPaid | PayError::InTransition) => {}
            Err(e) => panic!("a concurrent payment answered {e:?}"),
        }
    }
    assert_eq!(receipts.len(), 1, "exactly one of {N} concurrent payments succeeds");
    assert_eq!(succeeded(&h, &req.payment_hash).await, receipts[0]);
    assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid));
}

/// An invoice of a remote payee is paid by its own hash (amount-less: the
/// payout's amount), once: a second payment is refused, the receipt proves
/// payment and the look-up by the invoice's hash finds it.
pub async fn a_payee_invoice_is_paid_by_its_hash_once(h: PaymentsHarness) {
    for amount in [Some(Msat::new(30_000)), None] {
        let bolt11 = h.script.mint_payee_invoice(amount, EXPIRY).await.expect("mint");
        let invoice = Bolt11::parse(&bolt11).expect("a valid BOLT 11 invoice");
        let base = request(&h).await;
        let req = PayoutRequest { payment_hash: invoice.payment_hash(), pay_to: PayTo::Invoice { bolt11 }, ..base };
        assert_eq!(lookup(&h, &req.payment_hash).await, PaymentStatus::Unknown);
        let receipt = h.node.pay(&req).await.expect("pay the invoice");
        assert_eq!(receipt.payment_hash, invoice.payment_hash());
        assert_proves_payment(&receipt);
        assert_eq!(h.node.pay(&req).await, Err(PayError::AlreadyPaid), "an invoice is paid once");
        assert_eq!(succeeded(&h, &req.payment_hash).await, receipt);
    }
}

/// A keysend whose preimage does not hash to the payment hash is refused
/// by the receiver (incorrect payment details), and nothing is paid.
pub async fn a_wrong_keysend_preimage_is_refused(h: PaymentsHarness) {
    let good = request(&h).await;
    let other = secret().keysend_preimage(&IdempotencyKey::payout(GroupId::random(), 9));
    let PayTo::Keysend { node, .. } = good.pay_to.clone() else { unreachable!("keysend") };
    let bad = PayoutRequest { pay_to: PayTo::Keysend { node, preimage: other }, ..good };
    assert!(matches!(h.node.pay(&bad).await, Err(PayError::Permanent(_))), "a wrong preimage");
    assert!(
        !matches!(lookup(&h, &bad.payment_hash).await, PaymentStatus::Succeeded(_)),
        "a refused keysend pays nothing"
    );
}

/// An issued invoice is open, then settled for what the payer paid (more
/// than its amount here), with a settle index; an unknown hash is `None`.
pub async fn an_invoice_reports_what_was_paid(h: PaymentsHarness) {
    let inv = h.node.create_invoice(Msat::new(1_000), "paid", EXPIRY).await.expect("create");
    let open = h.node.invoice(&inv.payment_hash).await.expect("invoice").expect("issued");
    assert_eq!((open.state, open.amount_paid), (NodeInvoiceState::Open, Msat::ZERO));
    assert!(h.script.pay_invoice(&inv.payment_hash, Msat::new(1_500)).await.expect("pay"), "an overpayment settles");
    let settled = h.node.invoice(&inv.payment_hash).await.expect("invoice").expect("issued");
    assert_eq!((settled.state, settled.amount_paid), (NodeInvoiceState::Settled, Msat::new(1_500)));
    assert!(settled.settle_index > 0);
    assert_eq!(h.node.invoice(&PaymentHash::from_bytes([0xee; 32])).await.expect("invoice"), None);
    let cancelled = h.node.create_invoice(Msat::new(1_000), "no", EXPIRY).await.expect("create");
    h.node.cancel_invoice(&cancelled.payment_hash).await.expect("cancel");
    let state = h.node.invoice(&cancelled.payment_hash).await.expect("invoice").map(|i| i.state);
    assert_eq!(state, Some(NodeInvoiceState::Canceled));
}

/// Settled invoices stream in settle order with increasing indexes; a
/// stream opened after an index starts right after it; a cut stream errs
/// (`Unavailable`), and one opened again after the last index seen misses
/// nothing and repeats nothing.
pub async fn settled_invoices_stream_in_order_and_resume_after_an_index(h: PaymentsHarness) {
    const WAIT: Duration = Duration::from_secs(10);
    let mut hashes = Vec::new();
    for i in 0..4u64 {
        let inv = h.node.create_invoice(Msat::new(1_000 + i), "s", EXPIRY).await.expect("create");
        hashes.push(inv.payment_hash);
    }
    assert!(h.script.pay_invoice(&hashes[0], Msat::new(1_000)).await.expect("pay"));
    assert!(h.script.pay_invoice(&hashes[1], Msat::new(1_001)).await.expect("pay"));
    let mut stream = h.events.subscribe_settled(0).await.expect("subscribe");
    let first = tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("next").expect("one");
    let second = tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("next").expect("one");
    assert_eq!((first.payment_hash, first.amount_paid), (hashes[0], Msat::new(1_000)));
    assert_eq!(second.payment_hash, hashes[1]);
    assert!(second.settle_index > first.settle_index);
    // Live: settled after the stream opened.
    assert!(h.script.pay_invoice(&hashes[2], Msat::new(1_002)).await.expect("pay"));
    let third = tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("next").expect("one");
    assert_eq!(third.payment_hash, hashes[2]);
    h.script.cut_settle_streams().await.expect("cut");
    let cut = tokio::time::timeout(WAIT, stream.next()).await.expect("a cut stream answers");
    assert!(matches!(cut, Err(PaymentsError::Unavailable(_))), "a cut stream is Unavailable, got {cut:?}");
    assert!(h.script.pay_invoice(&hashes[3], Msat::new(1_003)).await.expect("pay"));
    let mut resumed = h.events.subscribe_settled(second.settle_index).await.expect("subscribe again");
    let again = tokio::time::timeout(WAIT, resumed.next()).await.expect("in time").expect("next").expect("one");
    let fourth = tokio::time::timeout(WAIT, resumed.next()).await.expect("in time").expect("next").expect("one");
    assert_eq!((again.payment_hash, fourth.payment_hash), (hashes[2], hashes[3]), "resumed after the index");
    assert!(fourth.settle_index > again.settle_index);
}
