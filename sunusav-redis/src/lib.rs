//! # sunusav-redis
//!
//! A durable job queue on Redis implementing every capability of the queue port ([`sunusav_core::ports::Queue`]):
//! id dedup with a claim window, priorities (FIFO within one), delays, leases
//! with heartbeats and stalled-job recovery, retries with exponential backoff,
//! dead letters, retention of the last completed / dead jobs, a bounded error
//! history per job (a list beside its hash, trimmed by the script that
//! pushes and deleted with the job), pause/resume and admin operations
//! (listing by cursor: exact in the waiting, delayed and failed sorted sets,
//! by position and id in the active set and the completed and dead lists).
//! It runs on standalone Redis and on Redis Cluster.
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
//! - [`config`]: [`RedisConfig`], from a URL (`redis://`, `rediss://` with
//!   the `tls` feature) or from `REDIS_URL`, `REDIS_HOST`/`REDIS_PORT`/
//!   `REDIS_PASSWORD`, `REDIS_CLUSTER_NODES`, `REDIS_TLS_CA_FILE` looked up by
//!   the caller (the library reads no environment); the password never prints.
//! - [`connection`]: [`RedisConnection`], the shared client that creates
//!   queues: connected from a [`RedisConfig`], or the host's own `fred`
//!   client ([`RedisConnection::from_client`]; [`fred`] is re-exported).
//! - `tls` (feature `tls`): the rustls connector.
//! - [`queue`]: [`RedisQueue`], the `Queue` adapter, and its batch API;
//!   `schedule`: its `Scheduler` capability (recurring schedules, `schedule.lua`).
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
//! let config = RedisConfig::from_url("redis://127.0.0.1:6379")?;
//! let queue = RedisQueue::connect(config, "payouts", "sunusav", QueueConfig::default()).await?;
//! let id = IdempotencyKey::parse("payout:42:1")?;
//! queue.enqueue(NewJob::new(id, br#"{"amount":1000}"#.to_vec())).await?;
//! if let Some(job) = queue.reserve_wait(Duration::from_secs(30), Duration::from_secs(5)).await? {
//!     // ... do the work, heartbeating for long jobs ...
//!     queue.ack(&job.id, &job.token).await?;
//! }
//! # Ok(()) }
//! ```

// Every dependency is used (tests excepted: they see the dev-dependencies
// too); scripts/unused-deps.sh checks the binaries.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod codes;
pub mod config;
pub mod connection;
mod decode;
pub mod error;
pub mod queue;
mod schedule;
mod scripts;
#[cfg(feature = "tls")]
mod tls;

pub use config::{RedisConfig, RedisNodes, RedisTls};
pub use connection::RedisConnection;
pub use error::ConnectError;
/// The fred this crate is built on, whose `Client` [`RedisConnection::from_client`] takes.
pub use fred;
pub use queue::RedisQueue;
pub use sunusav_core::ports::queue::Step;
