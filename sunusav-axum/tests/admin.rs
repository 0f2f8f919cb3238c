//! Admin routes: mounted only with a token, bearer-authenticated, over both queues.

mod common;

use common::{ADMIN_TOKEN, Options, app, app_with, send, signed_webhook, some_event};
use http::{Request, StatusCode};
use serde_json::json;
use sunusav_core::IdempotencyKey;

fn admin(method: &str, uri: &str, token: Option<&str>) -> Request<axum::body::Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    builder.body(axum::body::Body::empty()).unwrap()
}

fn webhook_job_uri(suffix: &str) -> String {
    let key = IdempotencyKey::webhook(None, some_event().as_bytes());
    format!("/admin/queues/webhooks/jobs/{key}{suffix}")
}

#[tokio::test]
async fn admin_routes_are_not_mounted_without_a_token() {
    let app = app();
    let reply = send(&app.router, admin("GET", "/admin/queues/payouts/counts", Some(ADMIN_TOKEN))).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn a_missing_or_wrong_token_answers_401() {
    let app = app_with(Options { admin: true, ..Options::default() });
    let wrong = format!("{ADMIN_TOKEN}x");
    for (case, request) in [
        ("no header", admin("GET", "/admin/queues/payouts/counts", None)),
        ("wrong token", admin("GET", "/admin/queues/payouts/counts", Some(&wrong))),
        ("prefix of the token", admin("GET", "/admin/queues/payouts/counts", Some(&ADMIN_TOKEN[..8]))),
        ("wrong token on a mutation", admin("POST", "/admin/queues/payouts/pause", Some("nope"))),
        (
            "basic auth",
            Request::get("/admin/queues/payouts/counts")
                .header("authorization", format!("Basic {ADMIN_TOKEN}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        ),
    ] {
        let reply = send(&app.router, request).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{case}");
    }
    assert!(!app.tontine.payout_queue().stats().await.unwrap().paused, "no mutation without the token");
}

#[tokio::test]
async fn the_right_token_reads_counts_and_lists_jobs() {
    let app = app_with(Options { admin: true, ..Options::default() });
    send(&app.router, signed_webhook(&some_event())).await;
    let t = Some(ADMIN_TOKEN);

    let counts = send(&app.router, admin("GET", "/admin/queues/webhooks/counts", t)).await;
    assert_eq!(counts.status, StatusCode::OK);
    assert_eq!(counts.json()["waiting"], 1);

    let list = send(&app.router, admin("GET", "/admin/queues/webhooks/jobs?state=waiting&offset=0&limit=10", t)).await;
    assert_eq!(list.status, StatusCode::OK);
    let jobs = list.json()["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["state"], "waiting");
    assert!(jobs[0]["payload"]["event"].is_object(), "JSON payloads are shown as JSON");

    let detail = send(&app.router, admin("GET", &webhook_job_uri(""), t)).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.json()["id"], jobs[0]["id"]);

    let dead = send(&app.router, admin("GET", "/admin/queues/payouts/jobs", t)).await;
    assert_eq!((dead.json()["state"].clone(), dead.json()["jobs"].clone()), (json!("dead"), json!([])));
}

#[tokio::test]
async fn admin_operations_change_the_queue() {
    let app = app_with(Options { admin: true, ..Options::default() });
    send(&app.router, signed_webhook(&some_event())).await;
    let t = Some(ADMIN_TOKEN);

    let paused = send(&app.router, admin("POST", "/admin/queues/webhooks/pause", t)).await;
    assert_eq!(paused.json(), json!({ "paused": true }));
    assert!(app.tontine.webhook_queue().stats().await.unwrap().paused);
    let resumed = send(&app.router, admin("POST", "/admin/queues/webhooks/resume", t)).await;
    assert_eq!(resumed.json(), json!({ "paused": false }));

    let retried = send(&app.router, admin("POST", "/admin/queues/payouts/retry-dead", t)).await;
    assert_eq!(retried.json(), json!({ "retried": 0 }));

    let not_dead = send(&app.router, admin("POST", &webhook_job_uri("/retry"), t)).await;
    assert_eq!((not_dead.status, not_dead.code().as_str()), (StatusCode::CONFLICT, "wrong_state"));
    let not_delayed = send(&app.router, admin("POST", &webhook_job_uri("/promote"), t)).await;
    assert_eq!((not_delayed.status, not_delayed.code().as_str()), (StatusCode::CONFLICT, "wrong_state"));

    let removed = send(&app.router, admin("DELETE", &webhook_job_uri(""), t)).await;
    assert_eq!(removed.json(), json!({ "status": "removed" }));
    let gone = send(&app.router, admin("GET", &webhook_job_uri(""), t)).await;
    assert_eq!((gone.status, gone.code().as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn unknown_queues_jobs_and_bad_queries_answer_json_errors() {
    let app = app_with(Options { admin: true, ..Options::default() });
    let t = Some(ADMIN_TOKEN);
    let cases: &[(&str, &str, StatusCode, &str)] = &[
        ("GET", "/admin/queues/emails/counts", StatusCode::NOT_FOUND, "not_found"),
        ("POST", "/admin/queues/emails/pause", StatusCode::NOT_FOUND, "not_found"),
        ("GET", "/admin/queues/payouts/jobs/payout:none:1", StatusCode::NOT_FOUND, "not_found"),
        ("POST", "/admin/queues/payouts/jobs/payout:none:1/retry", StatusCode::NOT_FOUND, "not_found"),
        ("DELETE", "/admin/queues/payouts/jobs/payout:none:1", StatusCode::NOT_FOUND, "not_found"),
        ("GET", "/admin/queues/payouts/jobs?state=zombie", StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/admin/queues/payouts/jobs?limit=0", StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/admin/queues/payouts/jobs?limit=100000", StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/admin/queues/payouts/jobs?offset=-1", StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/admin/queues/payouts/jobs/%20bad", StatusCode::BAD_REQUEST, "invalid_job_id"),
        ("PUT", "/admin/queues/payouts/pause", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (method, uri, status, code) in cases {
        let reply = send(&app.router, admin(method, uri, t)).await;
        assert_eq!((reply.status, reply.code().as_str()), (*status, *code), "{method} {uri}");
    }
}

#[tokio::test]
async fn an_overpayment_shows_in_the_ledger_and_an_operator_releases_it() {
    let app = app_with(Options { admin: true, ..Options::default() });
    let (m0, m1) = (sunusav_core::MemberId::random(), sunusav_core::MemberId::random());
    let body = json!({ "members": [m0, m1], "contribution_msat": 1000 });
    let group = send(&app.router, common::json_request("POST", "/groups", &body)).await.json();
    common::set_destinations(&app.router, &[m0, m1]).await;
    let id = group["id"].as_str().unwrap().to_owned();
    send(&app.router, common::empty_request("POST", &format!("/groups/{id}/start"))).await;
    let inv =
        send(&app.router, common::json_request("POST", &format!("/groups/{id}/invoices"), &json!({ "member": m0 })))
            .await
            .json();
    let again =
        send(&app.router, common::json_request("POST", &format!("/groups/{id}/invoices"), &json!({ "member": m0 })))
            .await
            .json();
    assert_eq!(again["payment_hash"], inv["payment_hash"], "one open invoice per member and cycle");
    assert_eq!(inv["state"], "open");
    // Paid twice its amount.
    let paid = common::event_body(inv["payment_hash"].as_str().unwrap(), 2000);
    assert_eq!(send(&app.router, signed_webhook(&paid)).await.status, StatusCode::ACCEPTED);
    common::settle_webhooks(&app.tontine).await;

    let ledger = send(&app.router, common::empty_request("GET", &format!("/groups/{id}/ledger"))).await;
    assert_eq!(ledger.status, StatusCode::OK);
    let ledger = ledger.json();
    assert_eq!(ledger["entries"][0]["reason"], "overpaid");
    assert_eq!(ledger["balances"][0]["amount"], 1000);

    let t = Some(ADMIN_TOKEN);
    assert_eq!(send(&app.router, admin("GET", "/admin/unapplied", None)).await.status, StatusCode::UNAUTHORIZED);
    let unapplied = send(&app.router, admin("GET", "/admin/unapplied", t)).await.json();
    assert_eq!(unapplied["balances"][0]["member"], json!(m0));
    let release = format!("/admin/groups/{id}/members/{m0}/release");
    let released = send(&app.router, admin("POST", &release, t)).await;
    assert_eq!(released.status, StatusCode::CREATED);
    assert_eq!(released.json()["reason"], "refund_released");
    let again = send(&app.router, admin("POST", &release, t)).await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::CONFLICT, "nothing_to_release"));
    let unapplied = send(&app.router, admin("GET", "/admin/unapplied", t)).await.json();
    assert_eq!(unapplied["balances"], json!([]));
    assert_eq!(unapplied["refunds"][0]["amount"], 1000);
}
