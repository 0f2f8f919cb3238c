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
