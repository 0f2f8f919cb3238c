//! Helpers shared by the service and worker tests.

#![allow(dead_code)]

use std::sync::Arc;

use sunusav_core::domain::payout::{PayoutDestination, PreimageSecret};
use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{AttemptStatus, PayTo, PaymentAttempt, PayoutPolicy, PayoutRequest, QueueConfig};
use sunusav_core::services::{
    LightningEvent, PAYOUT_QUEUE, PayoutJob, ServiceError, SettleOutcome, Tontine, WEBHOOK_QUEUE, WebhookJob,
};
use sunusav_core::{CycleStatus, GroupId, GroupSpec, IdempotencyKey, Invoice, MemberId, Msat};

pub struct App {
    pub tontine: Tontine,
    pub store: MemoryStore,
    pub node: SimulatedNode,
    pub payouts: Arc<MemoryQueue>,
}

/// The secret the tests' payouts derive keysend preimages under.
pub fn secret() -> PreimageSecret {
    PreimageSecret::new([9u8; 32]).unwrap()
}

pub fn app_with(payouts: Arc<dyn Queue>, node: SimulatedNode) -> (Tontine, MemoryStore) {
    let store = MemoryStore::new();
    let webhooks = Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default()));
    let tontine =
        Tontine::new(Arc::new(store.clone()), Arc::new(node), payouts, webhooks).with_preimage_secret(secret());
    (tontine, store)
}

/// Creates a group whose members all have a keysend destination (the
/// simulated node's payee).
pub async fn create(t: &Tontine, spec: GroupSpec) -> sunusav_core::Group {
    let g = t.create_group(spec).await.unwrap();
    for m in g.members() {
        t.set_payout_destination(*m, Some(PayoutDestination::Keysend(SimulatedNode::payee_node()))).await.unwrap();
    }
    g
}

/// The request the payout engine sends for an attempt it sent by keysend.
pub fn keysend_request(at: &PaymentAttempt) -> PayoutRequest {
    let preimage = secret().keysend_preimage(&at.key);
    PayoutRequest {
        key: at.key.clone(),
        group: at.group,
        beneficiary: at.beneficiary,
        amount: at.amount,
        payment_hash: preimage.payment_hash(),
        pay_to: PayTo::Keysend { node: SimulatedNode::payee_node(), preimage },
        policy: PayoutPolicy::default(),
    }
}

pub fn app() -> App {
    let node = SimulatedNode::new();
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let (tontine, store) = app_with(payouts.clone(), node.clone());
    App { tontine, store, node, payouts }
}

pub fn spec(n: usize) -> GroupSpec {
    GroupSpec {
        contribution: Msat::new(1_000),
        fee_bps: 100,
        members: (0..n).map(|_| MemberId::random()).collect(),
        policy: sunusav_core::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    }
}

pub fn event(inv: &Invoice) -> LightningEvent {
    LightningEvent {
        payment_hash: inv.payment_hash,
        status: sunusav_core::services::EventStatus::Settled,
        amount_msat: inv.amount,
        event_id: None,
    }
}

/// Records and queues a delivery of `ev` the way the HTTP handler does
/// (`id`: the sender's event id); returns its job, not settled yet.
pub async fn recorded(t: &Tontine, ev: LightningEvent, id: Option<&str>) -> WebhookJob {
    let body = serde_json::to_vec(&ev).unwrap();
    let key = IdempotencyKey::webhook(id, &body);
    t.ingest_webhook(key.clone(), &body, ev.clone()).await.unwrap();
    WebhookJob::new(key, ev)
}

/// Records a delivery the way the HTTP handler does, then settles it.
pub async fn deliver(t: &Tontine, inv: &Invoice, copy: usize) -> Result<SettleOutcome, ServiceError> {
    let ev = event(inv);
    let body = serde_json::to_vec(&ev).unwrap();
    let key = IdempotencyKey::webhook(Some(&format!("{}-{copy}", inv.payment_hash)), &body);
    t.ingest_webhook(key.clone(), &body, ev.clone()).await?;
    t.settle(&WebhookJob::new(key, ev)).await
}

/// A group of `n` whose first cycle is complete; returns its payout job.
pub async fn completed_cycle(t: &Tontine, n: usize) -> (GroupId, PayoutJob) {
    let g = create(t, spec(n)).await;
    t.start_group(g.id()).await.unwrap();
    let mut last = None;
    for (i, m) in g.members().iter().enumerate() {
        let inv = t.issue_invoice(g.id(), *m).await.unwrap();
        last = Some(deliver(t, &inv, i).await.unwrap());
    }
    let Some(SettleOutcome::CycleComplete(key)) = last else { panic!("cycle not complete: {last:?}") };
    (g.id(), PayoutJob { key, group: g.id(), cycle: 1, generation: 0 })
}

/// The group's current cycle and its status.
pub async fn cycle_state(t: &Tontine, group: GroupId) -> (u32, CycleStatus) {
    let g = t.store().group(group).await.unwrap().unwrap();
    (g.cycle(), g.cycle_status())
}

pub async fn attempt_status(t: &Tontine, group: GroupId) -> AttemptStatus {
    t.store().payment_attempts(group).await.unwrap()[0].status()
}

/// Settles every queued webhook job as the workers would; returns how many.
pub async fn settle_queued_webhooks(t: &Tontine) -> usize {
    let mut n = 0;
    while let Some(job) = t.webhook_queue().reserve(std::time::Duration::from_secs(30)).await.unwrap() {
        let payload: WebhookJob = serde_json::from_slice(&job.payload).unwrap();
        t.settle(&payload).await.unwrap();
        t.webhook_queue().ack(&job.id, &job.token).await.unwrap();
        n += 1;
    }
    n
}
