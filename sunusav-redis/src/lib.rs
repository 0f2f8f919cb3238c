//! # sunusav-redis
//!
//! A durable job queue on Redis implementing every capability of the queue port ([`sunusav_core::ports::Queue`]):
//! id dedup with a claim window, priorities (FIFO within one), delays, leases
//! with heartbeats and stalled-job recovery, retries with exponential backoff,
//! dead letters, retention of the last completed / dead jobs, pause/resume and
//! admin operations. It runs on standalone Redis and on Redis Cluster.
//!
//! Every state change is one Lua script, loaded once and called by SHA
//! (reloaded on `NOSCRIPT`); scripts take due times and leases from the
//! server's clock (`TIME`), so any number of processes agree. All keys of one
//! queue share the hash tag `{prefix:queue}`, hence one cluster slot. A busy
//! worker acknowledges and reserves in one call
//! ([`sunusav_core::ports::Consumer::ack_many_and_reserve`], batched over many jobs); an idle one
//! blocks on a wake-up list on a dedicated connection
//! ([`sunusav_core::ports::Consumer::reserve_wait`]), and resumes by itself
//! after Redis restarts.
//!
//! ## Layout
//!
//! - [`config`]: [`RedisConfig`], from `REDIS_URL`, `REDIS_HOST`/`REDIS_PORT`/
//!   `REDIS_PASSWORD` or `REDIS_CLUSTER_NODES`; the password never prints.
//! - [`connection`]: [`RedisConnection`], the shared client that creates queues.
//! - [`queue`]: [`RedisQueue`], the `Queue` adapter, and its batch API.
//! - [`error`]: [`ConnectError`], and the mapping of Redis errors to `QueueError`.
//! - `scripts` and `src/lua/*.lua`: the Lua scripts; `codes`: the state and
//!   job hash field codes they store, the same table as `common.lua`'s.
//! - `decode`: strict decoding of the scripts' replies (a malformed one is
//!   `QueueError::Corrupt`).
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use sunusav_core::IdempotencyKey;
//! use sunusav_core::ports::queue::{Consumer, ConsumerExt, NewJob, Producer, QueueConfig};
//! use sunusav_redis::{RedisConfig, RedisQueue};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = RedisQueue::connect(RedisConfig::from_env()?, "payouts", "sunusav", QueueConfig::default()).await?;
//! let id = IdempotencyKey::parse("payout:42:1")?;
//! queue.enqueue(NewJob::new(id, br#"{"amount":1000}"#.to_vec())).await?;
//! if let Some(job) = queue.reserve_wait(Duration::from_secs(30), Duration::from_secs(5)).await? {
//!     // ... do the work, heartbeating for long jobs ...
//!     queue.ack(&job.id, &job.token).await?;
//! }
//! # Ok(()) }
//! ```

mod codes;
pub mod config;
pub mod connection;
mod decode;
pub mod error;
pub mod queue;
mod scripts;

pub use config::{RedisConfig, RedisNodes};
pub use connection::RedisConnection;
pub use error::ConnectError;
pub use queue::RedisQueue;
pub use sunusav_core::ports::queue::Step;
