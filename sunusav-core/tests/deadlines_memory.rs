//! A scheduled group's deadlines, on the in-memory adapters: each cycle's
//! deadline is a timed job written with the cycle's opening, due at its
//! grace end; when it fires, every member still owing is told late once
//! and the cycle waits (the `wait` policy); a deadline that fires after its
//! cycle completed, or before its time, does nothing.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{create, deliver};
use sunusav_core::domain::rules::Reminders;
use sunusav_core::domain::schedule::{Period, Schedule};
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::{ConsumerExt, JobState, QueueAdmin, QueueConfig};
use sunusav_core::services::{
    Clock, DeadlineOutcome, DomainEvent, EVENTS_QUEUE, ManualClock, PayoutJob, PayoutStep, TIMERS_QUEUE, TimerJob,
    Tontine,
};
use sunusav_core::{GroupSpec, IdempotencyKey, Msat};

const DAY: u64 = 86_400_000;

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Three members, every 30 days, a day of grace; cycle 1 was due 10 days ago.
fn scheduled() -> GroupSpec {
    let mut spec = common::spec(3);
    spec.schedule = Some(Schedule::new(now_ms() - 10 * DAY, Period::Days(30), DAY).unwrap());
    spec
}

async fn events(queue: &Arc<MemoryQueue>) -> Vec<DomainEvent> {
    let mut out = Vec::new();
    while let Some(job) = queue.reserve(Duration::from_secs(30)).await.unwrap() {
        out.push(serde_json::from_slice(&job.payload).unwrap());
        queue.ack(&job.id, &job.token).await.unwrap();
    }
    out
}

async fn timer(queue: &Arc<MemoryQueue>, id: &str) -> Option<(JobState, TimerJob)> {
    let job = queue.get(&IdempotencyKey::parse(id).unwrap()).await.unwrap()?;
    Some((job.state, serde_json::from_slice(&job.payload).unwrap()))
}

async fn run_payouts(t: &Tontine) {
    while let Some(job) = t.payout_queue().reserve(Duration::from_secs(30)).await.unwrap() {
        let payload: PayoutJob = serde_json::from_slice(&job.payload).unwrap();
        assert_eq!(t.process_payout(&payload).await.unwrap(), PayoutStep::Paid);
        t.payout_queue().ack(&job.id, &job.token).await.unwrap();
    }
}

#[tokio::test]
async fn a_deadline_tells_each_unpaid_member_late_once_and_the_cycle_waits() {
    let app = common::app();
    let (timers, told) = (
        Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default())),
        Arc::new(MemoryQueue::new(EVENTS_QUEUE, QueueConfig::default())),
    );
    let t = app.tontine.clone().with_timers(timers.clone()).with_events(told.clone());
    let g = create(&t, scheduled()).await;
    let before = now_ms();
    let started = t.start_group(g.id()).await.unwrap();
    t.relay_outbox(100).await.unwrap();

    // Cycle 1 was due 10 days ago by the calendar, but it opened now: it is
    // due a grace period (a day) after it opened, and late a day after that.
    let id = format!("deadline:{}:1", g.id());
    let (state, job) = timer(&timers, &id).await.expect("cycle 1's deadline is queued");
    assert_eq!(state, JobState::Delayed);
    let opened = started.cycle_opened_ms().expect("opened");
    assert!(opened >= before && opened <= now_ms());
    assert_eq!(started.cycle_due_ms(), Some(opened + DAY));
    assert_eq!(job.at_ms, opened + 2 * DAY);
    assert_eq!(started.cycle_grace_end_ms(), Some(job.at_ms));
    assert_eq!(t.run_timer(&job, job.at_ms - 1).await.unwrap(), DeadlineOutcome::Early);

    // One member paid before the deadline: the other two are late.
    let inv = t.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    deliver(&t, &inv, 0).await.unwrap();
    let late = t.run_timer(&job, job.at_ms).await.unwrap();
    let told_late: Vec<_> = g.members()[1..].iter().map(|m| (*m, Msat::ZERO)).collect();
    assert_eq!(late, DeadlineOutcome::Waiting(told_late), "no fine under `wait`");
    // Run again (a job delivered twice): the members told late are stored, nobody is told twice.
    assert_eq!(t.run_timer(&job, job.at_ms).await.unwrap(), DeadlineOutcome::Nothing);
    t.relay_outbox(100).await.unwrap();
    let lates: Vec<_> = events(&told).await.into_iter().filter(|e| e.kind.as_str() == "member_late").collect();
    assert_eq!(lates.len(), 2, "{lates:#?}");
    assert_eq!(lates[0].id, format!("member_late:{}:1:{}", g.id(), g.members()[1]));
    assert_eq!(t.store().group(g.id()).await.unwrap().unwrap().cycle(), 1, "the cycle waits");

    // The late members pay: the cycle completes and pays out; cycle 2's
    // deadline is queued, delayed to its grace end (20 days ahead).
    for (i, m) in g.members()[1..].iter().enumerate() {
        let inv = t.issue_invoice(g.id(), *m).await.unwrap();
        deliver(&t, &inv, i + 1).await.unwrap();
    }
    t.relay_outbox(100).await.unwrap();
    run_payouts(&t).await;
    t.relay_outbox(100).await.unwrap();
    let (state, next) = timer(&timers, &format!("deadline:{}:2", g.id())).await.expect("cycle 2's deadline");
    assert_eq!(state, JobState::Delayed);
    assert_eq!(next.at_ms, g.spec().schedule.unwrap().grace_end_ms(2).unwrap());

    // Cycle 1's deadline firing now (a late or repeated run) does nothing.
    assert_eq!(t.run_timer(&job, job.at_ms).await.unwrap(), DeadlineOutcome::Nothing);
}

#[tokio::test]
async fn groups_without_a_schedule_or_without_timers_queue_no_deadline() {
    let app = common::app();
    let timers = Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default()));
    let t = app.tontine.clone().with_timers(timers.clone());
    let plain = create(&t, common::spec(2)).await;
    t.start_group(plain.id()).await.unwrap();
    t.relay_outbox(100).await.unwrap();
    assert!(timer(&timers, &format!("deadline:{}:1", plain.id())).await.is_none(), "no schedule, no deadline");

    // A scheduled group on an application without a timers queue: none either.
    let g = create(&app.tontine, scheduled()).await;
    app.tontine.start_group(g.id()).await.unwrap();
    assert_eq!(app.tontine.relay_outbox(100).await.unwrap(), 0, "nothing in the outbox");
}

#[tokio::test]
async fn a_timers_queue_that_lost_its_jobs_gets_them_back_from_the_store_and_a_deadline_that_ran_is_not_sent_again() {
    let app = common::app();
    let now = now_ms();
    let clock = ManualClock::at(now);
    let t = app.tontine.clone().with_clock(Arc::new(clock.clone()));
    let first = Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default()));
    let mut spec = common::spec(3);
    spec.schedule = Some(Schedule::new(now + 3 * DAY, Period::Days(30), DAY).unwrap());
    spec.policy.reminders_ms = Reminders::new(vec![DAY]).unwrap();
    let g = create(&t, spec).await;
    let with_first = t.clone().with_timers(first.clone());
    with_first.start_group(g.id()).await.unwrap();
    with_first.relay_outbox(100).await.unwrap();
    let deadline = format!("deadline:{}:1", g.id());
    let reminder = format!("reminder:{}:1:{DAY}", g.id());
    assert!(timer(&first, &deadline).await.is_some() && timer(&first, &reminder).await.is_some());

    // Redis restarted empty: a new timers queue holds nothing; the sweep
    // publishes the cycle's deadline and reminder again from the store.
    let empty = Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default()));
    let t = t.with_timers(empty.clone());
    let (sweep, next) = t.sweep_timers(None, 100).await.unwrap();
    assert_eq!((sweep.cycles, sweep.published, next), (1, 2, None));
    let (state, job) = timer(&empty, &deadline).await.expect("the deadline is back");
    assert_eq!((state, job.at_ms), (JobState::Delayed, now + 4 * DAY));
    assert_eq!(timer(&empty, &reminder).await.expect("the reminder is back").1.at_ms, now + 2 * DAY);
    // Sweeping again publishes the same ids: the queue still holds one of each.
    t.sweep_timers(None, 100).await.unwrap();
    assert_eq!(empty.stats().await.unwrap().delayed, 2);

    // The deadline runs: everyone is late (the `wait` policy), stored; a
    // sweep after that sends neither it (it ran) nor the past reminder.
    clock.set(now + 4 * DAY + 1);
    let DeadlineOutcome::Waiting(late) = t.run_timer(&job, t.now_ms()).await.unwrap() else { panic!("late") };
    assert_eq!(late.len(), 3);
    let fresh = Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default()));
    let (sweep, _) = t.with_timers(fresh.clone()).sweep_timers(None, 100).await.unwrap();
    assert_eq!((sweep.cycles, sweep.published), (1, 0), "nothing owed any more");
}

/// A group of two on a manual clock: weekly from a day ahead, a day of grace.
async fn two_on_a_clock(
    late: sunusav_core::domain::rules::LatePolicy,
) -> (Tontine, common::App, ManualClock, Arc<MemoryQueue>, sunusav_core::Group) {
    let app = common::app();
    let start = now_ms();
    let clock = ManualClock::at(start);
    let timers = Arc::new(MemoryQueue::new(TIMERS_QUEUE, QueueConfig::default()));
    let t = app.tontine.clone().with_clock(Arc::new(clock.clone())).with_timers(timers.clone());
    let mut spec = common::spec(2);
    spec.schedule = Some(Schedule::new(start + DAY, Period::Weeks(1), DAY).unwrap());
    spec.policy.late = late;
    let g = create(&t, spec).await;
    t.start_group(g.id()).await.unwrap();
    (t, app, clock, timers, g)
}

#[tokio::test]
async fn a_cycle_that_opens_after_its_calendar_due_time_gives_its_members_a_grace_period_before_it_is_due() {
    let (t, _app, clock, timers, g) = two_on_a_clock(sunusav_core::domain::rules::LatePolicy::Wait).await;
    let start = clock.now_ms();
    // Cycle 1: the first member pays on time; the second only 20 days
    // later, after cycle 2's calendar due time (day 8) and grace end (day 9).
    let inv = t.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    deliver(&t, &inv, 0).await.unwrap();
    clock.set(start + 20 * DAY);
    let inv = t.issue_invoice(g.id(), g.members()[1]).await.unwrap();
    deliver(&t, &inv, 1).await.unwrap();
    t.relay_outbox(100).await.unwrap();
    run_payouts(&t).await;
    t.relay_outbox(100).await.unwrap();
    let opened = t.store().group(g.id()).await.unwrap().unwrap();
    assert_eq!(opened.cycle(), 2);
    // Due a grace period after it opened, late a grace period after that:
    // not at once, although its calendar times passed.
    assert_eq!(opened.cycle_opened_ms(), Some(start + 20 * DAY));
    assert_eq!(opened.cycle_due_ms(), Some(start + 21 * DAY));
    let (_, deadline) = timer(&timers, &format!("deadline:{}:2", g.id())).await.expect("cycle 2's deadline");
    assert_eq!(deadline.at_ms, start + 22 * DAY);
    assert_eq!(t.run_timer(&deadline, clock.now_ms()).await.unwrap(), DeadlineOutcome::Early, "no one is late yet");
}

#[tokio::test]
async fn a_payment_the_node_settled_before_the_deadline_counts_however_late_its_webhook() {
    let fine = sunusav_core::domain::rules::LatePolicy::Fine(sunusav_core::domain::rules::FinePolicy {
        amount: sunusav_core::domain::rules::FineAmount::Msat(Msat::new(100)),
        to: sunusav_core::domain::rules::FineTo::Pot,
    });
    let (t, app, clock, timers, g) = two_on_a_clock(fine).await;
    // Both pay at the node before the grace end; no webhook has arrived
    // when the deadline runs.
    for m in g.members() {
        let inv = t.issue_invoice(g.id(), *m).await.unwrap();
        assert!(app.node.settle_invoice(&inv.payment_hash).is_some(), "paid at the node");
    }
    t.relay_outbox(100).await.unwrap();
    let (_, deadline) = timer(&timers, &format!("deadline:{}:1", g.id())).await.expect("deadline");
    clock.set(deadline.at_ms);
    let outcome = t.run_timer(&deadline, deadline.at_ms).await.unwrap();
    assert_eq!(outcome, DeadlineOutcome::Nothing, "nobody late: the node's word settled both first");
    let after = t.store().group(g.id()).await.unwrap().unwrap();
    assert!(after.late().is_empty(), "no fine: {:?}", after.late());
    assert_eq!(after.payout_due().map(|d| d.amount), Some(after.payout_amounts().0), "the cycle completed");
}
