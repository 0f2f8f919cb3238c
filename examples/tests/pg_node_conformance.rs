//! The core's payments conformance suite against [`PgSimulatedNode`]: one
//! test per case, each on a fresh database of its own.
//!
//! Needs `DATABASE_URL` (a superuser connection); without it the tests return
//! at once, unless `SUNUSAV_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::time::Duration;

use sqlx::PgPool;
use sunusav_core::conformance::payments::PaymentsHarness;
use sunusav_examples::pg_node::PgSimulatedNode;

async fn fresh_node() -> PaymentsHarness {
    let admin = common::database_url().expect("DATABASE_URL is set");
    let url = common::fresh_database(&admin).await;
    let pool = PgPool::connect(&url).await.expect("connect to the fresh database");
    PaymentsHarness::of(PgSimulatedNode::new(pool, Duration::ZERO).await.expect("create the node's tables"))
}

sunusav_core::payments_conformance_tests!(fresh_node, skip_unless = common::database_url().is_some());
