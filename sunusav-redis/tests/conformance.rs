//! The core's queue conformance suite, on standalone Redis and on a cluster.

mod common;

use std::sync::Arc;

use sunusav_core::conformance::queue::run_all;
use sunusav_core::ports::queue::{Queue, QueueConfig};
use sunusav_redis::RedisConnection;

fn factory(conn: RedisConnection) -> impl Fn(QueueConfig) -> std::pin::Pin<Box<dyn Future<Output = Arc<dyn Queue>>>> {
    move |config| {
        let conn = conn.clone();
        Box::pin(async move {
            // A fresh prefix per case: cases never share keys.
            Arc::new(conn.queue("conformance", &common::prefix(), config).expect("queue")) as Arc<dyn Queue>
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_redis_passes_the_queue_conformance_suite() {
    let Some(conn) = common::standalone().await else { return };
    run_all(factory(conn)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_queue_conformance_suite() {
    let Some(conn) = common::cluster().await else { return };
    run_all(factory(conn)).await;
}
