//! Helpers shared by the integration tests: services from the environment,
//! one random key prefix per test.
#![allow(dead_code)]

use std::sync::Arc;

use sunusav_core::IdempotencyKey;
use sunusav_core::ports::queue::{Queue, QueueConfig};
use sunusav_redis::{RedisConfig, RedisConnection, RedisQueue};

/// Reads a service variable; when missing, panics under `SUNUSAV_REQUIRE_SERVICES=1`,
/// else returns `None` (the test is skipped with a note).
pub fn service_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{name} is not set but SUNUSAV_REQUIRE_SERVICES=1: start the services (scripts/services.sh run …)"
            );
            eprintln!("skipped: {name} is not set");
            None
        }
    }
}

/// A random key prefix, so tests never share keys.
pub fn prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

pub fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

/// A standalone connection from `REDIS_URL`, or `None` (skipped).
pub async fn standalone() -> Option<RedisConnection> {
    let url = service_var("REDIS_URL")?;
    Some(RedisConnection::connect(RedisConfig::from_url(&url).unwrap()).await.unwrap())
}

/// A cluster connection from `REDIS_CLUSTER_NODES`, or `None` (skipped).
pub async fn cluster() -> Option<RedisConnection> {
    let nodes = service_var("REDIS_CLUSTER_NODES")?;
    Some(RedisConnection::connect(RedisConfig::from_cluster_nodes(&nodes).unwrap()).await.unwrap())
}

/// A fresh queue on a standalone server, or `None` (skipped).
pub async fn queue(config: QueueConfig) -> Option<RedisQueue> {
    let conn = standalone().await?;
    Some(conn.queue("jobs", &prefix(), config).unwrap())
}

pub fn arc(q: RedisQueue) -> Arc<dyn Queue> {
    Arc::new(q)
}
