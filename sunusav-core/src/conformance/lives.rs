//! Whole group lives with random overpayments, duplicate invoices, late
//! payments, underpayments, cancellations and refund releases, run through
//! the services on any store: the money conservation check of the ledger.
//!
//! A life's payments are webhook events made up by the test (a payer who
//! pays an invoice before its cancellation reaches the node, as happens in
//! the race between a replacement and its cancellation), so every kind of
//! settlement occurs. After each step, the payouts due are run. At the end:
//! for the group, `received = contributions + balances + released` and what
//! the store says was received is what the payer paid; no cycle is paid twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::group::{GroupSpec, GroupStatus, Invoice};
use crate::domain::ids::MemberId;
use crate::domain::money::Msat;
use crate::memory::{MemoryQueue, SimulatedNode};
use crate::ports::{AttemptStatus, QueueConfig, Store};
use crate::services::{EventStatus, LightningEvent, PAYOUT_QUEUE, PayoutJob, Tontine, WEBHOOK_QUEUE, WebhookJob};

/// One step of a life; members are indices into the group's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifeStep {
    /// The member pays a fresh invoice for the current cycle its exact amount.
    Pay(usize),
    /// As `Pay`, paying `extra` msat more.
    Overpay(usize, u64),
    /// As `Pay`, paying half.
    Underpay(usize),
    /// The member pays another invoice of a cycle it already paid (one
    /// replaced before, or a fresh pair when it still owes).
    Duplicate(usize),
    /// The member pays an invoice of an earlier cycle, never paid.
    Late(usize),
    /// The group is cancelled.
    Cancel,
    /// An operator releases the member's balance.
    Release(usize),
}

/// A life: the group's size and its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Life {
    /// Members (2 or more).
    pub members: usize,
    /// The group's policy: whether balances pay the next contribution.
    pub apply_balance: bool,
    /// What happens, in order.
    pub steps: Vec<LifeStep>,
}

impl Life {
    /// A random life of `steps` steps from `rng`.
    pub fn random(rng: &mut impl rand::Rng, steps: usize) -> Self {
        let members = rng.random_range(2..=4);
        let apply_balance = rng.random_bool(0.75);
        let steps = (0..steps)
            .map(|_| {
                let m = rng.random_range(0..members);
                match rng.random_range(0..100) {
                    0..45 => LifeStep::Pay(m),
                    45..57 => LifeStep::Overpay(m, rng.random_range(1..=1_500)),
                    57..65 => LifeStep::Underpay(m),
                    65..77 => LifeStep::Duplicate(m),
                    77..89 => LifeStep::Late(m),
                    89..93 => LifeStep::Cancel,
                    _ => LifeStep::Release(m),
                }
            })
            .collect();
        Self { members, apply_balance, steps }
    }
}

const CONTRIBUTION: u64 = 1_000;

/// Runs a life on `store` and checks that every msat is accounted for and
/// no cycle is paid twice.
///
/// # Panics
/// When an invariant breaks (the message says which).
#[allow(clippy::many_single_char_names)]
pub async fn run_life(store: Arc<dyn Store>, life: &Life) {
    let node = SimulatedNode::new();
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let webhooks = Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default()));
    // Every invoice request makes a new one: the previous one has expired
    // (and is paid anyway in the steps that say so).
    let t = Tontine::new(Arc::clone(&store), Arc::new(node.clone()), payouts, webhooks)
        .with_invoice_expiry(Duration::from_millis(1));
    let members: Vec<MemberId> = (0..life.members).map(|_| MemberId::random()).collect();
    let spec = GroupSpec {
        contribution: Msat::new(CONTRIBUTION),
        fee_bps: 100,
        members: members.clone(),
        policy: crate::domain::group::GroupPolicy { apply_balance: life.apply_balance, ..Default::default() },
        organizer: None,
        schedule: None,
    };
    let group = t.create_group(spec).await.expect("create");
    let id = group.id();
    t.start_group(id).await.expect("start");
    let mut issued: Vec<Invoice> = Vec::new();
    let mut settled: HashSet<crate::domain::ids::PaymentHash> = HashSet::new();
    let mut received: u128 = 0;
    let mut n = 0u64;
    for step in &life.steps {
        let g = t.store().group(id).await.expect("read").expect("group");
        let payment = match *step {
            LifeStep::Pay(m) => fresh(&t, &mut issued, id, members[m]).await.map(|i| (i, CONTRIBUTION)),
            LifeStep::Overpay(m, extra) => {
                fresh(&t, &mut issued, id, members[m]).await.map(|i| (i, CONTRIBUTION + extra))
            }
            LifeStep::Underpay(m) => fresh(&t, &mut issued, id, members[m]).await.map(|i| (i, CONTRIBUTION / 2)),
            LifeStep::Duplicate(m) => {
                let spare = issued
                    .iter()
                    .find(|i| i.member == members[m] && i.cycle == g.cycle() && !settled.contains(&i.payment_hash))
                    .cloned();
                if let Some(i) = spare {
                    Some((i, CONTRIBUTION))
                } else {
                    // A fresh invoice paid at once, then an older one the member never paid.
                    if let Some(first) = fresh(&t, &mut issued, id, members[m]).await {
                        received += settle(&t, &first, CONTRIBUTION, &mut n).await;
                        settled.insert(first.payment_hash);
                    }
                    issued
                        .iter()
                        .find(|i| i.member == members[m] && !settled.contains(&i.payment_hash))
                        .cloned()
                        .map(|i| (i, CONTRIBUTION))
                }
            }
            LifeStep::Late(m) => issued
                .iter()
                .find(|i| i.member == members[m] && i.cycle < g.cycle() && !settled.contains(&i.payment_hash))
                .cloned()
                .map(|i| (i, CONTRIBUTION)),
            LifeStep::Cancel => {
                if matches!(g.status(), GroupStatus::Forming | GroupStatus::Active) {
                    t.cancel_group(id).await.expect("cancel");
                }
                None
            }
            LifeStep::Release(m) => {
                let _ = t.release_balance(id, members[m]).await;
                None
            }
        };
        if let Some((invoice, paid)) = payment {
            received += settle(&t, &invoice, paid, &mut n).await;
            settled.insert(invoice.payment_hash);
        }
        run_due_payouts(&t, id).await;
        let acc = t.accounting(id).await.expect("accounting");
        assert!(acc.balanced(), "after {step:?}: received = contributions + balances + released: {acc:?}");
        assert_eq!(acc.received, received, "after {step:?}: every msat paid is on record: {acc:?}");
    }
    for a in t.store().payment_attempts(id).await.expect("attempts") {
        assert!(node.times_paid(&a.key) <= 1, "cycle {} paid {} times", a.cycle, node.times_paid(&a.key));
    }
    assert!(node.max_times_paid() <= 1, "a payout paid twice");
}

/// A fresh invoice for the member's current cycle, when it may have one.
async fn fresh(
    t: &Tontine,
    issued: &mut Vec<Invoice>,
    id: crate::domain::ids::GroupId,
    m: MemberId,
) -> Option<Invoice> {
    // Past the previous invoice's 1 ms expiry.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let invoice = t.issue_invoice(id, m).await.ok()?;
    issued.push(invoice.clone());
    Some(invoice)
}

/// Records and settles a payment of `paid` for `invoice`; returns what the
/// node received (nothing for a replay).
async fn settle(t: &Tontine, invoice: &Invoice, paid: u64, n: &mut u64) -> u128 {
    *n += 1;
    let event = LightningEvent {
        payment_hash: invoice.payment_hash,
        status: EventStatus::Settled,
        amount_msat: Msat::new(paid),
        event_id: Some(format!("life-{n}")),
    };
    let body = serde_json::to_vec(&event).expect("json");
    let key = crate::domain::keys::IdempotencyKey::webhook(event.event_id.as_deref(), &body);
    t.ingest_webhook(key.clone(), &body, event.clone()).await.expect("ingest");
    let outcome = t.settle(&WebhookJob::new(key, event)).await.expect("settle");
    if outcome == crate::services::SettleOutcome::Replay { 0 } else { u128::from(paid) }
}

/// Runs every payout the group owes, as the payout pool would.
async fn run_due_payouts(t: &Tontine, id: crate::domain::ids::GroupId) {
    loop {
        let due: Vec<_> = t
            .store()
            .payment_attempts(id)
            .await
            .expect("attempts")
            .into_iter()
            .filter(|a| a.status() == AttemptStatus::Pending)
            .collect();
        if due.is_empty() {
            return;
        }
        for a in due {
            t.process_payout(&PayoutJob::of(&a)).await.expect("payout");
        }
    }
}
