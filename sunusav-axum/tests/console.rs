//! The operations console, in process: roles (401 without credentials, 403
//! for the read-only operator's actions, 200 pages), the login cookie and
//! its form token, escaping of hostile values from webhooks and nodes, and
//! the audit entry every action writes.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sunusav_axum::{AdminToken, AppState, fixed_clock, nest_console, router};
use sunusav_core::domain::attempt::{AttemptKind, PaymentAttempt};
use sunusav_core::domain::group::{Invoice, InvoiceState};
use sunusav_core::domain::ledger::{LedgerEntry, LedgerReason};
use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{AuditAction, AuditOutcome, AuditRole, FailKind, NewJob, QueueConfig, WebhookEvent};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_core::{GroupId, GroupPolicy, GroupSpec, IdempotencyKey, MemberId, Msat, PaymentHash};
use tower::ServiceExt as _;

const ADMIN: &str = "console-admin-token-0001";
const OPERATOR: &str = "console-operator-token-01";
const HOSTILE: &str = "<script>alert('pwned')</script>";
/// The first attempt's error: seen only in the job's error history.
const HOSTILE_FIRST: &str = "<img src=x onerror=alert(1)>";
const NOW: i64 = 1_796_656_000;

struct Console {
    app: Router,
    tontine: Tontine,
    store: Arc<MemoryStore>,
}

fn console() -> Console {
    let store = Arc::new(MemoryStore::new());
    let tontine = Tontine::new(
        store.clone(),
        Arc::new(SimulatedNode::new()),
        Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default())),
        Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default())),
    );
    let verifier = Verifier::hex_sha256([Secret::from_text("console-test-secret-0123").unwrap()]).unwrap();
    let state = AppState::new(tontine.clone(), Arc::new(verifier))
        .with_clock(fixed_clock(NOW))
        .with_admin_token(AdminToken::new(ADMIN).unwrap())
        .with_operator_token(AdminToken::new(OPERATOR).unwrap());
    let app = nest_console(Router::new(), "/admin/console", state.clone()).merge(router(state));
    Console { app, tontine, store }
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn post(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::post(uri).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(t) = token {
        b = b.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

/// The login form posted with `token` by the client at `ip` (as the server's
/// `ConnectInfo` gives it).
fn login_form(token: &str, ip: [u8; 4]) -> Request<Body> {
    let mut req = Request::post("/admin/console/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

/// A dead payout job whose two attempts' errors are hostile HTML; returns its id.
async fn dead_job(c: &Console, id: &str) -> IdempotencyKey {
    let q = c.tontine.payout_queue();
    let key = IdempotencyKey::parse(id).unwrap();
    q.enqueue(NewJob::new(key.clone(), br#"{"note":"<b>bold</b>"}"#.to_vec())).await.unwrap();
    let job = q.reserve(Duration::from_secs(30)).await.unwrap().expect("a job");
    let first = format!("first try: {HOSTILE_FIRST}");
    q.fail(&job.id, &job.token, &first, FailKind::RetryAfter(Duration::ZERO)).await.unwrap();
    let job = q.reserve(Duration::from_secs(30)).await.unwrap().expect("the retry");
    q.fail(&job.id, &job.token, &format!("node said {HOSTILE}"), FailKind::Permanent).await.unwrap();
    key
}

#[tokio::test]
async fn pages_answer_401_without_credentials_and_200_to_either_role() {
    let c = console();
    for path in ["", "/jobs", "/deliveries", "/groups", "/unapplied", "/audit", "/events"] {
        let uri = format!("/admin/console{path}");
        let (status, _, body) = send(&c.app, get(&uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.contains(r#"data-code="unauthorized""#), "{path}: {body}");
        let (status, _, _) = send(&c.app, get(&uri, Some("not-a-token-of-ours-000"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with a wrong token");
        if path == "/events" {
            continue; // an endless stream
        }
        for token in [ADMIN, OPERATOR] {
            let (status, headers, body) = send(&c.app, get(&uri, Some(token))).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert!(headers[http::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            assert!(headers[http::header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
            assert!(body.contains(r#"href="/admin/console/jobs"#), "links follow the mount prefix: {path}");
        }
    }
}

#[tokio::test]
async fn the_operator_sees_no_buttons_and_is_refused_with_403_and_an_audit_entry() {
    let c = console();
    let id = dead_job(&c, "payout:operator-test").await;
    let page = format!("/admin/console/jobs/payouts/{id}");
    let (_, _, admin_view) = send(&c.app, get(&page, Some(ADMIN))).await;
    assert!(admin_view.contains(r#"data-action="Retry""#), "{admin_view}");
    let (_, _, operator_view) = send(&c.app, get(&page, Some(OPERATOR))).await;
    assert!(!operator_view.contains("data-action="), "no action button for the operator: {operator_view}");
    assert!(operator_view.contains(r#"data-role="operator""#));

    let (status, _, body) = send(&c.app, post(&format!("{page}/retry"), Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains(r#"data-code="forbidden""#), "{body}");
    let job = c.tontine.payout_queue().get(&id).await.unwrap().unwrap();
    assert_eq!(job.state.as_str(), "dead", "nothing was done");
    let log = c.store.audit_entries(None, 10).await.unwrap();
    let e = &log.entries[0].entry;
    assert_eq!((e.role, e.action, e.outcome), (AuditRole::Operator, AuditAction::QueueRetry, AuditOutcome::Refused));
    assert_eq!(e.target, format!("payouts/{id}"));
}

#[tokio::test]
async fn an_admin_retry_moves_the_job_and_writes_the_audit_log_shown_on_its_page() {
    let c = console();
    let id = dead_job(&c, "payout:admin-test").await;
    let (status, headers, _) =
        send(&c.app, post(&format!("/admin/console/jobs/payouts/{id}/retry"), Some(ADMIN))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/admin/console/jobs/payouts/{id}").as_str());
    assert_eq!(c.tontine.payout_queue().get(&id).await.unwrap().unwrap().state.as_str(), "waiting");

    // Retrying again fails (not dead): recorded as failed with the code.
    let (status, _, body) = send(&c.app, post(&format!("/admin/console/jobs/payouts/{id}/retry"), Some(ADMIN))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains(r#"data-code="wrong_state""#), "{body}");

    let log = c.store.audit_entries(None, 10).await.unwrap();
    let outcomes: Vec<_> = log.entries.iter().map(|e| (e.entry.action, e.entry.outcome, e.entry.role)).collect();
    assert_eq!(
        outcomes,
        vec![
            (AuditAction::QueueRetry, AuditOutcome::Failed, AuditRole::Admin),
            (AuditAction::QueueRetry, AuditOutcome::Succeeded, AuditRole::Admin),
        ]
    );
    assert_eq!(log.entries[1].entry.at_ms, u64::try_from(NOW).unwrap() * 1_000, "the state's clock");
    let (_, _, audit_page) = send(&c.app, get("/admin/console/audit", Some(OPERATOR))).await;
    assert!(audit_page.contains(&format!("payouts/{id}")) && audit_page.contains("queue_retry"), "{audit_page}");
}

#[tokio::test]
async fn the_json_admin_routes_write_the_audit_log_too() {
    let c = console();
    let (status, _, _) = send(&c.app, post("/admin/queues/webhooks/pause", Some(ADMIN))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&c.app, post("/admin/payouts/payout:nothing-here/retry", Some(ADMIN))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let log = c.store.audit_entries(None, 10).await.unwrap();
    let seen: Vec<_> = log.entries.iter().map(|e| (e.entry.action, e.entry.outcome, e.entry.target.clone())).collect();
    assert_eq!(
        seen,
        vec![
            (AuditAction::PayoutRetry, AuditOutcome::Failed, "payout:nothing-here".to_owned()),
            (AuditAction::QueuePause, AuditOutcome::Succeeded, "webhooks".to_owned()),
        ]
    );
    assert_eq!(log.entries[0].entry.detail.as_deref(), Some("not_found"));
}

#[tokio::test]
async fn hostile_values_from_webhooks_and_nodes_are_escaped() {
    let c = console();
    let id = dead_job(&c, "payout:hostile").await;
    let hash = PaymentHash::from_bytes([0xab; 32]);
    let key = IdempotencyKey::webhook(Some(HOSTILE), b"");
    assert!(key.as_str().contains("<script>"), "the event id is kept as sent: {key}");
    c.store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec()).with_payment_hash(hash)).await.unwrap();

    let pages = [
        format!("/admin/console/jobs/payouts/{id}"),
        "/admin/console/jobs?queue=payouts&state=dead".to_owned(),
        "/admin/console/jobs?q=pwned".to_owned(),
        "/admin/console/deliveries".to_owned(),
    ];
    for uri in pages {
        let (status, _, body) = send(&c.app, get(&uri, Some(ADMIN))).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!body.contains("<script>alert"), "{uri} renders a raw script: {body}");
        assert!(!body.contains("<b>bold"), "{uri}");
        assert!(body.contains("&lt;script&gt;alert("), "{uri} shows the value escaped: {body}");
    }
    let (_, _, by_hash) = send(&c.app, get(&format!("/admin/console/jobs?q={hash}"), Some(ADMIN))).await;
    assert!(by_hash.contains("1 deliveries name it") && !by_hash.contains("<script>alert"), "{by_hash}");
    // The error history: each attempt's error, escaped.
    let (_, _, detail) = send(&c.app, get(&format!("/admin/console/jobs/payouts/{id}"), Some(OPERATOR))).await;
    assert!(detail.contains(r#"data-errors="2""#), "both attempts' errors: {detail}");
    assert!(!detail.contains("<img src=x"), "the history renders a raw tag: {detail}");
    assert!(detail.contains("first try: &lt;img src=x onerror=alert(1)&gt;"), "{detail}");
    assert!(detail.contains(r#"data-attempt="1""#) && detail.contains(r#"data-attempt="2""#), "{detail}");
}

#[tokio::test]
async fn search_finds_jobs_by_id_payment_hash_group_text_and_time_and_says_how_far_it_read() {
    let c = console();
    let id = dead_job(&c, "payout:search-me").await;
    let (_, _, by_id) = send(&c.app, get(&format!("/admin/console/jobs?q={id}"), Some(OPERATOR))).await;
    assert!(by_id.contains("<td>job id</td>"), "{by_id}");
    let (_, _, by_text) = send(&c.app, get("/admin/console/jobs?q=node+said", Some(OPERATOR))).await;
    assert!(by_text.contains(&format!(r#"data-job="{id}""#)), "{by_text}");
    assert!(by_text.contains(r#"data-scan="complete""#), "{by_text}");
    let (_, _, later) =
        send(&c.app, get("/admin/console/jobs?q=node+said&from=2999-01-01T00:00", Some(OPERATOR))).await;
    assert!(!later.contains(&format!(r#"data-job="{id}""#)), "created before the range: {later}");
    let (_, _, since) =
        send(&c.app, get("/admin/console/jobs?from=2000-01-01T00:00&to=2999-01-01T00:00", Some(OPERATOR))).await;
    assert!(since.contains(&format!(r#"data-job="{id}""#)), "a range alone lists what it holds: {since}");
    let (status, _, _) = send(&c.app, get("/admin/console/jobs?from=yesterday", Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let hash = PaymentHash::from_bytes([0x11; 32]);
    let key = IdempotencyKey::webhook(Some("evt-hash"), b"");
    c.store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec()).with_payment_hash(hash)).await.unwrap();
    c.tontine.webhook_queue().enqueue(NewJob::new(key.clone(), b"{}".to_vec())).await.unwrap();
    let (_, _, by_hash) = send(&c.app, get(&format!("/admin/console/jobs?q={hash}"), Some(OPERATOR))).await;
    assert!(by_hash.contains("a delivery naming it") && by_hash.contains("evt-hash"), "{by_hash}");

    let spec = GroupSpec {
        contribution: Msat::new(1_000),
        fee_bps: 0,
        members: vec![MemberId::random(), MemberId::random()],
        policy: GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let group = c.tontine.create_group(spec).await.unwrap();
    let (_, _, by_group) = send(&c.app, get(&format!("/admin/console/jobs?q={}", group.id()), Some(OPERATOR))).await;
    assert!(by_group.contains(&format!(r#"href="/admin/console/groups/{}""#, group.id())), "{by_group}");
    let (status, _, page) = send(&c.app, get(&format!("/admin/console/groups/{}", group.id()), Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"data-cycle="2""#) && page.contains("forming"), "{page}");
}

#[tokio::test]
async fn search_by_member_finds_the_jobs_of_their_payouts_refunds_and_the_deliveries_paying_their_invoices() {
    let c = console();
    let (m, other) = (MemberId::random(), MemberId::random());
    let spec = GroupSpec {
        contribution: Msat::new(1_000),
        fee_bps: 0,
        members: vec![m, other],
        policy: GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let group = c.tontine.create_group(spec).await.unwrap().id();
    let mut payout = PaymentAttempt::refund(IdempotencyKey::payout(group, 1), group, 1, m, Msat::new(2_000));
    payout.kind = AttemptKind::Payout;
    let refund_key = IdempotencyKey::parse(format!("refund:{group}:{m}:1")).unwrap();
    let refund = PaymentAttempt::refund(refund_key.clone(), group, 1, m, Msat::new(300));
    let theirs = PaymentAttempt::refund(IdempotencyKey::payout(group, 2), group, 2, other, Msat::new(2_000));
    let invoice = |member, byte| Invoice {
        payment_hash: PaymentHash::from_bytes([byte; 32]),
        group,
        cycle: 1,
        member,
        amount: Msat::new(1_000),
        bolt11: "lnbcrt-test".into(),
        expires_at_ms: 4_102_444_800_000,
        state: InvoiceState::Open,
    };
    let (mine, not_mine) = (invoice(m, 0x21), invoice(other, 0x22));
    let mut tx = c.store.begin().await.unwrap();
    for a in [&payout, &refund, &theirs] {
        assert!(tx.insert_payment_attempt(a).await.unwrap());
    }
    tx.insert_invoice(&mine).await.unwrap();
    tx.insert_invoice(&not_mine).await.unwrap();
    tx.commit().await.unwrap();
    for a in [&payout, &refund, &theirs] {
        c.tontine.payout_queue().enqueue(NewJob::new(a.key.clone(), b"{}".to_vec())).await.unwrap();
    }
    for (event, inv) in [("evt-mine", &mine), ("evt-not-mine", &not_mine)] {
        let key = IdempotencyKey::webhook(Some(event), b"");
        let delivery = WebhookEvent::new(key.clone(), b"{}".to_vec()).with_payment_hash(inv.payment_hash);
        c.store.record_webhook(&delivery).await.unwrap();
        c.tontine.webhook_queue().enqueue(NewJob::new(key, b"{}".to_vec())).await.unwrap();
    }

    let (status, _, found) = send(&c.app, get(&format!("/admin/console/jobs?q={m}"), Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::OK);
    for (job, why) in [
        (payout.key.to_string(), "a payout to the member"),
        (refund_key.to_string(), "a refund to the member"),
        (IdempotencyKey::webhook(Some("evt-mine"), b"").to_string(), "a delivery paying the member"),
    ] {
        let row = found.split(&format!(r#"data-job="{job}""#)).nth(1).unwrap_or_else(|| panic!("{job}: {found}"));
        assert!(row.split("</tr>").next().unwrap().contains(why), "{job} found as {why}: {found}");
    }
    assert!(!found.contains(&format!(r#"data-job="{}""#, theirs.key)), "another member's payout: {found}");
    assert!(!found.contains("evt-not-mine"), "a delivery paying another member: {found}");
    assert!(found.contains("2 payouts and refunds, 1 invoices"), "{found}");
    assert!(found.contains(r#"data-scan="skipped""#), "found through the indexes, no scan: {found}");
}

#[tokio::test]
async fn job_pages_follow_the_queues_cursor_and_skip_nothing_when_jobs_leave_ahead() {
    let c = console();
    let q = c.tontine.payout_queue();
    let ids: Vec<String> = (0..60).map(|i| format!("payout:page-{i:02}")).collect();
    q.enqueue_bulk(ids.iter().map(|id| NewJob::new(IdempotencyKey::parse(id).unwrap(), b"{}".to_vec())).collect())
        .await
        .unwrap();
    let shown = |body: &str| {
        body.split(r#"<tr data-job=""#).skip(1).map(|r| r.split('"').next().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let (_, _, first) = send(&c.app, get("/admin/console/jobs?queue=payouts&state=waiting", Some(OPERATOR))).await;
    assert_eq!(shown(&first), ids[..50]);
    let next = first.split("&amp;after=").nth(1).expect("a next page").split('"').next().unwrap().to_owned();
    assert!(!next.contains('~'), "a cursor, not a position: {next}");
    // The first ten leave waiting (and the cursor's own job too).
    for id in ids[..10].iter().chain([&ids[49]]) {
        q.remove(&IdempotencyKey::parse(id).unwrap()).await.unwrap();
    }
    let uri = format!("/admin/console/jobs?queue=payouts&state=waiting&after={next}");
    let (_, _, second) = send(&c.app, get(&uri, Some(OPERATOR))).await;
    assert_eq!(shown(&second), ids[50..], "nothing skipped: {second}");
    assert!(!second.contains("Next page"), "the last page: {second}");
    let (status, _, bad) =
        send(&c.app, get("/admin/console/jobs?queue=payouts&state=dead&after=nonsense", Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bad.contains(r#"data-code="invalid_cursor""#), "{bad}");
}

#[tokio::test]
async fn the_console_root_with_a_trailing_slash_redirects_permanently_to_the_root() {
    let c = console();
    for (uri, to) in
        [("/admin/console/", "/admin/console"), ("/admin/console/?queue=payouts", "/admin/console?queue=payouts")]
    {
        let (status, headers, _) = send(&c.app, get(uri, None)).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT, "{uri}");
        assert_eq!(headers[LOCATION], to, "{uri}");
    }
    let (status, _, _) = send(&c.app, get("/admin/console", Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&c.app, get("/admin/console/jobs", Some(OPERATOR))).await;
    assert_eq!(status, StatusCode::OK, "the other pages are unchanged");
}

#[tokio::test]
async fn balances_held_for_members_page_by_the_last_group_and_member_shown() {
    let c = console();
    let group = GroupId::random();
    let mut tx = c.store.begin().await.unwrap();
    for _ in 0..201 {
        let hash = PaymentHash::from_bytes(rand::random());
        let entry = LedgerEntry::settlement(group, MemberId::random(), 1, hash, LedgerReason::Late, Msat::new(5));
        assert!(tx.insert_ledger_entry(&entry).await.unwrap());
    }
    tx.commit().await.unwrap();
    let rows = |body: &str| body.matches(r#"data-action="Release for refund""#).count();
    let (_, _, first) = send(&c.app, get("/admin/console/unapplied", Some(ADMIN))).await;
    assert_eq!(rows(&first), 200, "one page");
    let next = first.split("?balances_after=").nth(1).expect("a next page").split('"').next().unwrap().to_owned();
    let (status, _, second) =
        send(&c.app, get(&format!("/admin/console/unapplied?balances_after={next}"), Some(ADMIN))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&second), 1, "the rest: {second}");
    assert!(!second.contains("More balances"), "{second}");
    let (status, _, _) = send(&c.app, get("/admin/console/unapplied?balances_after=nonsense", Some(ADMIN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_login_sets_a_strict_http_only_cookie_and_cookie_posts_need_the_form_token() {
    let c = console();
    let login = login_form(ADMIN, [10, 0, 0, 1]);
    let (status, headers, _) = send(&c.app, login).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/admin/console"),
        "{set}"
    );
    assert!(!set.contains(ADMIN), "the token is not in the cookie as text");
    let cookie = set.split(';').next().unwrap().to_owned();

    let page = Request::get("/admin/console").header(COOKIE, &cookie).body(Body::empty()).unwrap();
    let (status, _, body) = send(&c.app, page).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = body.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();

    let pause = |form: String| {
        Request::post("/admin/console/queues/payouts/pause")
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap()
    };
    let (status, _, body) = send(&c.app, pause(String::new())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains(r#"data-code="csrf_mismatch""#));
    assert!(!c.tontine.payout_queue().stats().await.unwrap().paused);
    let (status, _, _) = send(&c.app, pause(format!("csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(c.tontine.payout_queue().stats().await.unwrap().paused);

    let wrong = login_form("wrong-wrong-wrong-wrong", [10, 0, 0, 1]);
    let (status, headers, _) = send(&c.app, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn the_login_form_is_rate_limited_per_client_with_a_429_page_that_says_so() {
    let c = console();
    // A burst of 10 attempts (wrong tokens) from one client is answered...
    for i in 0..10 {
        let (status, _, _) = send(&c.app, login_form("wrong-wrong-wrong-wrong", [10, 0, 0, 7])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // ...then even the right token is refused, with a page saying when to retry.
    let (status, headers, body) = send(&c.app, login_form(ADMIN, [10, 0, 0, 7])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{headers:?}");
    let wait: u64 = headers[http::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "one attempt every 12 s: {wait}");
    assert!(body.contains(r#"data-code="rate_limited""#) && body.contains("too many login attempts"), "{body}");
    assert!(headers.get(SET_COOKIE).is_none());
    // Another client is not limited; the pages are not either.
    let (status, headers, _) = send(&c.app, login_form(ADMIN, [10, 0, 0, 8])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers.get(SET_COOKIE).is_some());
    let (status, _, _) = send(&c.app, get("/admin/console/login", None)).await;
    assert_eq!(status, StatusCode::OK, "the login page itself is not limited");
    // A request without a client address is never let through unlimited.
    let bare = Request::post("/admin/console/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={ADMIN}")))
        .unwrap();
    let (status, headers, _) = send(&c.app, bare).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn the_live_updates_stream_sends_the_overview_figures() {
    let c = console();
    dead_job(&c, "payout:live").await;
    let res = c.app.clone().oneshot(get("/admin/console/events", Some(OPERATOR))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("data: {") && text.contains(r#""q-payouts-dead":"1""#), "{text}");
}

#[tokio::test]
async fn a_bulk_retry_of_a_search_result_retries_each_job_and_audits_each() {
    let c = console();
    let a = dead_job(&c, "payout:bulk-a").await;
    let b = dead_job(&c, "payout:bulk-b").await;
    let (_, _, found) = send(&c.app, get("/admin/console/jobs?q=node+said", Some(ADMIN))).await;
    assert!(found.contains(r#"data-action="bulk-retry""#), "{found}");
    let (_, _, read_only) = send(&c.app, get("/admin/console/jobs?q=node+said", Some(OPERATOR))).await;
    assert!(!read_only.contains("data-action="), "no bulk buttons for the operator");

    let body = format!("verb=retry&jobs=payouts%2F{a}%0Apayouts%2F{b}%0Apayouts%2Fpayout%3Anone");
    let req = Request::post("/admin/console/jobs/bulk")
        .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let (status, _, page) = send(&c.app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"data-failed="1""#), "the unknown job fails, the others go through: {page}");
    for id in [&a, &b] {
        assert_eq!(c.tontine.payout_queue().get(id).await.unwrap().unwrap().state.as_str(), "waiting");
    }
    let log = c.store.audit_entries(None, 10).await.unwrap();
    let outcomes: Vec<_> = log.entries.iter().map(|e| (e.entry.target.clone(), e.entry.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            ("payouts/payout:none".to_owned(), AuditOutcome::Failed),
            (format!("payouts/{b}"), AuditOutcome::Succeeded),
            (format!("payouts/{a}"), AuditOutcome::Succeeded),
        ]
    );
}
