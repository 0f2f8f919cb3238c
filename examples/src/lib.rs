//! # sunusav-examples
//!
//! The pieces behind the example binaries, as a library so that tests drive
//! them in process:
//!
//! - [`config`]: the server's configuration, from the environment and flags.
//! - [`serve`]: serving the router with HTTP limits and a shutdown bounded in time.
//! - [`wiring`]: picks adapters at run time: the embedded default (in-memory
//!   store and queue, simulated Lightning node) or PostgreSQL + Redis.
//! - [`pg_node`]: a simulated Lightning node whose state lives in PostgreSQL,
//!   shared by every server process and surviving restarts, as a real node's does.
//! - [`client`]: a small HTTP client for the demo and the tests.
//! - [`events`]: domain events delivered to `EVENTS_WEBHOOK_URL` as Standard Webhooks.
//! - [`demo`]: the demo/load driver: a group's whole life through the HTTP API.
//!
//! Run the server with `cargo run -p sunusav-examples --bin sunusav-server`.

pub mod client;
pub mod config;
pub mod demo;
pub mod events;
pub mod pg_node;
pub mod serve;
pub mod wiring;
