//! A host service that embeds sunusav: its own axum router (with its own
//! `/health` and fallback), its own PostgreSQL pool and `fred` client, and
//! its own sessions telling sunusav who calls the group API.
//!
//! The code between the `README` markers is the README's "Embedding in a
//! service" example, word for word (`tests/readme_embedding.rs` checks it).
//! Built by `cargo test` and `cargo clippy --all-targets` (so by CI); run it
//! with `DATABASE_URL` and `REDIS_URL` set:
//!
//! ```sh
//! cargo run -p sunusav-examples --example embed_host
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use sunusav_axum::identity::AuthFuture;
use sunusav_axum::{
    AdminToken, AppState, Authenticate, RouterLayers as _, admin_router, group_router, ops_router, webhook_router,
};
use sunusav_core::Caller;
use sunusav_core::memory::SimulatedNode;
use sunusav_core::ports::QueueConfig;
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_postgres::sqlx::postgres::PgPoolOptions;
use sunusav_postgres::{PgStore, PgStoreOptions, Schema};
use sunusav_redis::RedisConnection;
use sunusav_redis::fred::interfaces::ClientLike as _;
use sunusav_redis::fred::types::Builder;
use sunusav_redis::fred::types::config::Config;

// README:begin
/// The host's own sessions: a session id (cookie, JWT subject…) names an
/// operator or a member. Here a map; a real host asks its session store.
struct HostSessions(HashMap<String, Caller>);

impl Authenticate for HostSessions {
    fn authenticate<'a>(&'a self, parts: &'a http::request::Parts) -> AuthFuture<'a> {
        let caller = parts
            .headers
            .get("x-session")
            .and_then(|v| v.to_str().ok())
            .and_then(|session| self.0.get(session).copied());
        // None: no credentials, answered 401 `unauthorized`.
        Box::pin(async move { Ok(caller) })
    }
}

async fn host_app(
    host_pool: sunusav_postgres::sqlx::PgPool,
    host_redis: sunusav_redis::fred::clients::Client,
    sessions: HostSessions,
) -> anyhow::Result<(Router, Router, Workers)> {
    // sunusav's tables in a schema of their own, with their own migrations table.
    let options = PgStoreOptions { schema: Schema::new("tontine")?, ..PgStoreOptions::default() };
    sunusav_postgres::migrator(&options.schema).run(&host_pool).await?;
    let store = PgStore::from_pool(host_pool, &options);
    // The queues on the host's (connected) fred client; closing them leaves it open.
    let redis = RedisConnection::from_client(host_redis).await?;
    let payouts = redis.queue(PAYOUT_QUEUE, "tontine", QueueConfig::default())?;
    let webhooks = redis.queue(WEBHOOK_QUEUE, "tontine", QueueConfig::default())?;
    // The node: `sunusav_lnd::LndNode::connect(..)` in production.
    let node = Arc::new(SimulatedNode::new());
    let tontine = Tontine::new(Arc::new(store), node, Arc::new(payouts), Arc::new(webhooks));
    let workers = Workers::start(&tontine, WorkersConfig::default());

    let verifier = Verifier::hex_sha256([Secret::from_text(&std::env::var("WEBHOOK_HMAC_SECRET")?)?])?;
    let state = AppState::new(tontine, Arc::new(verifier))
        .with_identity(sessions)
        .with_admin_token(AdminToken::new(&std::env::var("ADMIN_TOKEN")?)?)
        .with_workers(workers.stats());

    let public = Router::new()
        .route("/health", get(|| async { "the host's own health" }))
        .nest("/tontine", group_router(state.clone()).with_json_errors())
        .merge(webhook_router(state.clone()))
        .merge(admin_router(state.clone()))
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "the host's own 404") });
    // Health and metrics on an internal listener.
    let internal = Router::new().nest("/tontine", ops_router(state));
    Ok((public, internal, workers))
}
// README:end

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&std::env::var("DATABASE_URL").context("DATABASE_URL")?)
        .await
        .context("the host's pool")?;
    let redis = Builder::from_config(Config::from_url(&std::env::var("REDIS_URL").context("REDIS_URL")?)?)
        .with_connection_config(|c| c.max_command_attempts = 1)
        .build()?;
    redis.init().await.context("the host's Redis client")?;
    let sessions = HostSessions(HashMap::from([("operator-session".to_owned(), Caller::Operator)]));
    let (public, internal, workers) = host_app(pool, redis, sessions).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let ops = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
    println!("listening on http://{} (ops on http://{})", listener.local_addr()?, ops.local_addr()?);
    tokio::spawn(async move { axum::serve(ops, internal).await });
    axum::serve(listener, public).with_graceful_shutdown(async { _ = tokio::signal::ctrl_c().await }).await?;
    workers.shutdown(Duration::from_secs(10)).await;
    Ok(())
}
