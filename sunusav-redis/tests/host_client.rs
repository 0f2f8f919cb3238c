//! Queues on a host's own `fred` client ([`RedisConnection::from_client`]):
//! the conformance suite passes on it, standalone and clustered, and closing
//! the connection leaves the host's client open.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sunusav_core::conformance::queue::run_all;
use sunusav_core::ports::queue::{Consumer, ConsumerExt, NewJob, Producer, Queue, QueueConfig};
use sunusav_redis::RedisConnection;
use sunusav_redis::fred::clients::Client;
use sunusav_redis::fred::interfaces::ClientLike;
use sunusav_redis::fred::types::Builder;
use sunusav_redis::fred::types::config::Config;

/// The host's client, built and connected by the host.
async fn host_client(config: Config) -> Client {
    let client = Builder::from_config(config)
        .with_connection_config(|c| c.max_command_attempts = 1)
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(5))
        .build()
        .expect("build");
    client.init().await.expect("connect");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_on_the_hosts_client_works_and_closing_it_leaves_the_client_open() {
    let Some(url) = common::service_var("REDIS_URL") else { return };
    let client = host_client(Config::from_url(&url).expect("url")).await;
    let conn = RedisConnection::from_client(client.clone()).await.expect("from client");
    let queue = conn.queue("jobs", &common::prefix(), QueueConfig::default()).expect("queue");

    queue.enqueue(NewJob::new(common::key("job:1"), b"x".to_vec())).await.expect("enqueue");
    // A blocking reserve runs on a client made with the host client's settings.
    let job = queue.reserve_wait(Duration::from_secs(30), Duration::from_secs(2)).await.expect("reserve");
    let job = job.expect("the job");
    assert_eq!(job.payload, b"x");
    queue.ack(&job.id, &job.token).await.expect("ack");

    conn.close().await;
    assert!(client.is_connected(), "the host's client stays open");
    client.ping::<String>(None).await.expect("the host can still use it");
    assert!(format!("{conn:?}").contains("the host's"));
    client.quit().await.expect("quit");
}

fn factory(conn: RedisConnection) -> impl Fn(QueueConfig) -> std::pin::Pin<Box<dyn Future<Output = Arc<dyn Queue>>>> {
    move |config| {
        let conn = conn.clone();
        Box::pin(async move {
            Arc::new(conn.queue("conformance", &common::prefix(), config).expect("queue")) as Arc<dyn Queue>
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_standalone_client_passes_the_queue_conformance_suite() {
    let Some(url) = common::service_var("REDIS_URL") else { return };
    let client = host_client(Config::from_url(&url).expect("url")).await;
    run_all(factory(RedisConnection::from_client(client).await.expect("from client"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_cluster_client_passes_the_queue_conformance_suite() {
    let Some(nodes) = common::service_var("REDIS_CLUSTER_NODES") else { return };
    let nodes: Vec<(String, u16)> = nodes
        .split(',')
        .map(|n| {
            let (host, port) = n.rsplit_once(':').expect("host:port");
            (host.to_owned(), port.parse().expect("port"))
        })
        .collect();
    let config =
        Config { server: sunusav_redis::fred::types::config::ServerConfig::new_clustered(nodes), ..Config::default() };
    let client = host_client(config).await;
    run_all(factory(RedisConnection::from_client(client).await.expect("from client"))).await;
}
