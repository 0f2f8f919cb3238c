//! Dead work by its store record: the payout retry and delivery replay
//! routes, the delivery log, and a conflicting redelivery's 409.

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Options, TestApp, app_with, empty_request, json_request, send, signed_webhook};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use sunusav_core::memory::NodeFault;
use sunusav_core::ports::prelude::*;
use sunusav_core::services::{PayoutJob, PayoutStep, WebhookJob};
use sunusav_core::{IdempotencyKey, MemberId};

fn admin(method: &str, uri: &str) -> Request<axum::body::Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap()
}

fn admin_app() -> TestApp {
    app_with(Options { admin: true, ..Options::default() })
}

/// A started group of two; returns its id.
async fn group(app: &TestApp) -> String {
    let members = [MemberId::random(), MemberId::random()];
    let body = json!({ "members": members, "contribution_msat": 1000 });
    let g = send(&app.router, json_request("POST", "/groups", &body)).await.json();
    common::set_destinations(&app.router, &members).await;
    let id = g["id"].as_str().unwrap().to_owned();
    send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    id
}

/// The signed body paying `member`'s invoice, with an event id.
async fn payment(app: &TestApp, group: &str, member: &Value, event_id: &str) -> String {
    let inv =
        send(&app.router, json_request("POST", &format!("/groups/{group}/invoices"), &json!({ "member": member })))
            .await
            .json();
    json!({ "payment_hash": inv["payment_hash"], "status": "settled", "amount_msat": 1000, "event_id": event_id })
        .to_string()
}

/// Pays the group's first cycle and settles it; the payout's job is queued.
async fn complete_cycle(app: &TestApp, group: &str) -> IdempotencyKey {
    let g = send(&app.router, empty_request("GET", &format!("/groups/{group}"))).await.json();
    for (i, m) in g["members"].as_array().unwrap().iter().enumerate() {
        let body = payment(app, group, m, &format!("evt-{group}-{i}")).await;
        assert_eq!(send(&app.router, signed_webhook(&body)).await.status, StatusCode::ACCEPTED);
    }
    common::settle_webhooks(&app.tontine).await;
    IdempotencyKey::parse(format!("payout:{group}:1")).unwrap()
}

/// Runs the payout's job once, as a worker does; returns what it did.
async fn run_payout(app: &TestApp) -> PayoutStep {
    let job = app.tontine.payout_queue().reserve(Duration::from_secs(30)).await.unwrap().expect("a payout job");
    let payload: PayoutJob = serde_json::from_slice(&job.payload).unwrap();
    let step = app.tontine.process_payout(&payload).await.unwrap();
    app.tontine.payout_queue().ack(&job.id, &job.token).await.unwrap();
    step
}

#[tokio::test]
async fn an_operator_retries_a_dead_payout_by_its_record_once() {
    let app = admin_app();
    let id = group(&app).await;
    let key = complete_cycle(&app, &id).await;
    let retry = format!("/admin/payouts/{key}/retry");

    let reply = send(&app.router, admin("POST", &retry)).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "not_dead"), "its own job runs it");

    app.node.inject([NodeFault::Permanent]);
    assert!(matches!(run_payout(&app).await, PayoutStep::Dead(_)));
    let g = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!(g["cycle_status"], "payout_failed");
    // The node's error text is for operators; a member sees the status only.
    assert!(g["payouts"][0]["last_error"].is_string(), "the operator sees the node's error: {g}");
    let member = g["members"][0].as_str().unwrap();
    let seen =
        send(&app.router, common::as_member(empty_request("GET", &format!("/groups/{id}")), member)).await.json();
    assert_eq!(seen["payouts"][0]["status"], "dead", "{seen}");
    assert_eq!(seen["payouts"][0]["last_error"], Value::Null, "a member sees no node error text: {seen}");

    let reply = send(&app.router, admin("POST", &retry)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.json(), json!({ "status": "retrying", "key": key, "generation": 1 }));
    let again = send(&app.router, admin("POST", &retry)).await;
    assert_eq!(again.status, StatusCode::OK, "the same retry again changes nothing");
    assert_eq!(
        again.json(),
        json!({ "status": "already_retried", "key": key, "generation": 1, "attempt_status": "failed" })
    );
    let job = app.tontine.payout_queue().get(&key.for_generation(1)).await.unwrap().expect("the new generation's job");
    assert_eq!(job.state.as_str(), "waiting");
    assert_eq!(run_payout(&app).await, PayoutStep::Paid);
    assert_eq!(run_payout_left(&app).await, 0, "one job per generation");
    let g = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!((g["cycle"].clone(), g["cycle_status"].clone()), (json!(2), json!("collecting")));
    assert_eq!(app.node.times_paid(&key), 1);
}

async fn run_payout_left(app: &TestApp) -> u64 {
    app.tontine.payout_queue().stats().await.unwrap().waiting
}

#[tokio::test]
async fn payout_retries_answer_json_errors() {
    let app = admin_app();
    let cases: &[(&str, StatusCode, &str)] = &[
        ("/admin/payouts/payout:6f1c1f7e-3c43-4c1e-9a77-2b1d2c3d4e5f:1/retry", StatusCode::NOT_FOUND, "not_found"),
        ("/admin/payouts/%20bad/retry", StatusCode::BAD_REQUEST, "invalid_key"),
        ("/admin/webhooks/webhook:nope/replay", StatusCode::NOT_FOUND, "not_found"),
        ("/admin/webhooks/%20bad/replay", StatusCode::BAD_REQUEST, "invalid_key"),
    ];
    for (uri, status, code) in cases {
        let reply = send(&app.router, admin("POST", uri)).await;
        assert_eq!((reply.status, reply.code().as_str()), (*status, *code), "{uri}");
    }
    let no_token = Request::post("/admin/payouts/payout:x:1/retry").body(axum::body::Body::empty()).unwrap();
    assert_eq!(send(&app.router, no_token).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_dead_delivery_runs_again_on_redelivery_and_on_replay_and_the_log_shows_it() {
    let app = admin_app();
    let id = group(&app).await;
    let g = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    let members = g["members"].as_array().unwrap().clone();
    let first = payment(&app, &id, &members[0], "evt-first").await;
    let second = payment(&app, &id, &members[1], "evt-second").await;
    for body in [&first, &second] {
        assert_eq!(send(&app.router, signed_webhook(body)).await.status, StatusCode::ACCEPTED);
    }
    // Both jobs die in the queue; the dead-letter hook records it.
    while let Some(job) = app.tontine.webhook_queue().reserve(Duration::from_secs(30)).await.unwrap() {
        let payload: WebhookJob = serde_json::from_slice(&job.payload).unwrap();
        app.tontine.webhook_dead(&payload, "out of attempts").await.unwrap();
    }
    let log = send(&app.router, admin("GET", "/admin/webhooks?outcome=dead")).await;
    assert_eq!(log.status, StatusCode::OK);
    let log = log.json();
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(log["deliveries"][0]["key"], "webhook:evt-first");
    assert_eq!(log["deliveries"][0]["outcome"], "dead");
    assert_eq!(log["deliveries"][0]["generation"], 0);
    assert_eq!(log["deliveries"][0]["body_kept"], true);

    // The provider redelivers the first: accepted, it runs again.
    let again = send(&app.router, signed_webhook(&first)).await;
    assert_eq!((again.status, again.json()), (StatusCode::ACCEPTED, json!({ "status": "accepted" })));
    assert_eq!(send(&app.router, signed_webhook(&first)).await.status, StatusCode::OK, "then a duplicate");
    // An operator replays the second; the same request again reopens nothing.
    let replay = send(&app.router, admin("POST", "/admin/webhooks/webhook:evt-second/replay")).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.json(), json!({ "status": "replaying", "key": "webhook:evt-second", "generation": 1 }));
    let again = send(&app.router, admin("POST", "/admin/webhooks/webhook:evt-second/replay")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), json!({ "status": "pending", "key": "webhook:evt-second", "generation": 1 }));

    assert_eq!(common::settle_webhooks(&app.tontine).await, 2, "one job per generation");
    let log = send(&app.router, admin("GET", "/admin/webhooks")).await.json();
    let outcomes: Vec<(Value, Value)> =
        log["deliveries"].as_array().unwrap().iter().map(|d| (d["outcome"].clone(), d["generation"].clone())).collect();
    assert_eq!(outcomes, vec![(json!("recorded"), json!(1)), (json!("cycle_complete"), json!(1))]);
    let g = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!(g["cycle_status"], "completing", "the cycle completed: its payout is due");

    // Retention drops the bodies; a replay then is refused.
    app.store.drop_webhook_bodies(Duration::ZERO, 10).await.unwrap();
    let expired = send(&app.router, admin("POST", "/admin/webhooks/webhook:evt-first/replay")).await;
    assert_eq!((expired.status, expired.code().as_str()), (StatusCode::CONFLICT, "body_expired"));
}

#[tokio::test]
async fn a_recorded_event_id_with_another_body_answers_409_event_conflict() {
    let app = admin_app();
    let id = group(&app).await;
    let g = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    let body = payment(&app, &id, &g["members"][0], "evt-once").await;
    assert_eq!(send(&app.router, signed_webhook(&body)).await.status, StatusCode::ACCEPTED);
    let other = body.replace("\"amount_msat\":1000", "\"amount_msat\":5000");
    assert_ne!(other, body);
    for _ in 0..2 {
        let reply = send(&app.router, signed_webhook(&other)).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "event_conflict"));
    }
    assert_eq!(app.state.metrics().webhook_count("event_conflict"), 2);
    assert_eq!(send(&app.router, signed_webhook(&body)).await.status, StatusCode::OK, "the first body: a duplicate");
    let log = send(&app.router, admin("GET", "/admin/webhooks")).await.json();
    assert_eq!(log["deliveries"][0]["conflicts"], 1, "kept once for an operator");
    assert_eq!(common::settle_webhooks(&app.tontine).await, 1, "one job: the first body's");
    let ledger = send(&app.router, empty_request("GET", &format!("/groups/{id}/ledger"))).await.json();
    assert_eq!(ledger["accounting"]["received"], 1000, "the conflicting amount is never acted on");
}

#[tokio::test]
async fn the_delivery_log_filters_pages_and_refuses_bad_queries() {
    let app = admin_app();
    let hashes: Vec<String> = (0..3).map(|i| format!("{i:02x}").repeat(32)).collect();
    for h in &hashes {
        assert_eq!(send(&app.router, signed_webhook(&common::event_body(h, 1_000))).await.status, StatusCode::ACCEPTED);
    }
    let keys = |v: &Value| -> Vec<String> {
        v["deliveries"].as_array().unwrap().iter().map(|d| d["payment_hash"].as_str().unwrap().to_owned()).collect()
    };
    let all = send(&app.router, admin("GET", "/admin/webhooks?limit=2")).await.json();
    assert_eq!(keys(&all), hashes[..2].to_vec());
    let next = send(&app.router, admin("GET", &format!("/admin/webhooks?limit=2&after={}", all["next"]))).await.json();
    assert_eq!(keys(&next), hashes[2..].to_vec());
    let pending = send(&app.router, admin("GET", "/admin/webhooks?outcome=pending")).await.json();
    assert_eq!(keys(&pending).len(), 3);
    let by_hash = send(&app.router, admin("GET", &format!("/admin/webhooks?payment_hash={}", hashes[1]))).await.json();
    assert_eq!(keys(&by_hash), vec![hashes[1].clone()]);
    common::settle_webhooks(&app.tontine).await;
    let unknown = send(&app.router, admin("GET", "/admin/webhooks?outcome=unknown_invoice&since=0")).await.json();
    assert_eq!(keys(&unknown).len(), 3);
    let later = send(&app.router, admin("GET", "/admin/webhooks?since=99999999999999")).await.json();
    assert_eq!(later, json!({ "deliveries": [], "next": 0 }));

    for uri in [
        "/admin/webhooks?outcome=zombie",
        "/admin/webhooks?payment_hash=zz",
        "/admin/webhooks?limit=0",
        "/admin/webhooks?limit=1001",
        "/admin/webhooks?after=-1",
        "/admin/webhooks?since=yesterday",
        "/admin/webhooks?color=red",
    ] {
        let reply = send(&app.router, admin("GET", uri)).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::BAD_REQUEST, "invalid_query"), "{uri}");
    }
}
