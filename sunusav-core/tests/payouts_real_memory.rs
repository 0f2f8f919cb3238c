//! Real payouts on the in-memory adapters: destinations, beneficiaries'
//! invoices, the payment hash fixed before sending, the node's settle stream
//! and confirm-with-node.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{app, app_with, attempt_status, create, deliver, event, recorded, spec};
use sunusav_core::domain::payout::{Network, PayoutDestination};
use sunusav_core::memory::{InvoiceSigner, MemoryQueue, NodeFault, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{AttemptStatus, QueueConfig};
use sunusav_core::runtime::{SettleStream, SettleStreamConfig};
use sunusav_core::services::{PAYOUT_QUEUE, PayoutJob, PayoutStep, ServiceError, Tontine};
use sunusav_core::{CycleStatus, GroupId, Msat, PaymentHash};

/// A started group of two with no destinations; its first cycle completed.
async fn completed_without_destination(t: &Tontine) -> (GroupId, PayoutJob) {
    let g = t.create_group(spec(2)).await.unwrap();
    t.start_group(g.id()).await.unwrap();
    for (i, m) in g.members().iter().enumerate() {
        let inv = t.issue_invoice(g.id(), *m).await.unwrap();
        deliver(t, &inv, i).await.unwrap();
    }
    let attempt = t.store().payment_attempts(g.id()).await.unwrap().remove(0);
    (g.id(), PayoutJob::of(&attempt))
}

/// The payout jobs the outbox relay put on the queue.
async fn queued_payout(t: &Tontine) -> PayoutJob {
    t.relay_outbox(64).await.unwrap();
    let q = t.payout_queue();
    let job = q.reserve(Duration::from_secs(30)).await.unwrap().expect("a payout job");
    q.ack(&job.id, &job.token).await.unwrap();
    serde_json::from_slice(&job.payload).unwrap()
}

#[tokio::test]
async fn a_payout_without_destination_waits_and_setting_one_pays_it_once() {
    let a = app();
    let (g, job) = completed_without_destination(&a.tontine).await;
    // Drain the job the cycle's completion queued.
    let first = queued_payout(&a.tontine).await;
    assert_eq!(first.key, job.key);
    assert_eq!(a.tontine.process_payout(&first).await.unwrap(), PayoutStep::AwaitingDestination);
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::AwaitingDestination);
    assert_eq!(a.node.pay_calls(&job.key), 0, "nothing is sent without a destination");
    let group = a.tontine.store().group(g).await.unwrap().unwrap();
    assert_eq!(group.cycle_status(), CycleStatus::Completing, "the cycle waits, it does not fail");

    let beneficiary = group.members()[0];
    let woken = a
        .tontine
        .set_payout_destination(beneficiary, Some(PayoutDestination::Keysend(SimulatedNode::payee_node())))
        .await
        .unwrap();
    assert_eq!(woken, vec![job.key.clone()]);
    let woken_job = queued_payout(&a.tontine).await;
    assert_eq!(woken_job.generation, 1, "a new generation runs the woken payout");
    assert_eq!(a.tontine.process_payout(&first).await.unwrap(), PayoutStep::Stale, "the parked job does nothing");
    assert_eq!(a.tontine.process_payout(&woken_job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.tontine.process_payout(&woken_job).await.unwrap(), PayoutStep::AlreadyPaid);
    assert_eq!(a.node.times_paid(&job.key), 1);
    let attempt = a.tontine.store().payment_attempt(&job.key).await.unwrap().unwrap();
    let expected = common::secret().keysend_preimage(&job.key).payment_hash();
    assert_eq!(attempt.payment_hash(), Some(expected), "the keysend hash is derived from the payout key");
}

#[tokio::test]
async fn a_beneficiary_invoice_is_checked_and_pays_the_pot() {
    let a = app();
    let (g, _) = completed_without_destination(&a.tontine).await;
    let attempt = a.tontine.store().payment_attempts(g).await.unwrap().remove(0);
    let amount = attempt.amount;
    let now = SystemTime::now();
    let payee = InvoiceSigner::from_bytes([0x22; 32]);
    let hash = |n: u8| PaymentHash::from_bytes([n; 32]);
    let refused = [
        (
            payee.mint(hash(1), Some(Msat::new(amount.get() + 1)), Duration::from_hours(1), Network::Regtest, now),
            "wrong_amount",
        ),
        (payee.mint(hash(2), None, Duration::from_hours(1), Network::Testnet, now), "wrong_network"),
        (payee.mint(hash(3), None, Duration::from_secs(30), Network::Regtest, now), "expired"),
        ("lnbcrt1garbage".to_owned(), "invalid"),
    ];
    for (bolt11, why) in refused {
        let e = a.tontine.submit_payout_invoice(g, &bolt11).await.unwrap_err();
        assert!(matches!(e, ServiceError::Destination(_)), "{why}: {e:?}");
        assert!(!e.is_retryable());
    }
    let good = a.node.mint_payee_invoice(None, Duration::from_hours(1));
    let accepted = a.tontine.submit_payout_invoice(g, &good).await.unwrap();
    assert_eq!((accepted.cycle, accepted.amount_msat), (1, amount));
    let again = a.tontine.submit_payout_invoice(g, &good).await.unwrap_err();
    assert!(matches!(again, ServiceError::NotPayable(_)), "an invoice is submitted once: {again:?}");

    let job = queued_payout(&a.tontine).await;
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    let paid = a.tontine.store().payment_attempt(&job.key).await.unwrap().unwrap();
    assert_eq!(paid.payment_hash(), Some(accepted.payment_hash), "the invoice's hash was paid");
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test]
async fn a_new_invoice_is_used_only_after_the_node_says_the_last_try_failed() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    for (i, m) in g.members().iter().enumerate() {
        let inv = a.tontine.issue_invoice(g.id(), *m).await.unwrap();
        deliver(&a.tontine, &inv, i).await.unwrap();
    }
    let job = queued_payout(&a.tontine).await;
    // The keysend try is left in flight at the node.
    a.node.inject([NodeFault::TimeoutInFlight]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    let keysend_hash = a.tontine.store().payment_attempt(&job.key).await.unwrap().unwrap().payment_hash();
    // The beneficiary submits an invoice meanwhile: it waits.
    let invoice = a.node.mint_payee_invoice(None, Duration::from_hours(1));
    let accepted = a.tontine.submit_payout_invoice(g.id(), &invoice).await.unwrap();
    assert!(!accepted.woke_payout);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable(), "still in flight: nothing sent");
    assert_eq!(a.node.pay_calls(&job.key), 1);
    // The node says the keysend failed: the next try pays the invoice.
    a.node.resolve_in_flight(false);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    let paid = a.tontine.store().payment_attempt(&job.key).await.unwrap().unwrap();
    assert_eq!(paid.payment_hash(), Some(accepted.payment_hash));
    assert_ne!(paid.payment_hash(), keysend_hash);
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_from_the_node_stream_survive_20_cuts_and_lose_or_double_nothing() {
    let node = SimulatedNode::new();
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let (t, _) = app_with(payouts, node.clone());
    let g = create(&t, spec(3)).await;
    t.start_group(g.id()).await.unwrap();
    let stream = SettleStream::start(
        &t,
        Arc::new(node.clone()),
        SettleStreamConfig::default().with_max_backoff(Duration::from_millis(50)),
    );
    let mut hashes = Vec::new();
    for (i, m) in g.members().iter().enumerate() {
        let inv = t.issue_invoice(g.id(), *m).await.unwrap();
        hashes.push(inv.payment_hash);
        // Overpay the last one: the node's amount is what counts.
        let paid = if i == 2 { Msat::new(inv.amount.get() + 500) } else { inv.amount };
        assert!(node.settle_invoice_paying(&inv.payment_hash, paid).is_some());
    }
    for _ in 0..20 {
        node.cut_settle_streams();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every settlement arrives as a delivery; settle them as the workers would.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.settle_index().await.unwrap() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the stream did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stream.stats().cuts() >= 1, "the stream was cut");
    common::settle_queued_webhooks(&t).await;
    let contributions = t.store().contributions(g.id()).await.unwrap();
    assert_eq!(contributions.len(), 3, "each settled invoice counted once");
    let ledger = t.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.accounting.received, 3 * 1_000 + 500, "the node's amounts, overpayment included");
    // A webhook of the same payment is a replay.
    let inv = t.store().invoice(&hashes[0]).await.unwrap().unwrap();
    let job = recorded(&t, event(&inv), Some("late-webhook")).await;
    assert_eq!(t.settle(&job).await.unwrap(), sunusav_core::services::SettleOutcome::Replay);
    stream.shutdown().await;
}

#[tokio::test]
async fn with_confirm_with_node_a_webhook_counts_only_what_the_node_settled() {
    let node = SimulatedNode::new();
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let (t, _) = app_with(payouts, node.clone());
    let t = t.with_confirm_with_node(true);
    let g = create(&t, spec(2)).await;
    t.start_group(g.id()).await.unwrap();
    let inv = t.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    // The webhook arrives before the node settled it: retried later.
    let job = recorded(&t, event(&inv), Some("early")).await;
    assert!(t.settle(&job).await.unwrap_err().is_retryable());
    assert!(t.store().contributions(g.id()).await.unwrap().is_empty());
    // The node settles it, paying more than the webhook said.
    assert!(node.settle_invoice_paying(&inv.payment_hash, Msat::new(inv.amount.get() + 200)).is_some());
    t.settle(&job).await.unwrap();
    let ledger = t.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.accounting.received, u128::from(inv.amount.get() + 200), "the node's amount, not the webhook's");
    // A webhook for an invoice the node cancelled is not credited.
    let other = t.issue_invoice(g.id(), g.members()[1]).await.unwrap();
    node.cancel_invoice(&other.payment_hash).await.unwrap();
    let forged = recorded(&t, event(&other), Some("cancelled")).await;
    assert_eq!(t.settle(&forged).await.unwrap(), sunusav_core::services::SettleOutcome::IgnoredStatus);
    assert_eq!(t.store().contributions(g.id()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_released_balance_is_refunded_through_the_payout_engine_once() {
    let a = app();
    let g = a.tontine.create_group(spec(2)).await.unwrap();
    a.tontine.start_group(g.id()).await.unwrap();
    let m0 = g.members()[0];
    let inv = a.tontine.issue_invoice(g.id(), m0).await.unwrap();
    deliver(&a.tontine, &inv, 0).await.unwrap();
    // Cancelled mid-cycle: m0's contribution returns to their balance.
    a.tontine.cancel_group(g.id()).await.unwrap();
    let entry = a.tontine.release_balance(g.id(), m0).await.unwrap();
    let job = queued_payout(&a.tontine).await;
    assert_eq!(job.key, entry.key, "the refund is keyed by its ledger entry");
    // No destination yet: it waits, and the group is left alone.
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::AwaitingDestination);
    let refund = a.tontine.store().payment_attempt(&entry.key).await.unwrap().unwrap();
    assert_eq!((refund.kind, refund.amount), (sunusav_core::domain::attempt::AttemptKind::Refund, entry.amount));
    let woken = a
        .tontine
        .set_payout_destination(m0, Some(PayoutDestination::Keysend(SimulatedNode::payee_node())))
        .await
        .unwrap();
    assert_eq!(woken, vec![entry.key.clone()]);
    let woken_job = queued_payout(&a.tontine).await;
    assert_eq!(a.tontine.process_payout(&woken_job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.tontine.process_payout(&woken_job).await.unwrap(), PayoutStep::AlreadyPaid);
    assert_eq!(a.node.times_paid(&entry.key), 1);
    let group = a.tontine.store().group(g.id()).await.unwrap().unwrap();
    assert_eq!(group.status(), sunusav_core::GroupStatus::Cancelled, "a refund changes no cycle");
    let acc = a.tontine.accounting(g.id()).await.unwrap();
    assert_eq!((acc.released, acc.balances), (u128::from(entry.amount.get()), 0));
}
