//! [`AppState`]: what every route needs, cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use sunusav_core::runtime::WorkerStats;
use sunusav_core::services::Tontine;
use sunusav_core::webhook::Verifier;

use crate::auth::AdminToken;
use crate::clock::{Clock, system_clock};
use crate::identity::{Authenticate, MemberTokens};
use crate::metrics::HttpMetrics;
use crate::verify::DEFAULT_BODY_LIMIT;

/// The state of the router.
///
/// Built with [`AppState::new`] and the `with_*` methods; everything else has
/// a default: no admin routes, no worker pools, a 256 KiB webhook body limit,
/// the system clock and a 2 s timeout on each health check. Clones share
/// one copy: axum clones the state for every request.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

/// The fields of [`AppState`], behind one `Arc`.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) tontine: Tontine,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) admin_token: Option<AdminToken>,
    pub(crate) operator_token: Option<AdminToken>,
    pub(crate) identity: Option<Arc<dyn Authenticate>>,
    pub(crate) member_tokens: Option<MemberTokens>,
    pub(crate) workers: WorkerStats,
    pub(crate) metrics: Arc<HttpMetrics>,
    pub(crate) body_limit: usize,
    pub(crate) clock: Clock,
    pub(crate) check_timeout: Duration,
    pub(crate) settle_stream: Option<Arc<sunusav_core::runtime::SettleStreamStats>>,
    pub(crate) console_login_limit: crate::rate_limit::RateLimit,
}

/// The console login form's default limit per client: 5 a minute, bursts of 10.
pub const CONSOLE_LOGIN_LIMIT: crate::rate_limit::RateLimit = match crate::rate_limit::RateLimit::per_minute(5, 10) {
    Ok(limit) => limit,
    Err(_) => panic!("5 a minute, bursts of 10, is a valid limit"),
};

impl AppState {
    /// The application and the webhook verifier.
    pub fn new(tontine: Tontine, verifier: Arc<Verifier>) -> Self {
        let inner = Shared {
            tontine,
            verifier,
            admin_token: None,
            operator_token: None,
            identity: None,
            member_tokens: None,
            workers: WorkerStats::default(),
            metrics: Arc::new(HttpMetrics::default()),
            body_limit: DEFAULT_BODY_LIMIT,
            clock: system_clock(),
            check_timeout: Duration::from_secs(2),
            settle_stream: None,
            console_login_limit: CONSOLE_LOGIN_LIMIT,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The fields, to change before the state is shared.
    fn fields(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.inner)
    }

    /// Mounts the admin routes behind this bearer token (without one, they are not mounted).
    #[must_use]
    pub fn with_admin_token(mut self, token: AdminToken) -> Self {
        self.fields().admin_token = Some(token);
        self
    }

    /// Opens the operations console ([`console_router`](crate::console_router))
    /// read-only to this bearer token (the operator role: pages without
    /// action buttons; actions answer 403 `forbidden`). The admin token opens
    /// it too, with the actions.
    #[must_use]
    pub fn with_operator_token(mut self, token: AdminToken) -> Self {
        self.fields().operator_token = Some(token);
        self
    }

    /// Tells the group API who is calling ([`Authenticate`], e.g.
    /// [`BearerTokens`](crate::identity::BearerTokens)). Without one, the
    /// group API answers 401 `unauthorized` to every request that carries no
    /// [`Caller`](sunusav_core::Caller) set by the host's own middleware.
    #[must_use]
    pub fn with_identity(mut self, identity: impl Authenticate) -> Self {
        self.fields().identity = Some(Arc::new(identity));
        self
    }

    /// Issues member tokens with these keys from `POST
    /// /admin/members/{member}/token` (an admin route). The state's
    /// [`Authenticate`] must accept them (e.g. [`BearerTokens::with_members`](crate::identity::BearerTokens::with_members)
    /// with the same [`MemberTokens`]).
    #[must_use]
    pub fn with_member_tokens(mut self, tokens: MemberTokens) -> Self {
        self.fields().member_tokens = Some(tokens);
        self
    }

    /// Limits the console's login form (`POST /login`) per client to `limit`
    /// (default [`CONSOLE_LOGIN_LIMIT`]: 5 a minute, bursts of 10; use
    /// [`RateLimit::behind_proxy`](crate::rate_limit::RateLimit::behind_proxy)
    /// behind a reverse proxy). Past it the form answers 429 `rate_limited`
    /// with `retry-after`. The limit needs the client's address (the server's
    /// `ConnectInfo`, or the proxy's headers).
    #[must_use]
    pub fn with_console_login_limit(mut self, limit: crate::rate_limit::RateLimit) -> Self {
        self.fields().console_login_limit = limit;
        self
    }

    /// Reports these worker pools in `/health/workers` and `/metrics`.
    #[must_use]
    pub fn with_workers(mut self, workers: WorkerStats) -> Self {
        self.fields().workers = workers;
        self
    }

    /// Refuses webhook bodies over `limit` bytes.
    #[must_use]
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.fields().body_limit = limit;
        self
    }

    /// Reads the time (for webhook timestamps) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.fields().clock = clock;
        self
    }

    /// Gives each dependency at most `timeout` to answer a health check.
    #[must_use]
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.fields().check_timeout = timeout;
        self
    }

    /// Reports this settle-stream task in `/metrics`
    /// (`sunusav_settle_stream_connected`, `_received_total`, `_cuts_total`).
    #[must_use]
    pub fn with_settle_stream(mut self, stats: Arc<sunusav_core::runtime::SettleStreamStats>) -> Self {
        self.fields().settle_stream = Some(stats);
        self
    }

    /// The application.
    pub fn tontine(&self) -> &Tontine {
        &self.inner.tontine
    }

    /// The HTTP counters (webhook outcomes).
    pub fn metrics(&self) -> &Arc<HttpMetrics> {
        &self.inner.metrics
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("verifier", &self.inner.verifier)
            .field("admin_routes", &self.inner.admin_token.is_some())
            .field("operator_role", &self.inner.operator_token.is_some())
            .field("identity", &self.inner.identity.is_some())
            .field("member_tokens", &self.inner.member_tokens.is_some())
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}
