//! The crash-safe payout state machine.
//!
//! 1. Under the group's lock, load the attempt. A job of an older generation
//!    than the attempt's (an operator retried the payout since): nothing to
//!    do. `succeeded`: nothing to do. `dead`: nothing either, and the job
//!    fails for good: only an operator's retry ([`Tontine::retry_payout`])
//!    reopens a dead payout, never a worker holding a stale job. `in_flight`
//!    or `failed` (an earlier run may have died after paying, or been
//!    overtaken by another, or the node may still complete it): ask the node
//!    first, by the payment hash stored with the attempt. Otherwise
//!    (`pending` or `awaiting_destination`: never sent) choose the route: the
//!    invoice the beneficiary submitted last for this pot if it is still
//!    usable, else the member's keysend node, else none (the attempt waits
//!    as `awaiting_destination`, and setting a destination wakes it). Mark
//!    it `in_flight` with the route and its payment hash, and commit.
//! 2. Pay outside any transaction (never hold a transaction across the node).
//! 3. Record the result and advance the cycle in a new transaction.
//!
//! The node refuses a second payment of a key that succeeded or is in flight,
//! so even two workers racing on one payout never pay it twice; asking first
//! means that rule is a second guard, not the only one.
//!
//! Retries exhausted ([`Tontine::payout_exhausted`]) also ask the node before
//! marking a cycle `PayoutFailed`: a payout it completed is recorded as paid,
//! and one still in flight there is not declared failed.

use std::time::SystemTime;

use crate::domain::attempt::{AttemptError, AttemptKind, AttemptRoute, AttemptStatus, PaymentAttempt};
use crate::domain::group::PayoutApplied;
use crate::domain::ids::PaymentHash;
use crate::domain::keys::IdempotencyKey;
use crate::domain::payout::{Bolt11, PayTo, PayoutDestination};
use crate::ports::{PayError, PaymentStatus, PayoutReceipt, PayoutRequest, StoreTx};

use super::event::PayoutJob;
use super::{DomainEvent, ServiceError, Tontine};

/// What one run of a payout job did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutStep {
    /// Paid now (or found paid at the node) and recorded; the cycle advanced.
    Paid,
    /// Already recorded as paid: nothing done.
    AlreadyPaid,
    /// Failed for good: the attempt is dead and the cycle `PayoutFailed`.
    Dead(String),
    /// The job is of an older generation than its attempt: an operator
    /// retried the payout since, and the retry's job runs it. Nothing done.
    Stale,
    /// The beneficiary has no usable destination: the attempt waits as
    /// `awaiting_destination`; setting one queues it again.
    AwaitingDestination,
}

enum Claim {
    Pay(PaymentAttempt),
    Done(PayoutStep),
    Reconcile(PaymentHash),
}

impl Tontine {
    /// Runs one payout job. `Err` with [`ServiceError::is_retryable`] means:
    /// retry with backoff; the attempt's state makes the retry safe.
    pub async fn process_payout(&self, job: &PayoutJob) -> Result<PayoutStep, ServiceError> {
        let hash = match self.claim(job, None).await? {
            Claim::Done(step) => return Ok(step),
            Claim::Pay(attempt) => return self.pay(job, attempt).await,
            Claim::Reconcile(hash) => hash,
        };
        // An earlier run sent it (or tried to) and we do not know how it ended.
        match self.payments.lookup(&hash).await? {
            PaymentStatus::Succeeded(receipt) => self.record_success(job, &receipt).await,
            PaymentStatus::InFlight => Err(ServiceError::RetryLater("payment in flight at the node".into())),
            PaymentStatus::Failed(_) | PaymentStatus::Unknown => match self.claim(job, Some(hash)).await? {
                Claim::Pay(attempt) => self.pay(job, attempt).await,
                Claim::Done(step) => Ok(step),
                Claim::Reconcile(_) => Err(ServiceError::RetryLater("payout claimed concurrently".into())),
            },
        }
    }

    /// Retries exhausted: asks the node how the payment ended first.
    /// - Paid: recorded as paid, and the cycle advances.
    /// - Still in flight: left `in_flight`, the cycle stays `Completing`; the
    ///   payout sweep, finding its job dead or gone, asks the node again
    ///   until it settles. Declaring it failed could lead someone to pay it
    ///   by hand while the node completes it.
    /// - Failed, unknown, or the node cannot be asked: the attempt is marked
    ///   dead and the cycle `PayoutFailed`, unless an operator retried it
    ///   since (a job of an older generation). An operator's retry asks the
    ///   node again before paying, so this never leads to a second payment.
    pub async fn payout_exhausted(&self, job: &PayoutJob, error: &str) -> Result<(), ServiceError> {
        let attempt = self.store.payment_attempt(&job.key).await?;
        if attempt.as_ref().is_some_and(|a| a.status() == AttemptStatus::AwaitingDestination) {
            // Waiting for a member, not for a worker: setting a destination
            // queues it again.
            return Ok(());
        }
        let Some(hash) = attempt.and_then(|a| a.payment_hash()) else {
            // Never sent with a hash: the node holds nothing of it.
            return self.mark_dead(job, error).await;
        };
        match self.payments.lookup(&hash).await {
            Ok(PaymentStatus::Succeeded(receipt)) => self.record_success(job, &receipt).await.map(|_| ()),
            Ok(PaymentStatus::InFlight) => {
                tracing::error!(
                    payout = %job.key,
                    error,
                    "payout retries exhausted while the payment is in flight at the node; left in flight: \
                     the payout sweep asks the node again until it settles"
                );
                Ok(())
            }
            Ok(PaymentStatus::Failed(_) | PaymentStatus::Unknown) => self.mark_dead(job, error).await,
            Err(e) => self.mark_dead(job, &format!("{error}; the node could not be asked how it ended: {e}")).await,
        }
    }

    /// Claims the attempt for a try. `reconciled`: the node said the try
    /// sent with this hash failed or never arrived.
    async fn claim(&self, job: &PayoutJob, reconciled: Option<PaymentHash>) -> Result<Claim, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let mut attempt = tx.payment_attempt(&job.key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        if attempt.generation() > job.generation {
            return Ok(Claim::Done(PayoutStep::Stale));
        }
        match attempt.status() {
            AttemptStatus::Succeeded => return Ok(Claim::Done(PayoutStep::AlreadyPaid)),
            // Dead: a run of this generation gave it up (perhaps while this
            // one's lease was lost). Only an operator reopens it.
            AttemptStatus::Dead => {
                let why = attempt.last_error().unwrap_or("given up");
                return Ok(Claim::Done(PayoutStep::Dead(format!(
                    "the payout is dead ({why}); an operator retries it by its record"
                ))));
            }
            _ => {}
        }
        // Sent before (or being sent by a run that lost its lease): the node
        // knows how it ended, or that it never arrived. It is asked by the
        // hash the attempt was sent with; only that hash's answer counts. An
        // attempt marked sent that has no hash never reached the node with
        // one (it died before its first try and an operator reopened it).
        let is_reconciled = match attempt.payment_hash() {
            Some(hash) if attempt.was_sent() => {
                if reconciled != Some(hash) {
                    return Ok(Claim::Reconcile(hash));
                }
                true
            }
            _ => attempt.was_sent(),
        };
        let Some((route, hash)) = self.route(&mut *tx, &attempt).await? else {
            attempt.await_destination(is_reconciled)?;
            tx.update_payment_attempt(&attempt).await?;
            tx.commit().await?;
            tracing::warn!(payout = %job.key, beneficiary = %attempt.beneficiary, "payout awaits a destination");
            return Ok(Claim::Done(PayoutStep::AwaitingDestination));
        };
        match attempt.send(is_reconciled, route, hash) {
            Ok(()) => {}
            Err(AttemptError::NotReconciled) => {
                return Err(ServiceError::RetryLater("payout claimed concurrently".into()));
            }
            Err(e) => return Err(e.into()),
        }
        tx.update_payment_attempt(&attempt).await?;
        tx.commit().await?;
        Ok(Claim::Pay(attempt))
    }

    /// Where an attempt goes now, and its payment hash: the beneficiary's
    /// last submitted invoice for this pot while it can pay it, else their
    /// keysend node, else nowhere yet.
    async fn route(
        &self,
        tx: &mut dyn StoreTx,
        attempt: &PaymentAttempt,
    ) -> Result<Option<(AttemptRoute, PaymentHash)>, ServiceError> {
        // A cycle's pot may be paid to the invoice its beneficiary submitted;
        // a refund goes to the member's standing destination.
        let invoice = match attempt.kind {
            AttemptKind::Payout => tx.payout_invoice(attempt.group, attempt.cycle).await?,
            AttemptKind::Refund => None,
        };
        if let Some(text) = invoice {
            match Bolt11::parse_for_payout(&text, attempt.amount, self.network, SystemTime::now()) {
                Ok(invoice) => {
                    return Ok(Some((AttemptRoute::Invoice(invoice.as_str().to_owned()), invoice.payment_hash())));
                }
                Err(e) => tracing::warn!(payout = %attempt.key, error = %e, "the submitted invoice can no longer pay"),
            }
        }
        Ok(match tx.payout_destination(attempt.beneficiary).await? {
            Some(PayoutDestination::Keysend(node)) => {
                let hash = self.preimage_secret.keysend_preimage(&attempt.key).payment_hash();
                Some((AttemptRoute::Keysend(node), hash))
            }
            None => None,
        })
    }

    async fn pay(&self, job: &PayoutJob, attempt: PaymentAttempt) -> Result<PayoutStep, ServiceError> {
        let (Some(route), Some(payment_hash)) = (attempt.route(), attempt.payment_hash()) else {
            return Err(ServiceError::Invariant("a claimed payment attempt has no route".into()));
        };
        let pay_to = match route {
            AttemptRoute::Keysend(node) => {
                PayTo::Keysend { node: *node, preimage: self.preimage_secret.keysend_preimage(&attempt.key) }
            }
            AttemptRoute::Invoice(bolt11) => PayTo::Invoice { bolt11: bolt11.clone() },
        };
        let request = PayoutRequest {
            key: attempt.key.clone(),
            group: attempt.group,
            beneficiary: attempt.beneficiary,
            amount: attempt.amount,
            payment_hash,
            pay_to,
            policy: self.payout_policy,
        };
        match self.payments.pay(&request).await {
            Ok(receipt) => self.record_success(job, &receipt).await,
            Err(PayError::AlreadyPaid) => match self.payments.lookup(&payment_hash).await? {
                PaymentStatus::Succeeded(receipt) => self.record_success(job, &receipt).await,
                other => Err(ServiceError::RetryLater(format!("node says already paid, look-up says {other:?}"))),
            },
            Err(e @ (PayError::InTransition | PayError::Timeout)) => {
                // Left in flight: the next run asks the node before paying again.
                Err(ServiceError::RetryLater(e.to_string()))
            }
            Err(PayError::Transient(msg)) => {
                self.mark_failed(&job.key, job, &msg).await?;
                Err(ServiceError::RetryLater(msg))
            }
            Err(PayError::Permanent(msg)) => {
                self.mark_dead(job, &msg).await?;
                Ok(PayoutStep::Dead(msg))
            }
        }
    }

    async fn record_success(&self, job: &PayoutJob, receipt: &PayoutReceipt) -> Result<PayoutStep, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let mut attempt = tx.payment_attempt(&job.key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        if attempt.succeed(receipt.payment_hash, receipt.preimage.clone(), receipt.fee).is_err() {
            // Recorded as paid already.
            return Ok(PayoutStep::AlreadyPaid);
        }
        tx.update_payment_attempt(&attempt).await?;
        if attempt.kind == AttemptKind::Refund {
            // A refund leaves the group's cycle alone.
            tx.commit().await?;
            tracing::info!(refund = %job.key, "refund paid");
            return Ok(PayoutStep::Paid);
        }
        let mut group = tx.load_group(job.group).await?.ok_or(ServiceError::NotFound("group"))?;
        let applied = group.record_payout_success(job.cycle)?;
        let told = DomainEvent::payout_succeeded(
            job.group,
            job.cycle,
            attempt.beneficiary,
            attempt.amount,
            receipt.payment_hash,
        );
        super::notify::emit(&mut *tx, self.events_on(), told).await?;
        if let PayoutApplied::NextCycle(_) = applied {
            group.open_cycle_at(self.now_ms());
            // Balances that cover a contribution pay the new cycle at once.
            let members = group.members().to_vec();
            super::money::apply_balances(&mut *tx, &mut group, &members, self.events_on()).await?;
            super::timers::schedule_cycle_timers(&mut *tx, self.timers.is_some(), &group, self.now_ms()).await?;
        }
        if let PayoutApplied::Finished = applied {
            // The `cover` policy's held deposits come back to the balances.
            super::money::return_deposits(&mut *tx, &group).await?;
        }
        tx.save_group(&group).await?;
        tx.commit().await?;
        tracing::info!(payout = %job.key, ?applied, "payout recorded");
        Ok(PayoutStep::Paid)
    }

    async fn mark_failed(&self, key: &IdempotencyKey, job: &PayoutJob, error: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let mut attempt = tx.payment_attempt(key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        // Only a try in flight of this generation fails; any other was moved
        // on by another run.
        if attempt.generation() <= job.generation && attempt.fail(error).is_ok() {
            tx.update_payment_attempt(&attempt).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn mark_dead(&self, job: &PayoutJob, error: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let mut attempt = tx.payment_attempt(&job.key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        if attempt.generation() > job.generation || attempt.die(error).is_err() {
            // Retried by an operator since (a job of the new generation runs
            // it), or paid or dead already.
            return Ok(());
        }
        tx.update_payment_attempt(&attempt).await?;
        if attempt.kind == AttemptKind::Refund {
            tx.commit().await?;
            tracing::error!(refund = %job.key, error, "refund dead; an operator retries it");
            return Ok(());
        }
        let mut group = tx.load_group(job.group).await?.ok_or(ServiceError::NotFound("group"))?;
        group.record_payout_failure(job.cycle)?;
        let told =
            DomainEvent::payout_failed(job.group, job.cycle, attempt.beneficiary, attempt.amount, attempt.generation());
        super::notify::emit(&mut *tx, self.events_on(), told).await?;
        tx.save_group(&group).await?;
        tx.commit().await?;
        tracing::error!(payout = %job.key, error, "payout dead; the cycle needs an operator");
        Ok(())
    }
}
