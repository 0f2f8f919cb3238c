//! A payout's payment attempt and its lifecycle.
//!
//! ```text
//! pending ──send──▶ in_flight ──succeed──▶ succeeded
//!                     │  ▲
//!                fail │  │ send (after the node says the last try failed or never arrived)
//!                     ▼  │
//!                    failed ──die──▶ dead ──send (reconciled: an operator's retry)──▶ in_flight
//! ```
//!
//! - `send` marks the attempt as handed to the node, committed *before* the
//!   node is called. An attempt sent before (`in_flight`, `failed`, `dead`)
//!   may be sent again only once the node said how the last try ended
//!   (`reconciled`): it may have paid.
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

/// Status of a payment attempt: `pending → in_flight → succeeded`, or `failed`
/// (retryable) and `dead` (given up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Created with the cycle's completion; not sent.
    Pending,
    /// Committed as sent to the node: before paying again, ask the node.
    InFlight,
    /// Paid.
    Succeeded,
    /// The last try failed; will be retried.
    Failed,
    /// Given up; the cycle is `PayoutFailed`.
    Dead,
}

str_enum!(AttemptStatus {
    Pending => "pending",
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
}

impl PaymentAttempt {
    /// A pending attempt for a due payout.
    pub fn pending(due: &PayoutDue) -> Self {
        Self {
            key: due.key.clone(),
            group: due.group,
            cycle: due.cycle,
            beneficiary: due.beneficiary,
            amount: due.amount,
            fee: due.fee,
            status: AttemptStatus::Pending,
            attempts: 0,
            last_error: None,
            payment_hash: None,
            preimage: None,
            routing_fee: None,
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

    /// Neither paid nor dead: work remains.
    pub const fn is_open(&self) -> bool {
        !matches!(self.status, AttemptStatus::Succeeded | AttemptStatus::Dead)
    }

    /// Sent to the node before (`in_flight`, `failed` or `dead`): the node
    /// must be asked how that ended before it is sent again.
    pub const fn was_sent(&self) -> bool {
        matches!(self.status, AttemptStatus::InFlight | AttemptStatus::Failed | AttemptStatus::Dead)
    }

    /// Marks the attempt handed to the node: `in_flight`, one more try.
    /// `reconciled` says the node was asked and answered that the last try
    /// failed or never arrived.
    ///
    /// # Errors
    /// `IllegalMove` when it succeeded; `NotReconciled` when it was sent
    /// before and `reconciled` is false.
    pub fn send(&mut self, reconciled: bool) -> Result<(), AttemptError> {
        if self.status == AttemptStatus::Succeeded {
            return Err(self.illegal(AttemptStatus::InFlight));
        }
        if self.was_sent() && !reconciled {
            return Err(AttemptError::NotReconciled);
        }
        self.status = AttemptStatus::InFlight;
        self.attempts = self.attempts.saturating_add(1);
        Ok(())
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
        })
    }

    const HASH: PaymentHash = PaymentHash::from_bytes([7; 32]);

    #[test]
    fn a_pending_attempt_is_sent_without_asking_the_node() {
        let mut a = attempt(AttemptStatus::Pending);
        a.send(false).expect("pending → in_flight");
        assert_eq!((a.status(), a.attempts()), (AttemptStatus::InFlight, 1));
    }

    #[test]
    fn an_attempt_sent_before_is_sent_again_only_once_reconciled() {
        for status in [AttemptStatus::InFlight, AttemptStatus::Failed, AttemptStatus::Dead] {
            let mut a = attempt(status);
            assert_eq!(a.send(false), Err(AttemptError::NotReconciled), "{status}");
            assert_eq!(a.status(), status, "a refused move changes nothing");
            a.send(true).expect("reconciled");
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
        assert!(matches!(a.send(true), Err(AttemptError::IllegalMove { .. })));
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
}
