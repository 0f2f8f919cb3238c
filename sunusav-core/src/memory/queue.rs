//! [`MemoryQueue`]: the in-memory adapter of the queue port.
//!
//! Every semantic of the port is implemented (dedup window, priorities, delays,
//! leases, backoff, dead letters, retention, pause), so that it passes the same
//! conformance suite as the Redis adapter. Time is `tokio::time::Instant`: tests
//! can run it under `tokio::time::pause()` and `advance`.
//!
//! One `std::sync::Mutex` guards the state; every critical section is short and
//! synchronous (never held across an `.await`). Workers blocked in
//! [`Consumer::reserve_wait`] sleep on a [`Notify`] until a job may be due.
//!
//! Orders used by [`QueueAdmin::list`] ("oldest first" in each state): waiting jobs in
//! the order they will be reserved (priority, then FIFO); delayed and failed jobs
//! by due time; active jobs by lease expiry; completed and dead jobs by the time
//! they finished. [`QueueAdmin::list_after`]'s cursors name a job's key in its
//! state's set (which holds its unique sequence number), so they are exact in
//! every state, also after the job has left it. Each job keeps its last
//! [`QueueConfig::error_history`] errors.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

mod schedule;

use crate::domain::keys::IdempotencyKey;
use crate::ports::queue::{
    Consumer, Enqueued, FailKind, FailOutcome, JobCursor, JobError, JobInfo, JobOptions, JobPage, JobState, LeaseToken,
    NewJob, Producer, QueueAdmin, QueueConfig, QueueError, QueueHealth, QueueName, QueueStats, ReservedJob,
    StallRecovery, StalledDead, Step,
};

/// An in-memory queue, with every capability of the queue port. Cloning gives another handle to the same queue.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use sunusav_core::IdempotencyKey;
/// use sunusav_core::memory::MemoryQueue;
/// use sunusav_core::ports::{ConsumerExt, Enqueued, NewJob, Producer, QueueConfig};
///
/// let q = MemoryQueue::new("payouts", QueueConfig::default());
/// let id = IdempotencyKey::parse("payout:1").unwrap();
/// assert_eq!(q.enqueue(NewJob::new(id.clone(), "{}")).await.unwrap(), Enqueued::Added);
/// let job = q.reserve(Duration::from_secs(30)).await.unwrap().unwrap();
/// q.ack(&job.id, &job.token).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    config: QueueConfig,
    state: Mutex<State>,
    /// Woken whenever a job may have become reservable (or the earliest due time changed).
    wake: Notify,
    base_instant: Instant,
    base_unix: Duration,
}

/// A key of the time-ordered sets: (time, sequence, id).
type TimeKey = (Instant, u64, IdempotencyKey);

#[derive(Default)]
struct State {
    jobs: HashMap<IdempotencyKey, Job>,
    /// Reserve order: higher priority first, then FIFO.
    waiting: BTreeSet<(Reverse<i32>, u64, IdempotencyKey)>,
    /// Delayed by the producer, by due time.
    delayed: BTreeSet<TimeKey>,
    /// Failed and waiting for a retry, by due time.
    failed: BTreeSet<TimeKey>,
    /// Held under a lease, by lease expiry.
    active: BTreeSet<TimeKey>,
    /// Completed, by finish order.
    completed: BTreeMap<u64, IdempotencyKey>,
    /// Dead, by finish order.
    dead: BTreeMap<u64, IdempotencyKey>,
    /// Ids of jobs that are gone, claimed until the instant.
    gone: HashMap<IdempotencyKey, Instant>,
    /// The same, by expiry.
    gone_by_time: BTreeSet<(Instant, IdempotencyKey)>,
    /// At most this many gone ids stay claimed (`None`: all, for the dedup window).
    claim_limit: Option<usize>,
    paused: bool,
    seq: u64,
    /// Recurring schedules (the [`Scheduler`](crate::ports::queue::Scheduler) capability, in `schedule.rs`).
    schedules: BTreeMap<crate::ports::queue::ScheduleId, crate::ports::queue::StoredSchedule>,
}

struct Job {
    payload: Vec<u8>,
    options: JobOptions,
    state: JobState,
    /// The job's position in the set of its state.
    seq: u64,
    attempts: u32,
    stalls: u32,
    created: Instant,
    due: Instant,
    lease_until: Instant,
    token: Option<LeaseToken>,
    finished: Option<Instant>,
    last_error: Option<String>,
    /// The last `error_history` errors, oldest first.
    errors: VecDeque<JobError>,
}

impl Job {
    /// Records the error of the current attempt, dropping the oldest beyond `keep`.
    fn record_error(&mut self, at_ms: u64, error: &str, keep: u32) {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if keep == 0 {
            return;
        }
        while self.errors.len() >= keep {
            self.errors.pop_front();
        }
        self.errors.push_back(JobError { attempt: self.attempts, at_ms, error: error.to_owned() });
    }
}

/// `now + d`, saturating at a century from now (a `Duration::MAX` wait or lease never panics).
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_hours(24 * 365 * 100))
}

/// The error-history entry of a stall (as the Redis adapter's `recover.lua` writes it).
fn stall_error(stalls: u32) -> String {
    format!("{} without an ack (stall {stalls})", JobError::LEASE_EXPIRED)
}

/// This queue's tokens: 32 lowercase hex digits of randomness.
const TOKEN_LEN: usize = 32;

fn random_token() -> LeaseToken {
    LeaseToken::minted(format!("{:032x}", rand::random::<u128>())).expect("32 hex digits are a valid token")
}

/// Refuses a token of a shape this queue never mints.
fn check_token(token: &LeaseToken) -> Result<(), QueueError> {
    let t = token.as_str();
    if t.len() == TOKEN_LEN && t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(QueueError::MalformedToken)
    }
}

impl MemoryQueue {
    /// An empty queue named `name`.
    pub fn new(name: impl Into<String>, config: QueueConfig) -> Self {
        let base_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                config,
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                base_instant: Instant::now(),
                base_unix,
            }),
        }
    }

    /// The queue's settings.
    pub fn config(&self) -> QueueConfig {
        self.shared.config
    }

    /// Keeps at most `limit` ids of gone jobs claimed, releasing the ones whose
    /// window ends first: memory stays bounded under any load, at the price of a
    /// shorter dedup window for the oldest ids. The embedded server uses it; the
    /// id of a job that still exists is always claimed.
    pub fn set_claim_limit(&self, limit: usize) {
        let mut st = self.lock();
        st.claim_limit = Some(limit);
        while st.gone.len() > limit {
            let Some((_, oldest)) = st.gone_by_time.pop_first() else { break };
            st.gone.remove(&oldest);
        }
    }

    /// How many jobs the queue holds, in any state, and how many ids of
    /// gone jobs it keeps claimed: `(jobs, claimed gone ids)`, to check its
    /// bounds.
    pub fn sizes(&self) -> (usize, usize) {
        let st = self.lock();
        (st.jobs.len(), st.gone.len())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `job` as handed to the holder of `token`.
    fn reserved_job(&self, id: &IdempotencyKey, job: &Job, token: LeaseToken) -> ReservedJob {
        ReservedJob {
            id: id.clone(),
            payload: job.payload.clone(),
            attempt: job.attempts,
            max_attempts: job.options.max_attempts,
            token,
            enqueued_at_ms: self.unix_ms(job.created),
            due_at_ms: self.unix_ms(job.due),
        }
    }

    fn unix_ms(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.shared.base_instant);
        u64::try_from(self.shared.base_unix.saturating_add(since).as_millis()).unwrap_or(u64::MAX)
    }

    fn info(&self, id: &IdempotencyKey, job: &Job) -> JobInfo {
        JobInfo {
            id: id.clone(),
            state: job.state,
            payload: job.payload.clone(),
            attempts: job.attempts,
            max_attempts: job.options.max_attempts,
            priority: job.options.priority,
            stalls: job.stalls,
            created_at_ms: self.unix_ms(job.created),
            due_at_ms: self.unix_ms(job.due),
            finished_at_ms: job.finished.map(|f| self.unix_ms(f)),
            last_error: job.last_error.clone(),
            errors: job.errors.iter().cloned().collect(),
        }
    }

    /// Reserves the next job if any; otherwise returns when the earliest
    /// delayed or failed job is due (`None` when there is none or the queue is paused).
    fn try_reserve(&self, lease: Duration, now: Instant) -> Result<ReservedJob, Option<Instant>> {
        let mut st = self.lock();
        self.reserve_locked(&mut st, lease, now)
    }

    fn reserve_locked(&self, st: &mut State, lease: Duration, now: Instant) -> Result<ReservedJob, Option<Instant>> {
        st.promote_due(now);
        if st.paused {
            return Err(None);
        }
        let Some(id) = st.pop_waiting() else {
            return Err(st.next_due());
        };
        let lease_until = after(now, lease);
        let token = random_token();
        let seq = st.next_seq();
        let job = st.jobs.get_mut(&id).expect("a waiting id names a job");
        job.state = JobState::Active;
        job.seq = seq;
        job.attempts = job.attempts.saturating_add(1);
        job.lease_until = lease_until;
        job.token = Some(token.clone());
        let reserved = self.reserved_job(&id, job, token);
        st.active.insert((lease_until, seq, id));
        Ok(reserved)
    }

    fn enqueue_locked(st: &mut State, job: NewJob, now: Instant) -> Enqueued {
        if st.is_claimed(&job.id, now) {
            return Enqueued::Duplicate;
        }
        let seq = st.next_seq();
        let delayed = !job.options.delay.is_zero();
        let due = after(now, job.options.delay);
        let entry = Job {
            payload: job.payload,
            options: job.options,
            state: if delayed { JobState::Delayed } else { JobState::Waiting },
            seq,
            attempts: 0,
            stalls: 0,
            created: now,
            due,
            lease_until: now,
            token: None,
            finished: None,
            last_error: None,
            errors: VecDeque::new(),
        };
        if delayed {
            st.delayed.insert((due, seq, job.id.clone()));
        } else {
            st.waiting.insert((Reverse(job.options.priority), seq, job.id.clone()));
        }
        st.jobs.insert(job.id, entry);
        Enqueued::Added
    }

    /// Checks that `token` holds `id`, returning the job's lease-set key.
    fn held(st: &State, id: &IdempotencyKey, token: &LeaseToken) -> Result<TimeKey, QueueError> {
        check_token(token)?;
        match st.jobs.get(id) {
            Some(job) if job.state == JobState::Active && job.token.as_ref() == Some(token) => {
                Ok((job.lease_until, job.seq, id.clone()))
            }
            _ => Err(QueueError::LeaseLost),
        }
    }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn is_claimed(&mut self, id: &IdempotencyKey, now: Instant) -> bool {
        while let Some((until, _)) = self.gone_by_time.first() {
            if *until > now {
                break;
            }
            if let Some((_, gone)) = self.gone_by_time.pop_first() {
                self.gone.remove(&gone);
            }
        }
        self.jobs.contains_key(id) || self.gone.contains_key(id)
    }

    fn pop_waiting(&mut self) -> Option<IdempotencyKey> {
        self.waiting.pop_first().map(|(_, _, id)| id)
    }

    /// The earliest due time of a delayed or failed job.
    fn next_due(&self) -> Option<Instant> {
        let d = self.delayed.first().map(|k| k.0);
        let f = self.failed.first().map(|k| k.0);
        match (d, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves every due delayed or failed job to waiting, in due order.
    fn promote_due(&mut self, now: Instant) {
        loop {
            let d = self.delayed.first().filter(|k| k.0 <= now).map(|k| (k.0, k.1));
            let f = self.failed.first().filter(|k| k.0 <= now).map(|k| (k.0, k.1));
            let from_failed = match (d, f) {
                (None, None) => return,
                (Some(a), Some(b)) => b < a,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            let set = if from_failed { &mut self.failed } else { &mut self.delayed };
            if let Some((_, _, id)) = set.pop_first() {
                self.make_waiting(&id, None);
            }
        }
    }

    /// Puts a job (already out of its previous set) into waiting; `due` resets its due time.
    fn make_waiting(&mut self, id: &IdempotencyKey, due: Option<Instant>) {
        let seq = self.next_seq();
        if let Some(job) = self.jobs.get_mut(id) {
            job.state = JobState::Waiting;
            job.seq = seq;
            job.token = None;
            if let Some(due) = due {
                job.due = due;
            }
            self.waiting.insert((Reverse(job.options.priority), seq, id.clone()));
        }
    }

    /// Takes a job out of the set of its state.
    fn unlink(&mut self, id: &IdempotencyKey) {
        let Some(job) = self.jobs.get(id) else { return };
        let seq = job.seq;
        match job.state {
            JobState::Waiting => {
                self.waiting.remove(&(Reverse(job.options.priority), seq, id.clone()));
            }
            JobState::Active => {
                self.active.remove(&(job.lease_until, seq, id.clone()));
            }
            JobState::Delayed => {
                self.delayed.remove(&(job.due, seq, id.clone()));
            }
            JobState::Failed => {
                self.failed.remove(&(job.due, seq, id.clone()));
            }
            JobState::Completed => {
                self.completed.remove(&seq);
            }
            JobState::Dead => {
                self.dead.remove(&seq);
            }
        }
    }

    /// Forgets a job (already unlinked), keeping its id claimed for the dedup window.
    fn forget(&mut self, id: &IdempotencyKey, now: Instant, window: Duration) {
        if self.jobs.remove(id).is_some() {
            let until = after(now, window);
            if let Some(old) = self.gone.insert(id.clone(), until) {
                self.gone_by_time.remove(&(old, id.clone()));
            }
            self.gone_by_time.insert((until, id.clone()));
            if let Some(limit) = self.claim_limit {
                while self.gone.len() > limit {
                    let Some((_, oldest)) = self.gone_by_time.pop_first() else { break };
                    self.gone.remove(&oldest);
                }
            }
        }
    }

    /// Moves an unlinked job to completed or dead, trimming the oldest beyond `keep`.
    fn finish(&mut self, id: &IdempotencyKey, state: JobState, now: Instant, config: &QueueConfig) {
        let seq = self.next_seq();
        let Some(job) = self.jobs.get_mut(id) else { return };
        job.state = state;
        job.seq = seq;
        job.token = None;
        job.finished = Some(now);
        let (keep, set) = match state {
            JobState::Dead => (config.keep_dead, &mut self.dead),
            _ => (config.keep_completed, &mut self.completed),
        };
        set.insert(seq, id.clone());
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut trimmed = Vec::new();
        while set.len() > keep {
            if let Some((_, old)) = set.pop_first() {
                trimmed.push(old);
            }
        }
        for old in trimmed {
            self.forget(&old, now, config.dedup_window);
        }
    }
}

impl QueueName for MemoryQueue {
    fn name(&self) -> &str {
        &self.shared.name
    }
}

#[async_trait]
impl Producer for MemoryQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        Ok(self.enqueue_bulk(vec![job]).await?.swap_remove(0))
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        if let Some(bad) = jobs.iter().find(|j| j.options.max_attempts == 0) {
            return Err(QueueError::Invalid(format!("job {}: max_attempts must be at least 1", bad.id)));
        }
        let now = Instant::now();
        let results = {
            let mut st = self.lock();
            jobs.into_iter().map(|job| Self::enqueue_locked(&mut st, job, now)).collect::<Vec<_>>()
        };
        if results.contains(&Enqueued::Added) {
            self.shared.wake.notify_waiters();
        }
        Ok(results)
    }
}

#[async_trait]
impl Consumer for MemoryQueue {
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError> {
        let deadline = after(Instant::now(), wait);
        loop {
            // Register interest before looking, so that a wake between the look
            // and the sleep is not lost.
            let woken = self.shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = Instant::now();
            let next_due = match self.try_reserve(lease, now) {
                Ok(job) => return Ok(Some(job)),
                Err(next_due) => next_due,
            };
            if now >= deadline {
                return Ok(None);
            }
            let until = next_due.map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError> {
        let mut st = self.lock();
        let key = Self::held(&st, id, token)?;
        let until = after(Instant::now(), lease);
        st.active.remove(&key);
        st.active.insert((until, key.1, key.2));
        if let Some(job) = st.jobs.get_mut(id) {
            job.lease_until = until;
        }
        Ok(())
    }

    async fn ack_many_and_reserve(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError> {
        acks.iter().try_for_each(|(_, token)| check_token(token))?;
        let now = Instant::now();
        let mut step = Step::default();
        let mut st = self.lock();
        for (id, token) in acks {
            let held = Self::held(&st, id, token);
            if let Ok(key) = &held {
                st.active.remove(key);
                st.finish(id, JobState::Completed, now, &self.shared.config);
            }
            step.acked.push(held.is_ok());
        }
        for _ in 0..count {
            match self.reserve_locked(&mut st, lease, now) {
                Ok(job) => step.jobs.push(job),
                Err(next_due) => {
                    if step.jobs.is_empty() && acks.is_empty() {
                        step.next_due = next_due.map(|due| due.saturating_duration_since(now));
                    }
                    break;
                }
            }
        }
        Ok(step)
    }

    async fn fail(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        error: &str,
        kind: FailKind,
    ) -> Result<FailOutcome, QueueError> {
        let now = Instant::now();
        let now_ms = self.unix_ms(now);
        let outcome = {
            let mut st = self.lock();
            let key = Self::held(&st, id, token)?;
            st.active.remove(&key);
            let job = st.jobs.get_mut(id).expect("a held job exists");
            job.last_error = Some(error.to_owned());
            job.record_error(now_ms, error, self.shared.config.error_history);
            let exhausted = job.attempts >= job.options.max_attempts;
            let delay = match kind {
                FailKind::Permanent => None,
                _ if exhausted => None,
                FailKind::RetryAfter(d) => Some(d),
                FailKind::Retry => Some(job.options.backoff.delay_with_jitter(job.attempts, rand::random::<u32>())),
            };
            match delay {
                None => {
                    st.finish(id, JobState::Dead, now, &self.shared.config);
                    FailOutcome::Dead
                }
                Some(delay) => {
                    let seq = st.next_seq();
                    let due = after(now, delay);
                    let job = st.jobs.get_mut(id).expect("a held job exists");
                    job.state = JobState::Failed;
                    job.seq = seq;
                    job.token = None;
                    job.due = due;
                    st.failed.insert((due, seq, id.clone()));
                    FailOutcome::Retrying { delay }
                }
            }
        };
        if let FailOutcome::Retrying { .. } = outcome {
            // A due time changed: waiters recompute how long to sleep.
            self.shared.wake.notify_waiters();
        }
        Ok(outcome)
    }

    async fn recover_stalled(&self) -> Result<StallRecovery, QueueError> {
        let now = Instant::now();
        let now_ms = self.unix_ms(now);
        let config = self.shared.config;
        let mut recovery = StallRecovery::default();
        let mut requeued = false;
        {
            let mut st = self.lock();
            while let Some((until, _, _)) = st.active.first() {
                if *until > now {
                    break;
                }
                let Some((_, _, id)) = st.active.pop_first() else { break };
                recovery.recovered += 1;
                let job = st.jobs.get_mut(&id).expect("an active id names a job");
                job.stalls = job.stalls.saturating_add(1);
                if job.stalls > config.max_stalls || job.attempts >= job.options.max_attempts {
                    let error = format!("stalled {} times: its lease expired without an ack", job.stalls);
                    job.last_error = Some(error.clone());
                    job.record_error(now_ms, &stall_error(job.stalls), config.error_history);
                    // Read before `finish`, which may trim the job at once (`keep_dead` 0).
                    let token = job.token.clone().unwrap_or_else(random_token);
                    let held = self.reserved_job(&id, job, token);
                    st.finish(&id, JobState::Dead, now, &config);
                    recovery.dead.push(StalledDead { job: held, error });
                } else {
                    job.record_error(now_ms, &stall_error(job.stalls), config.error_history);
                    st.make_waiting(&id, Some(now));
                    requeued = true;
                }
            }
        }
        if requeued {
            self.shared.wake.notify_waiters();
        }
        Ok(recovery)
    }
}

#[async_trait]
impl QueueAdmin for MemoryQueue {
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let st = self.lock();
        let n = |len: usize| u64::try_from(len).unwrap_or(u64::MAX);
        Ok(QueueStats {
            waiting: n(st.waiting.len()),
            active: n(st.active.len()),
            delayed: n(st.delayed.len()),
            failed: n(st.failed.len()),
            completed: n(st.completed.len()),
            dead: n(st.dead.len()),
            paused: st.paused,
        })
    }

    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let st = self.lock();
        let ids: Vec<&IdempotencyKey> = match state {
            JobState::Waiting => st.waiting.iter().skip(offset).take(limit).map(|k| &k.2).collect(),
            JobState::Active => st.active.iter().skip(offset).take(limit).map(|k| &k.2).collect(),
            JobState::Delayed => st.delayed.iter().skip(offset).take(limit).map(|k| &k.2).collect(),
            JobState::Failed => st.failed.iter().skip(offset).take(limit).map(|k| &k.2).collect(),
            JobState::Completed => st.completed.values().skip(offset).take(limit).collect(),
            JobState::Dead => st.dead.values().skip(offset).take(limit).collect(),
        };
        Ok(ids.into_iter().filter_map(|id| st.jobs.get(id).map(|job| self.info(id, job))).collect())
    }

    async fn list_after(&self, state: JobState, after: Option<&JobCursor>, limit: u64) -> Result<JobPage, QueueError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let take = usize::try_from(limit).unwrap_or(usize::MAX).saturating_add(1);
        let after = after.map(|c| self.parse_cursor(state, c)).transpose()?;
        let st = self.lock();
        let keys: Vec<CursorKey> = match (state, after) {
            (JobState::Waiting, after) => {
                let from = match after {
                    Some(CursorKey::Waiting(p, seq, id)) => Excluded((Reverse(p), seq, id)),
                    _ => Unbounded,
                };
                st.waiting
                    .range((from, Unbounded))
                    .take(take)
                    .map(|k| CursorKey::Waiting(k.0.0, k.1, k.2.clone()))
                    .collect()
            }
            (JobState::Completed | JobState::Dead, after) => {
                let set = if state == JobState::Dead { &st.dead } else { &st.completed };
                let from = match after {
                    Some(CursorKey::Finished(seq, _)) => Excluded(seq),
                    _ => Unbounded,
                };
                set.range((from, Unbounded)).take(take).map(|(seq, id)| CursorKey::Finished(*seq, id.clone())).collect()
            }
            (timed, after) => {
                let set = match timed {
                    JobState::Active => &st.active,
                    JobState::Delayed => &st.delayed,
                    _ => &st.failed,
                };
                let from = match after {
                    Some(CursorKey::Timed(at, seq, id)) => Excluded((at, seq, id)),
                    _ => Unbounded,
                };
                set.range((from, Unbounded)).take(take).map(|k| CursorKey::Timed(k.0, k.1, k.2.clone())).collect()
            }
        };
        let more = keys.len() == take;
        let shown = &keys[..keys.len().min(take - 1)];
        let next = if more { shown.last().map(|k| self.mint_cursor(state, k)) } else { None };
        let jobs = shown.iter().filter_map(|k| st.jobs.get(k.id()).map(|job| self.info(k.id(), job))).collect();
        Ok(JobPage { jobs, next, resumed: false })
    }

    async fn get(&self, id: &IdempotencyKey) -> Result<Option<JobInfo>, QueueError> {
        let st = self.lock();
        Ok(st.jobs.get(id).map(|job| self.info(id, job)))
    }

    async fn retry_dead(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        {
            let mut st = self.lock();
            let job = st.jobs.get(id).ok_or(QueueError::NotFound)?;
            if job.state != JobState::Dead {
                return Err(QueueError::WrongState(job.state));
            }
            st.retry_dead_job(id, Instant::now());
        }
        self.shared.wake.notify_waiters();
        Ok(())
    }

    async fn retry_all_dead(&self) -> Result<u64, QueueError> {
        let count = {
            let mut st = self.lock();
            let now = Instant::now();
            let ids: Vec<IdempotencyKey> = st.dead.values().cloned().collect();
            for id in &ids {
                st.retry_dead_job(id, now);
            }
            u64::try_from(ids.len()).unwrap_or(u64::MAX)
        };
        if count > 0 {
            self.shared.wake.notify_waiters();
        }
        Ok(count)
    }

    async fn remove(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        let mut st = self.lock();
        let job = st.jobs.get(id).ok_or(QueueError::NotFound)?;
        if job.state == JobState::Active {
            return Err(QueueError::WrongState(JobState::Active));
        }
        st.unlink(id);
        st.forget(id, Instant::now(), self.shared.config.dedup_window);
        Ok(())
    }

    async fn promote(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        {
            let mut st = self.lock();
            let job = st.jobs.get(id).ok_or(QueueError::NotFound)?;
            if !matches!(job.state, JobState::Delayed | JobState::Failed) {
                return Err(QueueError::WrongState(job.state));
            }
            st.unlink(id);
            st.make_waiting(id, Some(Instant::now()));
        }
        self.shared.wake.notify_waiters();
        Ok(())
    }

    async fn pause(&self) -> Result<(), QueueError> {
        self.lock().paused = true;
        Ok(())
    }

    async fn resume(&self) -> Result<(), QueueError> {
        self.lock().paused = false;
        self.shared.wake.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl QueueHealth for MemoryQueue {
    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

impl State {
    /// Moves a dead job back to waiting with fresh attempts and stalls.
    fn retry_dead_job(&mut self, id: &IdempotencyKey, now: Instant) {
        self.unlink(id);
        if let Some(job) = self.jobs.get_mut(id) {
            job.attempts = 0;
            job.stalls = 0;
            job.finished = None;
        }
        self.make_waiting(id, Some(now));
    }
}

/// A position in one state's set, as a cursor names it: every key holds the
/// job's sequence number, unique in the queue, so a cursor stays exact after
/// its job has left the state.
enum CursorKey {
    /// Waiting: priority, sequence, id.
    Waiting(i32, u64, IdempotencyKey),
    /// Active, delayed, failed: lease expiry or due time, sequence, id.
    Timed(Instant, u64, IdempotencyKey),
    /// Completed, dead: finish sequence, id.
    Finished(u64, IdempotencyKey),
}

impl CursorKey {
    fn id(&self) -> &IdempotencyKey {
        match self {
            Self::Waiting(_, _, id) | Self::Timed(_, _, id) | Self::Finished(_, id) => id,
        }
    }
}

impl MemoryQueue {
    /// `<state>:<priority or time (ns since the queue's start)>:<sequence>:<id>`,
    /// or `<state>:<sequence>:<id>` for completed and dead jobs.
    fn mint_cursor(&self, state: JobState, key: &CursorKey) -> JobCursor {
        let text = match key {
            CursorKey::Waiting(p, seq, id) => format!("{}:{p}:{seq}:{id}", state.as_str()),
            CursorKey::Timed(at, seq, id) => {
                let ns = at.saturating_duration_since(self.shared.base_instant).as_nanos();
                format!("{}:{ns}:{seq}:{id}", state.as_str())
            }
            CursorKey::Finished(seq, id) => format!("{}:{seq}:{id}", state.as_str()),
        };
        JobCursor::parse(text).expect("a state, numbers and a job id make a valid cursor")
    }

    fn parse_cursor(&self, state: JobState, cursor: &JobCursor) -> Result<CursorKey, QueueError> {
        let invalid = || QueueError::Invalid(format!("not a cursor of this queue's {} jobs", state.as_str()));
        let rest =
            cursor.as_str().strip_prefix(state.as_str()).and_then(|r| r.strip_prefix(':')).ok_or_else(invalid)?;
        let id = |s: &str| IdempotencyKey::parse(s).map_err(|_| invalid());
        match state {
            JobState::Completed | JobState::Dead => {
                let (seq, key) = rest.split_once(':').ok_or_else(invalid)?;
                Ok(CursorKey::Finished(seq.parse().map_err(|_| invalid())?, id(key)?))
            }
            _ => {
                let mut parts = rest.splitn(3, ':');
                let (Some(first), Some(seq), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(invalid());
                };
                let seq: u64 = seq.parse().map_err(|_| invalid())?;
                if state == JobState::Waiting {
                    return Ok(CursorKey::Waiting(first.parse().map_err(|_| invalid())?, seq, id(key)?));
                }
                let ns: u64 = first.parse().map_err(|_| invalid())?;
                let at = self.shared.base_instant.checked_add(Duration::from_nanos(ns)).ok_or_else(invalid)?;
                Ok(CursorKey::Timed(at, seq, id(key)?))
            }
        }
    }
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").field("name", &self.shared.name).field("config", &self.shared.config).finish()
    }
}
