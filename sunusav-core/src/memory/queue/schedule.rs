//! The [`Scheduler`] capability of [`MemoryQueue`]: schedules live in the
//! queue's state, under its one lock, so that checking a run, enqueueing its
//! job and advancing the schedule are one step. Every handle (clone) of a
//! queue shares them. The rules are [`StoredSchedule`]'s.

use async_trait::async_trait;
use tokio::time::Instant;

use super::MemoryQueue;
use crate::ports::queue::{
    Enqueued, FiredRun, FiredRuns, QueueError, ScheduleId, ScheduleInfo, ScheduleSpec, Scheduler, StoredSchedule,
    Upserted,
};

#[async_trait]
impl Scheduler for MemoryQueue {
    async fn upsert_schedule(&self, spec: ScheduleSpec, now_ms: u64) -> Result<Upserted, QueueError> {
        let mut st = self.lock();
        let plan = StoredSchedule::plan_upsert(st.schedules.get(spec.id()), &spec, now_ms);
        if plan.outcome != Upserted::Unchanged {
            let revision = st.next_seq();
            let last_run_ms = st.schedules.get(spec.id()).and_then(|s| s.last_run_ms);
            let stored = StoredSchedule { spec, revision, next_run_ms: plan.next_run_ms, last_run_ms };
            st.schedules.insert(stored.spec.id().clone(), stored);
        }
        Ok(plan.outcome)
    }

    async fn remove_schedule(&self, id: &ScheduleId) -> Result<bool, QueueError> {
        Ok(self.lock().schedules.remove(id).is_some())
    }

    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError> {
        Ok(self.lock().schedules.values().map(StoredSchedule::info).collect())
    }

    async fn fire_due(&self, now_ms: u64) -> Result<FiredRuns, QueueError> {
        let mut fired = FiredRuns::default();
        {
            let mut st = self.lock();
            let plans: Vec<_> =
                st.schedules.iter().filter_map(|(id, s)| Some((id.clone(), s.plan_fire(now_ms)?))).collect();
            let now = Instant::now();
            for (id, plan) in plans {
                let job_id = plan.job.id.clone();
                let enqueued = Self::enqueue_locked(&mut st, plan.job, now);
                let revision = st.next_seq();
                let Some(stored) = st.schedules.get_mut(&id) else { continue };
                stored.revision = revision;
                stored.next_run_ms = plan.next_run_ms;
                stored.last_run_ms = Some(plan.run_ms);
                fired.runs.push(FiredRun {
                    schedule: id,
                    run_ms: plan.run_ms,
                    job: job_id,
                    enqueued,
                    next_run_ms: plan.next_run_ms,
                });
            }
        }
        if fired.runs.iter().any(|r| r.enqueued == Enqueued::Added) {
            self.shared.wake.notify_waiters();
        }
        Ok(fired)
    }
}
