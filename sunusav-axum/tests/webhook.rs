//! `POST /webhook/lightning`: signatures, limits, parsing, idempotency, outages.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use common::{
    NOW, OLD_SECRET, Options, SECRET, app, app_with, send, sign_hex, sign_standard, signed_webhook, some_event,
};
use http::{Request, StatusCode};
use serde_json::json;
use sunusav_core::IdempotencyKey;
use sunusav_core::conformance::FaultyQueue;
use sunusav_core::ports::QueueAdmin as _;

/// Header pairs of one case.
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn webhook(headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/webhook/lightning");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}

#[tokio::test]
async fn a_validly_signed_event_is_accepted_with_202() {
    let app = app();
    let reply = send(&app.router, signed_webhook(&some_event())).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.json(), json!({ "status": "accepted" }));
    let stats = app.tontine.webhook_queue().stats().await.unwrap();
    assert_eq!(stats.waiting, 1, "the event is queued");
}

#[tokio::test]
async fn a_replayed_event_answers_200_duplicate_with_no_second_effect() {
    let app = app();
    let body = some_event();
    assert_eq!(send(&app.router, signed_webhook(&body)).await.status, StatusCode::ACCEPTED);
    common::settle_webhooks(&app.tontine).await;
    let replay = send(&app.router, signed_webhook(&body)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json(), json!({ "status": "duplicate" }));
    let stats = app.tontine.webhook_queue().stats().await.unwrap();
    assert_eq!((stats.waiting, stats.completed), (0, 1), "nothing new was queued");
}

#[tokio::test]
async fn a_replay_before_processing_is_a_duplicate_and_queues_nothing_new() {
    let app = app();
    let body = some_event();
    send(&app.router, signed_webhook(&body)).await;
    let replay = send(&app.router, signed_webhook(&body)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(app.tontine.webhook_queue().stats().await.unwrap().waiting, 1);
}

#[tokio::test]
async fn the_same_event_sent_concurrently_is_accepted_once() {
    let app = app();
    let body = some_event();
    let replies = futures_util::future::join_all((0..16).map(|_| send(&app.router, signed_webhook(&body)))).await;
    let accepted = replies.iter().filter(|r| r.status == StatusCode::ACCEPTED).count();
    let duplicates = replies.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!((accepted, duplicates), (1, 15));
    assert_eq!(app.tontine.webhook_queue().stats().await.unwrap().waiting, 1);
}

#[tokio::test]
async fn bad_signatures_answer_401_with_their_code() {
    let body = some_event();
    let valid = sign_hex(SECRET, body.as_bytes());
    let other_body = sign_hex(SECRET, b"{}");
    let wrong_secret = sign_hex("a-completely-different-secret", body.as_bytes());
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("no signature header", None, "missing_signature"),
        ("no sha256= prefix", Some(valid.trim_start_matches("sha256=")), "malformed_signature"),
        ("sha1 prefix", Some("sha1=abcdef"), "malformed_signature"),
        ("not hex", Some("sha256=zzzz"), "malformed_signature"),
        ("odd length", Some("sha256=abc"), "malformed_signature"),
        ("short digest", Some("sha256=abcd"), "malformed_signature"),
        ("empty digest", Some("sha256="), "malformed_signature"),
        ("signature of another body", Some(&other_body), "invalid_signature"),
        ("signature with an unknown secret", Some(&wrong_secret), "invalid_signature"),
    ];
    let app = app();
    for (case, signature, code) in cases {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(s) = signature {
            headers.push(("x-sunu-signature", s));
        }
        let reply = send(&app.router, webhook(&headers, body.clone())).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(reply.code(), *code, "{case}");
        assert!(!reply.text().contains(valid.trim_start_matches("sha256=")), "{case}: never echo the expected tag");
    }
    assert_eq!(app.tontine.webhook_queue().stats().await.unwrap().waiting, 0, "nothing unverified is queued");
}

#[tokio::test]
async fn a_signature_with_the_previous_secret_is_still_accepted() {
    let app = app();
    let body = some_event();
    let headers = [("content-type", "application/json"), ("x-sunu-signature", &sign_hex(OLD_SECRET, body.as_bytes()))];
    assert_eq!(send(&app.router, webhook(&headers, body)).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_by_content_length_and_when_chunked() {
    let app = app_with(Options { body_limit: Some(1024), ..Options::default() });
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2048));
    let signature = sign_hex(SECRET, big.as_bytes());

    let with_length = webhook(&[("content-type", "application/json"), ("x-sunu-signature", &signature)], big.clone());
    let reply = send(&app.router, with_length).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));

    let declared_only = Request::post("/webhook/lightning")
        .header("content-length", "999999")
        .header("x-sunu-signature", &signature)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app.router, declared_only).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    let chunks: Vec<Result<Bytes, Infallible>> =
        big.as_bytes().chunks(100).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let chunked = webhook(
        &[("content-type", "application/json"), ("x-sunu-signature", &signature)],
        Body::from_stream(futures_util::stream::iter(chunks)),
    );
    let reply = send(&app.router, chunked).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
}

#[tokio::test]
async fn a_chunked_body_under_the_limit_is_verified_over_the_reassembled_bytes() {
    let app = app();
    let body = some_event();
    let chunks: Vec<Result<Bytes, Infallible>> =
        body.as_bytes().chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let request = webhook(
        &[("content-type", "application/json"), ("x-sunu-signature", &sign_hex(SECRET, body.as_bytes()))],
        Body::from_stream(futures_util::stream::iter(chunks)),
    );
    assert_eq!(send(&app.router, request).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn signed_bodies_that_are_not_events_answer_400_with_their_code() {
    let hash = "ab".repeat(32);
    let empty_status = format!(r#"{{"payment_hash":"{hash}","status":"","amount_msat":1}}"#);
    let cases: &[(&str, &str, &str)] = &[
        ("truncated JSON", "{", "invalid_json"),
        ("not an object", "[]", "invalid_json"),
        ("missing fields", r#"{"status":"settled"}"#, "invalid_json"),
        ("bad payment hash", r#"{"payment_hash":"zz","status":"settled","amount_msat":1}"#, "invalid_json"),
        ("empty status", &empty_status, "invalid_event"),
    ];
    let app = app();
    for (case, body, code) in cases {
        let reply = send(&app.router, signed_webhook(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(reply.code(), *code, "{case}");
    }
}

#[tokio::test]
async fn only_json_content_types_are_accepted() {
    let cases: &[(Option<&str>, StatusCode)] = &[
        (Some("application/json"), StatusCode::ACCEPTED),
        (Some("application/json; charset=utf-8"), StatusCode::ACCEPTED),
        (Some("Application/JSON;charset=UTF-8"), StatusCode::ACCEPTED),
        (Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Some("application/x-www-form-urlencoded"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ];
    for (content_type, status) in cases {
        let app = app();
        let body = some_event();
        let signature = sign_hex(SECRET, body.as_bytes());
        let mut headers = vec![("x-sunu-signature", signature.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let reply = send(&app.router, webhook(&headers, body)).await;
        assert_eq!(reply.status, *status, "{content_type:?}");
        if *status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            assert_eq!(reply.code(), "unsupported_media_type");
        }
    }
}

#[tokio::test]
async fn a_queue_outage_answers_503_and_the_retry_is_not_lost() {
    let queue = Arc::new(FaultyQueue::down("webhooks"));
    let app = app_with(Options { webhooks: Some(queue.clone()), ..Options::default() });
    let body = some_event();

    let reply = send(&app.router, signed_webhook(&body)).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    assert!(!reply.text().contains("connection refused"), "details are logged, not returned");

    queue.set_down(false);
    let retry = send(&app.router, signed_webhook(&body)).await;
    assert!(retry.status.is_success(), "the sender's retry is acknowledged");
    assert_eq!(queue.stats().await.unwrap().waiting, 1, "and the event is queued exactly once");
}

#[tokio::test]
async fn standard_webhooks_are_verified_with_id_and_timestamp() {
    let app = app_with(Options { standard_webhooks: true, ..Options::default() });
    let body = some_event();
    let ts = NOW.to_string();
    let ok_sig = sign_standard("msg_1", NOW, body.as_bytes());
    let old_sig = sign_standard("msg_1", NOW - 3_600, body.as_bytes());
    let old_ts = (NOW - 3_600).to_string();
    let cases: &[(&str, Headers<'_>, StatusCode, &str)] = &[
        (
            "valid",
            vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &ok_sig)],
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "no id",
            vec![("webhook-timestamp", &ts), ("webhook-signature", &ok_sig)],
            StatusCode::UNAUTHORIZED,
            "missing_signature",
        ),
        (
            "old",
            vec![("webhook-id", "msg_1"), ("webhook-timestamp", &old_ts), ("webhook-signature", &old_sig)],
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        (
            "bad ts",
            vec![("webhook-id", "msg_1"), ("webhook-timestamp", "soon"), ("webhook-signature", &ok_sig)],
            StatusCode::UNAUTHORIZED,
            "invalid_timestamp",
        ),
        (
            "v2 only",
            vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", "v2,abc")],
            StatusCode::UNAUTHORIZED,
            "malformed_signature",
        ),
    ];
    for (case, headers, status, code) in cases {
        let mut headers = headers.clone();
        headers.push(("content-type", "application/json"));
        let reply = send(&app.router, webhook(&headers, body.clone())).await;
        assert_eq!(reply.status, *status, "{case}");
        if !code.is_empty() {
            assert_eq!(reply.code(), *code, "{case}");
        }
    }
    let key = IdempotencyKey::webhook(Some("msg_1"), b"");
    assert!(app.tontine.webhook_queue().get(&key).await.unwrap().is_some(), "the job id is the webhook-id");
}

#[tokio::test]
async fn a_redelivery_with_the_same_webhook_id_is_a_duplicate_and_with_another_body_a_conflict() {
    let app = app_with(Options { standard_webhooks: true, ..Options::default() });
    let ts = NOW.to_string();
    for (body, status) in [
        (some_event(), StatusCode::ACCEPTED),
        (some_event(), StatusCode::OK),
        // One webhook-id cannot mean two events: not a silent duplicate.
        (common::event_body(&"cd".repeat(32), 5), StatusCode::CONFLICT),
    ] {
        let sig = sign_standard("msg_same", NOW, body.as_bytes());
        let headers = [
            ("content-type", "application/json"),
            ("webhook-id", "msg_same"),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig.as_str()),
        ];
        assert_eq!(send(&app.router, webhook(&headers, body)).await.status, status);
    }
}

#[tokio::test]
async fn other_methods_on_the_webhook_answer_405_json() {
    let app = app();
    let reply = send(&app.router, common::empty_request("GET", "/webhook/lightning")).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    assert!(reply.headers.get("allow").is_some(), "405 keeps its Allow header");
}

#[tokio::test]
async fn webhook_outcomes_are_counted() {
    let app = app();
    send(&app.router, signed_webhook(&some_event())).await;
    send(&app.router, signed_webhook(&some_event())).await;
    send(&app.router, webhook(&[("content-type", "application/json")], some_event())).await;
    let metrics = app.state.metrics();
    assert_eq!(metrics.webhook_count("accepted"), 1);
    assert_eq!(metrics.webhook_count("duplicate"), 1);
    assert_eq!(metrics.webhook_count("missing_signature"), 1);
}
