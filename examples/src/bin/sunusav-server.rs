//! The sunusav example server.
//!
//! Run with: `cargo run -p sunusav-examples --bin sunusav-server`
//!
//! With no `DATABASE_URL` / `REDIS_URL` it runs on the embedded default
//! (in-memory store and queue, simulated Lightning node); with both, on
//! PostgreSQL and Redis, applying migrations first. `migrate run` and
//! `migrate revert` manage the schema. With `ADMIN_TOKEN` (and, for the
//! read-only operator role, `OPERATOR_TOKEN`) the operations console is at
//! `/admin/console`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use sunusav_axum::routes::not_found;
use sunusav_axum::{
    AdminToken, AppState, BearerTokens, CONSOLE_LOGIN_LIMIT, MemberTokens, RouterLayers as _, admin_router,
    group_router, nest_console, ops_router, webhook_router,
};
use sunusav_core::runtime::{SettleStream, SettleStreamConfig, Workers, WorkersConfig};
use sunusav_examples::config::{Cli, Command, MigrateAction, ServerArgs, WebhookScheme};
use sunusav_examples::serve::{self, HttpLimits};
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
    let verifier = verifier(
        args.webhook_scheme,
        &secret,
        args.webhook_previous_secrets.as_deref(),
        args.webhook_signature_header.as_ref(),
    )?;
    let subscriber = args.events_subscriber()?;
    let wired = wire(&args, backend).await?;
    let workers = Workers::start_with_events(
        &wired.tontine,
        workers_config(&args),
        subscriber.map(|s| Arc::new(s) as Arc<dyn sunusav_core::runtime::EventSubscriber>),
    );
    let settle_stream = start_settle_stream(&wired);
    let mut state = AppState::new(wired.tontine.clone(), Arc::new(verifier))
        .with_workers(workers.stats())
        .with_body_limit(args.body_limit);
    if let Some(stream) = &settle_stream {
        state = state.with_settle_stream(stream.stats());
    }
    let mut state = with_tokens(state, &args)?;
    if args.rate_limit_behind_proxy {
        // The console's login form is limited per client: behind a proxy, by the proxy's headers.
        state = state.with_console_login_limit(CONSOLE_LOGIN_LIMIT.behind_proxy());
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let ops_listener = match args.ops_bind {
        Some(ops) => Some(tokio::net::TcpListener::bind(ops).await.with_context(|| format!("binding {ops}"))?),
        None => None,
    };
    let limits = HttpLimits::from_args(&args);
    // One deadline from the signal to exit: open requests get up to half of
    // it, running jobs the rest.
    let deadline = Duration::from_secs(args.shutdown_deadline_secs);
    let (signal, signalled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.send_replace(true);
    });
    let until_signal = |mut signalled: tokio::sync::watch::Receiver<bool>| async move {
        let _ = signalled.wait_for(|s| *s).await;
    };
    let public = public_router(&args, &state)?;
    let finish = |r: Router, console: Option<&AppState>| finish_router(r, console, limits);
    let stopped = if let Some(ops_listener) = ops_listener {
        // The ops routes on the internal listener only.
        let ops_addr = ops_listener.local_addr()?;
        let (public, ops) = (finish(public, Some(&state)), finish(ops_router(state.clone()), None));
        tracing::info!(%addr, %ops_addr, "listening");
        println!("ops listening on http://{ops_addr}");
        println!("listening on http://{addr}");
        let (main, internal) = tokio::join!(
            serve::serve(listener, public, limits, until_signal(signalled.clone()), deadline / 2),
            serve::serve(ops_listener, ops, limits, until_signal(signalled), deadline / 2),
        );
        main.and(internal)
    } else {
        tracing::info!(%addr, "listening");
        println!("listening on http://{addr}");
        let app = finish(public.merge(ops_router(state.clone())), Some(&state));
        serve::serve(listener, app, limits, until_signal(signalled), deadline / 2).await
    };

    let left = deadline.saturating_sub(stopped.signalled_at.elapsed());
    tracing::info!(
        left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        "shutting down: no new jobs, waiting for running ones"
    );
    if let Some(stream) = settle_stream {
        stream.shutdown().await;
    }
    let clean = workers.shutdown(left).await;
    tracing::info!(clean, "workers drained");
    if let Some(redis) = wired.redis {
        let left = deadline.saturating_sub(stopped.signalled_at.elapsed());
        if tokio::time::timeout(left, redis.close()).await.is_err() {
            tracing::warn!("Redis did not close before the shutdown deadline");
        }
    }
    tracing::info!(clean, dropped_connections = stopped.dropped, "stopped");
    Ok(())
}

/// The worker pools' settings, from the configuration.
fn workers_config(args: &ServerArgs) -> WorkersConfig {
    WorkersConfig::default()
        .with_payout_concurrency(args.payout_concurrency)
        .with_webhook_concurrency(args.webhook_concurrency)
        .with_webhook_prefetch(args.webhook_prefetch)
        .with_webhook_batch(args.webhook_batch)
        .with_webhook_linger(Duration::from_millis(args.webhook_linger_ms))
        .with_lease(Duration::from_millis(args.lease_ms.max(100)))
        .with_stalled_interval(Duration::from_millis(args.stalled_interval_ms.max(50)))
        .with_sweep_interval(Duration::from_millis(args.sweep_interval_ms))
        .with_sweep_after(Duration::from_millis(args.sweep_after_ms))
        .with_webhook_retention(args.webhook_retention())
        .with_event_concurrency(args.events_concurrency)
}

/// A listener's router with its layers: a JSON 404 fallback, JSON errors,
/// request ids and the HTTP limits. The console (`/admin/console`, and
/// `/admin/console/` redirected there) is nested after the JSON error layer,
/// which would turn its error pages into JSON.
fn finish_router(router: Router, console: Option<&AppState>, limits: HttpLimits) -> Router {
    let router = router.fallback(not_found).with_json_errors().with_request_ids();
    limits.apply(match console {
        Some(state) => nest_console(router, "/admin/console", state.clone()),
        None => router,
    })
}

/// The admin routes' and the console's tokens (`ADMIN_TOKEN`,
/// `OPERATOR_TOKEN`), and who may call the group API: the admin token is the
/// operator's, and member tokens (issued by `POST
/// /admin/members/{member}/token`) are members'. Without `ADMIN_TOKEN`
/// nobody can authenticate and the group API answers 401.
fn with_tokens(mut state: AppState, args: &ServerArgs) -> anyhow::Result<AppState> {
    if let Some(token) = &args.admin_token {
        let admin = AdminToken::new(token).context("ADMIN_TOKEN")?;
        let secret = args.member_token_secret.as_ref().map_or_else(
            || {
                use sha2::Digest as _;
                let mut derived = sha2::Sha256::new();
                derived.update(b"sunusav example server: member token secret\0");
                derived.update(token.as_bytes());
                hex::encode(derived.finalize()).into_bytes()
            },
            |secret| secret.clone().into_bytes(),
        );
        let members = MemberTokens::new(&secret)
            .context("MEMBER_TOKEN_SECRET")?
            .with_ttl(std::time::Duration::from_secs(args.member_token_ttl_secs));
        state = state
            .with_identity(BearerTokens::operator(admin.clone()).with_members(members.clone()))
            .with_member_tokens(members)
            .with_admin_token(admin);
    } else {
        tracing::warn!("ADMIN_TOKEN is unset: the group API answers 401 to everyone (nobody can authenticate)");
    }
    if let Some(token) = &args.operator_token {
        state = state.with_operator_token(AdminToken::new(token).context("OPERATOR_TOKEN")?);
    }
    Ok(state)
}

/// The webhook, group and admin routes. Each client is rate limited on the
/// group API (its callers are authenticated by bearer tokens, but a refusal
/// costs a request too).
fn public_router(args: &ServerArgs, state: &AppState) -> anyhow::Result<Router> {
    let groups = match args.rate_limit()? {
        Some(limit) => group_router(state.clone()).with_rate_limit(limit),
        None => group_router(state.clone()),
    };
    Ok(Router::new().merge(webhook_router(state.clone())).merge(groups).merge(admin_router(state.clone())))
}

/// Follows the node's stream of settled invoices, when the wiring has one.
fn start_settle_stream(wired: &sunusav_examples::wiring::Wired) -> Option<SettleStream> {
    let events = wired.settle_events.clone()?;
    tracing::info!("following the node's stream of settled invoices");
    Some(SettleStream::start(&wired.tontine, events, SettleStreamConfig::default()))
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
