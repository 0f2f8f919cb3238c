//! # sunusav-axum
//!
//! The HTTP adapter of sunusav, on axum 0.8: a published tower middleware that
//! verifies signed webhooks, the Lightning webhook route, a small group API,
//! health checks, Prometheus metrics and queue admin routes.
//!
//! Every error is JSON, `{"error": {"code": "...", "message": "..."}}`, with a
//! stable code: 401 `missing_signature` / `malformed_signature` /
//! `invalid_signature` / `timestamp_out_of_tolerance` / `invalid_timestamp` /
//! `unauthorized` / `token_expired`, 403 for a caller the group API's rules
//! refuse (`organizer_only`, `members_only`, `self_only`, `beneficiary_only`,
//! `create_as_organizer`), 413 `body_too_large`, 400 `invalid_json` / `invalid_event` /
//! `invalid_path` / `invalid_query` / `invalid_key`, 415
//! `unsupported_media_type`, 404 `not_found`, 405 `method_not_allowed`, 409
//! for a domain conflict (the rule's code, e.g. `not_a_member`,
//! `invalid_transition`, `event_conflict` for a recorded webhook event id with
//! another body, `not_dead`, `body_expired`), 422 for invalid input
//! (`invalid_input`, `too_few_members`, …), 503 `unavailable` when a dependency
//! is down.
//!
//! ## Routes
//!
//! | route | answers |
//! | --- | --- |
//! | `POST /webhook/lightning` | 202 `accepted` (also a redelivery of a delivery whose job died: it runs again), 200 `duplicate` (replay, no second effect), 409 `event_conflict` (a recorded event id with another body: kept, not acted on), 401, 413, 400, 415, 503 |
//! | `POST /groups` | 201 group; 422 invalid input |
//! | `GET /groups/{id}` | group state and its payouts |
//! | `GET /groups/{id}/order` | the payout order known so far; a drawn order's proof |
//! | `POST /groups/{id}/bids` | 201 bid on an auctioned cycle; 409/422 with the rule's code |
//! | `POST /groups/{id}/start`, `/cancel` | group; 409 `invalid_transition` |
//! | `POST /groups/{id}/invoices` | 201 invoice; 409 with the rule's code |
//! | `GET /health` | liveness, `application/health+json` |
//! | `GET /health/detailed` | per-dependency checks; 503 `fail` when store or a queue fails |
//! | `GET /health/workers` | per-queue counts, per-pool figures |
//! | `GET /metrics` | Prometheus text 0.0.4 |
//! | `/admin/queues/{queue}/…` | counts, jobs, job detail/remove/retry/promote, retry-dead, pause, resume; only with an admin token, 401 `unauthorized` otherwise |
//! | `POST /admin/payouts/{key}/retry` | a dead payout retried by its record: 202 `retrying` (new generation), 200 `already_retried`, 404, 409 `not_dead` |
//! | `POST /admin/webhooks/{key}/replay` | a delivery replayed by its record: 202 `replaying` (new generation), 200 `pending`, 404, 409 `body_expired` |
//! | `GET /admin/webhooks` | the delivery log: `outcome` (or `pending`), `since` (unix ms), `payment_hash`, `limit`, `after`; 400 `invalid_query` |
//! | `GET /admin/unapplied`, `POST /admin/groups/{id}/members/{member}/release` | balances held and refunds; a member's balance released |
//!
//! ## Embedding: routers in parts
//!
//! [`router`] is the all-in-one: every route, a JSON 404 fallback, JSON error
//! bodies and request ids. A host service with routes of its own uses the
//! parts instead, each a `Router` with its state applied and **no fallback**,
//! so that merging or nesting them never panics and the host's own fallback
//! and `/health` stay its own:
//!
//! | part | routes |
//! | --- | --- |
//! | [`webhook_router`] | `POST /webhook/lightning` (verification layer included) |
//! | [`group_router`] | `/groups…`, `/members/…`: the caller from the state's [`Authenticate`] or a [`Caller`](sunusav_core::Caller) in the request's extensions ([`identity`]) |
//! | [`ops_router`] | `/health`, `/health/detailed`, `/health/workers`, `/metrics` (e.g. on an internal port) |
//! | [`admin_router`] | `/admin/…` behind the state's admin token; empty without one |
//! | [`console_router`] | the operations console's HTML pages (nest it, e.g. at `/admin/console`, or let [`nest_console`] nest it and redirect the root's trailing slash): admin and read-only operator roles; empty without a token |
//!
//! **Metrics in the host's registry.** With the feature `metrics-facade`,
//! every series of `/metrics` also goes through the `metrics` facade to the
//! recorder the host installed, same names and labels: counters and
//! histograms when they happen, the gauges when the host calls
//! [`metrics::publish`] (or from [`metrics::spawn_publisher`], on an
//! interval). See [`metrics`].
//!
//! The layers of the all-in-one are opt-in methods of [`RouterLayers`]:
//! `with_json_errors()`, `with_request_ids()`, and `with_request_timeout(d)`
//! (408 `request_timeout`).
//!
//! ```
//! # use std::sync::Arc;
//! # use sunusav_axum::AppState;
//! # use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
//! # use sunusav_core::ports::QueueConfig;
//! # use sunusav_core::services::Tontine;
//! # use sunusav_core::webhook::{Secret, Verifier};
//! # let tontine = Tontine::new(
//! #     Arc::new(MemoryStore::new()),
//! #     Arc::new(SimulatedNode::new()),
//! #     Arc::new(MemoryQueue::new("payouts", QueueConfig::default())),
//! #     Arc::new(MemoryQueue::new("webhooks", QueueConfig::default())),
//! # );
//! # let verifier = Verifier::hex_sha256([Secret::from_text("a-long-enough-secret").unwrap()]).unwrap();
//! # let state = AppState::new(tontine, Arc::new(verifier));
//! use axum::Router;
//! use axum::routing::get;
//! use sunusav_axum::{RouterLayers as _, group_router, ops_router, webhook_router};
//!
//! let host: Router = Router::new()
//!     .route("/health", get(|| async { "the host's own" }))
//!     .nest("/tontine", group_router(state.clone()).with_json_errors())
//!     .nest("/ops/tontine", ops_router(state.clone()))
//!     .merge(webhook_router(state))
//!     .fallback(|| async { "the host's fallback" });
//! # let _ = host;
//! ```
//!
//! ## Layout
//!
//! - [`verify`]: [`VerifyWebhookLayer`] / [`VerifyWebhook`] (buffer with a limit,
//!   verify, hand on) and the [`VerifiedWebhook`] marker and extractor.
//! - [`routes`]: [`router`] and its parts ([`webhook_router`], [`group_router`],
//!   [`ops_router`], [`admin_router`]); the webhook, group, health, metrics and
//!   admin handlers.
//! - [`layers`]: [`RouterLayers`], the opt-in layers (JSON errors, request ids,
//!   request timeout).
//! - [`console`]: [`console_router`], the server-rendered operations console
//!   (maud) with its login, roles, live counts and audited actions.
//! - [`identity`]: who calls the group API: [`Authenticate`], [`Identity`],
//!   [`BearerTokens`], [`MemberTokens`].
//! - [`state`]: [`AppState`]. [`error`]: [`ApiError`]. [`extract`]: extractors
//!   with JSON rejections. [`auth`]: [`AdminToken`]. [`metrics`]: [`HttpMetrics`],
//!   and the facade's [`metrics::publish`] / [`metrics::spawn_publisher`].
//!   [`request_id`]: request ids and spans. [`clock`]: the injectable [`Clock`].
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use sunusav_axum::{AdminToken, AppState, router};
//! use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
//! use sunusav_core::ports::QueueConfig;
//! use sunusav_core::services::Tontine;
//! use sunusav_core::webhook::{Secret, Verifier};
//!
//! let tontine = Tontine::new(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(SimulatedNode::new()),
//!     Arc::new(MemoryQueue::new("payouts", QueueConfig::default())),
//!     Arc::new(MemoryQueue::new("webhooks", QueueConfig::default())),
//! );
//! let verifier = Verifier::hex_sha256([Secret::from_text("a-long-enough-secret").unwrap()]).unwrap();
//! let state = AppState::new(tontine, Arc::new(verifier))
//!     .with_admin_token(AdminToken::new("an-admin-token-of-length").unwrap());
//! let app: axum::Router = router(state);
//! # let _ = app;
//! ```

// Every dependency is used (tests excepted: they see the dev-dependencies
// too); scripts/unused-deps.sh checks the binaries.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod audit;
pub mod auth;
pub mod clock;
pub mod console;
pub mod error;
pub mod extract;
pub mod identity;
pub mod layers;
pub mod metrics;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod verify;

pub use auth::AdminToken;
pub use clock::{Clock, fixed_clock, system_clock};
pub use console::{console_router, nest_console};
pub use error::ApiError;
pub use identity::{Authenticate, BearerTokens, Identity, MemberTokens};
pub use layers::RouterLayers;
pub use metrics::HttpMetrics;
pub use routes::{admin_router, group_router, ops_router, router, webhook_router};
pub use state::{AppState, CONSOLE_LOGIN_LIMIT};
pub use verify::{DEFAULT_BODY_LIMIT, VerifiedWebhook, VerifyWebhook, VerifyWebhookLayer};
