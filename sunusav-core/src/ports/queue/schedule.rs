//! The scheduler capability: recurring schedules by id, whose runs a
//! queue enqueues once each, and the pure rules every adapter applies.
//!
//! A one-off job at a time is a producer's delayed job ([`NewJob::due_at`]).
//! A recurring schedule is a [`ScheduleSpec`]: an id, a [`JobTemplate`] and a
//! [`Repeat`] rule (a fixed interval from an anchor, or a cron expression in an
//! IANA time zone). The adapter stores it with its next run time;
//! [`Scheduler::fire_due`] enqueues every run that is due.
//!
//! # Semantics (the same in every adapter, from [`StoredSchedule`]'s rules)
//!
//! - **Clock.** Every call takes `now_ms` (Unix milliseconds) from the
//!   caller: a schedule runs on the callers' clock, not the backend's.
//! - **Once per run.** A run is (schedule id, run time). Its job id is
//!   [`ScheduleId::run_job_id`], `schedule:<id>:<run_ms>`. Firing checks and
//!   advances the stored next run time atomically (compare-and-set on the
//!   schedule's revision and its next run time), so two processes firing at
//!   once enqueue each run once; the job id's own dedup window is a second
//!   guard. State lives in the backend: a restart loses nothing.
//! - **Clock jumps forward** over several runs: the earliest missed run is
//!   fired once, and the next run is the first one after `now_ms` (the runs
//!   in between are skipped, as BullMQ and anacron do).
//! - **Clock jumps backward**: nothing is due until `now_ms` reaches the
//!   stored next run time again, and the next run time only moves forward: a
//!   fired run is never fired again.
//! - **Upsert** of an identical spec changes nothing. One whose repeat rule is
//!   the same but whose job template differs keeps the next run time (later
//!   runs use the new template). One whose rule changed starts over from the
//!   change: the next run is the new rule's first at or after `now_ms` (and
//!   after the last fired run); a run of the old rule that was due but not yet
//!   fired is dropped, and a run already fired is not fired again.
//! - **Remove** stops future runs; jobs already enqueued stay. A schedule
//!   made again under the same id starts afresh: a run it fires again within
//!   the queue's dedup window is reported `Duplicate` and not enqueued twice.
//! - **Lateness**: a run is enqueued by the first `fire_due` at or after its
//!   time (the runtime's `ScheduleFiring` calls it every interval), as a job
//!   due at once.

mod spec;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use spec::{CronRule, JobTemplate, MAX_SCHEDULE_ID_LEN, Repeat, ScheduleId, ScheduleSpec, ScheduleSpecError};

use super::{Enqueued, NewJob, QueueError, QueueName};
use crate::domain::keys::IdempotencyKey;

/// A schedule as an adapter stores it: the rules of upsert and fire, said
/// once here, that every adapter applies (the backend only stores the result,
/// atomically, under `revision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSchedule {
    /// The spec.
    pub spec: ScheduleSpec,
    /// Changes with every write; never the same twice over the queue's life.
    pub revision: u64,
    /// The next run not fired yet (`None`: no run is left).
    pub next_run_ms: Option<u64>,
    /// The last run fired.
    pub last_run_ms: Option<u64>,
}

/// What an upsert must write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsertPlan {
    /// What it does.
    pub outcome: Upserted,
    /// The next run to store.
    pub next_run_ms: Option<u64>,
}

/// What a fire must write, with the run's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirePlan {
    /// The run fired: the stored next run time.
    pub run_ms: u64,
    /// The next run to store: the first after `now_ms`.
    pub next_run_ms: Option<u64>,
    /// The run's job.
    pub job: NewJob,
}

impl StoredSchedule {
    /// What upserting `spec` at `now_ms` over `existing` writes.
    pub fn plan_upsert(existing: Option<&Self>, spec: &ScheduleSpec, now_ms: u64) -> UpsertPlan {
        match existing {
            Some(old) if old.spec == *spec => UpsertPlan { outcome: Upserted::Unchanged, next_run_ms: old.next_run_ms },
            Some(old) if old.spec.repeat() == spec.repeat() => {
                UpsertPlan { outcome: Upserted::Updated, next_run_ms: old.next_run_ms }
            }
            Some(old) => {
                let from = old.last_run_ms.map_or(now_ms, |last| now_ms.max(last.saturating_add(1)));
                UpsertPlan { outcome: Upserted::Updated, next_run_ms: spec.repeat().first_at_or_after(from) }
            }
            None => UpsertPlan { outcome: Upserted::Created, next_run_ms: spec.repeat().first_at_or_after(now_ms) },
        }
    }

    /// The run to fire at `now_ms`, if one is due.
    pub fn plan_fire(&self, now_ms: u64) -> Option<FirePlan> {
        let run_ms = self.next_run_ms.filter(|next| *next <= now_ms)?;
        let next_run_ms = self.spec.repeat().first_at_or_after(now_ms.saturating_add(1));
        Some(FirePlan { run_ms, next_run_ms, job: self.spec.job().job(self.spec.id().run_job_id(run_ms)) })
    }

    /// What [`Scheduler::schedules`] reports of it.
    pub fn info(&self) -> ScheduleInfo {
        ScheduleInfo { spec: self.spec.clone(), next_run_ms: self.next_run_ms, last_run_ms: self.last_run_ms }
    }
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    /// A new schedule.
    Created,
    /// An existing schedule changed.
    Updated,
    /// The same spec was stored already: nothing changed.
    Unchanged,
}

/// A schedule as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The spec.
    pub spec: ScheduleSpec,
    /// The next run not fired yet (`None`: no run is left).
    pub next_run_ms: Option<u64>,
    /// The last run fired.
    pub last_run_ms: Option<u64>,
}

/// One run that [`Scheduler::fire_due`] fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredRun {
    /// Its schedule.
    pub schedule: ScheduleId,
    /// Its run time.
    pub run_ms: u64,
    /// Its job's id ([`ScheduleId::run_job_id`]).
    pub job: IdempotencyKey,
    /// `Duplicate` when the job id was still claimed (the run had been
    /// enqueued already, e.g. before the schedule was removed and made again).
    pub enqueued: Enqueued,
    /// The schedule's next run after this one.
    pub next_run_ms: Option<u64>,
}

/// What [`Scheduler::fire_due`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FiredRuns {
    /// The runs this call fired (none that another call fired).
    pub runs: Vec<FiredRun>,
}

/// Recurring schedules whose runs the queue enqueues once each. See the
/// module docs for the semantics.
#[async_trait]
pub trait Scheduler: QueueName {
    /// Creates or replaces the schedule `spec.id()`, at `now_ms`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached, and
    /// `Invalid` for a template the adapter's `enqueue` would refuse (a
    /// payload over its limit).
    async fn upsert_schedule(&self, spec: ScheduleSpec, now_ms: u64) -> Result<Upserted, QueueError>;

    /// Removes a schedule; `false` when there was none.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn remove_schedule(&self, id: &ScheduleId) -> Result<bool, QueueError>;

    /// Every schedule, by id.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached, `Corrupt`
    /// for a stored schedule it cannot read.
    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError>;

    /// Enqueues every run due at `now_ms` (at most one per schedule per
    /// call), each once whoever else calls it at the same time.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached. After an
    /// error some runs may have been fired; none is fired twice.
    async fn fire_due(&self, now_ms: u64) -> Result<FiredRuns, QueueError>;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn every(ms: u64, anchor: u64) -> Repeat {
        Repeat::every(Duration::from_millis(ms), anchor).unwrap()
    }

    fn stored(repeat: Repeat, payload: &str, next: Option<u64>, last: Option<u64>) -> StoredSchedule {
        let spec = ScheduleSpec::new(ScheduleId::parse("s").unwrap(), JobTemplate::new(payload), repeat).unwrap();
        StoredSchedule { spec, revision: 7, next_run_ms: next, last_run_ms: last }
    }

    #[test]
    fn an_interval_runs_on_its_anchor_and_every_interval_after() {
        let r = every(10, 100);
        for (t, first) in [(0, 100), (100, 100), (101, 110), (110, 110), (111, 120), (1_000_005, 1_000_010)] {
            assert_eq!(r.first_at_or_after(t), Some(first), "at {t}");
        }
        assert_eq!(every(10, u64::MAX - 5).first_at_or_after(u64::MAX), None, "past the last representable run");
    }

    #[test]
    fn a_cron_rule_matches_whole_seconds_at_or_after_the_time() {
        let r = Repeat::cron("*/30 * * * * *", "UTC").unwrap();
        assert_eq!(r.first_at_or_after(60_000), Some(60_000), "a match at that very second");
        assert_eq!(r.first_at_or_after(60_001), Some(90_000), "within a second that matched: the next");
        let five = Repeat::cron("0 * * * *", "UTC").unwrap();
        assert_eq!(five.first_at_or_after(1), Some(3_600_000), "5 fields: minutes first");
    }

    #[test]
    fn upsert_keeps_the_next_run_unless_the_rule_changes() {
        let spec = |repeat, payload| stored(repeat, payload, None, None).spec;
        let old = stored(every(60, 0), "a", Some(120), Some(60));
        let cases = [
            (spec(every(60, 0), "a"), Upserted::Unchanged, Some(120)),
            (spec(every(60, 0), "b"), Upserted::Updated, Some(120)),
            // New rule from now (500), after the last run (60).
            (spec(every(100, 0), "a"), Upserted::Updated, Some(500)),
        ];
        for (new, outcome, next) in cases {
            let plan = StoredSchedule::plan_upsert(Some(&old), &new, 500);
            assert_eq!((plan.outcome, plan.next_run_ms), (outcome, next), "{new:?}");
        }
        // A clock behind the last run: the new rule starts after it.
        let plan = StoredSchedule::plan_upsert(Some(&old), &spec(every(30, 0), "a"), 10);
        assert_eq!(plan.next_run_ms, Some(90));
        let created = StoredSchedule::plan_upsert(None, &spec(every(60, 0), "a"), 61);
        assert_eq!((created.outcome, created.next_run_ms), (Upserted::Created, Some(120)));
    }

    #[test]
    fn fire_takes_the_stored_run_and_continues_after_now() {
        let s = stored(every(60, 0), "p", Some(120), Some(60));
        assert_eq!(s.plan_fire(119), None);
        let plan = s.plan_fire(500).unwrap();
        assert_eq!((plan.run_ms, plan.next_run_ms), (120, Some(540)));
        assert_eq!(plan.job.id.as_str(), "schedule:s:120");
        assert_eq!((plan.job.payload.as_slice(), plan.job.options.delay), (b"p".as_slice(), Duration::ZERO));
        assert_eq!(s.plan_fire(540).unwrap().next_run_ms, Some(600), "a run at now is not the next");
        assert_eq!(stored(every(60, 0), "p", None, Some(60)).plan_fire(1_000), None, "no run left");
    }

    #[test]
    fn a_spec_round_trips_through_json_and_is_checked_when_read() {
        let spec = stored(Repeat::cron("0 9 * * MON-FRI", "Europe/Paris").unwrap(), "p", None, None).spec;
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ScheduleSpec>(&json).unwrap(), spec);
        for bad in [
            json.replace("Europe/Paris", "Mars/Olympus"),
            json.replace(r#""id":"s""#, r#""id":"a b""#),
            json.replace(r#""max_attempts":5"#, r#""max_attempts":0"#),
        ] {
            assert_ne!(bad, json);
            assert!(serde_json::from_str::<ScheduleSpec>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_job_ids_fit_a_key_for_the_longest_id() {
        let id = ScheduleId::parse("x".repeat(MAX_SCHEDULE_ID_LEN)).unwrap();
        assert!(id.run_job_id(u64::MAX).as_str().ends_with(&u64::MAX.to_string()));
        assert_eq!(ScheduleId::parse("x".repeat(MAX_SCHEDULE_ID_LEN + 1)), Err(ScheduleSpecError::InvalidId));
    }

    #[test]
    fn a_local_time_skipped_by_dst_runs_after_the_gap_and_a_repeated_one_runs_once() {
        let r = Repeat::cron("30 2 * * *", "Europe/Paris").unwrap();
        let runs = |mut t: u64| {
            (0..3)
                .map(|_| {
                    let n = r.first_at_or_after(t).unwrap();
                    t = n + 1;
                    n
                })
                .collect::<Vec<_>>()
        };
        // 02:30 does not exist in Paris on 2026-03-29: that day's run is at
        // 03:00 CEST (01:00 UTC).
        assert_eq!(runs(1_774_612_800_000), [1_774_661_400_000, 1_774_746_000_000, 1_774_830_600_000]);
        // 02:30 happens twice on 2026-10-25: one run, at the first (00:30 UTC).
        assert_eq!(runs(1_792_756_800_000), [1_792_801_800_000, 1_792_888_200_000, 1_792_978_200_000]);
    }
}
