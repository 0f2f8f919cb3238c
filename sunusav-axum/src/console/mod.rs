//! The operations console: server-rendered HTML pages over the queues, the
//! delivery log, groups and their payouts, money held for members and the
//! audit log, for an operator on call.
//!
//! [`console_router`] is a `Router` with its state applied and no fallback;
//! a host nests it under any prefix (the example server: `/admin/console`).
//! [`nest_console`] does both and answers the root with a trailing slash
//! (`/admin/console/`, which axum's nesting leaves unrouted) with a 308 to
//! the root without it.
//! Links, the login cookie's path and the live-update URL follow the prefix
//! the request came through.
//!
//! ## Roles
//!
//! The state's admin token ([`AppState::with_admin_token`]) is the admin
//! role: every page, with the action buttons. Its operator token
//! ([`AppState::with_operator_token`]) is the read-only operator role: the
//! same pages without buttons; an action it posts answers 403 `forbidden`
//! (and is written to the audit log as refused). Without credentials a page
//! answers 401 `unauthorized` with the login form.
//!
//! Credentials are `Authorization: Bearer <token>` (scripts, tests), or the
//! cookie the login form sets (`HttpOnly`, `SameSite=Strict`, the token
//! hex-encoded; `Secure` when the request came over HTTPS or says so in
//! `X-Forwarded-Proto`). A POST authenticated by the cookie must also carry
//! the page's form token (`csrf`), derived from the token; a POST with the
//! header needs none (a browser never adds it by itself).
//!
//! The login form (`POST /login`) is rate limited per client, by default 5
//! a minute in bursts of 10 ([`AppState::with_console_login_limit`]): past
//! it, 429 `rate_limited` with `retry-after` and a page that says so. It
//! needs the client's address (see [`crate::rate_limit`]).
//!
//! ## Pages
//!
//! | route | shows |
//! | --- | --- |
//! | `GET /` | each queue's counts by state, oldest waiting job's age, worker pools (busy / concurrency, rates); live through `GET /events` (server-sent events, every second) |
//! | `GET /jobs?queue=&state=&after=&q=` | jobs by state, a page at a time (the queue's cursor); `q`: a job id, a group id, a member id (the jobs of their payouts, refunds and the deliveries paying their invoices), a payment hash (its invoice's payout and the deliveries naming it), all by the store's indexes, or free text (a bounded scan that says where it stopped) |
//! | `GET /jobs/{queue}/{id}` | a job and its error history (each failed attempt's error, newest first), with retry / promote / remove |
//! | `GET /deliveries?outcome=&payment_hash=&after=` | the webhook delivery log, with replay |
//! | `GET /groups/{id}` (`/groups?id=`) | a group's cycles, contributions, ledger and payout attempts (payment hash, route, status, their jobs), with a dead payout's retry |
//! | `GET /unapplied?balances_after=&refunds_after=` | balances held for members, with release; refunds released (each by cursor) |
//! | `GET /audit?before=` | the audit log, newest first |
//!
//! Actions are `POST`s that answer 303 to the page they came from:
//! `/jobs/{queue}/{id}/retry|promote|remove`, `/queues/{queue}/pause|resume|retry-dead`,
//! `/jobs/bulk` (retry or remove the jobs of a search result),
//! `/deliveries/{key}/replay`, `/payouts/{key}/retry`,
//! `/unapplied/{group}/{member}/release`. Each is written to the audit log.
//! Every list pages by cursor, never by offset. Every value that came from a
//! webhook or a node is HTML-escaped (maud escapes whatever it renders).

mod actions;
mod auth;
mod events;
mod layout;
mod pages;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{any, get, post};
use http::Uri;

use crate::state::AppState;

/// The console's routes (see the module docs), with the state applied and
/// no fallback; empty when the state has neither an admin nor an operator
/// token.
pub fn console_router(state: AppState) -> Router {
    if state.inner.admin_token.is_none() && state.inner.operator_token.is_none() {
        return Router::new();
    }
    let login = state
        .inner
        .console_login_limit
        .apply_with(Router::new().route("/login", post(auth::login)).with_state(state.clone()), auth::login_refused);
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/login", get(auth::login_page))
        .route("/logout", post(auth::logout))
        .route("/events", get(events::stream))
        .route("/jobs", get(pages::jobs::list))
        .route("/jobs/bulk", post(actions::bulk))
        .route("/jobs/{queue}/{id}", get(pages::jobs::detail))
        .route("/jobs/{queue}/{id}/{action}", post(actions::job))
        .route("/queues/{queue}/{action}", post(actions::queue_action))
        .route("/deliveries", get(pages::deliveries::list))
        .route("/deliveries/{key}/replay", post(actions::replay))
        .route("/groups", get(pages::groups::lookup))
        .route("/groups/{id}", get(pages::groups::page_of))
        .route("/payouts/{key}/retry", post(actions::payout_retry))
        .route("/unapplied", get(pages::unapplied::page_of))
        .route("/unapplied/{group}/{member}/release", post(actions::release))
        .route("/audit", get(pages::audit::page_of))
        .with_state(state)
        .merge(login)
}

/// `router` with the console ([`console_router`]) nested at `prefix` (e.g.
/// `/admin/console`; a trailing slash is ignored), and `prefix/` answering
/// 308 Permanent Redirect to `prefix` (the query kept): the console's root
/// works with or without the slash. `router` unchanged when the state has
/// neither an admin nor an operator token.
///
/// # Panics
/// As [`Router::nest`]: when `prefix` is empty, `/`, or does not start with `/`.
pub fn nest_console(router: Router, prefix: &str, state: AppState) -> Router {
    if state.inner.admin_token.is_none() && state.inner.operator_token.is_none() {
        return router;
    }
    let root = prefix.trim_end_matches('/').to_owned();
    let slash = format!("{root}/");
    let redirect = move |uri: Uri| {
        let to = match uri.query() {
            Some(q) => format!("{root}?{q}"),
            None => root.clone(),
        };
        async move { Redirect::permanent(&to) }
    };
    router.nest(prefix.trim_end_matches('/'), console_router(state)).route(&slash, any(redirect))
}
