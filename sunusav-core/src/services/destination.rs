//! Where payouts go: a member's standing keysend node, and the BOLT 11
//! invoice a beneficiary submits for their pot.
//!
//! Setting either wakes the payouts that wait for one
//! (`awaiting_destination`): each is moved to a new generation and its job
//! written to the outbox in the transaction that wakes it, so it reaches the
//! queue whatever the queue kept of the job that parked it.

use std::time::SystemTime;

use serde::Serialize;

use crate::domain::access::Caller;
use crate::domain::attempt::{AttemptStatus, PaymentAttempt};
use crate::domain::group::{CycleStatus, GroupStatus};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::payout::{Bolt11, PayoutDestination};
use crate::ports::{BackendError, OutboxMessage, StoreError, Unique};

use super::event::PayoutJob;
use super::{PAYOUT_QUEUE, ServiceError, Tontine};

/// An invoice accepted for a pot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AcceptedInvoice {
    /// The cycle it pays out.
    pub cycle: u32,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// The payout amount.
    pub amount_msat: Msat,
    /// Whether the payout was waiting for it and is queued now.
    pub woke_payout: bool,
}

impl Tontine {
    /// Sets (or clears) a member's standing payout destination, and queues
    /// the member's payouts that were waiting for one.
    ///
    /// # Errors
    /// `NotFound("member")` for an id that is no group's member.
    pub async fn set_payout_destination(
        &self,
        member: MemberId,
        destination: Option<PayoutDestination>,
    ) -> Result<Vec<IdempotencyKey>, ServiceError> {
        let mut tx = self.store.begin().await?;
        if !tx.is_group_member(member).await? {
            return Err(ServiceError::NotFound("member"));
        }
        tx.set_payout_destination(member, destination).await?;
        let waiting = if destination.is_some() { tx.attempts_awaiting_destination(member).await? } else { vec![] };
        tx.commit().await?;
        tracing::info!(member = %member, set = destination.is_some(), "payout destination changed");
        let mut woken = Vec::new();
        for attempt in waiting {
            if self.wake(&attempt).await? {
                woken.push(attempt.key);
            }
        }
        self.relay_after_wake(!woken.is_empty()).await;
        Ok(woken)
    }

    /// The beneficiary of a group's current pot submits a BOLT 11 invoice for
    /// it: amount-less or exactly the payout amount, unexpired, for this
    /// node's network. It is used for the next try of the payout; a try
    /// already sent with another destination is replaced only after the node
    /// says it failed.
    ///
    /// # Errors
    /// `Destination` for an invoice that cannot pay the pot (a 4xx),
    /// `NotPayable` when the group has no pot to come, `NotFound` for an
    /// unknown group, `Store(Duplicate(PayoutInvoice))` for an invoice
    /// submitted before.
    pub async fn submit_payout_invoice(&self, id: GroupId, bolt11: &str) -> Result<AcceptedInvoice, ServiceError> {
        self.submit_payout_invoice_as(id, bolt11, None).await
    }

    /// [`Tontine::submit_payout_invoice`], checking `caller` (when set) is
    /// the beneficiary of the pot, under the group's lock.
    pub(super) async fn submit_payout_invoice_as(
        &self,
        id: GroupId,
        bolt11: &str,
        caller: Option<Caller>,
    ) -> Result<AcceptedInvoice, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        if let Some(caller) = caller {
            caller.may_submit_payout_invoice(&group)?;
        }
        if group.status() != GroupStatus::Active {
            return Err(ServiceError::NotPayable("the group has no pot to come: it is not active"));
        }
        let cycle = group.cycle();
        let attempt = tx.payment_attempt(&IdempotencyKey::payout(id, cycle)).await?;
        let amount = match &attempt {
            Some(a) if !a.is_open() => return Err(ServiceError::NotPayable("this cycle's payout is paid or dead")),
            Some(a) => a.amount,
            None if group.cycle_status() == CycleStatus::Collecting => group.payout_amounts().0,
            None => return Err(ServiceError::NotPayable("this cycle has no payout to come")),
        };
        let invoice = Bolt11::parse_for_payout(bolt11, amount, self.network, SystemTime::now())?;
        match tx.insert_payout_invoice(id, cycle, &invoice).await {
            Err(StoreError::Duplicate(Unique::PayoutInvoice)) => {
                return Err(ServiceError::NotPayable("this invoice was submitted before"));
            }
            other => other?,
        }
        tx.commit().await?;
        let waiting = attempt.filter(|a| a.status() == AttemptStatus::AwaitingDestination);
        let woke_payout = match &waiting {
            Some(a) => self.wake(a).await?,
            None => false,
        };
        self.relay_after_wake(woke_payout).await;
        tracing::info!(group = %id, cycle, payment_hash = %invoice.payment_hash(), "payout invoice submitted");
        Ok(AcceptedInvoice { cycle, payment_hash: invoice.payment_hash(), amount_msat: amount, woke_payout })
    }

    /// A member's standing payout destination.
    pub async fn payout_destination(&self, member: MemberId) -> Result<Option<PayoutDestination>, ServiceError> {
        Ok(self.store.payout_destination(member).await?)
    }

    /// Moves a waiting attempt to a new generation and writes its job to the
    /// outbox, under the group's lock; `false` when it no longer waits.
    async fn wake(&self, found: &PaymentAttempt) -> Result<bool, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(found.group).await?;
        let Some(mut attempt) = tx.payment_attempt(&found.key).await? else { return Ok(false) };
        if attempt.wake().is_err() {
            return Ok(false);
        }
        tx.update_payment_attempt(&attempt).await?;
        let job = PayoutJob::of(&attempt);
        let payload =
            serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        tx.insert_outbox(&OutboxMessage { id: 0, queue: PAYOUT_QUEUE.into(), job_id: job.job_id(), payload }).await?;
        tx.commit().await?;
        tracing::info!(payout = %attempt.key, generation = attempt.generation(), "a waiting payout has a destination");
        Ok(true)
    }

    async fn relay_after_wake(&self, woke: bool) {
        // Publish now rather than at the relay's next tick; a failure here is
        // harmless, the relay publishes the committed rows later.
        if woke && let Err(e) = self.relay_outbox(64).await {
            tracing::warn!(error = %e, "outbox relay after waking payouts failed; the relay loop retries");
        }
    }
}
