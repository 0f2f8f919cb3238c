//! # sunusav-postgres
//!
//! The PostgreSQL adapter of sunusav's store port, on sqlx: embedded
//! reversible migrations, the transactional store of groups, invoices,
//! contributions, the members' ledger, payment attempts (with their
//! generation), outbox and webhook events (with their body's digest,
//! generation, conflicting bodies, the delivery log and body retention), and
//! the per-group advisory lock, and the operators' audit log. [`PgStore`]
//! implements [`Store`], `GroupReads`, `WebhookLog`, `NodeCursors` and
//! `AuditLog`; its unit of work [`PgTx`] implements
//! [`StoreTx`] and its five parts (`GroupTx`, `AttemptTx`, `LedgerTx`,
//! `OutboxTx`, `WebhookTx`). Its tests run the store conformance suite
//! (`store_conformance_tests!`), one database per case.
//!
//! A unit of work takes the group's lock with the blocking
//! `pg_advisory_xact_lock(<64-bit LockKey>)` (under `SET LOCAL lock_timeout`),
//! then loads the group row `FOR UPDATE`. Claims are single atomic statements
//! (`INSERT … ON CONFLICT DO NOTHING`), never check-then-insert. Every sqlx
//! error is mapped to [`StoreError`] at the seam: unique violations by
//! constraint name, `55P03` to `LockTimeout`, connection loss to `Unavailable`.
//!
//! ## Inside a host's database
//!
//! sunusav's tables live in a schema of their own, [`Schema`] (default
//! `sunusav`, [`PgStoreOptions::schema`]), and its migrations are recorded in
//! `<schema>._sqlx_migrations`, apart from the host's tables and sqlx
//! migrations table. The SQL names tables without a schema: every statement
//! runs with `search_path` set to the schema alone, for the session on a pool
//! sunusav builds ([`PgStore::connect_with`]), with `SET LOCAL` in each
//! transaction on a host's pool ([`PgStore::from_pool`]), which is left as it
//! was. A host that runs migrations itself runs [`migrator()`]'s.
//!
//! ## Layout
//! - [`migrate`][mod@migrate]: [`migrator()`] for a schema, [`MIGRATOR`] for
//!   the default one, [`migrate()`] / [`revert()`].
//! - [`schema`][mod@schema]: [`Schema`], a validated schema name.
//! - [`store`][mod@store]: [`PgStore`] (pool, connection settings, non-transactional reads)
//!   and [`PgStoreOptions`].
//! - [`tx`][mod@tx]: [`PgTx`], the unit of work.
//! - `groups`, `contributions` (and invoices), `ledger`, `attempts`, `outbox`,
//!   `webhooks`, `audit` (the operators' audit log): the SQL of each table
//!   family; `convert`: checked integer conversions; `error`: the sqlx →
//!   [`StoreError`] mapping.
//!
//! ## Example
//!
//! ```no_run
//! use sunusav_core::ports::store::Store;
//! use sunusav_postgres::PgStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://postgres@127.0.0.1:5432/sunusav").await?;
//! store.migrate().await?; // in the schema `sunusav`
//! let mut tx = store.begin().await?;
//! // tx.lock_group(id) → tx.load_group(id) → rule → tx.save_group(&g) → …
//! tx.commit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Store`]: sunusav_core::ports::store::Store
//! [`StoreTx`]: sunusav_core::ports::store::StoreTx
//! [`StoreError`]: sunusav_core::ports::store::StoreError

// Every dependency is used (tests excepted: they see the dev-dependencies
// too); scripts/unused-deps.sh checks the binaries.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod attempts;
mod audit;
mod contributions;
mod convert;
mod destinations;
mod error;
mod groups;
mod ledger;
pub mod migrate;
mod outbox;
pub mod schema;
pub mod store;
pub mod tx;
mod webhooks;

pub use migrate::{MIGRATOR, migrate, migrator, revert};
pub use schema::{InvalidSchema, Schema};
/// The sqlx this crate is built on, whose `PgPool` and `Migrator` are in its API.
pub use sqlx;
pub use store::{PgStore, PgStoreOptions};
pub use tx::PgTx;
