//! Contention: 8 groups × 10 members, every settlement delivered 3 times,
//! shuffled, settled at concurrency 64 over a pool of 16 by each of two
//! "processes" (two services on two pools): exactly one contribution per
//! invoice, one payment attempt and one outbox row per completed cycle, and no
//! error at all (replays are outcomes, not errors).

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::TestDb;
use rand::seq::SliceRandom;
use sunusav_core::AttemptStatus;
use sunusav_core::domain::group::{CycleStatus, GroupSpec};
use sunusav_core::domain::ids::MemberId;
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::money::Msat;
use sunusav_core::memory::{MemoryQueue, SimulatedNode};
use sunusav_core::ports::QueueConfig;
use sunusav_core::services::{LightningEvent, SettleOutcome, Tontine, WebhookJob};
use sunusav_postgres::{PgStore, PgStoreOptions};
use tokio::sync::Semaphore;

const GROUPS: usize = 8;
const MEMBERS: usize = 10;
const DELIVERIES: usize = 3;
const CONCURRENCY: usize = 64;
const POOL: u32 = 16;

async fn process(db: &TestDb) -> (Tontine, PgStore) {
    let options = PgStoreOptions { max_connections: POOL, ..PgStoreOptions::default() };
    let store = db.store_with(&options).await;
    let tontine = Tontine::new(
        Arc::new(store.clone()),
        Arc::new(SimulatedNode::new()),
        Arc::new(MemoryQueue::new("payouts", QueueConfig::default())),
        Arc::new(MemoryQueue::new("webhooks", QueueConfig::default())),
    );
    (tontine, store)
}

async fn count(store: &PgStore, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redelivered_settlements_from_two_processes_pay_each_cycle_once() {
    let Some(db) = TestDb::migrated().await else { return };
    let (a, store_a) = process(&db).await;
    let (b, _store_b) = process(&db).await;

    // Arrange: 8 started groups, one invoice per member.
    let mut jobs = Vec::new();
    let mut groups = Vec::new();
    for _ in 0..GROUPS {
        let members: Vec<MemberId> = (0..MEMBERS).map(|_| MemberId::random()).collect();
        let spec = GroupSpec {
            contribution: Msat::new(10_000),
            fee_bps: 100,
            members: members.clone(),
            policy: sunusav_core::GroupPolicy::default(),
            organizer: None,
            schedule: None,
        };
        let g = a.create_group(spec).await.expect("create");
        a.start_group(g.id()).await.expect("start");
        groups.push(g.id());
        for m in members {
            let inv = a.issue_invoice(g.id(), m).await.expect("invoice");
            let event = LightningEvent {
                payment_hash: inv.payment_hash,
                status: sunusav_core::services::EventStatus::Settled,
                amount_msat: inv.amount,
                event_id: Some(format!("evt_{}", inv.payment_hash)),
            };
            let body = serde_json::to_vec(&event).expect("json");
            let key = IdempotencyKey::webhook(event.event_id.as_deref(), &body);
            for _ in 0..DELIVERIES {
                jobs.push((WebhookJob::new(key.clone(), event.clone()), body.clone()));
            }
        }
    }
    jobs.shuffle(&mut rand::rng());

    // Act: every delivery is ingested and settled by one of the two processes.
    let limits = [Arc::new(Semaphore::new(CONCURRENCY)), Arc::new(Semaphore::new(CONCURRENCY))];
    let services = [a.clone(), b.clone()];
    let mut tasks = Vec::with_capacity(jobs.len());
    for (i, (job, body)) in jobs.into_iter().enumerate() {
        let which = i % 2;
        let permit = Arc::clone(&limits[which]).acquire_owned().await.expect("semaphore");
        let svc = services[which].clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            svc.ingest_webhook(job.key.clone(), &body, job.event.clone()).await?;
            svc.settle(&job).await
        }));
    }
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => *outcomes.entry(o.as_str()).or_default() += 1,
            Err(e) => errors.push(e),
        }
    }

    // Assert.
    assert!(errors.is_empty(), "unexpected errors: {errors:?}");
    let settled = GROUPS * MEMBERS;
    assert_eq!(outcomes.get(SettleOutcome::Recorded.as_str()), Some(&(settled - GROUPS)), "{outcomes:?}");
    assert_eq!(outcomes.get("cycle_complete"), Some(&GROUPS), "{outcomes:?}");
    assert_eq!(outcomes.get(SettleOutcome::Replay.as_str()), Some(&(settled * (DELIVERIES - 1))), "{outcomes:?}");
    assert_eq!(count(&store_a, "SELECT count(*) FROM contributions").await, i64::try_from(settled).expect("fits"));
    assert_eq!(count(&store_a, "SELECT count(*) FROM payment_attempts").await, i64::try_from(GROUPS).expect("fits"));
    assert_eq!(count(&store_a, "SELECT count(*) FROM outbox").await, i64::try_from(GROUPS).expect("fits"));
    for id in groups {
        let g = a.store().group(id).await.expect("read").expect("found");
        assert_eq!(g.paid().len(), MEMBERS);
        assert_eq!(g.cycle_status(), CycleStatus::Completing);
        let attempts = a.store().payment_attempts(id).await.expect("read");
        assert_eq!(attempts.len(), 1, "exactly one payment attempt per completed cycle");
        assert_eq!((attempts[0].cycle, attempts[0].status()), (1, AttemptStatus::Pending));
        assert_eq!(attempts[0].amount, Msat::new(99_000));
    }
    db.drop_db().await;
}
