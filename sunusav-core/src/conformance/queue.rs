//! The conformance suite of the [`Queue`] port: every adapter must pass it.
//!
//! It runs in real time (a Redis server cannot have paused time), with tiny
//! leases, delays and backoffs, and bounded waits: the whole suite takes a few
//! seconds. Each case gets a fresh queue from a factory that takes the case's
//! [`QueueConfig`] (a Redis factory gives each its own key prefix).
//!
//! Run every case as one test:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use sunusav_core::{memory::MemoryQueue, ports::Queue};
//! # async fn example() {
//! sunusav_core::conformance::queue::run_all(|config| async move {
//!     Arc::new(MemoryQueue::new("conformance", config)) as Arc<dyn Queue>
//! })
//! .await;
//! # }
//! ```
//!
//! or one `#[tokio::test]` per case (the calling crate needs `tokio` with the
//! `macros` and `rt-multi-thread` features):
//!
//! ```text
//! sunusav_core::queue_conformance_tests!(|config| async move {
//!     Arc::new(MemoryQueue::new("conformance", config)) as Arc<dyn Queue>
//! });
//! ```
//!
//! Each case is also a public `async fn` taking a queue built with the
//! settings that [`config_of`] returns for its name; [`cases`] lists them all.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, sleep};

use crate::domain::keys::IdempotencyKey;
use crate::ports::queue::{
    Backoff, ConsumerExt, Enqueued, FailKind, FailOutcome, JobCursor, JobError, JobOptions, JobState, LeaseToken,
    NewJob, Queue, QueueConfig, QueueError, ReservedJob,
};

/// A lease long enough never to expire during a case.
const LONG: Duration = Duration::from_secs(30);
/// A lease short enough to expire during a case.
const SHORT: Duration = Duration::from_millis(200);
/// A small delay (producer delay, backoff).
const SMALL: Duration = Duration::from_millis(200);
/// Longer than [`SMALL`] and [`SHORT`], with room for clock granularity.
const PAST_SMALL: Duration = Duration::from_millis(350);
/// How soon a woken `reserve_wait` must return.
const PROMPT: Duration = Duration::from_secs(1);
/// The longest a case may run.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A boxed case future.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name (its function's name).
    pub name: &'static str,
    /// The settings its queue must be built with.
    pub config: QueueConfig,
    /// The case.
    pub run: fn(Arc<dyn Queue>) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).field("config", &self.config).finish_non_exhaustive()
    }
}

/// Settings that retain every finished job of a case, with an hour of dedup window.
fn base() -> QueueConfig {
    QueueConfig {
        keep_completed: 1000,
        keep_dead: 1000,
        max_stalls: 1,
        dedup_window: Duration::from_hours(1),
        error_history: QueueConfig::DEFAULT_ERROR_HISTORY,
    }
}

macro_rules! case {
    ($name:ident) => {
        case!($name, base())
    };
    ($name:ident, $config:expr) => {
        Case { name: stringify!($name), config: $config, run: |q| Box::pin($name(q)) }
    };
}

/// Every case, with the settings of its queue.
pub fn cases() -> Vec<Case> {
    vec![
        case!(ping_answers_and_name_is_set),
        case!(enqueue_refuses_zero_attempts),
        case!(enqueue_dedups_by_id, QueueConfig { keep_completed: 0, ..base() }),
        case!(enqueue_bulk_reports_each_job_in_order),
        case!(reserve_takes_higher_priority_first_then_fifo),
        case!(reserve_returns_none_when_empty),
        case!(delayed_job_is_reserved_only_once_due),
        case!(reserve_wait_wakes_promptly_on_enqueue),
        case!(reserve_wait_returns_none_after_wait),
        case!(reserve_wait_wakes_when_a_delayed_job_is_due),
        case!(expired_lease_is_recovered_and_redelivered),
        case!(stale_token_is_refused),
        case!(heartbeat_extends_the_lease),
        case!(failed_job_is_retried_after_backoff),
        case!(backoff_grows_exponentially),
        case!(job_is_dead_after_max_attempts),
        case!(permanent_failure_is_dead_at_once),
        case!(too_many_stalls_is_dead, QueueConfig { max_stalls: 1, ..base() }),
        case!(a_stalled_last_attempt_is_dead, QueueConfig { max_stalls: 5, ..base() }),
        case!(recovery_reports_each_job_it_dead_letters_once, QueueConfig { max_stalls: 1, ..base() }),
        case!(retention_trims_completed_and_dead, QueueConfig { keep_completed: 2, keep_dead: 1, ..base() }),
        case!(stats_count_each_state),
        case!(list_pages_oldest_first),
        case!(get_reports_a_job),
        case!(retry_dead_gives_fresh_attempts),
        case!(retry_all_dead_moves_every_dead_job),
        case!(remove_deletes_jobs_not_active),
        case!(promote_makes_delayed_and_failed_jobs_due),
        case!(pause_stops_reserving_until_resume),
        case!(ack_and_reserve_returns_the_next_job),
        case!(ack_many_and_reserve_acks_each_and_reserves_in_order),
        case!(concurrent_consumers_take_each_job_once),
        case!(list_after_pages_by_a_cursor_that_holds_when_jobs_leave),
        case!(
            error_history_keeps_each_failure_in_order_bounded_across_retries,
            QueueConfig { error_history: 3, max_stalls: 5, ..base() }
        ),
        case!(
            error_history_is_gone_with_the_job,
            QueueConfig { keep_completed: 0, keep_dead: 1, dedup_window: Duration::ZERO, ..base() }
        ),
    ]
}

/// The settings of the queue that case `name` runs against.
///
/// # Panics
/// When no case has that name.
pub fn config_of(name: &str) -> QueueConfig {
    find(name).config
}

fn find(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no queue conformance case named `{name}`"))
}

/// Runs one case by name against a fresh queue from `make`.
///
/// # Panics
/// When the case fails (the message names it), or takes longer than 30 s.
pub async fn run_case<F, Fut>(make: &F, name: &str)
where
    F: Fn(QueueConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    let case = find(name);
    let queue = make(case.config).await;
    let handle = tokio::spawn(tokio::time::timeout(CASE_TIMEOUT, (case.run)(queue)));
    match handle.await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("queue conformance case `{name}` timed out after {CASE_TIMEOUT:?}"),
        Err(e) => {
            let msg = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!("queue conformance case `{name}` failed: {msg}");
        }
    }
}

/// Runs every case, each against a fresh queue from `make`.
///
/// # Panics
/// On the first failing case, naming it.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(QueueConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    for case in cases() {
        run_case(&make, case.name).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance case of the queue port,
/// given a factory `Fn(QueueConfig) -> impl Future<Output = Arc<dyn Queue>>`.
///
/// ```text
/// mod memory_queue {
///     use std::sync::Arc;
///     use sunusav_core::memory::MemoryQueue;
///     use sunusav_core::ports::Queue;
///
///     sunusav_core::queue_conformance_tests!(|config| async move {
///         Arc::new(MemoryQueue::new("conformance", config)) as Arc<dyn Queue>
///     });
/// }
/// ```
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! queue_conformance_tests {
    ($make:expr) => {
        $crate::queue_conformance_tests!(@cases $make;
            ping_answers_and_name_is_set,
            enqueue_refuses_zero_attempts,
            enqueue_dedups_by_id,
            enqueue_bulk_reports_each_job_in_order,
            reserve_takes_higher_priority_first_then_fifo,
            reserve_returns_none_when_empty,
            delayed_job_is_reserved_only_once_due,
            reserve_wait_wakes_promptly_on_enqueue,
            reserve_wait_returns_none_after_wait,
            reserve_wait_wakes_when_a_delayed_job_is_due,
            expired_lease_is_recovered_and_redelivered,
            stale_token_is_refused,
            heartbeat_extends_the_lease,
            failed_job_is_retried_after_backoff,
            backoff_grows_exponentially,
            job_is_dead_after_max_attempts,
            permanent_failure_is_dead_at_once,
            too_many_stalls_is_dead,
            a_stalled_last_attempt_is_dead,
            recovery_reports_each_job_it_dead_letters_once,
            retention_trims_completed_and_dead,
            stats_count_each_state,
            list_pages_oldest_first,
            get_reports_a_job,
            retry_dead_gives_fresh_attempts,
            retry_all_dead_moves_every_dead_job,
            remove_deletes_jobs_not_active,
            promote_makes_delayed_and_failed_jobs_due,
            pause_stops_reserving_until_resume,
            ack_and_reserve_returns_the_next_job,
            ack_many_and_reserve_acks_each_and_reserves_in_order,
            concurrent_consumers_take_each_job_once,
            list_after_pages_by_a_cursor_that_holds_when_jobs_leave,
            error_history_keeps_each_failure_in_order_bounded_across_retries,
            error_history_is_gone_with_the_job,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::queue::run_case(&$make, stringify!($case)).await;
            }
        )*

        #[test]
        fn queue_conformance_macro_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let known: ::std::vec::Vec<&str> =
                $crate::conformance::queue::cases().iter().map(|c| c.name).collect();
            assert_eq!(listed, known.as_slice(), "queue_conformance_tests! and cases() disagree");
        }
    };
}

// ---------------------------------------------------------------- helpers

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("a valid test key")
}

fn job(id: &str) -> NewJob {
    NewJob::new(key(id), id.as_bytes().to_vec())
}

fn job_with(id: &str, options: JobOptions) -> NewJob {
    NewJob { options, ..job(id) }
}

fn backoff(base: Duration) -> Backoff {
    Backoff { base, max: Duration::from_mins(1), jitter: false }
}

async fn add(q: &Arc<dyn Queue>, new: NewJob) {
    let id = new.id.clone();
    assert_eq!(q.enqueue(new).await.expect("enqueue"), Enqueued::Added, "enqueue {id} should add it");
}

async fn take(q: &Arc<dyn Queue>, lease: Duration) -> ReservedJob {
    q.reserve(lease).await.expect("reserve").expect("a job should be due")
}

async fn state_of(q: &Arc<dyn Queue>, id: &str) -> Option<JobState> {
    q.get(&key(id)).await.expect("get").map(|j| j.state)
}

async fn ids(q: &Arc<dyn Queue>, state: JobState) -> Vec<String> {
    q.list(state, 0, 1000).await.expect("list").into_iter().map(|j| j.id.to_string()).collect()
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------- cases

/// `ping` answers and the queue has a name.
pub async fn ping_answers_and_name_is_set(q: Arc<dyn Queue>) {
    q.ping().await.expect("ping");
    assert!(!q.name().is_empty(), "a queue has a name");
}

/// `max_attempts == 0` is `Invalid`, alone or in a batch.
pub async fn enqueue_refuses_zero_attempts(q: Arc<dyn Queue>) {
    let zero = JobOptions { max_attempts: 0, ..JobOptions::default() };
    assert!(matches!(q.enqueue(job_with("a", zero)).await, Err(QueueError::Invalid(_))));
    assert!(matches!(q.enqueue_bulk(vec![job("b"), job_with("c", zero)]).await, Err(QueueError::Invalid(_))));
    assert_eq!(state_of(&q, "a").await, None);
}

/// The same id twice is one job, also after the job completed and is no longer
/// retained (`keep_completed: 0`), and after it was removed.
pub async fn enqueue_dedups_by_id(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate);
    let j = take(&q, LONG).await;
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate, "active");
    q.ack(&j.id, &j.token).await.unwrap();
    assert_eq!(state_of(&q, "a").await, None, "keep_completed 0 trims at once");
    assert_eq!(q.enqueue(job("a")).await.unwrap(), Enqueued::Duplicate, "within the dedup window");
    add(&q, job("b")).await;
    q.remove(&key("b")).await.unwrap();
    assert_eq!(q.enqueue(job("b")).await.unwrap(), Enqueued::Duplicate, "removed, within the window");
    assert_eq!(q.stats().await.unwrap().waiting, 0);
}

/// `enqueue_bulk` answers one result per job, in order, duplicates included.
pub async fn enqueue_bulk_reports_each_job_in_order(q: Arc<dyn Queue>) {
    add(&q, job("b")).await;
    let got = q.enqueue_bulk(vec![job("a"), job("b"), job("a"), job("c")]).await.unwrap();
    assert_eq!(got, vec![Enqueued::Added, Enqueued::Duplicate, Enqueued::Duplicate, Enqueued::Added]);
    assert_eq!(q.enqueue_bulk(vec![]).await.unwrap(), vec![]);
    assert_eq!(q.stats().await.unwrap().waiting, 3);
    let order: Vec<String> = [take(&q, LONG).await, take(&q, LONG).await, take(&q, LONG).await]
        .into_iter()
        .map(|j| j.id.to_string())
        .collect();
    assert_eq!(order, ["b", "a", "c"]);
}

/// Higher priority first; FIFO within one priority.
pub async fn reserve_takes_higher_priority_first_then_fifo(q: Arc<dyn Queue>) {
    for (id, priority) in [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -1), ("f", 0)] {
        add(&q, job_with(id, JobOptions { priority, ..JobOptions::default() })).await;
    }
    let mut order = Vec::new();
    while let Some(j) = q.reserve(LONG).await.unwrap() {
        assert_eq!(j.payload, j.id.as_str().as_bytes(), "payload of {}", j.id);
        order.push(j.id.to_string());
    }
    assert_eq!(order, ["b", "d", "a", "c", "f", "e"]);
}

/// An empty queue reserves nothing.
pub async fn reserve_returns_none_when_empty(q: Arc<dyn Queue>) {
    assert_eq!(q.reserve(LONG).await.unwrap(), None);
    assert_eq!(q.stats().await.unwrap(), crate::ports::queue::QueueStats::default());
}

/// A delayed job is `delayed` and not reserved before it is due, then is.
pub async fn delayed_job_is_reserved_only_once_due(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { delay: SMALL, ..JobOptions::default() })).await;
    assert_eq!(q.reserve(LONG).await.unwrap(), None, "not due yet");
    assert_eq!(state_of(&q, "a").await, Some(JobState::Delayed));
    assert_eq!(q.stats().await.unwrap().delayed, 1);
    sleep(PAST_SMALL).await;
    let j = take(&q, LONG).await;
    assert_eq!(j.id, key("a"));
    assert_eq!(j.attempt, 1);
    assert!(j.due_at_ms >= j.enqueued_at_ms + 150, "due {} vs enqueued {}", j.due_at_ms, j.enqueued_at_ms);
}

/// A worker blocked in `reserve_wait` gets a job enqueued meanwhile, promptly.
pub async fn reserve_wait_wakes_promptly_on_enqueue(q: Arc<dyn Queue>) {
    let waiter = {
        let q = Arc::clone(&q);
        tokio::spawn(async move { q.reserve_wait(LONG, Duration::from_secs(5)).await })
    };
    sleep(Duration::from_millis(100)).await;
    let enqueued = Instant::now();
    add(&q, job("a")).await;
    let got = waiter.await.expect("waiter").expect("reserve_wait").expect("the waiter gets the job");
    assert_eq!(got.id, key("a"));
    assert!(enqueued.elapsed() < PROMPT, "woke {:?} after the enqueue", enqueued.elapsed());
}

/// `reserve_wait` on an empty queue returns `None` after about `wait`.
pub async fn reserve_wait_returns_none_after_wait(q: Arc<dyn Queue>) {
    let start = Instant::now();
    assert_eq!(q.reserve_wait(LONG, SMALL).await.unwrap(), None);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(150) && took < SMALL + PROMPT, "waited {took:?}");
}

/// `reserve_wait` returns a delayed job soon after it becomes due.
pub async fn reserve_wait_wakes_when_a_delayed_job_is_due(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { delay: SMALL, ..JobOptions::default() })).await;
    let start = Instant::now();
    let got = q.reserve_wait(LONG, Duration::from_secs(5)).await.unwrap().expect("the delayed job");
    assert_eq!(got.id, key("a"));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(150) && took < SMALL + PROMPT, "waited {took:?}");
}

/// A lease that expires is recovered: the job is redelivered as the next
/// attempt under a new token, and the old token is refused.
pub async fn expired_lease_is_recovered_and_redelivered(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    let first = take(&q, SHORT).await;
    assert_eq!(first.attempt, 1);
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0, "the lease is live");
    sleep(PAST_SMALL).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert_eq!((info.state, info.stalls), (JobState::Waiting, 1));
    let second = take(&q, LONG).await;
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token, "a new lease has a new token");
    assert_eq!(q.ack(&first.id, &first.token).await, Err(QueueError::LeaseLost));
    q.ack(&second.id, &second.token).await.unwrap();
    assert_eq!(state_of(&q, "a").await, Some(JobState::Completed));
}

/// `ack`, `heartbeat` and `fail` with a token that does not hold the job are
/// `LeaseLost`; with a token of a shape the queue never mints, `MalformedToken`.
pub async fn stale_token_is_refused(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    add(&q, job("other")).await;
    let j = take(&q, LONG).await;
    let other = take(&q, LONG).await;
    // A real token of this queue, holding another job.
    let bogus = other.token.clone();
    assert_eq!(q.ack(&j.id, &bogus).await, Err(QueueError::LeaseLost));
    assert_eq!(q.heartbeat(&j.id, &bogus, LONG).await, Err(QueueError::LeaseLost));
    assert_eq!(q.fail(&j.id, &bogus, "x", FailKind::Retry).await, Err(QueueError::LeaseLost));
    let malformed = LeaseToken::minted("not-the-token").expect("printable");
    assert_eq!(q.ack(&j.id, &malformed).await, Err(QueueError::MalformedToken));
    assert_eq!(q.heartbeat(&j.id, &malformed, LONG).await, Err(QueueError::MalformedToken));
    assert_eq!(q.fail(&j.id, &malformed, "x", FailKind::Retry).await, Err(QueueError::MalformedToken));
    assert_eq!(state_of(&q, "a").await, Some(JobState::Active), "a refused call changes nothing");
    assert_eq!(state_of(&q, "other").await, Some(JobState::Active), "a refused call changes nothing");
    q.ack(&j.id, &j.token).await.unwrap();
    assert_eq!(q.ack(&j.id, &j.token).await, Err(QueueError::LeaseLost), "no second ack");
    assert_eq!(q.fail(&j.id, &j.token, "x", FailKind::Retry).await, Err(QueueError::LeaseLost));
    assert_eq!(q.heartbeat(&j.id, &j.token, LONG).await, Err(QueueError::LeaseLost));
    assert_eq!(state_of(&q, "a").await, Some(JobState::Completed));
}

/// A heartbeat extends the lease: `recover_stalled` leaves the job alone past its first expiry.
pub async fn heartbeat_extends_the_lease(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    let j = take(&q, Duration::from_millis(400)).await;
    sleep(Duration::from_millis(200)).await;
    q.heartbeat(&j.id, &j.token, Duration::from_secs(2)).await.unwrap();
    sleep(Duration::from_millis(350)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0);
    assert_eq!(state_of(&q, "a").await, Some(JobState::Active));
    q.ack(&j.id, &j.token).await.unwrap();
}

/// A failed attempt leaves the job `failed` with its error until the backoff
/// has passed, then it is reserved as attempt 2.
pub async fn failed_job_is_retried_after_backoff(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { max_attempts: 3, backoff: backoff(SMALL), ..JobOptions::default() })).await;
    let j = take(&q, LONG).await;
    assert_eq!(q.fail(&j.id, &j.token, "boom", FailKind::Retry).await, Ok(FailOutcome::Retrying { delay: SMALL }));
    let info = q.get(&j.id).await.unwrap().expect("job");
    assert_eq!((info.state, info.attempts), (JobState::Failed, 1));
    assert_eq!(info.last_error.as_deref(), Some("boom"));
    assert_eq!(q.stats().await.unwrap().failed, 1);
    assert_eq!(q.reserve(LONG).await.unwrap(), None, "not before the backoff");
    sleep(PAST_SMALL).await;
    let again = take(&q, LONG).await;
    assert_eq!((again.id, again.attempt, again.max_attempts), (key("a"), 2, 3));
}

/// Backoff doubles per attempt (capped at `max`); `RetryAfter` uses its own delay.
pub async fn backoff_grows_exponentially(q: Arc<dyn Queue>) {
    let base = Duration::from_millis(50);
    let options = JobOptions {
        max_attempts: 10,
        backoff: Backoff { base, max: Duration::from_millis(150), jitter: false },
        ..JobOptions::default()
    };
    add(&q, job_with("a", options)).await;
    let mut delays = Vec::new();
    for kind in [FailKind::Retry, FailKind::Retry, FailKind::Retry, FailKind::RetryAfter(Duration::from_secs(7))] {
        let j = take(&q, LONG).await;
        match q.fail(&j.id, &j.token, "boom", kind).await.unwrap() {
            FailOutcome::Retrying { delay } => delays.push(delay),
            FailOutcome::Dead => panic!("attempt {} should retry", j.attempt),
        }
        q.promote(&j.id).await.unwrap();
    }
    let ms = Duration::from_millis;
    assert_eq!(delays, [ms(50), ms(100), ms(150), Duration::from_secs(7)]);
}

/// After `max_attempts` failed attempts the job is dead, with the last error.
pub async fn job_is_dead_after_max_attempts(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { max_attempts: 2, backoff: backoff(SMALL), ..JobOptions::default() })).await;
    let j = take(&q, LONG).await;
    assert!(matches!(q.fail(&j.id, &j.token, "first", FailKind::Retry).await, Ok(FailOutcome::Retrying { .. })));
    q.promote(&j.id).await.unwrap();
    let j = take(&q, LONG).await;
    assert_eq!(j.attempt, 2);
    assert_eq!(q.fail(&j.id, &j.token, "second", FailKind::Retry).await, Ok(FailOutcome::Dead));
    let info = q.get(&j.id).await.unwrap().expect("a dead job is retained");
    assert_eq!((info.state, info.attempts), (JobState::Dead, 2));
    assert_eq!(info.last_error.as_deref(), Some("second"));
    assert!(info.finished_at_ms.is_some());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.dead, stats.failed, stats.waiting), (1, 0, 0));
    assert_eq!(q.reserve(LONG).await.unwrap(), None);
}

/// `FailKind::Permanent` is dead at once, whatever attempts remain.
pub async fn permanent_failure_is_dead_at_once(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    let j = take(&q, LONG).await;
    assert_eq!(q.fail(&j.id, &j.token, "bad request", FailKind::Permanent).await, Ok(FailOutcome::Dead));
    let info = q.get(&j.id).await.unwrap().expect("job");
    assert_eq!((info.state, info.attempts), (JobState::Dead, 1));
    assert_eq!(info.last_error.as_deref(), Some("bad request"));
}

/// A job whose lease expires more than `max_stalls` (1) times is dead.
pub async fn too_many_stalls_is_dead(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    take(&q, SHORT).await;
    sleep(PAST_SMALL).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    assert_eq!(state_of(&q, "a").await, Some(JobState::Waiting), "one stall is tolerated");
    take(&q, SHORT).await;
    sleep(PAST_SMALL).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert_eq!((info.state, info.stalls), (JobState::Dead, 2));
    assert_eq!(q.reserve(LONG).await.unwrap(), None);
}

/// A job whose lease expires on its last attempt is dead, though it stalled
/// fewer than `max_stalls` (5) times: no attempt past `max_attempts` is handed out.
pub async fn a_stalled_last_attempt_is_dead(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { max_attempts: 1, ..JobOptions::default() })).await;
    let j = take(&q, SHORT).await;
    assert_eq!((j.attempt, j.max_attempts), (1, 1));
    sleep(PAST_SMALL).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let info = q.get(&key("a")).await.unwrap().expect("a dead job is retained");
    assert_eq!((info.state, info.attempts, info.stalls), (JobState::Dead, 1, 1));
    let error = info.last_error.unwrap_or_default();
    assert!(error.contains("stalled"), "the error says the job stalled: {error:?}");
    assert!(info.finished_at_ms.is_some());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.dead, stats.waiting, stats.active), (1, 0, 0));
    let again = q.reserve_wait(LONG, Duration::from_millis(100)).await.unwrap();
    assert!(again.is_none(), "handed out again as attempt {:?} of 1", again.map(|j| j.attempt));
    assert_eq!(q.ack(&j.id, &j.token).await, Err(QueueError::LeaseLost), "the expired lease is gone");
}

/// `recover_stalled_jobs` reports each job it moves to the dead letters (too
/// many stalls, or attempts used up), with its payload, attempt and error,
/// once: a later recovery does not report it again, and a job it returns to
/// waiting is not reported.
pub async fn recovery_reports_each_job_it_dead_letters_once(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    add(&q, job_with("b", JobOptions { max_attempts: 1, ..JobOptions::default() })).await;
    let a1 = take(&q, SHORT).await;
    let b = take(&q, SHORT).await;
    assert_eq!((a1.id.as_str(), b.id.as_str()), ("a", "b"));
    sleep(PAST_SMALL).await;
    let first = q.recover_stalled().await.unwrap();
    assert_eq!(first.recovered, 2);
    assert_eq!(first.dead.len(), 1, "only b is dead (its one attempt is used up): {first:?}");
    let dead = &first.dead[0];
    assert_eq!((dead.job.id.as_str(), dead.job.payload.as_slice()), ("b", b"b".as_slice()));
    assert_eq!((dead.job.attempt, dead.job.max_attempts), (1, 1));
    assert_eq!(dead.job.token, b.token, "the token of the lease that expired");
    assert!(dead.error.contains("stalled"), "the error says the job stalled: {:?}", dead.error);
    let info = q.get(&key("b")).await.unwrap().expect("a dead job is retained");
    assert_eq!(info.state, JobState::Dead);
    assert_eq!(info.last_error.as_deref(), Some(dead.error.as_str()), "the reported error is the one kept");
    assert_eq!(state_of(&q, "a").await, Some(JobState::Waiting), "one stall is tolerated");
    let again = q.recover_stalled().await.unwrap();
    assert_eq!((again.recovered, again.dead.len()), (0, 0), "nothing is reported twice: {again:?}");

    let a2 = take(&q, SHORT).await;
    assert_eq!((a2.id.as_str(), a2.attempt), ("a", 2));
    sleep(PAST_SMALL).await;
    let second = q.recover_stalled().await.unwrap();
    assert_eq!(second.recovered, 1);
    assert_eq!(second.dead.len(), 1, "a stalled twice (max_stalls 1): {second:?}");
    let dead = &second.dead[0];
    assert_eq!((dead.job.id.as_str(), dead.job.payload.as_slice(), dead.job.attempt), ("a", b"a".as_slice(), 2));
    assert_eq!(state_of(&q, "a").await, Some(JobState::Dead));
    assert_eq!(q.recover_stalled().await.unwrap().dead.len(), 0, "nothing is reported twice");
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0);
}

/// Only the last `keep_completed` (2) completed and `keep_dead` (1) dead jobs
/// are retained; trimmed ids stay claimed.
pub async fn retention_trims_completed_and_dead(q: Arc<dyn Queue>) {
    for id in ["c1", "c2", "c3", "c4"] {
        add(&q, job(id)).await;
        let j = take(&q, LONG).await;
        q.ack(&j.id, &j.token).await.unwrap();
    }
    assert_eq!(ids(&q, JobState::Completed).await, ["c3", "c4"]);
    assert_eq!(state_of(&q, "c1").await, None);
    for id in ["d1", "d2", "d3"] {
        add(&q, job(id)).await;
        let j = take(&q, LONG).await;
        q.fail(&j.id, &j.token, "no", FailKind::Permanent).await.unwrap();
    }
    assert_eq!(ids(&q, JobState::Dead).await, ["d3"]);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.dead), (2, 1));
    assert_eq!(q.enqueue(job("c1")).await.unwrap(), Enqueued::Duplicate);
    assert_eq!(q.enqueue(job("d1")).await.unwrap(), Enqueued::Duplicate);
}

/// `stats` counts every state, and whether the queue is paused.
pub async fn stats_count_each_state(q: Arc<dyn Queue>) {
    let slow = JobOptions { backoff: backoff(Duration::from_mins(1)), ..JobOptions::default() };
    add(&q, job_with("done", slow)).await;
    add(&q, job_with("failing", slow)).await;
    add(&q, job_with("dying", slow)).await;
    add(&q, job_with("later", JobOptions { delay: Duration::from_mins(1), ..slow })).await;
    let j = take(&q, LONG).await;
    q.ack(&j.id, &j.token).await.unwrap();
    let j = take(&q, LONG).await;
    q.fail(&j.id, &j.token, "retry me", FailKind::Retry).await.unwrap();
    let j = take(&q, LONG).await;
    q.fail(&j.id, &j.token, "dead", FailKind::Permanent).await.unwrap();
    add(&q, job("busy")).await;
    add(&q, job("w1")).await;
    add(&q, job("w2")).await;
    assert_eq!(take(&q, LONG).await.id, key("busy"));
    let stats = q.stats().await.unwrap();
    let counts: Vec<u64> = JobState::ALL.iter().map(|s| stats.count(*s)).collect();
    // waiting, active, delayed, failed, completed, dead
    assert_eq!(counts, [2, 1, 1, 1, 1, 1]);
    assert!(!stats.paused);
    q.pause().await.unwrap();
    assert!(q.stats().await.unwrap().paused);
}

/// `list` pages through a state, oldest first.
pub async fn list_pages_oldest_first(q: Arc<dyn Queue>) {
    let all = ["j0", "j1", "j2", "j3", "j4"];
    q.enqueue_bulk(all.iter().map(|id| job(id)).collect()).await.unwrap();
    let page = |offset, limit| {
        let q = Arc::clone(&q);
        async move {
            q.list(JobState::Waiting, offset, limit).await.unwrap().into_iter().map(|j| j.id.to_string()).collect()
        }
    };
    let p: Vec<String> = page(0, 2).await;
    assert_eq!(p, ["j0", "j1"]);
    let p: Vec<String> = page(2, 2).await;
    assert_eq!(p, ["j2", "j3"]);
    let p: Vec<String> = page(4, 2).await;
    assert_eq!(p, ["j4"]);
    let p: Vec<String> = page(5, 2).await;
    assert!(p.is_empty());
    for _ in 0..3 {
        let j = take(&q, LONG).await;
        q.ack(&j.id, &j.token).await.unwrap();
    }
    assert_eq!(ids(&q, JobState::Completed).await, ["j0", "j1", "j2"]);
    let first = q.list(JobState::Completed, 1, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].id.as_str(), first[0].state), ("j1", JobState::Completed));
    assert!(ids(&q, JobState::Dead).await.is_empty());
}

/// `get` reports a job's fields; unknown ids are `None`.
pub async fn get_reports_a_job(q: Arc<dyn Queue>) {
    assert_eq!(q.get(&key("nope")).await.unwrap(), None);
    let before = now_ms();
    add(&q, job_with("a", JobOptions { priority: 3, max_attempts: 4, ..JobOptions::default() })).await;
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert_eq!(info.id, key("a"));
    assert_eq!(info.state, JobState::Waiting);
    assert_eq!(info.payload, b"a");
    assert_eq!((info.attempts, info.max_attempts, info.priority, info.stalls), (0, 4, 3, 0));
    assert_eq!((info.finished_at_ms, info.last_error.as_deref()), (None, None));
    // The backend's clock may differ from ours a little.
    let skew = 60_000;
    assert!(info.created_at_ms + skew >= before && info.created_at_ms <= now_ms() + skew, "{info:?}");
    assert!(info.due_at_ms >= info.created_at_ms, "{info:?}");
    let j = take(&q, LONG).await;
    let info = q.get(&j.id).await.unwrap().expect("job");
    assert_eq!((info.state, info.attempts), (JobState::Active, 1));
}

/// `retry_dead` moves a dead job back to waiting with fresh attempts.
pub async fn retry_dead_gives_fresh_attempts(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { max_attempts: 1, ..JobOptions::default() })).await;
    let j = take(&q, LONG).await;
    assert_eq!(q.fail(&j.id, &j.token, "boom", FailKind::Retry).await, Ok(FailOutcome::Dead));
    q.retry_dead(&j.id).await.unwrap();
    let info = q.get(&j.id).await.unwrap().expect("job");
    assert_eq!((info.state, info.attempts), (JobState::Waiting, 0));
    assert_eq!(q.retry_dead(&j.id).await, Err(QueueError::WrongState(JobState::Waiting)));
    assert_eq!(q.retry_dead(&key("nope")).await, Err(QueueError::NotFound));
    let again = take(&q, LONG).await;
    assert_eq!((again.attempt, again.max_attempts), (1, 1));
    assert_ne!(again.token, j.token);
    q.ack(&again.id, &again.token).await.unwrap();
}

/// `retry_all_dead` moves every dead job back to waiting and counts them.
pub async fn retry_all_dead_moves_every_dead_job(q: Arc<dyn Queue>) {
    assert_eq!(q.retry_all_dead().await.unwrap(), 0);
    for id in ["a", "b", "c"] {
        add(&q, job(id)).await;
        let j = take(&q, LONG).await;
        q.fail(&j.id, &j.token, "no", FailKind::Permanent).await.unwrap();
    }
    assert_eq!(q.retry_all_dead().await.unwrap(), 3);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.dead, stats.waiting), (0, 3));
    let mut got = HashSet::new();
    while let Some(j) = q.reserve(LONG).await.unwrap() {
        assert_eq!(j.attempt, 1);
        got.insert(j.id.to_string());
    }
    assert_eq!(got, ["a", "b", "c"].into_iter().map(str::to_owned).collect());
}

/// `remove` deletes a job in any state but active; unknown ids are `NotFound`.
pub async fn remove_deletes_jobs_not_active(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    add(&q, job("b")).await;
    add(&q, job_with("c", JobOptions { delay: Duration::from_mins(1), ..JobOptions::default() })).await;
    let a = take(&q, LONG).await;
    assert_eq!(q.remove(&a.id).await, Err(QueueError::WrongState(JobState::Active)));
    assert_eq!(q.remove(&key("nope")).await, Err(QueueError::NotFound));
    q.ack(&a.id, &a.token).await.unwrap();
    let b = take(&q, LONG).await;
    q.fail(&b.id, &b.token, "no", FailKind::Permanent).await.unwrap();
    add(&q, job("d")).await;
    let states =
        [("a", JobState::Completed), ("b", JobState::Dead), ("c", JobState::Delayed), ("d", JobState::Waiting)];
    for (id, state) in states {
        assert_eq!(state_of(&q, id).await, Some(state), "{id} before remove");
        q.remove(&key(id)).await.unwrap_or_else(|e| panic!("remove {id}: {e}"));
        assert_eq!(state_of(&q, id).await, None, "{id} is gone");
        assert_eq!(q.remove(&key(id)).await, Err(QueueError::NotFound), "{id} twice");
    }
    assert_eq!(q.stats().await.unwrap(), crate::ports::queue::QueueStats::default());
    assert_eq!(q.enqueue(job("d")).await.unwrap(), Enqueued::Duplicate, "the id stays claimed");
}

/// `promote` makes a delayed or a failed job due now.
pub async fn promote_makes_delayed_and_failed_jobs_due(q: Arc<dyn Queue>) {
    let slow = JobOptions { backoff: backoff(Duration::from_mins(1)), ..JobOptions::default() };
    add(&q, job_with("later", JobOptions { delay: Duration::from_mins(1), ..slow })).await;
    assert_eq!(q.reserve(LONG).await.unwrap(), None);
    q.promote(&key("later")).await.unwrap();
    let j = take(&q, LONG).await;
    assert_eq!(j.id, key("later"));
    assert_eq!(q.promote(&j.id).await, Err(QueueError::WrongState(JobState::Active)));
    q.fail(&j.id, &j.token, "boom", FailKind::Retry).await.unwrap();
    assert_eq!(q.reserve(LONG).await.unwrap(), None, "backoff of a minute");
    q.promote(&j.id).await.unwrap();
    assert_eq!(state_of(&q, "later").await, Some(JobState::Waiting));
    assert_eq!(q.promote(&j.id).await, Err(QueueError::WrongState(JobState::Waiting)));
    assert_eq!(q.promote(&key("nope")).await, Err(QueueError::NotFound));
    let again = take(&q, LONG).await;
    assert_eq!((again.id, again.attempt), (key("later"), 2));
}

/// A paused queue hands out nothing (enqueue still works); resume wakes waiters.
pub async fn pause_stops_reserving_until_resume(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    q.pause().await.unwrap();
    assert_eq!(q.reserve(LONG).await.unwrap(), None);
    add(&q, job("b")).await;
    assert_eq!(q.reserve_wait(LONG, Duration::from_millis(100)).await.unwrap(), None);
    let waiter = {
        let q = Arc::clone(&q);
        tokio::spawn(async move { q.reserve_wait(LONG, Duration::from_secs(5)).await })
    };
    sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "paused: the waiter keeps waiting");
    let resumed = Instant::now();
    q.resume().await.unwrap();
    let got = waiter.await.expect("waiter").expect("reserve_wait").expect("a job after resume");
    assert_eq!(got.id, key("a"));
    assert!(resumed.elapsed() < PROMPT, "woke {:?} after resume", resumed.elapsed());
    assert!(!q.stats().await.unwrap().paused);
    assert_eq!(take(&q, LONG).await.id, key("b"));
}

/// `ack_and_reserve` completes the held job and hands out the next one.
pub async fn ack_and_reserve_returns_the_next_job(q: Arc<dyn Queue>) {
    add(&q, job("a")).await;
    add(&q, job("b")).await;
    let a = take(&q, LONG).await;
    let bogus = LeaseToken::minted("not-the-token").expect("printable");
    assert_eq!(q.ack_and_reserve(&a.id, &bogus, LONG).await, Err(QueueError::MalformedToken));
    assert_eq!(state_of(&q, "b").await, Some(JobState::Waiting), "a refused ack reserves nothing");
    let b = q.ack_and_reserve(&a.id, &a.token, LONG).await.unwrap().expect("b");
    assert_eq!((b.id.as_str(), b.attempt), ("b", 1));
    assert_eq!(state_of(&q, "a").await, Some(JobState::Completed));
    assert_eq!(q.ack_and_reserve(&b.id, &b.token, LONG).await.unwrap(), None);
    assert_eq!(state_of(&q, "b").await, Some(JobState::Completed));
}

/// `ack_many_and_reserve` acknowledges each held job, refuses only a stale
/// token, and reserves up to `count` jobs by priority, then FIFO.
pub async fn ack_many_and_reserve_acks_each_and_reserves_in_order(q: Arc<dyn Queue>) {
    let high = JobOptions { priority: 5, ..JobOptions::default() };
    for id in ["a", "b", "c"] {
        add(&q, job(id)).await;
    }
    add(&q, job_with("d", high)).await;
    let d = take(&q, LONG).await;
    let a = take(&q, LONG).await;
    assert_eq!((d.id.as_str(), a.id.as_str()), ("d", "a"));
    // A real token of this queue, holding another job.
    let bogus = d.token.clone();
    let malformed = LeaseToken::minted("not-the-token").expect("printable");
    assert_eq!(
        q.ack_many_and_reserve(&[(a.id.clone(), malformed)], 1, LONG).await,
        Err(QueueError::MalformedToken),
        "a token of a shape the queue never mints"
    );
    add(&q, job_with("e", high)).await;
    let step = q.ack_many_and_reserve(&[(d.id.clone(), d.token), (a.id.clone(), bogus)], 2, LONG).await.unwrap();
    assert_eq!(step.acked, vec![true, false]);
    let ids: Vec<&str> = step.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec!["e", "b"]);
    assert!(step.jobs.iter().all(|j| j.attempt == 1));
    assert_eq!(state_of(&q, "d").await, Some(JobState::Completed));
    assert_eq!(state_of(&q, "a").await, Some(JobState::Active), "a stale token leaves the job held");
    let mut acks = vec![(a.id.clone(), a.token)];
    acks.extend(step.jobs.into_iter().map(|j| (j.id, j.token)));
    let step = q.ack_many_and_reserve(&acks, 10, LONG).await.unwrap();
    assert_eq!(step.acked, vec![true, true, true]);
    assert_eq!(step.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), vec!["c"]);
    let c = &step.jobs[0];
    let step = q.ack_many_and_reserve(&[(c.id.clone(), c.token.clone())], 0, LONG).await.unwrap();
    assert_eq!((step.acked, step.jobs.len()), (vec![true], 0));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.active, stats.waiting), (5, 0, 0));
}

/// Two consumers over 500 jobs: no job is handed out twice, every job completes once.
pub async fn concurrent_consumers_take_each_job_once(q: Arc<dyn Queue>) {
    const N: usize = 500;
    let jobs: Vec<NewJob> = (0..N).map(|i| job(&format!("job-{i}"))).collect();
    let added = q.enqueue_bulk(jobs).await.unwrap();
    assert!(added.iter().all(|e| *e == Enqueued::Added));
    let consumer = |q: Arc<dyn Queue>| async move {
        let mut seen = Vec::new();
        let mut next = q.reserve(LONG).await.expect("reserve");
        while let Some(j) = next {
            seen.push(j.id.to_string());
            next = q.ack_and_reserve(&j.id, &j.token, LONG).await.expect("ack_and_reserve");
        }
        seen
    };
    let one = tokio::spawn(consumer(Arc::clone(&q)));
    let two = tokio::spawn(consumer(Arc::clone(&q)));
    let (one, two) = (one.await.expect("consumer one"), two.await.expect("consumer two"));
    let mut all: Vec<String> = one.into_iter().chain(two).collect();
    assert_eq!(all.len(), N, "every job handed out exactly once in total");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), N, "no job handed out twice");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.waiting, stats.active), (500, 0, 0));
}

/// Fails the job now held (reserving it first) with `error`, to be retried at once.
async fn fail_now(q: &Arc<dyn Queue>, error: &str) -> ReservedJob {
    let j = take(q, LONG).await;
    let outcome = q.fail(&j.id, &j.token, error, FailKind::RetryAfter(Duration::ZERO)).await.unwrap();
    assert!(matches!(outcome, FailOutcome::Retrying { .. } | FailOutcome::Dead), "{outcome:?}");
    j
}

/// The attempt numbers and errors of a job's history.
async fn history(q: &Arc<dyn Queue>, id: &str) -> Vec<(u32, String)> {
    let info = q.get(&key(id)).await.unwrap().expect("job");
    info.errors.into_iter().map(|e| (e.attempt, e.error)).collect()
}

/// A job's error history (`error_history` 3) keeps each failed attempt's
/// error with its attempt number and time, oldest first; the oldest are
/// dropped beyond the bound; a stall is written as an expired lease; the
/// history survives an operator's retry of the dead job.
pub async fn error_history_keeps_each_failure_in_order_bounded_across_retries(q: Arc<dyn Queue>) {
    add(&q, job_with("a", JobOptions { max_attempts: 5, ..JobOptions::default() })).await;
    assert!(q.get(&key("a")).await.unwrap().expect("job").errors.is_empty(), "no error yet");
    let before = now_ms();
    fail_now(&q, "first <b>").await;
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert_eq!(info.errors.len(), 1, "{info:?}");
    let skew = 60_000;
    let first = &info.errors[0];
    assert_eq!((first.attempt, first.error.as_str()), (1, "first <b>"));
    assert!(first.at_ms + skew >= before && first.at_ms <= now_ms() + skew, "{first:?}");
    fail_now(&q, "second: with colons: 1:2").await;
    fail_now(&q, "third").await;
    assert_eq!(
        history(&q, "a").await,
        [(1, "first <b>".into()), (2, "second: with colons: 1:2".into()), (3, "third".into())]
    );
    fail_now(&q, "fourth").await;
    assert_eq!(
        history(&q, "a").await,
        [(2, "second: with colons: 1:2".into()), (3, "third".into()), (4, "fourth".into())],
        "the oldest is dropped beyond 3"
    );
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert!(info.errors.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "oldest first: {:?}", info.errors);
    // The last attempt stalls: its lease expires; the job is dead.
    let last = take(&q, SHORT).await;
    assert_eq!(last.attempt, 5);
    sleep(PAST_SMALL).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 1);
    let info = q.get(&key("a")).await.unwrap().expect("job");
    assert_eq!(info.state, JobState::Dead);
    let h: Vec<u32> = info.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(h, [3, 4, 5], "{:?}", info.errors);
    let stall = &info.errors[2].error;
    assert!(stall.starts_with(JobError::LEASE_EXPIRED), "a stall reads as an expired lease: {stall:?}");
    // An operator's retry keeps the history; the next failure is attempt 1 again.
    q.retry_dead(&key("a")).await.unwrap();
    assert_eq!(q.get(&key("a")).await.unwrap().expect("job").errors, info.errors, "kept across the retry");
    fail_now(&q, "after the retry").await;
    assert_eq!(history(&q, "a").await, [(4, "fourth".into()), (5, stall.clone()), (1, "after the retry".into())]);
}

/// A job's error history goes with the job: removed, trimmed from the dead
/// letters (`keep_dead` 1) or from the completed ones (`keep_completed` 0), a
/// job enqueued again under the same id (no dedup window) starts with none.
pub async fn error_history_is_gone_with_the_job(q: Arc<dyn Queue>) {
    for id in ["removed", "trimmed-dead", "done"] {
        add(&q, job(id)).await;
        let j = take(&q, LONG).await;
        assert_eq!(j.id, key(id));
        q.fail(&j.id, &j.token, "boom", FailKind::RetryAfter(Duration::from_mins(1))).await.unwrap();
        assert_eq!(history(&q, id).await, [(1, "boom".into())], "{id}");
    }
    q.remove(&key("removed")).await.unwrap();
    // done completes (retained 0: trimmed at once); trimmed-dead fails for
    // good, then another dead job pushes it out of the dead letters.
    q.promote(&key("done")).await.unwrap();
    let j = take(&q, LONG).await;
    q.ack(&j.id, &j.token).await.unwrap();
    q.promote(&key("trimmed-dead")).await.unwrap();
    let j = take(&q, LONG).await;
    q.fail(&j.id, &j.token, "again", FailKind::Permanent).await.unwrap();
    assert_eq!(history(&q, "trimmed-dead").await, [(1, "boom".into()), (2, "again".into())]);
    add(&q, job("pusher")).await;
    let j = take(&q, LONG).await;
    q.fail(&j.id, &j.token, "no", FailKind::Permanent).await.unwrap();
    assert_eq!(ids(&q, JobState::Dead).await, ["pusher"]);
    for id in ["removed", "trimmed-dead", "done"] {
        assert_eq!(state_of(&q, id).await, None, "{id} is gone");
        add(&q, job(id)).await;
        let info = q.get(&key(id)).await.unwrap().expect("job");
        assert!(info.errors.is_empty(), "{id} came back with its old history: {:?}", info.errors);
    }
}

/// The ids of one page of `list_after`, and its cursor.
async fn page_after(
    q: &Arc<dyn Queue>,
    state: JobState,
    after: Option<&JobCursor>,
    limit: u64,
) -> (Vec<String>, Option<JobCursor>) {
    let page = q.list_after(state, after, limit).await.expect("list_after");
    assert!(!page.resumed, "an exact cursor: {page:?}");
    assert!(page.jobs.iter().all(|j| j.state == state), "{page:?}");
    (page.jobs.into_iter().map(|j| j.id.to_string()).collect(), page.next)
}

/// `list_after` pages through a state by cursor, in `list`'s order: the last
/// page has no next cursor; jobs that leave the state ahead of the cursor,
/// the cursor's own job included, make no page skip or repeat a job (waiting,
/// failed); a cursor of another state or of no adapter is `Invalid`.
pub async fn list_after_pages_by_a_cursor_that_holds_when_jobs_leave(q: Arc<dyn Queue>) {
    let all = ["j0", "j1", "j2", "j3", "j4"];
    q.enqueue_bulk(all.iter().map(|id| job(id)).collect()).await.unwrap();
    let (p, c1) = page_after(&q, JobState::Waiting, None, 2).await;
    assert_eq!(p, ["j0", "j1"]);
    let c1 = c1.expect("more after the first page");
    // j0 and j1 (the cursor's own job) leave waiting.
    let held = [take(&q, LONG).await, take(&q, LONG).await];
    let (p, c2) = page_after(&q, JobState::Waiting, Some(&c1), 2).await;
    assert_eq!(p, ["j2", "j3"], "the cursor holds after its job left");
    let (p, end) = page_after(&q, JobState::Waiting, c2.as_ref(), 2).await;
    assert_eq!((p.as_slice(), end), (&["j4".to_owned()][..], None), "the last page has no next cursor");
    let (p, end) = page_after(&q, JobState::Waiting, None, 10).await;
    assert_eq!((p.len(), end), (3, None));
    let text = c1.as_str().to_owned();
    assert_eq!(JobCursor::parse(text).unwrap(), c1, "a cursor round-trips through its text");

    // Failed jobs, by due time: the cursor's job is promoted out of the state.
    for (j, secs) in held.iter().zip([60, 61]) {
        q.fail(&j.id, &j.token, "later", FailKind::RetryAfter(Duration::from_secs(secs))).await.unwrap();
    }
    let j = take(&q, LONG).await;
    assert_eq!(j.id, key("j2"));
    q.fail(&j.id, &j.token, "later", FailKind::RetryAfter(Duration::from_secs(62))).await.unwrap();
    let (p, c) = page_after(&q, JobState::Failed, None, 1).await;
    assert_eq!(p, ["j0"]);
    let c = c.expect("more failed jobs");
    q.promote(&key("j0")).await.unwrap();
    let (p, c) = page_after(&q, JobState::Failed, Some(&c), 1).await;
    assert_eq!(p, ["j1"]);
    let (p, end) = page_after(&q, JobState::Failed, c.as_ref(), 1).await;
    assert_eq!((p.as_slice(), end), (&["j2".to_owned()][..], None));

    // Completed jobs.
    while let Some(j) = q.reserve(LONG).await.unwrap() {
        q.ack(&j.id, &j.token).await.unwrap();
    }
    let (first, c) = page_after(&q, JobState::Completed, None, 2).await;
    let (rest, end) = page_after(&q, JobState::Completed, c.as_ref(), 2).await;
    assert_eq!((first.len(), rest.len(), end), (2, 1, None), "{first:?} {rest:?}");
    assert_eq!([first, rest].concat(), ids(&q, JobState::Completed).await, "the pages are list's order");

    assert!(matches!(q.list_after(JobState::Failed, Some(&c1), 2).await, Err(QueueError::Invalid(_))));
    let forged = JobCursor::parse("no cursor of ours").unwrap();
    for state in JobState::ALL {
        assert!(matches!(q.list_after(state, Some(&forged), 2).await, Err(QueueError::Invalid(_))), "{state:?}");
    }
}
