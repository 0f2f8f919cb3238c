//! The core's scheduler conformance suite on standalone Redis and on a
//! cluster: each instance a case opens is a new connection to the same key
//! prefix (another process, or a restart).

mod common;

use std::sync::Arc;

use sunusav_core::conformance::schedule::{Open, OpenFuture, ScheduledQueue, run_all};
use sunusav_core::ports::queue::QueueConfig;
use sunusav_redis::{RedisConfig, RedisConnection};

fn factory(config: RedisConfig) -> impl Fn(QueueConfig) -> std::pin::Pin<Box<dyn Future<Output = Open>>> {
    move |queue_config| {
        let config = config.clone();
        Box::pin(async move {
            // A fresh prefix per case: cases never share keys; instances of one case do.
            let prefix = common::prefix();
            Arc::new(move || {
                let (config, prefix) = (config.clone(), prefix.clone());
                Box::pin(async move {
                    let conn = RedisConnection::connect(config).await.expect("connect");
                    Arc::new(conn.queue("schedules", &prefix, queue_config).expect("queue")) as Arc<dyn ScheduledQueue>
                }) as OpenFuture
            }) as Open
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_redis_passes_the_schedule_conformance_suite() {
    let Some(url) = common::service_var("REDIS_URL") else { return };
    run_all(factory(RedisConfig::from_url(&url).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_schedule_conformance_suite() {
    let Some(nodes) = common::service_var("REDIS_CLUSTER_NODES") else { return };
    run_all(factory(RedisConfig::from_cluster_nodes(&nodes).unwrap())).await;
}

#[tokio::test]
async fn a_template_over_the_payload_limit_is_refused_and_nothing_is_stored() {
    use sunusav_core::ports::queue::{JobTemplate, QueueError, Repeat, ScheduleId, ScheduleSpec, Scheduler};
    use sunusav_redis::queue::MAX_PAYLOAD_BYTES;

    let Some(q) = common::queue(QueueConfig::default()).await else { return };
    let job = JobTemplate::new(vec![0u8; MAX_PAYLOAD_BYTES + 1]);
    let repeat = Repeat::every(std::time::Duration::from_mins(1), 0).unwrap();
    let spec = ScheduleSpec::new(ScheduleId::parse("big").unwrap(), job, repeat).unwrap();
    assert!(matches!(q.upsert_schedule(spec, 0).await, Err(QueueError::Invalid(_))));
    assert!(q.schedules().await.unwrap().is_empty());
}
