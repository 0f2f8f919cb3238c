//! The sunusav example server.
//!
//! Run with: `cargo run -p sunusav-examples --bin sunusav-server`
//!
//! With no `DATABASE_URL` / `REDIS_URL` it runs on the embedded default
//! (in-memory store and queue, simulated Lightning node); with both, on
//! PostgreSQL and Redis, applying migrations first. `migrate run` and
//! `migrate revert` manage the schema.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sunusav_axum::{AdminToken, AppState, router};
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_examples::config::{Cli, Command, MigrateAction, ServerArgs, WebhookScheme};
use sunusav_examples::wiring::{Backend, connect_postgres, verifier, wire};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Log lines are written by a background thread: a worker or a request never
    // waits on stderr. The guard flushes what is left when main returns.
    // Not lossy: when the buffer is full, logging waits rather than drops lines.
    let (writer, _flush_on_exit) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.server).await,
        Command::Migrate { action } => migrate(&cli.server, action).await,
    }
}

async fn migrate(args: &ServerArgs, action: MigrateAction) -> anyhow::Result<()> {
    let url = args.database_url.as_deref().context("migrate needs DATABASE_URL")?;
    match action {
        MigrateAction::Run => {
            connect_postgres(url, &args.database_schema).await?;
            println!("migrations applied in schema {}", args.database_schema);
        }
        MigrateAction::Revert => {
            let options = sunusav_postgres::PgStoreOptions {
                schema: args.database_schema.clone(),
                ..sunusav_postgres::PgStoreOptions::default()
            };
            let store =
                sunusav_postgres::PgStore::connect_with(url, &options).await.context("connecting to PostgreSQL")?;
            store.revert().await.context("reverting migrations")?;
            println!("migrations reverted in schema {}", args.database_schema);
        }
    }
    Ok(())
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let backend = Backend::from_args(&args)?;
    tracing::info!(backend = ?backend, "sunusav-server starting on {}", backend.describe());
    let secret = match (&args.webhook_secret, backend) {
        (Some(s), _) => s.clone(),
        (None, Backend::Real) => anyhow::bail!("WEBHOOK_HMAC_SECRET is required on PostgreSQL + Redis"),
        (None, Backend::Embedded) => {
            let generated = generate_secret(args.webhook_scheme);
            // Printed once on stdout for the operator, never logged.
            println!("WEBHOOK_HMAC_SECRET not set; generated one for this run: {generated}");
            generated
        }
    };
    let verifier = verifier(args.webhook_scheme, &secret, args.webhook_previous_secrets.as_deref())?;
    let wired = wire(&args, backend).await?;
    let workers = Workers::start(
        &wired.tontine,
        WorkersConfig {
            payout_concurrency: args.payout_concurrency,
            webhook_concurrency: args.webhook_concurrency,
            webhook_prefetch: args.webhook_prefetch,
            webhook_batch: args.webhook_batch,
            webhook_linger: Duration::from_millis(args.webhook_linger_ms),
            lease: Duration::from_millis(args.lease_ms.max(100)),
            stalled_interval: Duration::from_millis(args.stalled_interval_ms.max(50)),
            sweep_interval: Duration::from_millis(args.sweep_interval_ms),
            sweep_after: Duration::from_millis(args.sweep_after_ms),
            ..WorkersConfig::default()
        },
    );
    let mut state = AppState::new(wired.tontine.clone(), Arc::new(verifier))
        .with_workers(workers.stats())
        .with_body_limit(args.body_limit);
    if let Some(token) = &args.admin_token {
        state = state.with_admin_token(AdminToken::new(token).context("ADMIN_TOKEN")?);
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("listening on http://{addr}");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await?;

    tracing::info!("shutting down: no new jobs, waiting for running ones");
    let clean = workers.shutdown(Duration::from_secs(args.shutdown_deadline_secs)).await;
    if let Some(redis) = wired.redis {
        redis.close().await;
    }
    tracing::info!(clean, "stopped");
    Ok(())
}

fn generate_secret(scheme: WebhookScheme) -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    if scheme == WebhookScheme::Standard {
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        hex::encode(bytes)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("signal received");
}
