//! Embedding: the part routers merged and nested into a host router that has
//! its own `/health` and fallback; and the opt-in layers on a part.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{ADMIN_TOKEN, Options, app_with, empty_request, json_request, signed_webhook, some_event};
use http::{StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use sunusav_axum::{RouterLayers as _, admin_router, group_router, ops_router, webhook_router};
use tower::ServiceExt as _;

/// The host's own authentication, in front of the group API only: it tells
/// sunusav who is calling by a [`Caller`](sunusav_core::Caller) in the
/// request's extensions (its user `u1` is an operator here).
async fn host_auth(mut request: Request, next: Next) -> Response {
    if request.headers().get("x-host-user").is_some() {
        request.extensions_mut().insert(sunusav_core::Caller::Operator);
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "the host says no").into_response()
    }
}

/// Sends a request to any router; `(status, body as text)`.
async fn call(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn with_header(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

#[tokio::test]
async fn every_part_answers_inside_a_host_router_with_its_own_health_and_fallback() {
    // Arrange: a host with its own `/health` and fallback; the parts merged
    // (webhooks, admin) or nested (the group API behind the host's auth, ops).
    let app = app_with(Options { admin: true, ..Options::default() });
    let state = app.state.clone();
    let host: Router = Router::new()
        .route("/health", get(|| async { "host health" }))
        .nest("/tontine", group_router(state.clone()).route_layer(from_fn(host_auth)))
        .nest("/internal", ops_router(state.clone()))
        .merge(webhook_router(state.clone()))
        .merge(admin_router(state))
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "host fallback") });

    // The host's own routes are still the host's.
    assert_eq!(call(&host, empty_request("GET", "/health")).await, (StatusCode::OK, "host health".into()));
    for path in ["/nope", "/tontine/nope", "/internal/nope", "/groups", "/metrics"] {
        let (status, body) = call(&host, empty_request("GET", path)).await;
        assert_eq!((status, body.as_str()), (StatusCode::IM_A_TEAPOT, "host fallback"), "{path}");
    }

    // The group API, nested, behind the host's authentication.
    let members = [uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()];
    let create = json!({ "members": members, "contribution_msat": 10_000 });
    let refused = call(&host, json_request("POST", "/tontine/groups", &create)).await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN, "the host's auth is in front: {}", refused.1);
    let created = call(&host, with_header(json_request("POST", "/tontine/groups", &create), "x-host-user", "u1")).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let id = serde_json::from_str::<serde_json::Value>(&created.1).unwrap()["id"].as_str().unwrap().to_owned();
    let shown =
        call(&host, with_header(empty_request("GET", &format!("/tontine/groups/{id}")), "x-host-user", "u1")).await;
    assert_eq!(shown.0, StatusCode::OK, "{}", shown.1);

    // Ops, nested.
    for path in ["/internal/health", "/internal/health/detailed", "/internal/health/workers", "/internal/metrics"] {
        let (status, body) = call(&host, empty_request("GET", path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, metrics) = call(&host, empty_request("GET", "/internal/metrics")).await;
    assert!(metrics.contains("sunusav_queue_up"), "{metrics}");

    // The webhook, merged, verified.
    let (status, body) = call(&host, signed_webhook(&some_event())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let unsigned = Request::post("/webhook/lightning")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(some_event()))
        .unwrap();
    let (status, body) = call(&host, unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("missing_signature"), "{body}");

    // Admin, merged, behind its token.
    let counts = || empty_request("GET", "/admin/queues/payouts/counts");
    assert_eq!(call(&host, counts()).await.0, StatusCode::UNAUTHORIZED);
    let authorized = with_header(counts(), "authorization", &format!("Bearer {ADMIN_TOKEN}"));
    let (status, body) = call(&host, authorized).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_parts_merge_side_by_side_at_the_root_of_a_host_with_a_fallback() {
    let app = app_with(Options { admin: true, ..Options::default() });
    let s = app.state.clone();
    let host: Router = Router::new()
        .route("/", get(|| async { "home" }))
        .merge(webhook_router(s.clone()))
        .merge(group_router(s.clone()))
        .merge(ops_router(s.clone()))
        .merge(admin_router(s))
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "host fallback") });

    assert_eq!(call(&host, empty_request("GET", "/")).await.1, "home");
    assert_eq!(call(&host, empty_request("GET", "/health")).await.0, StatusCode::OK);
    assert_eq!(call(&host, empty_request("GET", "/unknown")).await.0, StatusCode::IM_A_TEAPOT);
    assert_eq!(call(&host, signed_webhook(&some_event())).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn admin_router_is_empty_without_an_admin_token() {
    let app = app_with(Options::default());
    let host: Router =
        Router::new().merge(admin_router(app.state.clone())).fallback(|| async { StatusCode::IM_A_TEAPOT });
    let (status, _) = call(&host, empty_request("GET", "/admin/queues/payouts/counts")).await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn the_opt_in_layers_give_a_part_json_errors_and_request_ids() {
    let app = app_with(Options::default());
    let bare = group_router(app.state.clone());
    let layered = group_router(app.state.clone()).with_json_errors().with_request_ids();

    // Without the layers, axum's own 405 is plain text and has no request id.
    let response = bare.clone().oneshot(empty_request("DELETE", "/groups")).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get("x-request-id").is_none());

    // With them, the same 405 is a JSON error with a code, and has an id.
    let response = layered.oneshot(empty_request("DELETE", "/groups")).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get("x-request-id").is_some());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn a_request_not_answered_in_time_gets_408_request_timeout_as_json() {
    // A handler slower than the timeout, and a fast one.
    let slow: Router = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/fast", get(|| async { "ok" }))
        .with_request_timeout(Duration::from_millis(50));

    let (status, body) = call(&slow, empty_request("GET", "/slow")).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    assert_eq!(call(&slow, empty_request("GET", "/fast")).await, (StatusCode::OK, "ok".into()));
}
