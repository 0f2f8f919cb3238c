//! Whole lives of scheduled groups on a clock the test moves by hand, run
//! through the services, the timers queue and the events queue of any
//! adapters: each cycle's reminders fire, the members who are on time pay,
//! the deadline fires, the late members are told (and fined, under the
//! `fine` policy) and pay what they owe, and the pot is paid out. At the
//! end: the group finished, each member received the pot exactly once (in
//! the drawn order, checked against its proof, for a drawn group), no
//! payout was paid twice, every msat members paid is a payout, a fee or a
//! balance, and each event arrived once.
//!
//! Timers are published with the delay left by the test's clock; the test
//! promotes those whose time came on its clock (a queue's admin
//! operation), reserves them and runs them through
//! [`crate::runtime::TimerHandler`], as the timers pool does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::attempt::AttemptKind;
use crate::domain::draw::verify;
use crate::domain::group::{GroupPolicy, GroupSpec, GroupStatus};
use crate::domain::ids::{GroupId, MemberId};
use crate::domain::money::Msat;
use crate::domain::payout::PayoutDestination;
use crate::domain::rules::{FineTo, LatePolicy, PayoutOrder, Reminders};
use crate::domain::schedule::{Period, Schedule};
use crate::memory::SimulatedNode;
use crate::ports::{AttemptStatus, ConsumerExt, JobState, Queue, Store};
use crate::runtime::{JobHandler, TimerHandler};
use crate::services::{
    DomainEvent, EventStatus, LightningEvent, ManualClock, PayoutJob, SettleOutcome, Tontine, WebhookJob,
};

const DAY: u64 = 86_400_000;
const CONTRIBUTION: u64 = 10_000;
const LEASE: Duration = Duration::from_secs(30);

/// A scheduled group's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledLife {
    /// Members (2 or more).
    pub members: usize,
    /// The late policy.
    pub late: LatePolicy,
    /// The payout order.
    pub order: PayoutOrder,
    /// `late[c][m]`: member `m` pays cycle `c + 1` only after its deadline.
    pub late_members: Vec<Vec<bool>>,
}

impl ScheduledLife {
    /// A life where member `m` is late in cycle `c` when `(c + m) % 3 == 0`
    /// (so some cycles have late members, some none).
    pub fn every_third(members: usize, late: LatePolicy, order: PayoutOrder) -> Self {
        let late_members = (0..members).map(|c| (0..members).map(|m| (c + m) % 3 == 0).collect()).collect();
        Self { members, late, order, late_members }
    }
}

/// The queues a life runs on (each with its own name: payouts, webhooks,
/// timers, events).
#[derive(Clone)]
pub struct LifeQueues {
    /// The payout queue.
    pub payouts: Arc<dyn Queue>,
    /// The webhook queue.
    pub webhooks: Arc<dyn Queue>,
    /// The timers queue.
    pub timers: Arc<dyn Queue>,
    /// The events queue.
    pub events: Arc<dyn Queue>,
}

/// What a life did, for a caller's further checks.
#[derive(Clone, Debug)]
pub struct LifeReport {
    /// The group.
    pub group: GroupId,
    /// The beneficiaries, in cycle order.
    pub beneficiaries: Vec<MemberId>,
    /// The events delivered, by id.
    pub events: BTreeMap<String, DomainEvent>,
    /// What the members paid, in msat.
    pub paid_in: u128,
    /// The fines paid, in msat.
    pub fines: u128,
    /// How many times a member was late (a member whose balance paid the
    /// cycle when it opened is not).
    pub late: usize,
}

/// Runs `life` on `store` and `queues` and checks its invariants.
///
/// # Panics
/// When an invariant breaks (the message says which).
#[allow(clippy::too_many_lines)]
pub async fn run_scheduled_life(store: Arc<dyn Store>, queues: LifeQueues, life: &ScheduledLife) -> LifeReport {
    let start = now_ms_rounded();
    let clock = ManualClock::at(start);
    let node = SimulatedNode::new();
    let t = Tontine::new(store, Arc::new(node.clone()), Arc::clone(&queues.payouts), Arc::clone(&queues.webhooks))
        .with_timers(Arc::clone(&queues.timers))
        .with_events(Arc::clone(&queues.events))
        .with_clock(Arc::new(clock.clone()));
    let members: Vec<MemberId> = (0..life.members).map(|_| MemberId::random()).collect();
    // Weekly from a week ahead, a day of grace, reminded two days before.
    let schedule = Schedule::new(start + 7 * DAY, Period::Weeks(1), DAY).expect("schedule");
    let spec = GroupSpec {
        contribution: Msat::new(CONTRIBUTION),
        fee_bps: 200,
        members: members.clone(),
        policy: GroupPolicy {
            late: life.late,
            order: life.order,
            reminders_ms: Reminders::new(vec![2 * DAY]).expect("reminders"),
            ..GroupPolicy::default()
        },
        organizer: None,
        schedule: Some(schedule),
    };
    let id = t.create_group(spec).await.expect("create").id();
    for m in &members {
        t.set_payout_destination(*m, Some(PayoutDestination::Keysend(SimulatedNode::payee_node())))
            .await
            .expect("destination");
    }
    let started = t.start_group(id).await.expect("start");
    let commitment = started.draw_proof().map(|p| p.commitment);
    assert_eq!(commitment.is_some(), life.order == PayoutOrder::Draw, "a drawn group publishes a commitment");
    t.relay_outbox(100).await.expect("relay");

    let mut paid_in: u128 = 0;
    let mut late_pairs = 0usize;
    let mut late_by_cycle: Vec<usize> = Vec::new();
    let mut paid_from_balance = 0usize;
    // An auctioned life: each cycle's result, recomputed from the bids placed.
    let mut expected_auctions: Vec<crate::domain::auction::AuctionResult> = Vec::new();
    let fine = life.late.fine(Msat::new(CONTRIBUTION));
    let mut n = 0u64;
    for cycle in 1..=u32::try_from(life.members).expect("members") {
        let due = schedule.due_ms(cycle).expect("due");
        let row = &life.late_members[usize::try_from(cycle - 1).expect("cycle")];
        // The reminder, two days before the due time.
        clock.set(due - 2 * DAY);
        fire_due_timers(&t, &queues.timers).await;
        if let PayoutOrder::Auction(rules) = life.order {
            clock.advance(3_600_000);
            expected_auctions.push(bid(&t, id, rules, &members, &expected_auctions, cycle).await);
        }
        // The members on time pay an hour before the due time. A member whose
        // balance (dividends of earlier auctions) covers the contribution
        // paid it from there when the cycle opened.
        clock.set(due - 3_600_000);
        let opened = t.store().group(id).await.expect("read").expect("group");
        let from_balance: BTreeSet<MemberId> = opened.paid().keys().copied().collect();
        paid_from_balance += from_balance.len();
        for (m, member) in members.iter().enumerate() {
            if !row[m] && !from_balance.contains(member) {
                paid_in += pay(&t, &queues.webhooks, id, *member, &mut n, true).await;
            }
        }
        // The due time: an auction closes (a cycle everyone paid completes).
        clock.set(due);
        fire_due_timers(&t, &queues.timers).await;
        if let Some(expected) = expected_auctions.last() {
            let g = t.store().group(id).await.expect("read").expect("group");
            assert_eq!(g.beneficiary(), Some(expected.winner), "cycle {cycle}: the auction's winner");
            let late = crate::domain::auction::Bid { member: expected.winner, payout: Msat::new(1), at_ms: due };
            let refused = t.place_bid(id, late.member, late.payout).await;
            assert!(
                matches!(
                    refused,
                    Err(crate::services::ServiceError::Bid(crate::domain::group::BidError::BiddingClosed))
                ),
                "cycle {cycle}: a bid after the close: {refused:?}"
            );
        }
        // The grace period ends: the deadline tells the others late.
        clock.set(due + DAY + 1);
        fire_due_timers(&t, &queues.timers).await;
        let g = t.store().group(id).await.expect("read").expect("group");
        let expected_late: BTreeSet<MemberId> = members
            .iter()
            .enumerate()
            .filter(|(m, member)| row[*m] && !from_balance.contains(member))
            .map(|(_, member)| *member)
            .collect();
        assert_eq!(g.late().keys().copied().collect::<BTreeSet<_>>(), expected_late, "cycle {cycle}: told late");
        assert!(g.late().values().all(|f| *f == fine), "cycle {cycle}: each late member owes the fine: {:?}", g.late());
        late_pairs += expected_late.len();
        late_by_cycle.push(expected_late.len());
        // A deadline delivered again tells no one twice.
        let again = crate::services::TimerJob::deadline(&g).expect("deadline");
        assert_eq!(
            t.run_timer(&again, t.now_ms()).await.expect("deadline again"),
            crate::services::DeadlineOutcome::Nothing,
            "cycle {cycle}: a second run of the deadline"
        );
        // The late members pay what they owe, a few hours later; under
        // `cover`, one whose deposit paid the contribution repays the debt.
        clock.advance(3_600_000);
        let deposit = if cycle == 1 { life.late.deposit().get() } else { 0 };
        for (m, member) in members.iter().enumerate() {
            if row[m] && !from_balance.contains(member) {
                let covered = g.paid().contains_key(member);
                assert_eq!(
                    covered,
                    cycle > 1 && matches!(life.late, LatePolicy::Cover(_)),
                    "cycle {cycle}: a late member's held deposit covers them under `cover` only, from cycle 2"
                );
                if !covered {
                    assert_eq!(
                        g.owed(*member),
                        Msat::new(CONTRIBUTION + fine.get() + deposit),
                        "cycle {cycle}: what a late member owes"
                    );
                }
                // A covered member's balance (an auction's dividend) may
                // have repaid the debt already: nothing left to invoice.
                if covered && debt(&t, id, *member).await == 0 {
                    continue;
                }
                paid_in += pay(&t, &queues.webhooks, id, *member, &mut n, !covered).await;
            }
        }
        run_payouts(&t, &queues.payouts).await;
        let g = t.store().group(id).await.expect("read").expect("group");
        let moved_on = g.cycle() > cycle || g.status() == GroupStatus::Finished;
        assert!(moved_on, "cycle {cycle} paid out: {:?} {:?}", g.cycle(), g.cycle_status());
    }

    // The group finished; each member received the pot once.
    let g = t.store().group(id).await.expect("read").expect("group");
    assert_eq!(g.status(), GroupStatus::Finished);
    let attempts: Vec<_> = t
        .store()
        .payment_attempts(id)
        .await
        .expect("attempts")
        .into_iter()
        .filter(|a| a.kind == AttemptKind::Payout)
        .collect();
    assert_eq!(attempts.len(), life.members, "one payout per cycle");
    assert!(attempts.iter().all(|a| a.status() == AttemptStatus::Succeeded), "every payout paid");
    assert!(node.max_times_paid() <= 1, "a payout paid twice");
    let mut by_cycle = attempts.clone();
    by_cycle.sort_by_key(|a| a.cycle);
    let beneficiaries: Vec<MemberId> = by_cycle.iter().map(|a| a.beneficiary).collect();
    let once: BTreeSet<_> = beneficiaries.iter().copied().collect();
    assert_eq!(once, members.iter().copied().collect(), "each member receives the pot exactly once");
    assert_eq!(g.payout_order(), &beneficiaries[..], "the payout order is the beneficiaries'");
    let mut commissions: u128 = 0;
    let mut dividends: u128 = 0;
    match life.order {
        PayoutOrder::Fixed => assert_eq!(beneficiaries, members, "the listed order"),
        PayoutOrder::Draw => {
            let proof = g.draw_proof().expect("a drawn group's proof");
            assert_eq!(Some(proof.commitment), commitment, "the commitment published at start");
            assert_eq!(verify(&members, &proof).expect("the proof verifies"), beneficiaries, "recomputed");
        }
        PayoutOrder::Auction(_) => {
            let ledger = t.group_ledger(id).await.expect("ledger");
            for (a, expected) in by_cycle.iter().zip(&expected_auctions) {
                assert_eq!(a.beneficiary, expected.winner, "cycle {}: the winner is paid", a.cycle);
                let pot_fines = match life.late.fines_to() {
                    Some(FineTo::Pot) => {
                        u128::from(fine.get()) * late_by_cycle[usize::try_from(a.cycle - 1).unwrap_or(0)] as u128
                    }
                    _ => 0,
                };
                assert_eq!(
                    u128::from(a.amount.get()),
                    u128::from(expected.payout.get()) + pot_fines,
                    "cycle {}: the bid",
                    a.cycle
                );
                for (member, share) in &expected.dividends {
                    let credited = ledger.entries.iter().any(|e| {
                        e.reason == crate::domain::ledger::LedgerReason::Dividend
                            && e.cycle == a.cycle
                            && e.member == *member
                            && e.amount == *share
                    });
                    assert!(credited, "cycle {}: {member}'s dividend of {share}", a.cycle);
                }
                commissions += u128::from(expected.commission.get());
                dividends += expected.dividends.iter().map(|(_, d)| u128::from(d.get())).sum::<u128>();
            }
            let credited: u128 = ledger
                .entries
                .iter()
                .filter(|e| e.reason == crate::domain::ledger::LedgerReason::Dividend)
                .map(|e| u128::from(e.amount.get()))
                .sum();
            assert_eq!(credited, dividends, "every dividend credited once");
        }
    }

    // Money: what members paid = payouts + fees + balances (+ released).
    let fines = u128::from(fine.get()) * late_pairs as u128;
    let out: u128 = attempts.iter().map(|a| u128::from(a.amount.get()) + u128::from(a.fee.get())).sum();
    let acc = t.accounting(id).await.expect("accounting");
    assert!(acc.balanced(), "received = contributions + balances + released: {acc:?}");
    assert_eq!(acc.received, paid_in, "every msat paid is on record");
    assert_eq!(acc.deposits, 0, "the held deposits came back to the balances when the group finished");
    assert_eq!(paid_in, out + acc.balances + acc.released, "paid in = payouts + fees + balances + released");
    if matches!(life.late, LatePolicy::Cover(_)) {
        // Every debt was repaid: each member's whole deposit is back on their balance.
        let ledger = t.group_ledger(id).await.expect("ledger");
        for m in &members {
            let balance = ledger.balances.iter().find(|b| b.member == *m).map_or(0, |b| b.amount.get());
            assert!(balance >= life.late.deposit().get(), "{m}'s deposit is back on their balance: {balance}");
        }
    }
    let pots = u128::from(CONTRIBUTION) * (life.members * life.members) as u128;
    let fees: u128 = attempts.iter().map(|a| u128::from(a.fee.get())).sum();
    let base_fees = (u128::from(CONTRIBUTION) * life.members as u128 * 200 / 10_000) * life.members as u128;
    match life.late.fines_to() {
        Some(FineTo::Organizer) => assert_eq!(fees, base_fees + commissions + fines, "the fines went to the fee"),
        _ => assert_eq!(fees, base_fees + commissions, "the fee is the pot's and the auction's commission"),
    }
    assert_eq!(out + dividends, pots + fines, "the pots and the fines left as payouts, fees and dividends");

    // Events: each once, and as many as the life called for.
    t.relay_outbox(1_000).await.expect("relay");
    let events = drain_events(&queues.events).await;
    let count = |kind: &str| events.values().filter(|e| e.kind.as_str() == kind).count();
    assert_eq!(count("member_late"), late_pairs, "one member_late per late member and cycle");
    let fine_events = if fine.is_zero() { 0 } else { late_pairs };
    assert_eq!(count("fine_issued"), fine_events, "one fine_issued per fine");
    assert_eq!(
        count("reminder_due"),
        life.members * life.members - paid_from_balance,
        "each member reminded each cycle, but one whose balance paid it when it opened"
    );
    assert_eq!(count("payout_succeeded"), life.members, "one payout_succeeded per cycle");
    assert_eq!(count("contribution_recorded"), life.members * life.members, "one per contribution");
    let auctions = if matches!(life.order, PayoutOrder::Auction(_)) { life.members } else { 0 };
    assert_eq!(count("auction_closed"), auctions, "one auction_closed per auctioned cycle");
    LifeReport { group: id, beneficiaries, events, paid_in, fines, late: late_pairs }
}

/// The eligible members bid on `cycle`'s pot: the `i`-th of them asks the
/// pot less `(i + 1)/(eligible + 1)` of the largest discount, every other
/// one bids twice (the second, higher, bid counts), and the first eligible
/// member of an odd cycle does not bid. Returns the result the close must
/// reach, computed by the pure rules from the bids placed.
async fn bid(
    t: &Tontine,
    id: GroupId,
    rules: crate::domain::auction::AuctionRules,
    members: &[MemberId],
    before: &[crate::domain::auction::AuctionResult],
    cycle: u32,
) -> crate::domain::auction::AuctionResult {
    let g = t.store().group(id).await.expect("read").expect("group");
    let eligible: Vec<MemberId> = members.iter().copied().filter(|m| !before.iter().any(|r| r.winner == *m)).collect();
    assert_eq!(g.eligible(), eligible, "cycle {cycle}: who may bid");
    let pot = g.auction_pot();
    let span = pot.get() - rules.floor(pot).get();
    let mut placed = Vec::new();
    let count = eligible.len() as u64;
    for (i, member) in eligible.iter().enumerate() {
        if i == 0 && cycle % 2 == 1 {
            continue;
        }
        let i = i as u64;
        let ask = Msat::new(pot.get() - span * (i + 1) / (count + 1));
        placed.push(t.place_bid(id, *member, ask).await.expect("bid"));
        if i % 2 == 1 {
            // Rebids higher: the latest bid counts.
            placed.push(t.place_bid(id, *member, Msat::new(ask.get() + 1)).await.expect("rebid"));
        }
    }
    crate::domain::auction::close(rules, pot, members, &eligible, &placed).expect("the rules close the bids placed")
}

/// What `member` still owes of what their deposit covered (the `cover` policy).
async fn debt(t: &Tontine, id: GroupId, member: MemberId) -> i128 {
    use crate::domain::ledger::LedgerReason;
    let ledger = t.group_ledger(id).await.expect("ledger");
    ledger
        .entries
        .iter()
        .filter(|e| e.member == member)
        .map(|e| match e.reason {
            LedgerReason::Covered => i128::from(e.amount.get()),
            LedgerReason::DepositRefilled => -i128::from(e.amount.get()),
            _ => 0,
        })
        .sum()
}

/// Now, rounded down to the second (a life's times read better).
fn now_ms_rounded() -> u64 {
    use crate::services::Clock;
    crate::services::SystemClock.now_ms() / 1_000 * 1_000
}

/// Promotes the timers whose time came on the test's clock, then runs every
/// due one as the timers pool does.
async fn fire_due_timers(t: &Tontine, timers: &Arc<dyn Queue>) {
    t.relay_outbox(100).await.expect("relay");
    let now = t.now_ms();
    for job in timers.list(JobState::Delayed, 0, 1_000).await.expect("list delayed") {
        let timer: crate::services::TimerJob = serde_json::from_slice(&job.payload).expect("timer payload");
        if timer.at_ms <= now {
            timers.promote(&job.id).await.expect("promote");
        }
    }
    let handler = TimerHandler::new(t.clone());
    while let Some(job) = timers.reserve(LEASE).await.expect("reserve") {
        handler.handle(&job).await.expect("the timer runs");
        timers.ack(&job.id, &job.token).await.expect("ack");
    }
}

/// The member pays a fresh invoice for what they owe (a contribution, or
/// a debt when `contribution` is false); the node's settlement arrives as a
/// webhook, run through the webhook queue. Returns what was paid.
async fn pay(
    t: &Tontine,
    webhooks: &Arc<dyn Queue>,
    id: GroupId,
    member: MemberId,
    n: &mut u64,
    contribution: bool,
) -> u128 {
    let invoice = t.issue_invoice(id, member).await.expect("invoice");
    *n += 1;
    let event = LightningEvent {
        payment_hash: invoice.payment_hash,
        status: EventStatus::Settled,
        amount_msat: invoice.amount,
        // Unique across lives that share a store.
        event_id: Some(format!("scheduled-life-{id}-{n}")),
    };
    let body = serde_json::to_vec(&event).expect("json");
    let key = crate::domain::keys::IdempotencyKey::webhook(event.event_id.as_deref(), &body);
    t.ingest_webhook(key, &body, event).await.expect("ingest");
    let mut settled = 0;
    while let Some(job) = webhooks.reserve(LEASE).await.expect("reserve") {
        let webhook: WebhookJob = serde_json::from_slice(&job.payload).expect("webhook payload");
        let outcome = t.settle(&webhook).await.expect("settle");
        if contribution {
            assert!(
                matches!(outcome, SettleOutcome::Recorded | SettleOutcome::CycleComplete(_)),
                "a payment of what the member owes is their contribution: {outcome:?}"
            );
        } else {
            assert!(
                matches!(outcome, SettleOutcome::Credited(_)),
                "a debt's payment lands on the balance: {outcome:?}"
            );
        }
        webhooks.ack(&job.id, &job.token).await.expect("ack");
        settled += 1;
    }
    assert_eq!(settled, 1, "the payment's delivery ran through the webhook queue");
    u128::from(invoice.amount.get())
}

/// Runs every payout job, as the payout pool does.
async fn run_payouts(t: &Tontine, payouts: &Arc<dyn Queue>) {
    t.relay_outbox(100).await.expect("relay");
    while let Some(job) = payouts.reserve(LEASE).await.expect("reserve") {
        let payout: PayoutJob = serde_json::from_slice(&job.payload).expect("payout payload");
        t.process_payout(&payout).await.expect("payout");
        payouts.ack(&job.id, &job.token).await.expect("ack");
        t.relay_outbox(100).await.expect("relay");
    }
}

/// Every event on the queue, by id (a second copy of an id is a failure).
async fn drain_events(events: &Arc<dyn Queue>) -> BTreeMap<String, DomainEvent> {
    let mut out = BTreeMap::new();
    while let Some(job) = events.reserve(LEASE).await.expect("reserve") {
        let event: DomainEvent = serde_json::from_slice(&job.payload).expect("event payload");
        assert!(out.insert(event.id.clone(), event).is_none(), "an event delivered twice: {}", job.id);
        events.ack(&job.id, &job.token).await.expect("ack");
    }
    out
}
