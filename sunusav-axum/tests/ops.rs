//! Health, metrics, request ids, and the verification layer on its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use common::{Options, SECRET, app, app_with, empty_request, send, sign_hex, signed_webhook, some_event};
use http::{Request, StatusCode};
use serde_json::json;
use sunusav_axum::{VerifiedWebhook, VerifyWebhookLayer, router};
use sunusav_core::conformance::FaultyQueue;
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_core::webhook::{Secret, Verifier};

#[tokio::test]
async fn liveness_answers_pass_without_touching_dependencies() {
    let app = app_with(Options { payouts: Some(Arc::new(FaultyQueue::down("payouts"))), ..Options::default() });
    let reply = send(&app.router, empty_request("GET", "/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/health+json");
    assert_eq!(reply.json(), json!({ "status": "pass" }));
}

#[tokio::test]
async fn the_detailed_health_reports_each_dependency() {
    let app = app();
    let reply = send(&app.router, empty_request("GET", "/health/detailed")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/health+json");
    let body = reply.json();
    assert_eq!(body["status"], "pass");
    for check in ["store:ping", "queue:payouts:ping", "queue:webhooks:ping", "payments:ping"] {
        assert_eq!(body["checks"][check][0]["status"], "pass", "{check}");
        assert_eq!(body["checks"][check][0]["observedUnit"], "ms", "{check}");
    }
}

#[tokio::test]
async fn a_critical_dependency_down_fails_the_detailed_health_with_503() {
    let app = app_with(Options { payouts: Some(Arc::new(FaultyQueue::down("payouts"))), ..Options::default() });
    let reply = send(&app.router, empty_request("GET", "/health/detailed")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = reply.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["queue:payouts:ping"][0]["status"], "fail");
    assert_eq!(body["checks"]["queue:payouts:ping"][0]["output"], "unavailable");
    assert_eq!(body["checks"]["store:ping"][0]["status"], "pass");
}

#[tokio::test]
async fn an_unreachable_node_only_warns() {
    let app = app();
    app.node.set_unreachable(true);
    let reply = send(&app.router, empty_request("GET", "/health/detailed")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "warn");
    assert_eq!(reply.json()["checks"]["payments:ping"][0]["status"], "fail");
}

#[tokio::test]
async fn worker_health_shows_queue_counts_and_pool_figures() {
    let app = app();
    send(&app.router, signed_webhook(&some_event())).await;
    let reply = send(&app.router, empty_request("GET", "/health/workers")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["queues"]["webhooks"]["waiting"], 1);
    assert_eq!(body["queues"]["payouts"]["dead"], 0);
    assert_eq!(body["workers"], json!([]), "no pools configured");

    let workers = Workers::start(&app.tontine, WorkersConfig::default().with_idle_wait(Duration::from_millis(20)));
    let with_pools = router(app.state.clone().with_workers(workers.stats()));
    let body = send(&with_pools, empty_request("GET", "/health/workers")).await.json();
    let pools = body["workers"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    for pool in pools {
        for field in ["queue", "concurrency", "busy", "processed", "failed", "retried", "processed_per_minute"] {
            assert!(!pool[field].is_null(), "{field} in {pool}");
        }
    }
    workers.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_queue_down_fails_worker_health_with_503() {
    let app = app_with(Options { webhooks: Some(Arc::new(FaultyQueue::down("webhooks"))), ..Options::default() });
    let reply = send(&app.router, empty_request("GET", "/health/workers")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["queues"]["webhooks"]["status"], "fail");
}

#[tokio::test]
async fn metrics_expose_every_series_in_prometheus_text() {
    let app = app();
    send(&app.router, signed_webhook(&some_event())).await;
    let unknown = format!("/groups/{}", sunusav_core::GroupId::random());
    assert_eq!(send(&app.router, empty_request("GET", &unknown)).await.status, StatusCode::NOT_FOUND);
    let workers = Workers::start(&app.tontine, WorkersConfig::default().with_idle_wait(Duration::from_millis(20)));
    // Let the webhook pool process the job.
    for _ in 0..100 {
        if app.tontine.webhook_queue().stats().await.unwrap().completed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let with_pools = router(app.state.clone().with_workers(workers.stats()));
    let reply = send(&with_pools, empty_request("GET", "/metrics")).await;
    workers.shutdown(Duration::from_secs(2)).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("text/plain; version=0.0.4"));
    let text = reply.text();
    for series in [
        "# TYPE sunusav_queue_jobs gauge",
        r#"sunusav_queue_jobs{queue="webhooks",state="completed"} 1"#,
        r#"sunusav_queue_jobs{queue="payouts",state="dead"} 0"#,
        r#"sunusav_jobs_processed_total{queue="webhooks",outcome="succeeded"} 1"#,
        r#"sunusav_jobs_retried_total{queue="payouts"} 0"#,
        r#"sunusav_jobs_dead_lettered_total{queue="webhooks"} 0"#,
        "# TYPE sunusav_job_duration_seconds histogram",
        r#"sunusav_job_duration_seconds_bucket{queue="webhooks",le="+Inf"} 1"#,
        r#"sunusav_job_duration_seconds_count{queue="webhooks"} 1"#,
        r#"sunusav_job_wait_seconds_bucket{queue="payouts",le="0.0001"} 0"#,
        r#"sunusav_job_wait_seconds_sum{queue="webhooks"}"#,
        r#"sunusav_webhooks_total{outcome="accepted"} 1"#,
        r#"sunusav_webhooks_total{outcome="invalid_signature"} 0"#,
        r#"sunusav_payouts_total{outcome="succeeded"} 0"#,
        r#"sunusav_settlements_total{outcome="unknown_invoice"} 1"#,
        r#"sunusav_settlements_total{outcome="recorded"} 0"#,
        r#"sunusav_queue_oldest_waiting_seconds{queue="webhooks"} 0"#,
        "sunusav_store_up 1",
        "sunusav_node_up 1",
        r#"sunusav_payouts_open_stale{status="in_flight"} 0"#,
        r#"sunusav_http_requests_total{route="/webhook/lightning",method="POST",status="2xx"} 1"#,
        r#"sunusav_http_requests_total{route="/groups/{id}",method="GET",status="4xx"} 1"#,
        "# TYPE sunusav_http_request_duration_seconds histogram",
        r#"sunusav_http_request_duration_seconds_count{route="/webhook/lightning"} 1"#,
        r#"sunusav_http_request_duration_seconds_bucket{route="/groups/{id}",le="+Inf"} 1"#,
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    let build = format!(r#"sunusav_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&build), "missing {build} in\n{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "sample value of {line}");
    }
}

#[tokio::test]
async fn metrics_show_how_long_the_next_job_has_waited() {
    let app = app();
    send(&app.router, signed_webhook(&some_event())).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let text = send(&app.router, empty_request("GET", "/metrics")).await.text();
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"sunusav_queue_oldest_waiting_seconds{queue="webhooks"} "#))
        .unwrap_or_else(|| panic!("no oldest-waiting series in\n{text}"))
        .parse()
        .unwrap();
    assert!((1.0..60.0).contains(&age), "the webhook job has waited over a second: {age}");
    assert!(text.contains(r#"sunusav_queue_oldest_waiting_seconds{queue="payouts"} 0"#), "{text}");
}

/// Every `sunusav_*` series the alert rules, their tests and the dashboard
/// name is one `/metrics` exposes (histograms by their family name).
#[tokio::test]
async fn the_ops_assets_read_only_series_the_server_exposes() {
    let app = app();
    let workers = Workers::start(&app.tontine, WorkersConfig::default());
    let text =
        send(&router(app.state.clone().with_workers(workers.stats())), empty_request("GET", "/metrics")).await.text();
    workers.shutdown(Duration::from_secs(2)).await;
    let assets = [
        ("alert rules", include_str!("../../ops/prometheus/sunusav.rules.yml")),
        ("alert rule tests", include_str!("../../ops/prometheus/sunusav.rules.test.yml")),
        ("dashboard", include_str!("../../ops/grafana/sunusav.json")),
    ];
    let mut seen = 0;
    for (what, asset) in assets {
        let mut rest = asset;
        while let Some(at) = rest.find("sunusav_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| f.ends_with("_seconds")))
                .unwrap_or(&name);
            assert!(text.contains(&format!("# TYPE {family} ")), "the {what} read {name}, which /metrics lacks");
            seen += 1;
        }
    }
    assert!(seen > 20, "the assets name the series they read ({seen} found)");
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_others_are_replaced() {
    let app = app();
    let cases = [("abc-123", true), ("has space", false), ("", false)];
    for (incoming, kept) in cases {
        let mut builder = Request::get("/health");
        if !incoming.is_empty() {
            builder = builder.header("x-request-id", incoming);
        }
        let reply = send(&app.router, builder.body(Body::empty()).unwrap()).await;
        let id = reply.headers.get("x-request-id").unwrap().to_str().unwrap().to_owned();
        if kept {
            assert_eq!(id, incoming);
        } else {
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "generated: {id}");
        }
    }
    let not_found = send(&app.router, empty_request("GET", "/missing")).await;
    assert!(not_found.headers.contains_key("x-request-id"), "errors carry the id too");
}

#[tokio::test]
async fn the_layer_hands_the_exact_verified_bytes_to_the_handler() {
    let verifier = Arc::new(Verifier::hex_sha256([Secret::from_text(SECRET).unwrap()]).unwrap());
    let echo = post(|hook: VerifiedWebhook, body: axum::body::Bytes| async move {
        assert_eq!(hook.body(), &body, "the marker and the body agree");
        assert_eq!(hook.event_id(), None);
        body
    });
    let app = Router::new().route("/hook", echo.layer(VerifyWebhookLayer::new(verifier).with_limit(64)));
    let body = "exact bytes\r\n with trailing space ";
    let request = Request::post("/hook")
        .header("x-sunu-signature", sign_hex(SECRET, body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!((reply.status, reply.text().as_str()), (StatusCode::OK, body));
}

#[tokio::test]
async fn a_handler_wanting_a_verified_webhook_refuses_unverified_requests() {
    let app = Router::new().route("/hook", post(|_: VerifiedWebhook| async { "never" }));
    let reply = send(&app, Request::post("/hook").body(Body::from("{}")).unwrap()).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNAUTHORIZED, "missing_signature"));
}
