//! Domain events out: what happened to a group, told to the host.
//!
//! Each event is written to the outbox in the transaction of the change it
//! tells of, so a committed change produces its event, and a change rolled
//! back none. Its id is derived from the change (`contribution_recorded:<payment
//! hash>`, `cycle_completed:<group>:<cycle>`, …): the change is made once
//! (a replay returns before writing), the relay publishes the row as the
//! job `event:<id>` (the queue's id dedup absorbs a second publication after
//! a crash), and a subscriber that receives the event twice (a retry after
//! a lost answer) tells by the id. Exactly once per subscriber, from the
//! subscriber's side.
//!
//! Events are written only when the [`Tontine`](super::Tontine) has an
//! events queue ([`Tontine::with_events`](super::Tontine::with_events)); the
//! queue's consumer delivers them ([`crate::runtime::EventHandler`] with an
//! [`EventSubscriber`](crate::runtime::EventSubscriber)).

use serde::{Deserialize, Serialize};

use crate::domain::group::PayoutDue;
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::ports::{BackendError, Backoff, JobOptions, OutboxMessage, StoreTx};

use super::ServiceError;

/// Name of the events queue.
pub const EVENTS_QUEUE: &str = "events";

/// Options of an event delivery job: 12 attempts, backoff from 1 s capped at
/// 5 min with jitter (about half an hour), then the dead letters.
pub const EVENT_JOB_OPTIONS: JobOptions = JobOptions {
    priority: 0,
    delay: std::time::Duration::ZERO,
    max_attempts: 12,
    backoff: Backoff { base: std::time::Duration::from_secs(1), max: std::time::Duration::from_mins(5), jitter: true },
};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A member's contribution to a cycle was recorded (paid by an invoice,
    /// or from the member's balance).
    ContributionRecorded,
    /// Every member paid the cycle: its payout is due.
    CycleCompleted,
    /// A cycle's pot reached its beneficiary.
    PayoutSucceeded,
    /// A cycle's payout is dead (a permanent failure, or its retries used
    /// up): an operator acts.
    PayoutFailed,
    /// A member had not paid the cycle when its grace period ended (a
    /// scheduled group); the cycle waits for them.
    MemberLate,
    /// A late member owes a fine (the `fine` policy), asked with their
    /// contribution.
    FineIssued,
    /// A reminder before the cycle is due, to a member who has not paid.
    ReminderDue,
    /// An auctioned cycle's bidding closed: its winner and payout.
    AuctionClosed,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [Self] = &[
        Self::ContributionRecorded,
        Self::CycleCompleted,
        Self::PayoutSucceeded,
        Self::PayoutFailed,
        Self::MemberLate,
        Self::FineIssued,
        Self::ReminderDue,
        Self::AuctionClosed,
    ];

    /// The stable name (the `type` of a delivered event).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ContributionRecorded => "contribution_recorded",
            Self::CycleCompleted => "cycle_completed",
            Self::PayoutSucceeded => "payout_succeeded",
            Self::PayoutFailed => "payout_failed",
            Self::MemberLate => "member_late",
            Self::FineIssued => "fine_issued",
            Self::ReminderDue => "reminder_due",
            Self::AuctionClosed => "auction_closed",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// One event, as delivered (the JSON body of a delivery).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DomainEvent {
    /// Unique per event, derived from the change (a subscriber's dedup key,
    /// and the `webhook-id` of a Standard Webhooks delivery).
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// The member it concerns: the payer of a contribution, the beneficiary
    /// of a payout; none for a cycle.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub member: Option<MemberId>,
    /// The amount: the contribution, the pot paid (less the fee).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount_msat: Option<Msat>,
    /// The contribution's or the payout's payment hash.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_hash: Option<PaymentHash>,
    /// When the change was committed, unix ms (the writer's clock).
    pub at_ms: u64,
}

impl DomainEvent {
    fn new(kind: EventKind, id: String, group: GroupId, cycle: u32) -> Self {
        Self {
            id,
            kind,
            group,
            cycle,
            member: None,
            amount_msat: None,
            payment_hash: None,
            at_ms: super::money::now_ms(),
        }
    }

    /// A contribution recorded: `contribution_recorded:<payment hash>`.
    pub fn contribution(group: GroupId, cycle: u32, member: MemberId, amount: Msat, hash: PaymentHash) -> Self {
        Self {
            member: Some(member),
            amount_msat: Some(amount),
            payment_hash: Some(hash),
            ..Self::new(EventKind::ContributionRecorded, format!("contribution_recorded:{hash}"), group, cycle)
        }
    }

    /// A cycle completed: `cycle_completed:<group>:<cycle>`.
    pub fn cycle_completed(due: &PayoutDue) -> Self {
        Self {
            member: Some(due.beneficiary),
            amount_msat: Some(due.amount),
            ..Self::new(
                EventKind::CycleCompleted,
                format!("cycle_completed:{}:{}", due.group, due.cycle),
                due.group,
                due.cycle,
            )
        }
    }

    /// A payout paid: `payout_succeeded:<group>:<cycle>`.
    pub fn payout_succeeded(
        group: GroupId,
        cycle: u32,
        beneficiary: MemberId,
        amount: Msat,
        hash: PaymentHash,
    ) -> Self {
        Self {
            member: Some(beneficiary),
            amount_msat: Some(amount),
            payment_hash: Some(hash),
            ..Self::new(EventKind::PayoutSucceeded, format!("payout_succeeded:{group}:{cycle}"), group, cycle)
        }
    }

    /// A payout dead, in its `generation` (an operator's retry that dies
    /// again is another event): `payout_failed:<group>:<cycle>:<generation>`.
    pub fn payout_failed(group: GroupId, cycle: u32, beneficiary: MemberId, amount: Msat, generation: u32) -> Self {
        Self {
            member: Some(beneficiary),
            amount_msat: Some(amount),
            ..Self::new(EventKind::PayoutFailed, format!("payout_failed:{group}:{cycle}:{generation}"), group, cycle)
        }
    }

    /// A member late for a cycle of a scheduled group:
    /// `member_late:<group>:<cycle>:<member>`, with what the member now owes
    /// (the contribution, and their fine under the `fine` policy) and
    /// `at_ms` the grace end that passed.
    pub fn member_late(group: &crate::domain::group::Group, member: MemberId, grace_end_ms: u64) -> Self {
        Self {
            member: Some(member),
            amount_msat: Some(group.owed(member)),
            at_ms: grace_end_ms,
            ..Self::new(
                EventKind::MemberLate,
                format!("member_late:{}:{}:{member}", group.id(), group.cycle()),
                group.id(),
                group.cycle(),
            )
        }
    }

    /// A fine issued to a late member: `fine_issued:<group>:<cycle>:<member>`,
    /// with the fine and `at_ms` the grace end that passed.
    pub fn fine_issued(group: &crate::domain::group::Group, member: MemberId, fine: Msat, grace_end_ms: u64) -> Self {
        Self {
            member: Some(member),
            amount_msat: Some(fine),
            at_ms: grace_end_ms,
            ..Self::new(
                EventKind::FineIssued,
                format!("fine_issued:{}:{}:{member}", group.id(), group.cycle()),
                group.id(),
                group.cycle(),
            )
        }
    }

    /// An auctioned cycle's close: `auction_closed:<group>:<cycle>`, with the
    /// winner and the payout they bid (the whole pot when nobody bid).
    pub fn auction_closed(group: &crate::domain::group::Group, result: &crate::domain::auction::AuctionResult) -> Self {
        Self {
            member: Some(result.winner),
            amount_msat: Some(result.payout),
            ..Self::new(
                EventKind::AuctionClosed,
                format!("auction_closed:{}:{}", group.id(), group.cycle()),
                group.id(),
                group.cycle(),
            )
        }
    }

    /// A reminder to a member who has not paid, `offset_ms` before the
    /// cycle is due: `reminder_due:<group>:<cycle>:<member>:<offset ms>`, with
    /// what the member owes and `at_ms` the reminder's time.
    pub fn reminder_due(group: &crate::domain::group::Group, member: MemberId, offset_ms: u64, at_ms: u64) -> Self {
        Self {
            member: Some(member),
            amount_msat: Some(group.owed(member)),
            at_ms,
            ..Self::new(
                EventKind::ReminderDue,
                format!("reminder_due:{}:{}:{member}:{offset_ms}", group.id(), group.cycle()),
                group.id(),
                group.cycle(),
            )
        }
    }

    /// The queue job id of its delivery: `event:<id>`.
    ///
    /// # Errors
    /// `Invariant` for an id no key can hold (never for the forms above).
    pub fn job_id(&self) -> Result<IdempotencyKey, ServiceError> {
        IdempotencyKey::parse(format!("event:{}", self.id))
            .map_err(|e| ServiceError::Invariant(format!("event id {}: {e}", self.id)))
    }
}

/// Writes `event` to the outbox when `on` (the application has an events
/// queue), in the caller's transaction.
pub(super) async fn emit(tx: &mut dyn StoreTx, on: bool, event: DomainEvent) -> Result<(), ServiceError> {
    if !on {
        return Ok(());
    }
    let job_id = event.job_id()?;
    let payload = serde_json::to_vec(&event).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
    tx.insert_outbox(&OutboxMessage { id: 0, queue: EVENTS_QUEUE.into(), job_id, payload }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_serializes_with_its_type_and_without_absent_fields() {
        let group = GroupId::random();
        let e = DomainEvent::payout_failed(group, 2, MemberId::random(), Msat::new(9_900), 1);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "payout_failed");
        assert_eq!(v["id"], format!("payout_failed:{group}:2:1"));
        assert!(v.get("payment_hash").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<DomainEvent>(v).unwrap(), e);
        assert_eq!(e.job_id().unwrap().as_str(), format!("event:payout_failed:{group}:2:1"));
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
    }
}
