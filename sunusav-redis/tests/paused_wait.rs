//! `reserve_wait` on a paused queue with an overdue delayed job: it must block,
//! not call the step script back to back until the wait ends.
//!
//! The script calls are counted with the server's `INFO commandstats`, which
//! counts every client's calls: this file holds one test, so that no other test
//! of this binary runs against the server meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::{key, queue};
use fred::interfaces::ClientLike;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{JobOptions, NewJob, QueueConfig};
use sunusav_redis::RedisQueue;

const LEASE: Duration = Duration::from_secs(30);

/// How many `EVALSHA` calls the server has run so far.
async fn evalsha_calls(q: &RedisQueue) -> u64 {
    let info: String = q.connection().client().custom(fred::cmd!("INFO"), vec!["commandstats"]).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_with_an_overdue_delayed_job_blocks_and_resume_wakes_the_waiter() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let delayed = NewJob {
        options: JobOptions { delay: Duration::from_millis(50), ..JobOptions::default() },
        ..NewJob::new(key("late"), b"late".to_vec())
    };
    q.enqueue(delayed).await.unwrap();
    q.pause().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Paused, the job past its due time: nothing is handed out, and the wait
    // blocks instead of spinning on the script.
    let before = evalsha_calls(&q).await;
    let start = Instant::now();
    let got = q.reserve_wait(LEASE, Duration::from_millis(500)).await.unwrap();
    let took = start.elapsed();
    let calls = evalsha_calls(&q).await - before;
    assert!(got.is_none(), "a paused queue hands out nothing");
    assert!(took >= Duration::from_millis(450), "returned after {took:?}");
    assert!(calls < 20, "{calls} script calls in a 500 ms paused wait");

    // Resume wakes a worker blocked in the paused queue, and the overdue job is promoted.
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.reserve_wait(LEASE, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "paused: the waiter keeps waiting");
    let resumed = Instant::now();
    q.resume().await.unwrap();
    let job = waiter.await.unwrap().unwrap().expect("the overdue job after resume");
    assert_eq!(job.id, key("late"));
    assert!(resumed.elapsed() < Duration::from_secs(1), "woke {:?} after resume", resumed.elapsed());
}
