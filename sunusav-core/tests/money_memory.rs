//! Every msat a node reports lands somewhere: one open invoice per member
//! and cycle, and the members' ledger (overpaid, duplicate invoice, late,
//! cancelled group, underpaid), on the in-memory adapters.

mod common;

use std::time::Duration;

use common::{app, create, event, recorded, spec};
use sunusav_core::services::{PayoutJob, PayoutStep, SettleOutcome};
use sunusav_core::{CycleStatus, DeliveryOutcome, GroupStatus, InvoiceState, LedgerReason, Msat};

/// Settles a payment of `paid` for `inv` the way a webhook does.
async fn pay(a: &common::App, inv: &sunusav_core::Invoice, paid: Msat) -> SettleOutcome {
    let mut ev = event(inv);
    ev.amount_msat = paid;
    let job = recorded(&a.tontine, ev, None).await;
    a.tontine.settle(&job).await.unwrap()
}

async fn assert_balanced(a: &common::App, group: sunusav_core::GroupId, received: u128) {
    let acc = a.tontine.accounting(group).await.unwrap();
    assert!(acc.balanced(), "received = contributions + balances + released: {acc:?}");
    assert_eq!(acc.received, received, "every msat the node received is on record: {acc:?}");
}

#[tokio::test]
async fn issuing_twice_returns_the_open_invoice() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let first = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    let again = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(first.state, InvoiceState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_get_the_same_invoice_and_the_losers_are_cancelled_at_the_node() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let (id, member) = (g.id(), g.members()[0]);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let t = a.tontine.clone();
            tokio::spawn(async move { t.issue_invoice(id, member).await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert!(got.iter().all(|i| *i == got[0]), "one invoice for all 50");
    // Every invoice the node created for the losers is cancelled there.
    while a.tontine.relay_outbox(100).await.unwrap() > 0 {}
    let node_cancelled = a.store.outbox().iter().filter(|(m, sent)| m.queue == "node" && *sent).count();
    assert!(node_cancelled <= 49);
    assert!(!a.node.is_invoice_cancelled(&got[0].payment_hash), "the one handed out stays payable");
    assert_eq!(a.node.settle_invoice(&got[0].payment_hash), Some(Msat::new(1_000)));
}

#[tokio::test]
async fn an_expired_invoice_is_replaced_and_cancelled_at_the_node() {
    let a = app();
    let t = a.tontine.clone().with_invoice_expiry(Duration::from_millis(1));
    let g = create(&t, spec(2)).await;
    t.start_group(g.id()).await.unwrap();
    let first = t.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = t.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    assert_ne!(second.payment_hash, first.payment_hash, "an expired invoice is replaced");
    let stored = t.store().invoice(&first.payment_hash).await.unwrap().unwrap();
    assert_eq!(stored.state, InvoiceState::Cancelled);
    t.relay_outbox(100).await.unwrap();
    assert!(a.node.is_invoice_cancelled(&first.payment_hash));
}

#[tokio::test]
async fn an_overpayment_counts_the_contribution_and_credits_the_rest_then_pays_the_next_cycle() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let (m0, m1) = (g.members()[0], g.members()[1]);
    let inv0 = a.tontine.issue_invoice(g.id(), m0).await.unwrap();
    // LND settles an invoice paid above its amount.
    assert_eq!(pay(&a, &inv0, Msat::new(2_000)).await, SettleOutcome::Recorded);
    let ledger = a.tontine.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.entries.len(), 1);
    assert_eq!((ledger.entries[0].reason, ledger.entries[0].amount), (LedgerReason::Overpaid, Msat::new(1_000)));
    let inv1 = a.tontine.issue_invoice(g.id(), m1).await.unwrap();
    let SettleOutcome::CycleComplete(key) = pay(&a, &inv1, Msat::new(1_000)).await else { panic!("cycle 1 complete") };
    assert_eq!(
        a.tontine.process_payout(&PayoutJob { key, group: g.id(), cycle: 1, generation: 0 }).await.unwrap(),
        PayoutStep::Paid
    );
    // Cycle 2 opens, and m0's balance pays m0's contribution at once.
    let grp = a.tontine.store().group(g.id()).await.unwrap().unwrap();
    assert_eq!(grp.cycle(), 2);
    assert!(grp.paid().contains_key(&m0), "the balance was applied to cycle 2");
    let ledger = a.tontine.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.entries.last().map(|e| e.reason), Some(LedgerReason::Applied));
    assert!(ledger.balances.iter().all(|b| b.amount.is_zero()));
    assert_balanced(&a, g.id(), 3_000).await;
}

#[tokio::test]
async fn a_group_that_keeps_balances_leaves_them_for_the_operator() {
    let a = app();
    let mut s = spec(2);
    s.policy.apply_balance = false;
    let g = create(&a.tontine, s).await;
    assert!(!g.policy().apply_balance);
    a.tontine.start_group(g.id()).await.unwrap();
    let (m0, m1) = (g.members()[0], g.members()[1]);
    let inv0 = a.tontine.issue_invoice(g.id(), m0).await.unwrap();
    assert_eq!(pay(&a, &inv0, Msat::new(2_000)).await, SettleOutcome::Recorded);
    let inv1 = a.tontine.issue_invoice(g.id(), m1).await.unwrap();
    let SettleOutcome::CycleComplete(key) = pay(&a, &inv1, Msat::new(1_000)).await else { panic!("cycle 1 complete") };
    assert_eq!(
        a.tontine.process_payout(&PayoutJob { key, group: g.id(), cycle: 1, generation: 0 }).await.unwrap(),
        PayoutStep::Paid
    );
    // Cycle 2 opens and m0 still owes it: the balance is not applied.
    let grp = a.tontine.store().group(g.id()).await.unwrap().unwrap();
    assert_eq!(grp.cycle(), 2);
    assert!(grp.owes(m0), "the balance is kept, not applied");
    let ledger = a.tontine.group_ledger(g.id()).await.unwrap();
    assert!(ledger.entries.iter().all(|e| e.reason != LedgerReason::Applied));
    assert_eq!(ledger.balances.iter().map(|b| (b.member, b.amount)).collect::<Vec<_>>(), vec![(m0, Msat::new(1_000))]);
    assert_balanced(&a, g.id(), 3_000).await;
    // A later overpayment is credited too, and still not applied.
    let inv = a.tontine.issue_invoice(g.id(), m0).await.unwrap();
    assert_eq!(pay(&a, &inv, Msat::new(1_500)).await, SettleOutcome::Recorded);
    assert!(!a.tontine.store().group(g.id()).await.unwrap().unwrap().owes(m0));
    assert_balanced(&a, g.id(), 4_500).await;
    // The operator releases it for a refund.
    a.tontine.release_balance(g.id(), m0).await.unwrap();
    let acc = a.tontine.accounting(g.id()).await.unwrap();
    assert_eq!((acc.released, acc.balances), (1_500, 0));
    assert_balanced(&a, g.id(), 4_500).await;
}

#[tokio::test]
async fn a_second_invoice_paid_for_a_cycle_already_paid_is_credited_not_dropped() {
    let a = app();
    let t = a.tontine.clone().with_invoice_expiry(Duration::from_millis(1));
    let g = create(&t, spec(3)).await;
    t.start_group(g.id()).await.unwrap();
    let m0 = g.members()[0];
    let first = t.issue_invoice(g.id(), m0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Replaced, but paid at the node before its cancellation reached it.
    let second = t.issue_invoice(g.id(), m0).await.unwrap();
    assert_eq!(pay(&a, &second, Msat::new(1_000)).await, SettleOutcome::Recorded);
    assert_eq!(pay(&a, &first, Msat::new(1_000)).await, SettleOutcome::Credited(LedgerReason::DuplicateInvoice));
    let ledger = t.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.balances[0].amount, Msat::new(1_000));
    assert_balanced(&a, g.id(), 2_000).await;
}

#[tokio::test]
async fn a_late_payment_is_credited_and_applied_to_the_cycle_the_member_owes() {
    let a = app();
    let t = a.tontine.clone().with_invoice_expiry(Duration::from_millis(1));
    let g = create(&t, spec(2)).await;
    t.start_group(g.id()).await.unwrap();
    let (m0, m1) = (g.members()[0], g.members()[1]);
    let stale = t.issue_invoice(g.id(), m0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let inv0 = t.issue_invoice(g.id(), m0).await.unwrap();
    pay(&a, &inv0, Msat::new(1_000)).await;
    let inv1 = t.issue_invoice(g.id(), m1).await.unwrap();
    let SettleOutcome::CycleComplete(key) = pay(&a, &inv1, Msat::new(1_000)).await else { panic!("complete") };
    t.process_payout(&PayoutJob { key, group: g.id(), cycle: 1, generation: 0 }).await.unwrap();
    // The cycle-1 invoice replaced earlier is paid now, in cycle 2.
    let outcome = pay(&a, &stale, Msat::new(1_000)).await;
    assert_eq!(outcome, SettleOutcome::Credited(LedgerReason::Late));
    let grp = t.store().group(g.id()).await.unwrap().unwrap();
    assert!(grp.paid().contains_key(&m0), "the late money paid m0's cycle-2 contribution");
    let ledger = t.group_ledger(g.id()).await.unwrap();
    let reasons: Vec<_> = ledger.entries.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, vec![LedgerReason::Late, LedgerReason::Applied]);
    assert_balanced(&a, g.id(), 3_000).await;
}

#[tokio::test]
async fn cancelling_returns_the_collected_contributions_and_later_payments_are_credited() {
    let a = app();
    let g = create(&a.tontine, spec(3)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let (m0, m1) = (g.members()[0], g.members()[1]);
    let inv0 = a.tontine.issue_invoice(g.id(), m0).await.unwrap();
    let inv1 = a.tontine.issue_invoice(g.id(), m1).await.unwrap();
    pay(&a, &inv0, Msat::new(1_000)).await;
    let cancelled = a.tontine.cancel_group(g.id()).await.unwrap();
    assert_eq!(cancelled.status(), GroupStatus::Cancelled);
    // m1's open invoice is cancelled here and at the node.
    assert_eq!(a.tontine.store().invoice(&inv1.payment_hash).await.unwrap().unwrap().state, InvoiceState::Cancelled);
    a.tontine.relay_outbox(100).await.unwrap();
    assert!(a.node.is_invoice_cancelled(&inv1.payment_hash));
    // Paid anyway (before the cancellation reached the node).
    let mut ev = event(&inv1);
    ev.amount_msat = Msat::new(1_000);
    let job = recorded(&a.tontine, ev, None).await;
    assert_eq!(a.tontine.settle(&job).await.unwrap(), SettleOutcome::Credited(LedgerReason::GroupCancelled));
    assert_eq!(
        a.tontine.store().webhook(&job.key).await.unwrap().unwrap().outcome,
        Some(DeliveryOutcome::CreditedGroupCancelled)
    );
    let ledger = a.tontine.group_ledger(g.id()).await.unwrap();
    let held: Vec<_> = ledger.balances.iter().map(|b| (b.member, b.amount)).collect();
    assert_eq!(held, vec![(m0, Msat::new(1_000)), (m1, Msat::new(1_000))]);
    assert_balanced(&a, g.id(), 2_000).await;
    // An operator releases m0's balance for a refund: recorded, balance zero.
    let released = a.tontine.release_balance(g.id(), m0).await.unwrap();
    assert_eq!((released.reason, released.amount), (LedgerReason::RefundReleased, Msat::new(1_000)));
    assert!(a.tontine.release_balance(g.id(), m0).await.is_err(), "nothing left to release");
    let acc = a.tontine.accounting(g.id()).await.unwrap();
    assert_eq!((acc.released, acc.balances), (1_000, 1_000));
    assert_balanced(&a, g.id(), 2_000).await;
}

#[tokio::test]
async fn an_underpayment_is_credited_and_the_member_still_owes() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let inv = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    assert_eq!(pay(&a, &inv, Msat::new(400)).await, SettleOutcome::Credited(LedgerReason::Underpaid));
    let grp = a.tontine.store().group(g.id()).await.unwrap().unwrap();
    assert!(grp.owes(g.members()[0]));
    assert_eq!(grp.cycle_status(), CycleStatus::Collecting);
    assert_balanced(&a, g.id(), 400).await;
    // A replay of the same settlement changes nothing.
    assert_eq!(pay(&a, &inv, Msat::new(400)).await, SettleOutcome::Replay);
    assert_balanced(&a, g.id(), 400).await;
}
