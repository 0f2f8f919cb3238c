//! Shared helpers of the router tests: an app on the in-memory adapters,
//! signing, and a `send` that never tolerates a 500.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::Sha256;
use sunusav_axum::{AdminToken, AppState, BearerTokens, MemberTokens, fixed_clock, router};
use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
use sunusav_core::ports::{ConsumerExt, Queue, QueueConfig};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE, WebhookJob};
use sunusav_core::webhook::{Secret, Verifier};
use tower::ServiceExt as _;

/// The hex scheme's secret.
pub const SECRET: &str = "test-webhook-secret-0123456789";
/// A second secret (rotation).
pub const OLD_SECRET: &str = "old-webhook-secret-9876543210";
/// The admin token.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0001";
/// The secret member tokens are signed with.
pub const MEMBER_TOKEN_SECRET: &str = "member-token-secret-for-tests-0123456789";
/// A header that keeps [`send`] from adding default credentials.
pub const ANONYMOUS: &str = "x-test-anonymous";

/// The member tokens of the test apps.
pub fn member_tokens() -> MemberTokens {
    MemberTokens::new(MEMBER_TOKEN_SECRET.as_bytes()).unwrap()
}

/// `Bearer <token>` of a member token for `member` (a UUID).
pub fn member_bearer(member: &str) -> String {
    format!("Bearer {}", member_tokens().issue(member.parse().unwrap()).token)
}

/// `request` with member `member`'s token.
pub fn as_member(mut request: Request<Body>, member: &str) -> Request<Body> {
    request.headers_mut().insert("authorization", member_bearer(member).parse().unwrap());
    request
}

/// `Bearer <the operator's token>` (the admin token).
pub fn operator_bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// The fixed "now" of the Standard Webhooks apps.
pub const NOW: i64 = 1_700_000_000;
/// The Standard Webhooks key bytes.
pub const SW_KEY: [u8; 32] = [7; 32];

/// An app and handles on its adapters.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub tontine: Tontine,
    pub node: Arc<SimulatedNode>,
    pub store: Arc<MemoryStore>,
}

/// Options of [`app_with`].
#[derive(Default)]
pub struct Options {
    pub admin: bool,
    pub standard_webhooks: bool,
    pub body_limit: Option<usize>,
    pub payouts: Option<Arc<dyn Queue>>,
    pub webhooks: Option<Arc<dyn Queue>>,
    /// No [`sunusav_axum::Authenticate`] in the state.
    pub no_identity: bool,
}

/// The default app: hex scheme (two secrets), no admin token.
pub fn app() -> TestApp {
    app_with(Options::default())
}

/// An app whose state has no [`sunusav_axum::Authenticate`].
pub fn app_without_identity() -> TestApp {
    app_with(Options { no_identity: true, ..Options::default() })
}

pub fn app_with(options: Options) -> TestApp {
    let store = Arc::new(MemoryStore::new());
    let node = Arc::new(SimulatedNode::new());
    let payouts = options.payouts.unwrap_or_else(|| Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default())));
    let webhooks =
        options.webhooks.unwrap_or_else(|| Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default())));
    let tontine = Tontine::new(store.clone(), node.clone(), payouts, webhooks);
    let verifier = if options.standard_webhooks {
        let encoded = format!("whsec_{}", STANDARD.encode(SW_KEY));
        Verifier::standard_webhooks([Secret::from_standard_webhooks(&encoded).unwrap()]).unwrap()
    } else {
        Verifier::hex_sha256([Secret::from_text(SECRET).unwrap(), Secret::from_text(OLD_SECRET).unwrap()]).unwrap()
    };
    let mut state = AppState::new(tontine.clone(), Arc::new(verifier))
        .with_clock(fixed_clock(NOW))
        .with_check_timeout(Duration::from_millis(500));
    if !options.no_identity {
        state = state
            .with_identity(BearerTokens::operator(AdminToken::new(ADMIN_TOKEN).unwrap()).with_members(member_tokens()))
            .with_member_tokens(member_tokens());
    }
    if options.admin {
        state = state.with_admin_token(AdminToken::new(ADMIN_TOKEN).unwrap());
    }
    if let Some(limit) = options.body_limit {
        state = state.with_body_limit(limit);
    }
    TestApp { router: router(state.clone()), state, tontine, node, store }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `secret`.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `v1,<base64>` of the Standard Webhooks content `id.ts.body`.
pub fn sign_standard(id: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&SW_KEY).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A settled-invoice event body.
pub fn event_body(payment_hash: &str, amount_msat: u64) -> String {
    format!(r#"{{"payment_hash":"{payment_hash}","status":"settled","amount_msat":{amount_msat}}}"#)
}

/// A body for a payment hash nobody issued.
pub fn some_event() -> String {
    event_body(&"ab".repeat(32), 1_000)
}

/// A JSON POST of `body` to the webhook, signed with [`SECRET`].
pub fn signed_webhook(body: &str) -> Request<Body> {
    Request::post("/webhook/lightning")
        .header("content-type", "application/json")
        .header("x-sunu-signature", sign_hex(SECRET, body.as_bytes()))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// Adds the credentials a group API request is expected to carry unless it
/// has some or is marked [`ANONYMOUS`], so that the tests of other topics
/// read as before: a member's own token for their invoices and payout
/// destination (the member named in the path or the body), the operator's
/// for the rest of the group API. The rules themselves are tested with
/// explicit credentials (`tests/authorization.rs`).
pub async fn with_default_credentials(request: Request<Body>) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    if parts.headers.contains_key("authorization") || parts.headers.remove(ANONYMOUS).is_some() {
        return Request::from_parts(parts, body);
    }
    let bytes = body.collect().await.unwrap().to_bytes();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let bearer = match segments.as_slice() {
        ["members", member, "payout-destination"] => Some(member_bearer(member)),
        ["groups", _, "invoices"] => {
            let member =
                serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["member"].as_str().map(str::to_owned));
            match member.filter(|m| m.parse::<uuid::Uuid>().is_ok()) {
                Some(m) => Some(member_bearer(&m)),
                None => Some(operator_bearer()),
            }
        }
        ["groups", ..] => Some(operator_bearer()),
        _ => None,
    };
    if let Some(b) = bearer {
        parts.headers.insert("authorization", b.parse().unwrap());
    }
    Request::from_parts(parts, Body::from(bytes))
}

/// Sends one request through the router (with [`with_default_credentials`]);
/// panics on any 5xx but 503.
pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let request = with_default_credentials(request).await;
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "unexpected {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let health = headers.get("content-type").is_some_and(|v| v == "application/health+json");
    if (status.is_client_error() || status.is_server_error()) && !health {
        let v: Value = serde_json::from_slice(&body).expect("error bodies are JSON");
        assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "error shape: {v}");
    }
    Reply { status, headers, body }
}

/// A JSON request.
pub fn json_request(method: &str, uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A request without a body.
pub fn empty_request(method: &str, uri: &str) -> Request<Body> {
    Request::builder().method(method).uri(uri).body(Body::empty()).unwrap()
}

/// Runs every due webhook job the way the webhook worker does.
pub async fn settle_webhooks(tontine: &Tontine) -> usize {
    let mut n = 0;
    while let Some(job) = tontine.webhook_queue().reserve(Duration::from_secs(30)).await.unwrap() {
        let payload: WebhookJob = serde_json::from_slice(&job.payload).unwrap();
        tontine.settle(&payload).await.unwrap();
        tontine.webhook_queue().ack(&job.id, &job.token).await.unwrap();
        n += 1;
    }
    n
}

/// Gives each member the simulated node's payee as keysend destination.
pub async fn set_destinations(router: &Router, members: &[sunusav_core::MemberId]) {
    let node = SimulatedNode::payee_node().to_hex();
    for m in members {
        let reply = send(
            router,
            json_request("PUT", &format!("/members/{m}/payout-destination"), &serde_json::json!({ "keysend": node })),
        )
        .await;
        assert_eq!(reply.status, http::StatusCode::OK, "{}", reply.text());
    }
}
