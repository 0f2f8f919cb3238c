//! The queue's behaviour on a real standalone Redis (`REDIS_URL`), and on a
//! cluster (`REDIS_CLUSTER_NODES`) for the same scenario.

mod common;

use std::time::Duration;

use common::{key, queue};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{Backoff, Enqueued, FailKind, FailOutcome, JobState, NewJob, QueueConfig, QueueError};
use sunusav_redis::RedisQueue;

const LEASE: Duration = Duration::from_secs(30);

fn job(id: &str) -> NewJob {
    NewJob::new(key(id), format!("payload of {id}").into_bytes())
}

async fn basic_lifecycle(q: &RedisQueue) {
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Added);
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate);
    let j = q.reserve(LEASE).await.unwrap().expect("a job");
    assert_eq!(j.id, key("a"));
    assert_eq!(j.payload, b"payload of a");
    assert_eq!(j.attempt, 1);
    assert_eq!(q.stats().await.unwrap().active, 1);
    q.ack(&j.id, &j.token).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.waiting, s.active, s.completed), (0, 0, 1));
    assert_eq!(q.get(&key("a")).await.unwrap().unwrap().state, JobState::Completed);
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate, "completed ids stay claimed");
}

#[tokio::test]
async fn a_job_is_enqueued_reserved_and_acknowledged_once() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    basic_lifecycle(&q).await;
}

#[tokio::test]
async fn the_same_lifecycle_works_on_a_cluster() {
    let Some(conn) = common::cluster().await else { return };
    for i in 0..4 {
        // Several queues: their hash tags land on different slots / nodes.
        let q = conn.queue(&format!("jobs{i}"), &common::prefix(), QueueConfig::default()).unwrap();
        basic_lifecycle(&q).await;
        let got = q.reserve_wait(LEASE, Duration::from_millis(50)).await.unwrap();
        assert!(got.is_none());
    }
}

#[tokio::test]
async fn zero_attempts_is_invalid() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut j = job("z");
    j.options.max_attempts = 0;
    assert!(matches!(q.enqueue(j).await, Err(QueueError::Invalid(_))));
}

#[tokio::test]
async fn higher_priority_runs_first_and_fifo_within_a_priority() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut jobs = Vec::new();
    for (id, pri) in [("l1", -1), ("n1", 0), ("h1", 10), ("n2", 0), ("h2", 10), ("l2", -1)] {
        let mut j = job(id);
        j.options.priority = pri;
        jobs.push(j);
    }
    assert!(q.enqueue_bulk(jobs).await.unwrap().iter().all(|e| *e == Enqueued::Added));
    let mut order = Vec::new();
    while let Some(j) = q.reserve(LEASE).await.unwrap() {
        order.push(j.id.to_string());
    }
    assert_eq!(order, ["h1", "h2", "n1", "n2", "l1", "l2"]);
}

#[tokio::test]
async fn bulk_enqueue_reports_duplicates_in_order() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.enqueue(job("x")).await.unwrap();
    let out = q.enqueue_bulk(vec![job("y"), job("x"), job("y"), job("w")]).await.unwrap();
    assert_eq!(out, [Enqueued::Added, Enqueued::Duplicate, Enqueued::Duplicate, Enqueued::Added]);
    assert_eq!(q.stats().await.unwrap().waiting, 3);
}

#[tokio::test]
async fn a_delayed_job_is_due_only_after_its_delay() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut j = job("later");
    j.options.delay = Duration::from_millis(300);
    q.enqueue(j).await.unwrap();
    assert_eq!(q.stats().await.unwrap().delayed, 1);
    assert!(q.reserve(LEASE).await.unwrap().is_none());
    let started = std::time::Instant::now();
    let got = q.reserve_wait(LEASE, Duration::from_secs(3)).await.unwrap().expect("due after the delay");
    assert_eq!(got.id, key("later"));
    assert!(started.elapsed() < Duration::from_secs(2), "woke at the due time, not at the end of the wait");
}

#[tokio::test]
async fn reserve_wait_wakes_promptly_when_a_job_arrives() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            let j = q.reserve_wait(LEASE, Duration::from_secs(10)).await.unwrap();
            (j, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.enqueue(job("wake")).await.unwrap();
    let (j, took) = waiter.await.unwrap();
    assert_eq!(j.unwrap().id, key("wake"));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn failures_retry_with_exponential_backoff_then_go_dead_with_the_error() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut j = job("flaky");
    j.options.max_attempts = 3;
    j.options.backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_millis(150), jitter: false };
    q.enqueue(j).await.unwrap();

    let r = q.reserve(LEASE).await.unwrap().unwrap();
    let out = q.fail(&r.id, &r.token, "boom 1", FailKind::Retry).await.unwrap();
    assert_eq!(out, FailOutcome::Retrying { delay: Duration::from_millis(100) });
    assert_eq!(q.stats().await.unwrap().failed, 1);
    assert!(q.reserve(LEASE).await.unwrap().is_none(), "not due yet");

    let r = q.reserve_wait(LEASE, Duration::from_secs(3)).await.unwrap().unwrap();
    assert_eq!(r.attempt, 2);
    let out = q.fail(&r.id, &r.token, "boom 2", FailKind::Retry).await.unwrap();
    assert_eq!(out, FailOutcome::Retrying { delay: Duration::from_millis(150) }, "capped");

    let r = q.reserve_wait(LEASE, Duration::from_secs(3)).await.unwrap().unwrap();
    assert_eq!(r.attempt, 3);
    assert_eq!(q.fail(&r.id, &r.token, "boom 3", FailKind::Retry).await.unwrap(), FailOutcome::Dead);

    let info = q.get(&key("flaky")).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Dead);
    assert_eq!(info.attempts, 3);
    assert_eq!(info.last_error.as_deref(), Some("boom 3"));
    assert!(info.finished_at_ms.is_some());

    q.retry_dead(&key("flaky")).await.unwrap();
    let r = q.reserve(LEASE).await.unwrap().unwrap();
    assert_eq!(r.attempt, 1, "fresh attempts");
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once_and_retry_after_is_honoured() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.enqueue_bulk(vec![job("p"), job("r")]).await.unwrap();
    let a = q.reserve(LEASE).await.unwrap().unwrap();
    assert_eq!(q.fail(&a.id, &a.token, "bad invoice", FailKind::Permanent).await.unwrap(), FailOutcome::Dead);
    let b = q.reserve(LEASE).await.unwrap().unwrap();
    let d = Duration::from_secs(7);
    assert_eq!(
        q.fail(&b.id, &b.token, "later", FailKind::RetryAfter(d)).await.unwrap(),
        FailOutcome::Retrying { delay: d }
    );
    let failed = q.list(JobState::Failed, 0, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].due_at_ms >= failed[0].created_at_ms + 6_000);
    q.promote(&key("r")).await.unwrap();
    assert_eq!(q.reserve(LEASE).await.unwrap().unwrap().id, key("r"));
    assert_eq!(q.promote(&key("r")).await, Err(QueueError::WrongState(JobState::Active)));
    assert_eq!(q.promote(&key("nope")).await, Err(QueueError::NotFound));
}

#[tokio::test]
async fn jittered_backoff_stays_within_half_and_full_delay() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut j = job("jit");
    j.options.backoff = Backoff { base: Duration::from_secs(10), max: Duration::from_mins(1), jitter: true };
    q.enqueue(j).await.unwrap();
    let r = q.reserve(LEASE).await.unwrap().unwrap();
    let FailOutcome::Retrying { delay } = q.fail(&r.id, &r.token, "x", FailKind::Retry).await.unwrap() else {
        panic!("expected a retry")
    };
    assert!(delay >= Duration::from_secs(5) && delay <= Duration::from_secs(10), "{delay:?}");
}

#[tokio::test]
async fn a_stale_token_can_neither_ack_nor_heartbeat_nor_fail() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.enqueue(job("s")).await.unwrap();
    let first = q.reserve(Duration::from_millis(100)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let second = q.reserve(LEASE).await.unwrap().unwrap();
    assert_eq!(second.id, first.id);
    assert_ne!(second.token, first.token);
    assert_eq!(q.ack(&first.id, &first.token).await, Err(QueueError::LeaseLost));
    assert_eq!(q.heartbeat(&first.id, &first.token, LEASE).await, Err(QueueError::LeaseLost));
    assert_eq!(q.fail(&first.id, &first.token, "x", FailKind::Retry).await, Err(QueueError::LeaseLost));
    assert_eq!(q.ack_and_reserve(&first.id, &first.token, LEASE).await, Err(QueueError::LeaseLost));
    q.ack(&second.id, &second.token).await.unwrap();
}

#[tokio::test]
async fn a_worker_that_stops_heartbeating_loses_its_lease_and_the_job_is_redelivered() {
    let Some(q) = queue(QueueConfig::default().with_max_stalls(1)).await else { return };
    q.enqueue(job("hb")).await.unwrap();
    let lease = Duration::from_millis(300);
    let r = q.reserve(lease).await.unwrap().unwrap();
    // Heartbeats keep the lease alive past its first expiry.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        q.heartbeat(&r.id, &r.token, lease).await.unwrap();
        assert_eq!(q.recover_stalled().await.unwrap().recovered, 0);
    }
    // Then the worker goes silent.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let again = q.reserve(lease).await.unwrap().expect("redelivered");
    assert_eq!((again.id.clone(), again.attempt), (key("hb"), 2));
    assert_eq!(q.get(&key("hb")).await.unwrap().unwrap().stalls, 1);
    // A second stall is over the limit: dead letters.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let info = q.get(&key("hb")).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Dead);
    assert!(info.last_error.unwrap().contains("stalled"));
}

#[tokio::test]
async fn retention_keeps_the_last_completed_and_dead_and_deletes_the_rest() {
    let cfg = QueueConfig::default().with_keep_completed(3).with_keep_dead(2);
    let Some(q) = queue(cfg).await else { return };
    let jobs: Vec<_> = (0..10).map(|i| job(&format!("k{i}"))).collect();
    q.enqueue_bulk(jobs).await.unwrap();
    for i in 0..10 {
        let r = q.reserve(LEASE).await.unwrap().unwrap();
        if i < 6 {
            q.ack(&r.id, &r.token).await.unwrap();
        } else {
            q.fail(&r.id, &r.token, "no", FailKind::Permanent).await.unwrap();
        }
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.completed, s.dead), (3, 2));
    let done: Vec<_> =
        q.list(JobState::Completed, 0, 10).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    assert_eq!(done, ["k3", "k4", "k5"], "oldest first");
    let page: Vec<_> = q.list(JobState::Completed, 1, 1).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    assert_eq!(page, ["k4"]);
    assert!(q.list(JobState::Completed, 3, 5).await.unwrap().is_empty());
    let dead: Vec<_> = q.list(JobState::Dead, 0, 10).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    assert_eq!(dead, ["k8", "k9"]);
    assert!(q.get(&key("k0")).await.unwrap().is_none(), "trimmed job hashes are deleted");
    assert_eq!(q.enqueue(job("k0")).await.unwrap(), Enqueued::Duplicate, "still claimed within the window");
    // Nothing else is left behind: job hashes = retained jobs.
    let keys: Vec<String> = redis_keys(&q, &format!("{}:j:*", q.base_key())).await;
    assert_eq!(keys.len(), 5, "{keys:?}");
    // Error histories: only the two retained dead jobs' (k6 and k7's went with them).
    let mut histories: Vec<String> = redis_keys(&q, &format!("{}:e:*", q.base_key())).await;
    histories.sort();
    let expected: Vec<String> = ["k8", "k9"].iter().map(|id| format!("{}:e:{id}", q.base_key())).collect();
    assert_eq!(histories, expected);
}

async fn redis_keys(q: &RedisQueue, pattern: &str) -> Vec<String> {
    let client = q.connection().client();
    let mut out = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, mut page): (String, Vec<String>) = fred::interfaces::ClientLike::custom(
            client,
            fred::cmd!("SCAN"),
            vec![cursor.clone(), "MATCH".into(), pattern.into(), "COUNT".into(), "1000".into()],
        )
        .await
        .unwrap();
        out.append(&mut page);
        if next == "0" {
            return out;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn the_dedup_window_ends_and_the_id_can_be_reused() {
    let cfg = QueueConfig::default().with_keep_completed(0).with_dedup_window(Duration::from_millis(200));
    let Some(q) = queue(cfg).await else { return };
    q.enqueue(job("once")).await.unwrap();
    let r = q.reserve(LEASE).await.unwrap().unwrap();
    q.ack(&r.id, &r.token).await.unwrap();
    assert!(q.get(&key("once")).await.unwrap().is_none());
    assert_eq!(q.enqueue(job("once")).await.unwrap(), Enqueued::Duplicate);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.enqueue(job("once")).await.unwrap(), Enqueued::Added);
}

#[tokio::test]
async fn pause_stops_handing_out_jobs_and_resume_wakes_waiters() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.pause().await.unwrap();
    q.enqueue(job("p")).await.unwrap();
    assert!(q.stats().await.unwrap().paused);
    assert!(q.reserve(LEASE).await.unwrap().is_none());
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.reserve_wait(LEASE, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.resume().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), waiter).await.expect("woke").unwrap().unwrap();
    assert_eq!(got.unwrap().id, key("p"));
}

#[tokio::test]
async fn admin_remove_retry_all_and_listing_by_state() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut delayed = job("d1");
    delayed.options.delay = Duration::from_mins(1);
    q.enqueue_bulk(vec![job("w1"), job("w2"), delayed, job("x1"), job("x2")]).await.unwrap();
    let a = q.reserve(LEASE).await.unwrap().unwrap();
    assert_eq!(q.remove(&a.id).await, Err(QueueError::WrongState(JobState::Active)));
    for _ in 0..2 {
        let r = q.reserve(LEASE).await.unwrap().unwrap();
        q.fail(&r.id, &r.token, "dead", FailKind::Permanent).await.unwrap();
    }
    assert_eq!(q.list(JobState::Delayed, 0, 10).await.unwrap()[0].id, key("d1"));
    assert_eq!(q.list(JobState::Waiting, 0, 10).await.unwrap().len(), 1);
    let dead: Vec<_> = q.list(JobState::Dead, 0, 10).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    assert_eq!(dead, ["w2", "x1"]);
    assert_eq!(q.list(JobState::Active, 0, 10).await.unwrap()[0].id, a.id);
    q.remove(&key("d1")).await.unwrap();
    assert_eq!(q.remove(&key("d1")).await, Err(QueueError::NotFound));
    assert_eq!(q.enqueue(job("d1")).await.unwrap(), Enqueued::Duplicate);
    assert_eq!(q.retry_dead(&key("x2")).await, Err(QueueError::WrongState(JobState::Waiting)));
    assert_eq!(q.retry_all_dead().await.unwrap(), 2);
    let s = q.stats().await.unwrap();
    assert_eq!((s.waiting, s.dead, s.delayed, s.active), (3, 0, 0, 1));
    q.ping().await.unwrap();
}

#[tokio::test]
async fn batched_ack_and_reserve_acks_many_and_reports_lost_leases() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let jobs: Vec<_> = (0..20).map(|i| job(&format!("b{i}"))).collect();
    q.enqueue_bulk(jobs).await.unwrap();
    let first = q.reserve_many(5, LEASE).await.unwrap();
    assert_eq!(first.len(), 5);
    let mut acks: Vec<_> = first.iter().map(|j| (j.id.clone(), j.token.clone())).collect();
    // A well-formed token that holds no job.
    let forged = sunusav_core::ports::queue::LeaseToken::minted(format!("{:032x}0000", 0xdead_u32)).unwrap();
    acks.push((key("b19"), forged));
    let step = q.ack_many_and_reserve(&acks, 10, LEASE).await.unwrap();
    assert_eq!(step.acked, [true, true, true, true, true, false]);
    assert_eq!(step.jobs.len(), 10);
    assert_eq!(step.jobs[0].id, key("b5"));
    let s = q.stats().await.unwrap();
    assert_eq!((s.completed, s.active, s.waiting), (5, 10, 5));
}

#[tokio::test]
async fn a_reserve_count_over_the_batch_limit_reserves_up_to_the_limit() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let limit = sunusav_redis::queue::MAX_BATCH;
    q.enqueue_bulk((0..limit + 200).map(|i| job(&format!("m{i}"))).collect()).await.unwrap();
    let first = q.ack_many_and_reserve(&[], 5 * limit, LEASE).await.unwrap();
    assert_eq!(first.jobs.len(), limit);
    let second = q.ack_many_and_reserve(&[], 5 * limit, LEASE).await.unwrap();
    assert_eq!(second.jobs.len(), 200);
    assert_eq!(q.stats().await.unwrap().active, u64::try_from(limit + 200).unwrap());
}

#[tokio::test]
async fn a_batch_larger_than_the_retention_keeps_its_newest_and_claims_the_rest() {
    let Some(q) = queue(QueueConfig::default().with_keep_completed(3)).await else { return };
    q.enqueue_bulk((0..9).map(|i| job(&format!("k{i}"))).collect()).await.unwrap();
    let ack_all = |held: &[sunusav_core::ports::queue::ReservedJob]| -> Vec<_> {
        held.iter().map(|j| (j.id.clone(), j.token.clone())).collect()
    };
    // Two acked alone first, then a batch of five: the batch alone fills the retention.
    let early = q.reserve_many(2, LEASE).await.unwrap();
    assert_eq!(q.ack_many_and_reserve(&ack_all(&early), 0, LEASE).await.unwrap().acked, [true, true]);
    let held = q.reserve_many(5, LEASE).await.unwrap();
    let step = q.ack_many_and_reserve(&ack_all(&held), 0, LEASE).await.unwrap();
    assert_eq!(step.acked, [true; 5]);
    let completed = |q: RedisQueue| async move {
        q.list(JobState::Completed, 0, 10).await.unwrap().into_iter().map(|j| j.id.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(completed(q.clone()).await, ["k4", "k5", "k6"], "the newest three, oldest first");
    for gone in ["k0", "k1", "k2", "k3"] {
        assert!(q.get(&key(gone)).await.unwrap().is_none(), "{gone} is dropped");
        assert_eq!(q.enqueue(job(gone)).await.unwrap(), Enqueued::Duplicate, "{gone} stays claimed");
    }
    let kept = q.get(&key("k6")).await.unwrap().unwrap();
    assert!(kept.finished_at_ms.is_some());
    // A smaller batch trims the oldest retained ones.
    let held = q.reserve_many(2, LEASE).await.unwrap();
    q.ack_many_and_reserve(&ack_all(&held), 0, LEASE).await.unwrap();
    assert_eq!(completed(q.clone()).await, ["k6", "k7", "k8"]);
    let s = q.stats().await.unwrap();
    assert_eq!((s.completed, s.active, s.waiting), (3, 0, 0));
}

#[tokio::test]
async fn a_batch_acks_each_lease_once_and_rejects_a_token_of_another_job() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.enqueue_bulk((0..4).map(|i| job(&format!("t{i}"))).collect()).await.unwrap();
    let held = q.reserve_many(4, LEASE).await.unwrap();
    let pair = |i: usize| (held[i].id.clone(), held[i].token.clone());
    // The same lease twice, a live token of another job, and two valid acks.
    let swapped = (held[2].id.clone(), held[3].token.clone());
    let acks = vec![pair(0), pair(0), swapped, pair(1)];
    let step = q.ack_many_and_reserve(&acks, 0, LEASE).await.unwrap();
    assert_eq!(step.acked, [true, false, false, true]);
    let s = q.stats().await.unwrap();
    assert_eq!((s.completed, s.active), (2, 2));
    let active: Vec<_> = q.list(JobState::Active, 0, 10).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    assert_eq!(active, ["t2", "t3"]);
    // The two still held can be acked with their own tokens, in one batch.
    let step = q.ack_many_and_reserve(&[pair(2), pair(3)], 1, LEASE).await.unwrap();
    assert_eq!((step.acked, step.jobs.len()), (vec![true, true], 0));
    assert_eq!(q.stats().await.unwrap().completed, 4);
}

#[tokio::test]
async fn a_delayed_job_enqueued_after_the_queue_was_seen_empty_is_still_promoted() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    // The reserve caches "nothing delayed"; the delayed enqueue must lower it.
    assert!(q.reserve(LEASE).await.unwrap().is_none());
    let mut j = job("later");
    j.options.delay = Duration::from_millis(150);
    q.enqueue(j).await.unwrap();
    assert!(q.reserve(LEASE).await.unwrap().is_none());
    let got = q.reserve_wait(LEASE, Duration::from_secs(3)).await.unwrap().expect("promoted once due");
    assert_eq!(got.id, key("later"));
}

#[tokio::test]
async fn recovery_reports_every_job_it_dead_letters_over_several_script_calls_even_when_none_is_retained() {
    // keep_dead 0: each dead job is deleted at once, so the script must read
    // it first; 1001 expired leases take two script calls (1000 per call).
    let Some(q) = queue(QueueConfig::default().with_keep_dead(0)).await else { return };
    let n = 1001;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            let mut j = job(&format!("r{i}"));
            j.options.max_attempts = 1;
            j
        })
        .collect();
    q.enqueue_bulk(jobs).await.unwrap();
    let mut held = q.reserve_many(1000, Duration::from_millis(100)).await.unwrap();
    held.extend(q.reserve_many(1000, Duration::from_millis(100)).await.unwrap());
    assert_eq!(held.len(), n);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = q.recover_stalled().await.unwrap();
    assert_eq!((r.recovered, r.dead.len()), (n as u64, n));
    let mut seen = std::collections::HashSet::new();
    for d in &r.dead {
        assert_eq!(d.job.payload, format!("payload of {}", d.job.id).into_bytes());
        assert_eq!((d.job.attempt, d.job.max_attempts), (1, 1));
        assert!(d.error.contains("stalled"), "{:?}", d.error);
        let taken = held.iter().find(|h| h.id == d.job.id).expect("a job that was held");
        assert_eq!(d.job.token, taken.token);
        assert!(seen.insert(d.job.id.clone()), "{} reported twice", d.job.id);
    }
    assert_eq!(q.get(&key("r0")).await.unwrap(), None, "not retained");
    let again = q.recover_stalled().await.unwrap();
    assert_eq!((again.recovered, again.dead.len()), (0, 0));
}

#[tokio::test]
async fn a_job_due_at_the_farthest_horizon_reads_back_exactly() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let mut far = job("far");
    far.options.delay = Duration::MAX;
    q.enqueue(far).await.unwrap();
    let info = q.get(&key("far")).await.unwrap().unwrap();
    // The delay is capped at 2^53 ms (Lua's numbers are doubles, exact to
    // within 1 ms up there); the due time is stored and read back as an
    // integer, never as 0.
    assert_eq!(info.state, JobState::Delayed);
    assert!((info.due_at_ms - info.created_at_ms).abs_diff(1 << 53) <= 1, "{info:?}");
    assert_eq!(q.list(JobState::Delayed, 0, 10).await.unwrap(), [info]);
}

async fn hset(q: &RedisQueue, id: &str, field: &str, value: &str) {
    let _: i64 = fred::interfaces::ClientLike::custom(
        q.connection().client(),
        fred::cmd!("HSET"),
        vec![format!("{}:j:{id}", q.base_key()), field.into(), value.into()],
    )
    .await
    .unwrap();
}

#[track_caller]
fn corrupt_saying<T: std::fmt::Debug>(r: Result<T, QueueError>, needle: &str) {
    match r {
        Err(QueueError::Corrupt(msg)) => assert!(msg.contains(needle), "{msg:?} does not say {needle:?}"),
        other => panic!("expected Corrupt saying {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_corrupted_job_hash_is_reported_corrupt_not_unavailable_and_not_read_as_zero() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    q.enqueue_bulk(vec![job("a"), job("b"), job("c")]).await.unwrap();
    // An unknown state code, and a count that is not a number.
    hset(&q, "a", "st", "q").await;
    hset(&q, "b", "a", "many").await;
    corrupt_saying(q.get(&key("a")).await, "job info of a: state (hash field \"st\"): unknown job state code \"q\"");
    corrupt_saying(q.get(&key("b")).await, "job info of b: attempts (hash field \"a\")");
    let listed = q.list(JobState::Waiting, 0, 10).await;
    corrupt_saying(listed, "job info of a");
    assert!(!q.get(&key("a")).await.unwrap_err().is_retryable(), "a bug to see, not a retry");
    // The intact job and the counts still read.
    assert_eq!(q.get(&key("c")).await.unwrap().unwrap().attempts, 0);
    assert_eq!(q.stats().await.unwrap().waiting, 3);
    // A script that cannot read a job fails: reported as such, not retried.
    assert_eq!(q.reserve(LEASE).await.unwrap().unwrap().id, key("a"));
    let failed = q.reserve(LEASE).await;
    corrupt_saying(failed.clone(), "a queue script failed");
    assert!(!failed.unwrap_err().is_retryable());
}

#[tokio::test]
async fn list_after_is_exact_on_sorted_sets_and_says_when_a_list_cursor_lost_its_job() {
    let Some(q) = queue(QueueConfig::default().with_keep_dead(100)).await else { return };
    let ids =
        |page: &sunusav_core::ports::queue::JobPage| page.jobs.iter().map(|j| j.id.to_string()).collect::<Vec<_>>();
    q.enqueue_bulk((0..5).map(|i| job(&format!("w{i}"))).collect()).await.unwrap();
    let first = q.list_after(JobState::Waiting, None, 2).await.unwrap();
    assert_eq!(ids(&first), ["w0", "w1"]);
    let cursor = first.next.expect("more");
    q.remove(&key("w1")).await.unwrap();
    q.remove(&key("w0")).await.unwrap();
    q.enqueue(job("w5")).await.unwrap();
    let second = q.list_after(JobState::Waiting, Some(&cursor), 2).await.unwrap();
    assert_eq!((ids(&second), second.resumed), (vec!["w2".to_owned(), "w3".to_owned()], false));
    // The cursor's member was put back as it was: nothing of it is left in the set.
    assert_eq!(q.stats().await.unwrap().waiting, 4);
    assert!(q.get(&key("w1")).await.unwrap().is_none());

    // Dead jobs are a list: by position; a cursor whose job left says so.
    while let Some(r) = q.reserve(LEASE).await.unwrap() {
        q.fail(&r.id, &r.token, "no", FailKind::Permanent).await.unwrap();
    }
    let first = q.list_after(JobState::Dead, None, 2).await.unwrap();
    assert_eq!(ids(&first), ["w2", "w3"]);
    q.remove(&key("w3")).await.unwrap();
    let second = q.list_after(JobState::Dead, first.next.as_ref(), 2).await.unwrap();
    assert_eq!((ids(&second), second.resumed, second.next), (vec!["w4".to_owned(), "w5".to_owned()], true, None));
}
