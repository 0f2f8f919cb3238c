//! The queue conformance suite against [`MemoryQueue`], and tests of exact
//! schedules under paused time (`tokio::time::pause` + `advance`).

use std::sync::Arc;
use std::time::Duration;

use sunusav_core::IdempotencyKey;
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{
    Enqueued, FailKind, FailOutcome, JobOptions, JobState, NewJob, Queue, QueueConfig, QueueError, ReservedJob,
};
use tokio::time::{Instant, advance};

mod conformance {
    use std::sync::Arc;

    use sunusav_core::memory::MemoryQueue;
    use sunusav_core::ports::Queue;

    sunusav_core::queue_conformance_tests!(|config| async move {
        Arc::new(MemoryQueue::new("conformance", config)) as Arc<dyn Queue>
    });
}

const LEASE: Duration = Duration::from_secs(30);

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

fn job(id: &str) -> NewJob {
    NewJob::new(key(id), id.as_bytes().to_vec())
}

fn queue() -> MemoryQueue {
    MemoryQueue::new("test", QueueConfig::default())
}

async fn take(q: &MemoryQueue) -> ReservedJob {
    q.reserve(LEASE).await.unwrap().expect("a due job")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_every_case_in_a_few_seconds() {
    let start = std::time::Instant::now();
    sunusav_core::conformance::queue::run_all(|config| async move {
        Arc::new(MemoryQueue::new("conformance", config)) as Arc<dyn Queue>
    })
    .await;
    assert!(start.elapsed() < Duration::from_secs(10), "the suite took {:?}", start.elapsed());
}

#[tokio::test]
#[should_panic(expected = "queue conformance case `reserve_takes_higher_priority_first_then_fifo` failed")]
async fn a_failing_case_is_named() {
    // A queue that is paused hands out nothing: the case must fail, by name.
    let make = |config| async move {
        let q = MemoryQueue::new("broken", config);
        q.pause().await.unwrap();
        Arc::new(q) as Arc<dyn Queue>
    };
    sunusav_core::conformance::queue::run_case(&make, "reserve_takes_higher_priority_first_then_fifo").await;
}

#[tokio::test(start_paused = true)]
async fn default_backoff_is_2_4_8_16_seconds_then_dead_after_5_attempts() {
    let q = queue();
    q.enqueue(job("a")).await.unwrap();
    for (attempt, secs) in [(1, 2), (2, 4), (3, 8), (4, 16)] {
        let j = take(&q).await;
        assert_eq!((j.attempt, j.max_attempts), (attempt, 5));
        let delay = Duration::from_secs(secs);
        assert_eq!(q.fail(&j.id, &j.token, "boom", FailKind::Retry).await, Ok(FailOutcome::Retrying { delay }));
        advance(just_before(delay)).await;
        assert_eq!(q.reserve(LEASE).await.unwrap(), None, "attempt {attempt}: not before {secs} s");
        advance(Duration::from_millis(1)).await;
    }
    let j = take(&q).await;
    assert_eq!(j.attempt, 5);
    assert_eq!(q.fail(&j.id, &j.token, "last", FailKind::Retry).await, Ok(FailOutcome::Dead));
    let info = q.get(&key("a")).await.unwrap().unwrap();
    assert_eq!((info.state, info.attempts), (JobState::Dead, 5));
    assert_eq!(info.last_error.as_deref(), Some("last"));
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_redelivered_as_the_next_attempt() {
    let q = queue();
    q.enqueue(job("a")).await.unwrap();
    let first = take(&q).await;
    advance(just_before(LEASE)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let second = take(&q).await;
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token);
    assert_eq!(q.get(&key("a")).await.unwrap().unwrap().stalls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_stale_token_cannot_ack_heartbeat_or_fail_a_redelivered_job() {
    let q = queue();
    q.enqueue(job("a")).await.unwrap();
    let stale = take(&q).await;
    advance(LEASE).await;
    q.recover_stalled().await.unwrap();
    let fresh = take(&q).await;
    assert_eq!(q.ack(&stale.id, &stale.token).await, Err(QueueError::LeaseLost));
    assert_eq!(q.heartbeat(&stale.id, &stale.token, LEASE).await, Err(QueueError::LeaseLost));
    assert_eq!(q.fail(&stale.id, &stale.token, "x", FailKind::Retry).await, Err(QueueError::LeaseLost));
    q.ack(&fresh.id, &fresh.token).await.unwrap();
    assert_eq!(q.get(&key("a")).await.unwrap().unwrap().state, JobState::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_keeps_a_lease_alive_past_its_first_expiry() {
    let q = queue();
    q.enqueue(job("a")).await.unwrap();
    let j = take(&q).await;
    advance(Duration::from_secs(20)).await;
    q.heartbeat(&j.id, &j.token, LEASE).await.unwrap();
    advance(Duration::from_secs(29)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0);
    advance(Duration::from_secs(1)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
}

#[tokio::test(start_paused = true)]
async fn a_job_is_dead_after_max_attempts_with_its_last_error() {
    let q = queue();
    let options = JobOptions { max_attempts: 3, ..JobOptions::default() };
    q.enqueue(NewJob { options, ..job("a") }).await.unwrap();
    for n in 1..=3 {
        let j = q.reserve_wait(LEASE, Duration::from_mins(1)).await.unwrap().expect("due after its backoff");
        assert_eq!(j.attempt, n);
        let outcome = q.fail(&j.id, &j.token, &format!("error {n}"), FailKind::Retry).await.unwrap();
        assert_eq!(outcome == FailOutcome::Dead, n == 3, "attempt {n}: {outcome:?}");
    }
    let dead = q.list(JobState::Dead, 0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].last_error.as_deref()), (3, Some("error 3")));
    assert_eq!(q.reserve_wait(LEASE, Duration::from_mins(1)).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_stall_on_the_last_attempt_is_dead() {
    let q = MemoryQueue::new("test", QueueConfig::default().with_max_stalls(5));
    let options = JobOptions { max_attempts: 1, ..JobOptions::default() };
    q.enqueue(NewJob { options, ..job("a") }).await.unwrap();
    take(&q).await;
    advance(LEASE).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    assert_eq!(q.get(&key("a")).await.unwrap().unwrap().state, JobState::Dead);
}

#[tokio::test(start_paused = true)]
async fn retention_keeps_the_last_10_completed_and_50_dead_by_default() {
    let q = queue();
    for i in 0..15 {
        q.enqueue(job(&format!("c{i}"))).await.unwrap();
        let j = take(&q).await;
        q.ack(&j.id, &j.token).await.unwrap();
    }
    for i in 0..55 {
        q.enqueue(job(&format!("d{i}"))).await.unwrap();
        let j = take(&q).await;
        q.fail(&j.id, &j.token, "no", FailKind::Permanent).await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.dead), (10, 50));
    let completed: Vec<String> =
        q.list(JobState::Completed, 0, 100).await.unwrap().into_iter().map(|j| j.id.to_string()).collect();
    let expected: Vec<String> = (5..15).map(|i| format!("c{i}")).collect();
    assert_eq!(completed, expected);
    let first_dead = q.list(JobState::Dead, 0, 1).await.unwrap();
    assert_eq!(first_dead[0].id, key("d5"));
    assert_eq!(q.get(&key("c4")).await.unwrap(), None);
    assert_eq!(q.get(&key("d4")).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn an_id_is_free_again_after_the_dedup_window() {
    let window = Duration::from_mins(1);
    let q = MemoryQueue::new("test", QueueConfig::default().with_keep_completed(0).with_dedup_window(window));
    q.enqueue(job("acked")).await.unwrap();
    q.enqueue(job("removed")).await.unwrap();
    let j = take(&q).await;
    q.ack(&j.id, &j.token).await.unwrap();
    q.remove(&key("removed")).await.unwrap();
    advance(just_before(window)).await;
    assert_eq!(q.enqueue(job("acked")).await.unwrap(), Enqueued::Duplicate);
    assert_eq!(q.enqueue(job("removed")).await.unwrap(), Enqueued::Duplicate);
    advance(Duration::from_millis(1)).await;
    assert_eq!(q.enqueue(job("acked")).await.unwrap(), Enqueued::Added);
    assert_eq!(q.enqueue(job("removed")).await.unwrap(), Enqueued::Added);
    assert_eq!(q.stats().await.unwrap().waiting, 2);
}

#[tokio::test(start_paused = true)]
async fn a_retained_job_keeps_its_id_claimed_past_the_window() {
    let window = Duration::from_mins(1);
    let q = MemoryQueue::new("test", QueueConfig::default().with_dedup_window(window));
    q.enqueue(job("a")).await.unwrap();
    let j = take(&q).await;
    q.ack(&j.id, &j.token).await.unwrap();
    advance(window * 2).await;
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate);
}

#[tokio::test(start_paused = true)]
async fn reserve_wait_sleeps_exactly_until_a_delayed_job_is_due() {
    let q = queue();
    let delay = Duration::from_secs(10);
    q.enqueue(NewJob { options: JobOptions { delay, ..JobOptions::default() }, ..job("a") }).await.unwrap();
    let start = Instant::now();
    let j = q.reserve_wait(LEASE, Duration::from_mins(1)).await.unwrap().expect("the delayed job");
    assert_eq!(start.elapsed(), delay);
    assert_eq!(j.due_at_ms - j.enqueued_at_ms, 10_000);
}

#[tokio::test(start_paused = true)]
async fn reserve_wait_gives_up_exactly_after_wait() {
    let q = queue();
    let start = Instant::now();
    assert_eq!(q.reserve_wait(LEASE, Duration::from_secs(5)).await.unwrap(), None);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn reserve_wait_is_woken_by_a_retry_without_delay() {
    let q = queue();
    q.enqueue(job("a")).await.unwrap();
    let j = take(&q).await;
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.reserve_wait(LEASE, Duration::from_mins(1)).await })
    };
    tokio::task::yield_now().await;
    let start = Instant::now();
    q.fail(&j.id, &j.token, "again", FailKind::RetryAfter(Duration::ZERO)).await.unwrap();
    let again = waiter.await.unwrap().unwrap().expect("the retried job");
    assert_eq!(again.attempt, 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_due_earlier_wakes_a_waiter_sleeping_on_a_later_one() {
    let q = queue();
    let later = JobOptions { delay: Duration::from_secs(100), ..JobOptions::default() };
    q.enqueue(NewJob { options: later, ..job("later") }).await.unwrap();
    q.enqueue(job("now")).await.unwrap();
    let j = take(&q).await;
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.reserve_wait(LEASE, Duration::from_mins(10)).await })
    };
    tokio::task::yield_now().await;
    let start = Instant::now();
    q.fail(&j.id, &j.token, "again", FailKind::RetryAfter(Duration::from_secs(3))).await.unwrap();
    let again = waiter.await.unwrap().unwrap().expect("the retried job");
    assert_eq!(again.id, key("now"));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

/// One millisecond short of `d`.
fn just_before(d: Duration) -> Duration {
    d.checked_sub(Duration::from_millis(1)).expect("at least a millisecond")
}
