//! A payout's payment attempt and its lifecycle.
//!
//! ```text
//! pending ──send──▶ in_flight ──succeed──▶ succeeded
//!    │                 ▲
//!    └─await──▶ awaiting_destination (no usable destination yet; sent once one is set)
//!                     │  ▲
//!                fail │  │ send (after the node says the last try failed or never arrived)
//!                     ▼  │
//!                    failed ──die──▶ dead ──reopen (an operator's retry: generation + 1)──▶ failed
//! ```
//!
//! - `send` marks the attempt as handed to the node, committed *before* the
//!   node is called, with the route and the payment hash it is sent with:
//!   the hash is fixed and stored before anything is sent, and the look-up
//!   asks the node by it. A route (and so a hash) changes only on a send
//!   after the node said the last try failed or never arrived. An attempt sent before (`in_flight`, `failed`) may be
//!   sent again only once the node said how the last try ended
//!   (`reconciled`): it may have paid. A `dead` attempt is never sent: a
//!   worker holding a stale job (one that lost its lease, or an earlier
//!   generation's) cannot bring a payout back to life.
//! - `reopen` is the operator's retry, and the only way out of `dead` but
//!   the node's proof: the attempt becomes `failed` (so the next run asks the
//!   node before paying) in a new **generation**. Each generation has its
//!   own queue job (`IdempotencyKey::for_generation`); a job of an older
//!   generation finds the attempt moved on and does nothing.
//! - `succeed` records the node's proof from any state but `succeeded`: the
//!   node is the authority, and a payout marked failed or dead that the node
//!   completed after all is paid.
//! - `fail` is only for a try in flight; `die` for an attempt not yet paid.
//!
//! Every move is a method that refuses an illegal one with [`AttemptError`];
//! no service assigns a status.

use serde::{Deserialize, Serialize};

use crate::domain::group::PayoutDue;
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::payout::NodePubkey;

/// Where an attempt was sent: stored with it, so that a retry resends the
/// same payment (and the look-up asks for the right hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptRoute {
    /// Keysend to this node (the preimage is derived again, never stored).
    Keysend(NodePubkey),
    /// The beneficiary's BOLT 11 invoice.
    Invoice(String),
}

/// What a payment attempt pays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// A cycle's pot to its beneficiary (`payout:<group>:<cycle>`).
    #[default]
    Payout,
    /// A member's released balance (`refund:<group>:<member>:<n>`): paid
    /// through the same engine, with no effect on the group's cycle.
    Refund,
}

str_enum!(AttemptKind {
    Payout => "payout",
    Refund => "refund",
});

/// Status of a payment attempt: `pending → in_flight → succeeded`, or `failed`
/// (retryable) and `dead` (given up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Created with the cycle's completion; not sent.
    Pending,
    /// Due, but the beneficiary has no usable destination yet: waits, and
    /// is sent once one is set.
    AwaitingDestination,
    /// Committed as sent to the node: before paying again, ask the node.
    InFlight,
    /// Paid.
    Succeeded,
    /// The last try failed; will be retried.
    Failed,
    /// Given up; the cycle is `PayoutFailed` until an operator reopens it.
    Dead,
}

str_enum!(AttemptStatus {
    Pending => "pending",
    AwaitingDestination => "awaiting_destination",
    InFlight => "in_flight",
    Succeeded => "succeeded",
    Failed => "failed",
    Dead => "dead",
});

/// A move the lifecycle refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// No such move from this status.
    #[error("a payment attempt that is {from} cannot become {to}")]
    IllegalMove {
        /// The attempt's status.
        from: AttemptStatus,
        /// The status asked for.
        to: AttemptStatus,
    },
    /// The attempt was sent before and the node was not asked how that ended.
    #[error("a payment attempt sent before is sent again only after the node says how the last try ended")]
    NotReconciled,
}

/// An attempt as a store keeps it: what an adapter reads back from a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttempt {
    /// `payout:<group>:<cycle>`.
    pub key: IdempotencyKey,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// The beneficiary.
    pub beneficiary: MemberId,
    /// The amount to deliver.
    pub amount: Msat,
    /// The fee kept by the platform.
    pub fee: Msat,
    /// Status.
    pub status: AttemptStatus,
    /// Tries sent to the node so far.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// The payment hash, once known.
    pub payment_hash: Option<PaymentHash>,
    /// The preimage (hex), once paid.
    pub preimage: Option<String>,
    /// The routing fee, once paid.
    pub routing_fee: Option<Msat>,
    /// How many times an operator reopened it (0 until the first retry).
    pub generation: u32,
    /// Where it was last sent.
    pub route: Option<AttemptRoute>,
    /// What it pays.
    pub kind: AttemptKind,
}

/// One payout's attempt record, unique by idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    /// `payout:<group>:<cycle>`: UNIQUE.
    pub key: IdempotencyKey,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// The beneficiary.
    pub beneficiary: MemberId,
    /// The amount to deliver.
    pub amount: Msat,
    /// The fee kept by the platform.
    pub fee: Msat,
    status: AttemptStatus,
    attempts: u32,
    last_error: Option<String>,
    payment_hash: Option<PaymentHash>,
    preimage: Option<String>,
    routing_fee: Option<Msat>,
    #[serde(default)]
    generation: u32,
    #[serde(default)]
    route: Option<AttemptRoute>,
    /// What it pays.
    #[serde(default)]
    pub kind: AttemptKind,
}

impl PaymentAttempt {
    /// A pending attempt for a due payout.
    pub fn pending(due: &PayoutDue) -> Self {
        let mut attempt = Self::refund(due.key.clone(), due.group, due.cycle, due.beneficiary, due.amount);
        attempt.fee = due.fee;
        attempt.kind = AttemptKind::Payout;
        attempt
    }

    /// A pending refund of a released balance, keyed by its ledger entry.
    pub fn refund(key: IdempotencyKey, group: GroupId, cycle: u32, member: MemberId, amount: Msat) -> Self {
        Self {
            key,
            group,
            cycle,
            beneficiary: member,
            amount,
            fee: Msat::ZERO,
            status: AttemptStatus::Pending,
            attempts: 0,
            last_error: None,
            payment_hash: None,
            preimage: None,
            routing_fee: None,
            generation: 0,
            route: None,
            kind: AttemptKind::Refund,
        }
    }

    /// An attempt as a store kept it.
    pub fn restore(stored: StoredAttempt) -> Self {
        let StoredAttempt {
            key,
            group,
            cycle,
            beneficiary,
            amount,
            fee,
            status,
            attempts,
            last_error,
            payment_hash,
            preimage,
            routing_fee,
            generation,
            route,
            kind,
        } = stored;
        Self {
            key,
            group,
            cycle,
            beneficiary,
            amount,
            fee,
            status,
            attempts,
            last_error,
            payment_hash,
            preimage,
            routing_fee,
            generation,
            route,
            kind,
        }
    }

    /// The status.
    pub const fn status(&self) -> AttemptStatus {
        self.status
    }
    /// Tries sent to the node so far.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }
    /// The last error.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    /// The payment hash, once known.
    pub const fn payment_hash(&self) -> Option<PaymentHash> {
        self.payment_hash
    }
    /// The preimage (hex), once paid.
    pub fn preimage(&self) -> Option<&str> {
        self.preimage.as_deref()
    }
    /// The routing fee, once paid.
    pub const fn routing_fee(&self) -> Option<Msat> {
        self.routing_fee
    }
    /// How many times its job was replaced (an operator's retry, a
    /// destination set while it waited): the generation of the job that runs
    /// it now.
    pub const fn generation(&self) -> u32 {
        self.generation
    }

    /// Where it was last sent.
    pub const fn route(&self) -> Option<&AttemptRoute> {
        self.route.as_ref()
    }

    /// Neither paid nor dead: work remains.
    pub const fn is_open(&self) -> bool {
        !matches!(self.status, AttemptStatus::Succeeded | AttemptStatus::Dead)
    }

    /// Sent to the node before (`in_flight`, `failed` or `dead`): the node
    /// must be asked how that ended before it is sent again.
    pub const fn was_sent(&self) -> bool {
        matches!(self.status, AttemptStatus::InFlight | AttemptStatus::Failed | AttemptStatus::Dead)
    }

    /// Marks the attempt handed to the node along `route` with
    /// `payment_hash`: `in_flight`, one more try. `reconciled` says the node
    /// was asked and answered that the last try failed or never arrived
    /// (only then may the route and hash change).
    ///
    /// # Errors
    /// `IllegalMove` when it succeeded or is dead (only [`PaymentAttempt::reopen`]
    /// brings a dead attempt back); `NotReconciled` when it was sent before
    /// and `reconciled` is false.
    pub fn send(
        &mut self,
        reconciled: bool,
        route: AttemptRoute,
        payment_hash: PaymentHash,
    ) -> Result<(), AttemptError> {
        self.check_sendable(reconciled, AttemptStatus::InFlight)?;
        self.status = AttemptStatus::InFlight;
        self.attempts = self.attempts.saturating_add(1);
        self.route = Some(route);
        self.payment_hash = Some(payment_hash);
        Ok(())
    }

    /// Parks a due attempt that has no usable destination:
    /// `awaiting_destination`, until one is set. Like [`Self::send`], an
    /// attempt sent before parks only once the node said the last try
    /// failed or never arrived.
    ///
    /// # Errors
    /// As [`Self::send`].
    pub fn await_destination(&mut self, reconciled: bool) -> Result<(), AttemptError> {
        self.check_sendable(reconciled, AttemptStatus::AwaitingDestination)?;
        self.status = AttemptStatus::AwaitingDestination;
        Ok(())
    }

    fn check_sendable(&self, reconciled: bool, to: AttemptStatus) -> Result<(), AttemptError> {
        if matches!(self.status, AttemptStatus::Succeeded | AttemptStatus::Dead) {
            return Err(self.illegal(to));
        }
        if self.was_sent() && !reconciled {
            return Err(AttemptError::NotReconciled);
        }
        Ok(())
    }

    /// An operator's retry of a dead payout: `failed` again, in the next
    /// generation. `failed`, not `pending`: it may have reached the node, so
    /// the next run asks the node how it ended before paying. The last error
    /// is kept until the next try.
    ///
    /// # Errors
    /// `IllegalMove` unless it is dead.
    pub fn reopen(&mut self) -> Result<u32, AttemptError> {
        if self.status != AttemptStatus::Dead {
            return Err(self.illegal(AttemptStatus::Failed));
        }
        self.status = AttemptStatus::Failed;
        self.generation = self.generation.saturating_add(1);
        Ok(self.generation)
    }

    /// A destination was set for an attempt that awaits one: a new
    /// generation, whose job sends it (the job that parked it completed, and
    /// a queue may still hold its id in a dedup window).
    ///
    /// # Errors
    /// `IllegalMove` unless it awaits a destination.
    pub fn wake(&mut self) -> Result<u32, AttemptError> {
        if self.status != AttemptStatus::AwaitingDestination {
            return Err(self.illegal(AttemptStatus::AwaitingDestination));
        }
        self.generation = self.generation.saturating_add(1);
        Ok(self.generation)
    }

    /// Records the node's proof of payment.
    ///
    /// # Errors
    /// `IllegalMove` when it already succeeded.
    pub fn succeed(
        &mut self,
        payment_hash: PaymentHash,
        preimage: String,
        routing_fee: Msat,
    ) -> Result<(), AttemptError> {
        if self.status == AttemptStatus::Succeeded {
            return Err(self.illegal(AttemptStatus::Succeeded));
        }
        self.status = AttemptStatus::Succeeded;
        self.last_error = None;
        self.payment_hash = Some(payment_hash);
        self.preimage = Some(preimage);
        self.routing_fee = Some(routing_fee);
        Ok(())
    }

    /// Records that the try in flight failed and will be retried.
    ///
    /// # Errors
    /// `IllegalMove` unless it is in flight.
    pub fn fail(&mut self, error: &str) -> Result<(), AttemptError> {
        if self.status != AttemptStatus::InFlight {
            return Err(self.illegal(AttemptStatus::Failed));
        }
        self.status = AttemptStatus::Failed;
        self.last_error = Some(error.to_owned());
        Ok(())
    }

    /// Gives the payout up: `dead`, for an operator.
    ///
    /// # Errors
    /// `IllegalMove` when it succeeded or is dead already.
    pub fn die(&mut self, error: &str) -> Result<(), AttemptError> {
        if !self.is_open() {
            return Err(self.illegal(AttemptStatus::Dead));
        }
        self.status = AttemptStatus::Dead;
        self.last_error = Some(error.to_owned());
        Ok(())
    }

    const fn illegal(&self, to: AttemptStatus) -> AttemptError {
        AttemptError::IllegalMove { from: self.status, to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: AttemptStatus) -> PaymentAttempt {
        let group = GroupId::random();
        PaymentAttempt::restore(StoredAttempt {
            key: IdempotencyKey::payout(group, 1),
            group,
            cycle: 1,
            beneficiary: MemberId::random(),
            amount: Msat::new(1_000),
            fee: Msat::ZERO,
            status,
            attempts: 0,
            last_error: None,
            payment_hash: None,
            preimage: None,
            routing_fee: None,
            generation: 0,
            route: None,
            kind: AttemptKind::Payout,
        })
    }

    const HASH: PaymentHash = PaymentHash::from_bytes([7; 32]);

    fn route() -> AttemptRoute {
        AttemptRoute::Invoice("lnbcrt1".into())
    }

    #[test]
    fn a_due_attempt_without_destination_waits_and_is_sent_later() {
        let mut a = attempt(AttemptStatus::Pending);
        a.await_destination(false).expect("pending → awaiting_destination");
        assert!(a.is_open() && !a.was_sent());
        a.send(false, route(), HASH).expect("awaiting → in_flight, nothing was sent");
        assert_eq!((a.payment_hash(), a.route()), (Some(HASH), Some(&route())));
        let mut sent = attempt(AttemptStatus::InFlight);
        assert_eq!(sent.await_destination(false), Err(AttemptError::NotReconciled));
        sent.await_destination(true).expect("the node said the last try failed");
        let mut paid = attempt(AttemptStatus::Succeeded);
        assert!(paid.await_destination(true).is_err());
    }

    #[test]
    fn a_pending_attempt_is_sent_without_asking_the_node() {
        let mut a = attempt(AttemptStatus::Pending);
        a.send(false, route(), HASH).expect("pending → in_flight");
        assert_eq!((a.status(), a.attempts()), (AttemptStatus::InFlight, 1));
    }

    #[test]
    fn an_attempt_sent_before_is_sent_again_only_once_reconciled() {
        for status in [AttemptStatus::InFlight, AttemptStatus::Failed] {
            let mut a = attempt(status);
            assert_eq!(a.send(false, route(), HASH), Err(AttemptError::NotReconciled), "{status}");
            assert_eq!(a.status(), status, "a refused move changes nothing");
            a.send(true, route(), HASH).expect("reconciled");
            assert_eq!(a.status(), AttemptStatus::InFlight);
        }
    }

    #[test]
    fn a_paid_attempt_never_moves_again() {
        let mut a = attempt(AttemptStatus::InFlight);
        a.succeed(HASH, "ab".into(), Msat::new(3)).expect("paid");
        assert_eq!(a.last_error(), None);
        assert_eq!((a.payment_hash(), a.preimage(), a.routing_fee()), (Some(HASH), Some("ab"), Some(Msat::new(3))));
        let before = a.clone();
        assert!(matches!(a.send(true, route(), HASH), Err(AttemptError::IllegalMove { .. })));
        assert!(matches!(a.succeed(HASH, "cd".into(), Msat::ZERO), Err(AttemptError::IllegalMove { .. })));
        assert!(matches!(a.fail("x"), Err(AttemptError::IllegalMove { .. })));
        assert!(matches!(a.die("x"), Err(AttemptError::IllegalMove { .. })));
        assert_eq!(a, before);
    }

    #[test]
    fn only_a_try_in_flight_fails() {
        for status in [AttemptStatus::Pending, AttemptStatus::Failed, AttemptStatus::Dead, AttemptStatus::Succeeded] {
            assert!(attempt(status).fail("no route").is_err(), "{status}");
        }
        let mut a = attempt(AttemptStatus::InFlight);
        a.fail("no route").expect("in_flight → failed");
        assert_eq!((a.status(), a.last_error()), (AttemptStatus::Failed, Some("no route")));
    }

    #[test]
    fn an_open_attempt_dies_and_a_dead_one_that_the_node_paid_succeeds() {
        for status in [AttemptStatus::Pending, AttemptStatus::InFlight, AttemptStatus::Failed] {
            let mut a = attempt(status);
            a.die("gave up").expect("open → dead");
            assert!(!a.is_open());
            assert!(a.die("again").is_err());
            a.succeed(HASH, "ab".into(), Msat::ZERO).expect("the node's word wins");
        }
    }

    #[test]
    fn a_dead_attempt_is_never_sent_even_reconciled() {
        let mut a = attempt(AttemptStatus::Dead);
        let before = a.clone();
        assert_eq!(
            a.send(true, route(), HASH),
            Err(AttemptError::IllegalMove { from: AttemptStatus::Dead, to: AttemptStatus::InFlight }),
            "a worker that lost its lease cannot reopen a dead payout"
        );
        assert_eq!(
            a.send(false, route(), HASH),
            Err(AttemptError::IllegalMove { from: AttemptStatus::Dead, to: AttemptStatus::InFlight })
        );
        assert_eq!(a, before);
    }

    #[test]
    fn only_a_dead_attempt_reopens_and_each_reopening_is_a_new_generation() {
        for status in [AttemptStatus::Pending, AttemptStatus::InFlight, AttemptStatus::Failed, AttemptStatus::Succeeded]
        {
            let mut a = attempt(status);
            assert!(matches!(a.reopen(), Err(AttemptError::IllegalMove { .. })), "{status}");
            assert_eq!((a.status(), a.generation()), (status, 0));
        }
        let mut a = attempt(AttemptStatus::InFlight);
        a.die("no route").expect("dead");
        assert_eq!(a.reopen(), Ok(1));
        assert_eq!((a.status(), a.generation(), a.last_error()), (AttemptStatus::Failed, 1, Some("no route")));
        assert_eq!(
            a.send(false, route(), HASH),
            Err(AttemptError::NotReconciled),
            "the node is asked before paying again"
        );
        a.send(true, route(), HASH).expect("reconciled");
        a.fail("no route").expect("failed");
        a.die("again").expect("dead again");
        assert_eq!(a.reopen(), Ok(2));
    }
}
