//! The conformance suite of the [`Scheduler`] capability: every queue adapter
//! that offers it must pass it.
//!
//! A case gets an [`Open`]: each call opens one more instance of the same
//! fresh queue (another process, or the same one after a restart: a Redis
//! factory connects again to the same key prefix, the memory one hands out
//! another handle to the same queue). Time is the `now_ms` each call takes:
//! the cases jump it forward and backward freely, and run in real time only
//! for the backend's own work.
//!
//! ```text
//! sunusav_core::schedule_conformance_tests!(|config| async move {
//!     let q = MemoryQueue::new("conformance", config);
//!     Arc::new(move || {
//!         let q = q.clone();
//!         Box::pin(async move { Arc::new(q) as Arc<dyn ScheduledQueue> }) as OpenFuture
//!     }) as Open
//! });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use super::harness::run_named;
use crate::ports::queue::{
    Backoff, ConsumerExt, Enqueued, FiredRun, JobState, JobTemplate, Queue, QueueConfig, Repeat, ScheduleId,
    ScheduleSpec, ScheduleSpecError, Scheduler, Upserted,
};

/// A queue with the scheduler capability.
pub trait ScheduledQueue: Queue + Scheduler {}

impl<T: Queue + Scheduler + ?Sized> ScheduledQueue for T {}

/// A boxed future of one more instance.
pub type OpenFuture = Pin<Box<dyn Future<Output = Arc<dyn ScheduledQueue>> + Send>>;

/// Opens one more instance of the same queue: each call is another process
/// (or a restart) over the same backing.
pub type Open = Arc<dyn Fn() -> OpenFuture + Send + Sync>;

/// A boxed case future.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name (its function's name).
    pub name: &'static str,
    /// The case.
    pub run: fn(Open) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish_non_exhaustive()
    }
}

macro_rules! case {
    ($name:ident) => {
        Case { name: stringify!($name), run: |open| Box::pin($name(open)) }
    };
}

/// Every case.
pub fn cases() -> Vec<Case> {
    vec![
        case!(interval_runs_fire_once_each_with_the_template),
        case!(a_restart_between_runs_keeps_the_schedule),
        case!(two_processes_firing_at_once_enqueue_each_run_once),
        case!(a_schedule_changed_while_a_run_is_due_follows_the_new_rule),
        case!(a_clock_jump_forward_fires_one_missed_run_then_continues_from_now),
        case!(a_clock_jump_backward_never_fires_a_run_again),
        case!(remove_stops_future_runs),
        case!(cron_in_a_time_zone_follows_daylight_saving_time),
        case!(invalid_cron_and_time_zone_are_typed_errors),
    ]
}

/// The settings of every case's queue: every finished job retained, an hour of dedup window.
pub fn config() -> QueueConfig {
    QueueConfig::default().with_keep_completed(1000).with_keep_dead(1000).with_dedup_window(Duration::from_hours(1))
}

/// Runs one case by name against a fresh queue from `make`.
///
/// # Panics
/// When the case fails (the message names it), or takes longer than 30 s.
pub async fn run_case<F, Fut>(make: &F, name: &str)
where
    F: Fn(QueueConfig) -> Fut,
    Fut: Future<Output = Open>,
{
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no schedule conformance case named `{name}`"));
    let open = make(config()).await;
    run_named("schedule", name, (case.run)(open)).await;
}

/// Runs every case, each against a fresh queue from `make`.
///
/// # Panics
/// On the first failing case, naming it.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(QueueConfig) -> Fut,
    Fut: Future<Output = Open>,
{
    for case in cases() {
        run_case(&make, case.name).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance case of the scheduler
/// capability, given a factory `Fn(QueueConfig) -> impl Future<Output = Open>`.
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! schedule_conformance_tests {
    ($make:expr) => {
        $crate::schedule_conformance_tests!(@cases $make;
            interval_runs_fire_once_each_with_the_template,
            a_restart_between_runs_keeps_the_schedule,
            two_processes_firing_at_once_enqueue_each_run_once,
            a_schedule_changed_while_a_run_is_due_follows_the_new_rule,
            a_clock_jump_forward_fires_one_missed_run_then_continues_from_now,
            a_clock_jump_backward_never_fires_a_run_again,
            remove_stops_future_runs,
            cron_in_a_time_zone_follows_daylight_saving_time,
            invalid_cron_and_time_zone_are_typed_errors,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::schedule::run_case(&$make, stringify!($case)).await;
            }
        )*

        #[test]
        fn schedule_conformance_macro_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let known: ::std::vec::Vec<&str> =
                $crate::conformance::schedule::cases().iter().map(|c| c.name).collect();
            assert_eq!(listed, known.as_slice(), "schedule_conformance_tests! and cases() disagree");
        }
    };
}

// ---------------------------------------------------------------- helpers

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
/// 2026-01-05T00:00:00Z: the cases' epoch.
const T0: u64 = 1_767_571_200_000;

/// Unix ms of a UTC date and hour.
fn utc_ms(year: i32, month: u32, day: u32, hour: u32) -> u64 {
    let at = NaiveDate::from_ymd_opt(year, month, day).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("a valid date");
    u64::try_from(at.and_utc().timestamp_millis()).expect("after 1970")
}

fn sid(s: &str) -> ScheduleId {
    ScheduleId::parse(s).expect("a valid schedule id")
}

fn every(ms: u64, anchor_ms: u64) -> Repeat {
    Repeat::every(Duration::from_millis(ms), anchor_ms).expect("a valid interval")
}

fn spec(id: &str, repeat: Repeat, payload: &str) -> ScheduleSpec {
    let job = JobTemplate {
        payload: payload.as_bytes().to_vec(),
        priority: 3,
        max_attempts: 2,
        backoff: Backoff { base: Duration::from_secs(1), max: Duration::from_secs(8), jitter: false },
    };
    ScheduleSpec::new(sid(id), job, repeat).expect("a valid spec")
}

async fn upsert(q: &Arc<dyn ScheduledQueue>, s: ScheduleSpec, now: u64) -> Upserted {
    q.upsert_schedule(s, now).await.expect("upsert_schedule")
}

/// The runs fired at `now`, as (schedule, run time), sorted.
async fn fire(q: &Arc<dyn ScheduledQueue>, now: u64) -> Vec<(String, u64)> {
    let fired = q.fire_due(now).await.expect("fire_due");
    for run in &fired.runs {
        assert_eq!(run.enqueued, Enqueued::Added, "{run:?} should add its job");
        assert_eq!(run.job, run.schedule.run_job_id(run.run_ms), "{run:?}: the job id names the run");
    }
    pairs(&fired.runs)
}

fn pairs(runs: &[FiredRun]) -> Vec<(String, u64)> {
    let mut out: Vec<_> = runs.iter().map(|r| (r.schedule.to_string(), r.run_ms)).collect();
    out.sort();
    out
}

fn run(id: &str, at: u64) -> (String, u64) {
    (id.to_owned(), at)
}

async fn next_run(q: &Arc<dyn ScheduledQueue>, id: &str) -> Option<u64> {
    let all = q.schedules().await.expect("schedules");
    all.into_iter().find(|s| s.spec.id().as_str() == id).expect("the schedule is listed").next_run_ms
}

/// Every job in the queue (any state), by id.
async fn job_ids(q: &Arc<dyn ScheduledQueue>) -> Vec<String> {
    let mut out = Vec::new();
    for state in JobState::ALL {
        out.extend(q.list(state, 0, 10_000).await.expect("list").into_iter().map(|j| j.id.to_string()));
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- cases

/// Runs of an interval fire when due, once each, as jobs built from the
/// template, with ids that name the run.
pub async fn interval_runs_fire_once_each_with_the_template(open: Open) {
    let q = open().await;
    assert_eq!(upsert(&q, spec("tick", every(MIN, T0), "hello"), T0 - 5 * SEC).await, Upserted::Created);
    assert_eq!(next_run(&q, "tick").await, Some(T0));
    assert_eq!(fire(&q, T0 - 1).await, vec![], "not due yet");
    assert_eq!(fire(&q, T0).await, vec![run("tick", T0)]);
    assert_eq!(fire(&q, T0 + 59 * SEC).await, vec![], "fired already; the next is a minute later");
    assert_eq!(fire(&q, T0 + MIN).await, vec![run("tick", T0 + MIN)]);
    let listed = q.schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].last_run_ms, listed[0].next_run_ms), (Some(T0 + MIN), Some(T0 + 2 * MIN)));

    let id = sid("tick").run_job_id(T0);
    assert_eq!(id.as_str(), format!("schedule:tick:{T0}"));
    let info = q.get(&id).await.unwrap().expect("the run's job");
    assert_eq!((info.state, info.payload.as_slice()), (JobState::Waiting, b"hello".as_slice()));
    assert_eq!((info.priority, info.max_attempts), (3, 2));
    let job = q.reserve(Duration::from_secs(30)).await.unwrap().expect("a due run");
    assert_eq!(job.id, id, "runs are reserved in order");
    assert_eq!(job_ids(&q).await.len(), 2);
}

/// A new instance over the same backing (a restart) knows the schedule and
/// its last run: it fires the next run, never the one fired before.
pub async fn a_restart_between_runs_keeps_the_schedule(open: Open) {
    let first = open().await;
    upsert(&first, spec("daily", every(MIN, T0), "p"), T0 - 1).await;
    assert_eq!(fire(&first, T0).await, vec![run("daily", T0)]);
    drop(first);

    let second = open().await;
    let listed = second.schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec, spec("daily", every(MIN, T0), "p"));
    assert_eq!((listed[0].last_run_ms, listed[0].next_run_ms), (Some(T0), Some(T0 + MIN)));
    assert_eq!(fire(&second, T0).await, vec![], "fired before the restart");
    assert_eq!(fire(&second, T0 + MIN).await, vec![run("daily", T0 + MIN)]);
    assert_eq!(upsert(&second, spec("daily", every(MIN, T0), "p"), T0 + MIN).await, Upserted::Unchanged);
    assert_eq!(job_ids(&second).await.len(), 2);
}

/// Several processes firing the same runs at the same time: each run is
/// enqueued once, by one of them (the others are refused, not deduplicated).
pub async fn two_processes_firing_at_once_enqueue_each_run_once(open: Open) {
    let procs = [open().await, open().await, open().await];
    for i in 0..5 {
        upsert(&procs[0], spec(&format!("s{i}"), every(SEC, T0), "p"), T0 - 1).await;
    }
    let mut seen: HashMap<(String, u64), usize> = HashMap::new();
    for tick in 0..10 {
        let now = T0 + tick * SEC;
        let tasks: Vec<_> = procs
            .iter()
            .map(|q| {
                let q = Arc::clone(q);
                tokio::spawn(async move { q.fire_due(now).await.expect("fire_due") })
            })
            .collect();
        for t in tasks {
            for r in t.await.expect("a firing task").runs {
                assert_eq!(r.enqueued, Enqueued::Added, "{r:?}: refused by the schedule, not by the job id");
                *seen.entry((r.schedule.to_string(), r.run_ms)).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), 50, "5 schedules × 10 runs fired");
    assert!(seen.values().all(|n| *n == 1), "a run fired twice: {seen:?}");
    assert_eq!(q_waiting(&procs[1]).await, 50);
}

async fn q_waiting(q: &Arc<dyn ScheduledQueue>) -> u64 {
    q.stats().await.expect("stats").waiting
}

/// Upsert while a run is due: the same spec changes nothing, a new template
/// keeps the run (fired with the new template), a new rule starts from the
/// change (the old rule's due run is dropped) and never fires a run again.
pub async fn a_schedule_changed_while_a_run_is_due_follows_the_new_rule(open: Open) {
    let q = open().await;
    upsert(&q, spec("r", every(MIN, T0), "v1"), T0 - 1).await;
    // The run at T0 is due and not fired. The same spec: nothing changes.
    assert_eq!(upsert(&q, spec("r", every(MIN, T0), "v1"), T0 + SEC).await, Upserted::Unchanged);
    // A new template: the due run stays, with the new payload.
    assert_eq!(upsert(&q, spec("r", every(MIN, T0), "v2"), T0 + SEC).await, Upserted::Updated);
    assert_eq!(next_run(&q, "r").await, Some(T0));
    assert_eq!(fire(&q, T0 + 2 * SEC).await, vec![run("r", T0)]);
    let job = q.get(&sid("r").run_job_id(T0)).await.unwrap().expect("the run's job");
    assert_eq!(job.payload, b"v2");

    // The run at T0 + 1 min is due; the rule changes to every 5 minutes.
    assert_eq!(upsert(&q, spec("r", every(5 * MIN, T0), "v2"), T0 + MIN + SEC).await, Upserted::Updated);
    assert_eq!(next_run(&q, "r").await, Some(T0 + 5 * MIN), "the new rule applies from the change");
    assert_eq!(fire(&q, T0 + MIN + SEC).await, vec![], "the old rule's due run is dropped");
    assert_eq!(fire(&q, T0 + 5 * MIN).await, vec![run("r", T0 + 5 * MIN)]);

    // A change on a clock that went back: the next run is after the last fired one.
    assert_eq!(upsert(&q, spec("r", every(MIN, T0), "v2"), T0).await, Upserted::Updated);
    assert_eq!(next_run(&q, "r").await, Some(T0 + 6 * MIN));
    assert_eq!(fire(&q, T0 + 5 * MIN).await, vec![], "the run at +5 min fired already");
    assert_eq!(job_ids(&q).await.len(), 2);
}

/// Over a jump forward across many runs, the earliest missed run fires once,
/// and the next is the first after now (the others are skipped).
pub async fn a_clock_jump_forward_fires_one_missed_run_then_continues_from_now(open: Open) {
    let q = open().await;
    upsert(&q, spec("j", every(MIN, T0), "p"), T0 - 1).await;
    assert_eq!(fire(&q, T0).await, vec![run("j", T0)]);
    let later = T0 + 10 * MIN + 30 * SEC;
    let fired = q.fire_due(later).await.unwrap();
    assert_eq!(pairs(&fired.runs), vec![run("j", T0 + MIN)], "one run for the missed period");
    assert_eq!(fired.runs[0].next_run_ms, Some(T0 + 11 * MIN));
    assert_eq!(fire(&q, later).await, vec![]);
    assert_eq!(fire(&q, T0 + 11 * MIN).await, vec![run("j", T0 + 11 * MIN)]);
    assert_eq!(job_ids(&q).await.len(), 3);
}

/// After the clock goes back, nothing fires until it reaches the next run
/// again: no run fires twice.
pub async fn a_clock_jump_backward_never_fires_a_run_again(open: Open) {
    let q = open().await;
    upsert(&q, spec("b", every(MIN, T0), "p"), T0 - 1).await;
    assert_eq!(fire(&q, T0).await, vec![run("b", T0)]);
    assert_eq!(fire(&q, T0 + MIN).await, vec![run("b", T0 + MIN)]);
    for back in [T0 + MIN, T0 + 30 * SEC, T0, T0 - 60 * MIN] {
        assert_eq!(fire(&q, back).await, vec![], "at {back}");
    }
    assert_eq!(upsert(&q, spec("b", every(MIN, T0), "p"), T0 - 60 * MIN).await, Upserted::Unchanged);
    assert_eq!(next_run(&q, "b").await, Some(T0 + 2 * MIN));
    assert_eq!(fire(&q, T0 + 2 * MIN).await, vec![run("b", T0 + 2 * MIN)]);
    assert_eq!(job_ids(&q).await.len(), 3);
}

/// A removed schedule fires no more; its runs already enqueued stay.
pub async fn remove_stops_future_runs(open: Open) {
    let q = open().await;
    upsert(&q, spec("gone", every(MIN, T0), "p"), T0 - 1).await;
    upsert(&q, spec("kept", every(MIN, T0), "p"), T0 - 1).await;
    assert_eq!(fire(&q, T0).await, vec![run("gone", T0), run("kept", T0)]);
    assert!(q.remove_schedule(&sid("gone")).await.unwrap());
    assert!(!q.remove_schedule(&sid("gone")).await.unwrap(), "already removed");
    assert_eq!(fire(&q, T0 + MIN).await, vec![run("kept", T0 + MIN)]);
    let listed: Vec<String> = q.schedules().await.unwrap().iter().map(|s| s.spec.id().to_string()).collect();
    assert_eq!(listed, vec!["kept".to_string()]);
    assert!(q.get(&sid("gone").run_job_id(T0)).await.unwrap().is_some(), "an enqueued run stays");
}

/// A daily 09:00 in Europe/Paris is 08:00 UTC in winter and 07:00 UTC in
/// summer: across both DST changes of 2026, each run is at the right instant.
pub async fn cron_in_a_time_zone_follows_daylight_saving_time(open: Open) {
    let q = open().await;
    let paris = Repeat::cron("0 9 * * *", "Europe/Paris").expect("a valid rule");
    // Spring: clocks go forward on 2026-03-29.
    assert_eq!(upsert(&q, spec("spring", paris.clone(), "p"), utc_ms(2026, 3, 27, 12)).await, Upserted::Created);
    assert_eq!(next_run(&q, "spring").await, Some(utc_ms(2026, 3, 28, 8)));
    let mut runs = Vec::new();
    for day in [28, 29, 30] {
        let due = next_run(&q, "spring").await.expect("a next run");
        assert_eq!(fire(&q, due - 1).await, vec![]);
        runs.extend(fire(&q, due).await);
        assert!(due < utc_ms(2026, 3, day + 1, 0), "{due} is on March {day}");
    }
    let s = |d, h| run("spring", utc_ms(2026, 3, d, h));
    assert_eq!(runs, vec![s(28, 8), s(29, 7), s(30, 7)]);
    // Autumn: clocks go back on 2026-10-25.
    q.remove_schedule(&sid("spring")).await.unwrap();
    upsert(&q, spec("autumn", paris, "p"), utc_ms(2026, 10, 23, 12)).await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let due = next_run(&q, "autumn").await.expect("a next run");
        runs.extend(fire(&q, due).await);
    }
    let a = |d, h| run("autumn", utc_ms(2026, 10, d, h));
    assert_eq!(runs, vec![a(24, 7), a(25, 8), a(26, 8)]);
}

/// A cron expression or a time zone that does not parse is a typed error
/// with a stable code, and such a spec never reaches the queue.
pub async fn invalid_cron_and_time_zone_are_typed_errors(open: Open) {
    let q = open().await;
    let code = |r: Result<Repeat, ScheduleSpecError>| r.expect_err("refused").code();
    assert_eq!(code(Repeat::cron("61 * * * *", "UTC")), "invalid_cron");
    assert_eq!(code(Repeat::cron("not cron", "UTC")), "invalid_cron");
    assert_eq!(code(Repeat::cron("0 9 * * *", "Europe/Nowhere")), "unknown_time_zone");
    assert_eq!(code(Repeat::every(Duration::ZERO, T0)), "zero_interval");
    assert_eq!(ScheduleId::parse("a b").expect_err("refused").code(), "invalid_schedule_id");
    let zero = JobTemplate { max_attempts: 0, ..JobTemplate::new("p") };
    assert_eq!(ScheduleSpec::new(sid("z"), zero, every(MIN, T0)).expect_err("refused").code(), "zero_attempts");
    // The same checks guard a spec read from JSON (an API, a stored row).
    let json = r#"{"id":"c","job":{"payload":[],"priority":0,"max_attempts":1,
        "backoff":{"base":{"secs":1,"nanos":0},"max":{"secs":1,"nanos":0},"jitter":false}},
        "repeat":{"cron":{"expr":"0 25 * * *","time_zone":"UTC"}}}"#;
    let err = serde_json::from_str::<ScheduleSpec>(json).expect_err("refused");
    assert!(err.to_string().contains("invalid cron expression"), "{err}");
    let ok = json.replace("0 25 * * *", "0 23 * * *");
    let parsed: ScheduleSpec = serde_json::from_str(&ok).expect("a valid spec");
    assert_eq!(upsert(&q, parsed, T0).await, Upserted::Created);
    assert_eq!(q.schedules().await.unwrap().len(), 1);
}
