//! The operations console in headless Chromium (Debian's `chromium`),
//! against a running example server (its console at `/admin/console`, admin
//! and operator tokens): a group's payout dies at
//! the node (the beneficiary's invoice is one the node cannot pay); the
//! test logs in through the form (its cookie), has Chromium render every
//! page as the admin and as the operator (a small proxy adds the session's
//! cookie to each request: Chromium takes no cookie on its command line),
//! searches by a contribution's payment hash, reads the live counts,
//! retries the dead job with the form token (the operator is refused),
//! finds both in the audit log, reads the dead job's error history before
//! and after the retry, searches by the beneficiary's member id, and sees
//! the overview change live (a queue paused while the page is open). The
//! server runs on PostgreSQL and Redis when `DATABASE_URL` and `REDIS_URL`
//! are set (`scripts/services.sh run ...`), on its embedded default
//! otherwise. Screenshots of each page are written under
//! `target/console-screenshots/`.
//!
//! A second test, without Chromium, checks the server's mount on both
//! listener layouts (with and without `OPS_BIND_ADDR`): HTML, not the JSON
//! error layer's bodies, and `/admin/console/` redirected (308) to the root.
//!
//! Without `chromium` on PATH (or `CHROMIUM_BIN`) the test is skipped, and
//! fails under `SUNUSAV_REQUIRE_SERVICES=1` (scripts/test.sh installs it).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use common::{SECRET, ServerEnv, start_server};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sunusav_core::domain::payout::Network;
use sunusav_core::memory::InvoiceSigner;
use sunusav_core::{Msat, PaymentHash};
use sunusav_examples::demo::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const ADMIN: &str = "browser-admin-token-0001";
const OPERATOR: &str = "browser-operator-token-01";
const CONTRIBUTION: u64 = 10_000;

fn chromium() -> Option<String> {
    let bin = std::env::var("CHROMIUM_BIN").ok().filter(|b| !b.is_empty()).or_else(|| {
        let out = std::process::Command::new("sh").args(["-c", "command -v chromium"]).output().ok()?;
        let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !path.is_empty()).then_some(path)
    });
    match bin {
        Some(b) => Some(b),
        None if std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("chromium is required (SUNUSAV_REQUIRE_SERVICES=1); scripts/services.sh install installs it")
        }
        None => {
            eprintln!("skipping: chromium not installed (scripts/services.sh install installs it)");
            None
        }
    }
}

/// One HTTP/1.1 request on its own connection: (status, head, body).
async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    let _ = write!(req, "Content-Length: {}\r\n\r\n{body}", body.len());
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A JSON request with the admin token: (status, body).
async fn api(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    api_as(addr, ADMIN, method, path, body).await
}

/// [`api`] as member `member` (a member token issued by the admin route).
async fn api_member(addr: &str, member: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (status, issued) = api(addr, "POST", &format!("/admin/members/{member}/token"), None).await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().expect("token").to_owned();
    api_as(addr, &token, method, path, body).await
}

async fn api_as(addr: &str, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let text = body.map(Value::to_string).unwrap_or_default();
    let (status, _, out) =
        http(addr, method, path, &[("Authorization", &auth), ("Content-Type", "application/json")], &text).await;
    (status, serde_json::from_str(&out).unwrap_or(Value::Null))
}

/// Logs in through the console's form; the session's cookie (`name=value`).
async fn login(addr: &str, token: &str) -> String {
    let form = format!("token={token}");
    let (status, head, _) =
        http(addr, "POST", "/admin/console/login", &[("Content-Type", "application/x-www-form-urlencoded")], &form)
            .await;
    assert_eq!(status, 303, "{head}");
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned()
}

/// A proxy to the server that adds `cookie` to every GET (Chromium's way in
/// as a logged-in session); the live-update stream answers 204 (EventSource
/// then stops), so that no page load waits on it.
async fn cookie_proxy(upstream: String, cookie: String) -> String {
    let app = Router::new().fallback(move |req: Request| {
        let (upstream, cookie) = (upstream.clone(), cookie.clone());
        async move {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            if req.method() != Method::GET || path.ends_with("/events") {
                return StatusCode::NO_CONTENT.into_response();
            }
            let (status, head, body) = http(&upstream, "GET", &path, &[("Cookie", &cookie)], "").await;
            let mut res: Response = (StatusCode::from_u16(status).expect("status"), body).into_response();
            for (k, v) in head.lines().skip(1).filter_map(|l| l.split_once(':')) {
                if ["content-type", "location", "content-security-policy"].contains(&k.to_ascii_lowercase().as_str()) {
                    res.headers_mut().insert(
                        HeaderName::from_bytes(k.as_bytes()).expect("name"),
                        HeaderValue::from_str(v.trim()).expect("value"),
                    );
                }
            }
            res
        }
    });
    serve(app).await
}

/// A proxy for the live updates: the session's cookie added, every
/// response streamed (the server-sent events included), an image that
/// takes 4 s added to each HTML page so that the page's load (when Chromium
/// dumps its DOM) waits for live updates to arrive; `served` is notified
/// once an HTML page has gone out.
async fn live_proxy(upstream: String, cookie: String, served: Arc<Notify>) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let app = Router::new().fallback(move |req: Request| {
        let (upstream, cookie, served, client) = (upstream.clone(), cookie.clone(), served.clone(), client.clone());
        async move {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            if path == "/slow" {
                tokio::time::sleep(Duration::from_secs(4)).await;
                return StatusCode::NOT_FOUND.into_response();
            }
            let up = http::Request::get(format!("http://{upstream}{path}"))
                .header(http::header::COOKIE, cookie)
                .body(Body::empty())
                .expect("request");
            let (mut parts, body) = client.request(up).await.expect("upstream").into_parts();
            let html =
                parts.headers.get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            if !html {
                return Response::from_parts(parts, Body::new(body));
            }
            let page = body.collect().await.expect("page").to_bytes();
            let page = String::from_utf8_lossy(&page).replace("</body>", r#"<img src="/slow"></body>"#);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            served.notify_one();
            Response::from_parts(parts, Body::from(page))
        }
    });
    serve(app).await
}

/// The overview's figures change in Chromium without a reload: the page is
/// served (the webhooks queue running), then the admin pauses the queue
/// through the console, and the page's DOM shows it paused.
async fn assert_live_update(bin: &str, addr: &str, cookie: &str) {
    let served = Arc::new(Notify::new());
    let live = live_proxy(addr.to_owned(), cookie.to_owned(), served.clone()).await;
    let url = format!("http://{live}/admin/console");
    let profile = tempdir();
    let dump = tokio::process::Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .kill_on_drop(true)
        .output();
    let pause = async {
        tokio::time::timeout(Duration::from_mins(1), served.notified()).await.expect("the page was never served");
        let (status, head) = post_form(addr, cookie, "/admin/console", "/admin/console/queues/webhooks/pause").await;
        assert_eq!(status, 303, "{head}");
    };
    let (out, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(90), dump), pause);
    let dom = String::from_utf8_lossy(&out.expect("chromium timed out").expect("run chromium").stdout).into_owned();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(dom.contains(r#"id="q-webhooks-paused">paused"#), "the live update did not arrive: {dom}");
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

/// The first figures the live-update stream sends.
async fn first_live_event(addr: &str, cookie: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /admin/console/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&seen).contains("}\n\n") {
            let n = conn.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no event within 10 s");
    String::from_utf8_lossy(&seen).into_owned()
}

fn screenshots_dir() -> PathBuf {
    // tests run in the package's directory; the workspace's target is beside it.
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| Path::new("..").join("target"), PathBuf::from);
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Chromium's rendering of `url`: the DOM after load, and a screenshot.
async fn render(bin: &str, url: &str, shot: &Path) -> String {
    let profile = tempdir();
    let common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"];
    let run = |extra: Vec<String>| {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(common).arg(format!("--user-data-dir={}", profile.display())).args(extra).arg(url);
        cmd.kill_on_drop(true).output()
    };
    let shot_arg = format!("--screenshot={}", shot.display());
    let out = tokio::time::timeout(Duration::from_secs(90), run(vec![shot_arg, "--window-size=1280,900".into()]))
        .await
        .expect("chromium --screenshot timed out")
        .expect("run chromium");
    assert!(shot.exists(), "no screenshot of {url}: {}", String::from_utf8_lossy(&out.stderr));
    let out = tokio::time::timeout(Duration::from_secs(90), run(vec!["--dump-dom".into()]))
        .await
        .expect("chromium --dump-dom timed out")
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sunusav-chromium-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("profile dir");
    dir
}

/// A group of two whose first pot goes to an invoice the node cannot pay:
/// (group id, its members in payout order, the contributions' payment
/// hashes, the dead payout job's id).
async fn dead_payout(addr: &str) -> (String, [String; 2], Vec<String>, String) {
    let addr = addr.to_owned();
    // A group of two whose first pot goes to an invoice the node cannot pay.
    let members = [uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()];
    let (status, group) =
        api(&addr, "POST", "/groups", Some(&json!({ "members": members, "contribution_msat": CONTRIBUTION }))).await;
    assert_eq!(status, 201, "{group}");
    let id = group["id"].as_str().expect("id").to_owned();
    assert_eq!(api(&addr, "POST", &format!("/groups/{id}/start"), None).await.0, 200);
    let unpayable = InvoiceSigner::from_bytes([0x42; 32]).mint(
        PaymentHash::from_bytes(rand::random()),
        Some(Msat::new(2 * CONTRIBUTION)),
        Duration::from_hours(1),
        Network::Regtest,
        SystemTime::now(),
    );
    let (status, accepted) = api_member(
        &addr,
        &members[0],
        "POST",
        &format!("/groups/{id}/payout-invoice"),
        Some(&json!({ "bolt11": unpayable })),
    )
    .await;
    assert!(status < 300, "{status} {accepted}");
    let mut hashes = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let (status, invoice) =
            api_member(&addr, member, "POST", &format!("/groups/{id}/invoices"), Some(&json!({ "member": member })))
                .await;
        assert_eq!(status, 201, "{invoice}");
        let hash = invoice["payment_hash"].as_str().expect("hash").to_owned();
        let event = json!({ "payment_hash": hash, "status": "settled", "amount_msat": CONTRIBUTION, "event_id": format!("evt-browser-{i}") }).to_string();
        let signature = sign(SECRET.as_bytes(), event.as_bytes());
        let (status, head, _) = http(
            &addr,
            "POST",
            "/webhook/lightning",
            &[("Content-Type", "application/json"), ("x-sunu-signature", &signature)],
            &event,
        )
        .await;
        assert_eq!(status, 202, "{head}");
        hashes.push(hash);
    }
    let dead_job = format!("payout:{id}:1");
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    loop {
        let (_, dead) = api(&addr, "GET", "/admin/queues/payouts/jobs?state=dead", None).await;
        if dead["jobs"].as_array().is_some_and(|j| j.iter().any(|j| j["id"] == dead_job.as_str())) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the payout never died: {dead}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    (id, members, hashes, dead_job)
}

/// The errors of a job's history, as the JSON admin route reports them.
async fn job_errors(addr: &str, job: &str) -> Vec<String> {
    let (_, info) = api(addr, "GET", &format!("/admin/queues/payouts/jobs/{job}"), None).await;
    info["errors"]
        .as_array()
        .expect("an error history")
        .iter()
        .map(|e| e["error"].as_str().expect("text").to_owned())
        .collect()
}

/// Posts an action as the browser's form would: the session's cookie and
/// the form token of the page it came from.
async fn post_form(addr: &str, cookie: &str, page: &str, action: &str) -> (u16, String) {
    let (_, _, html) = http(addr, "GET", page, &[("Cookie", cookie)], "").await;
    let csrf = html.split(r#"name="csrf" value=""#).nth(1).and_then(|s| s.split('"').next()).expect("a form token");
    let (status, head, _) = http(
        addr,
        "POST",
        action,
        &[("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")],
        &format!("csrf={csrf}"),
    )
    .await;
    (status, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_searches_by_payment_hash_retries_a_dead_job_and_finds_it_in_the_audit_log() {
    let Some(bin) = chromium() else { return };

    // Arrange: the example server with both roles, on PostgreSQL and Redis
    // when they are configured (a fresh database and key prefix), on its
    // embedded default otherwise.
    let mut env = match common::services() {
        Some((db, redis)) => ServerEnv::real(&common::fresh_database(&db).await, &redis, &common::fresh_prefix()),
        None => ServerEnv::default(),
    };
    env.extra = vec![("ADMIN_TOKEN".into(), ADMIN.into()), ("OPERATOR_TOKEN".into(), OPERATOR.into())];
    let server = start_server(&env).await;
    let addr = server.url.trim_start_matches("http://").to_owned();

    let (id, members, hashes, dead_job) = dead_payout(&addr).await;

    // Log in through the form, as each role; Chromium goes through a proxy
    // that presents the session's cookie.
    let admin_cookie = login(&addr, ADMIN).await;
    let operator_cookie = login(&addr, OPERATOR).await;
    let as_admin = cookie_proxy(addr.clone(), admin_cookie.clone()).await;
    let as_operator = cookie_proxy(addr.clone(), operator_cookie.clone()).await;
    let dir = screenshots_dir();

    // Act and assert, page by page.
    let login_page = render(&bin, &format!("http://{addr}/admin/console/login"), &dir.join("00-login.png")).await;
    assert!(login_page.contains(r#"name="token""#), "{login_page}");
    let live = first_live_event(&addr, &admin_cookie).await;
    assert!(live.contains(r#""q-payouts-dead":"1""#), "{live}");
    let pages = [
        ("01-overview.png", "/admin/console".to_owned(), r#"id="q-payouts-dead""#),
        ("02-jobs-dead.png", "/admin/console/jobs?queue=payouts&state=dead".to_owned(), dead_job.as_str()),
        ("03-search-payment-hash.png", format!("/admin/console/jobs?q={}", hashes[0]), "the payout of its cycle"),
        ("04-job-detail.png", format!("/admin/console/jobs/payouts/{dead_job}"), r#"data-action="Retry""#),
        ("05-deliveries.png", "/admin/console/deliveries".to_owned(), "evt-browser-1"),
        ("06-group.png", format!("/admin/console/groups/{id}"), "unknown payee invoice"),
        ("07-unapplied.png", "/admin/console/unapplied".to_owned(), "Balances held for members"),
        ("11-search-member.png", format!("/admin/console/jobs?q={}", members[0]), "a payout to the member"),
    ];
    for (shot, path, expect) in &pages {
        let dom = render(&bin, &format!("http://{as_admin}{path}"), &dir.join(shot)).await;
        assert!(dom.contains(expect), "{path} lacks {expect}: {dom}");
    }
    let search = render(
        &bin,
        &format!("http://{as_admin}/admin/console/jobs?q={}", hashes[0]),
        &dir.join("03-search-payment-hash.png"),
    )
    .await;
    assert!(search.contains(&format!(r#"data-job="{dead_job}""#)), "{search}");
    // The dead job's error history, on its page: each attempt's error.
    let errors = job_errors(&addr, &dead_job).await;
    assert!(!errors.is_empty(), "a dead job has an error history");
    let detail = render(
        &bin,
        &format!("http://{as_admin}/admin/console/jobs/payouts/{dead_job}"),
        &dir.join("04-job-detail.png"),
    )
    .await;
    assert!(detail.contains(&format!(r#"data-errors="{}""#, errors.len())), "{errors:?}: {detail}");
    let read_only = render(
        &bin,
        &format!("http://{as_operator}/admin/console/jobs/payouts/{dead_job}"),
        &dir.join("10-operator-job-detail.png"),
    )
    .await;
    assert!(read_only.contains(r#"data-role="operator""#) && !read_only.contains("data-action="), "{read_only}");

    // The operator's retry is refused; the admin's, with the form token, goes through.
    let retry = format!("/admin/console/jobs/payouts/{dead_job}/retry");
    let detail_page = format!("/admin/console/jobs/payouts/{dead_job}");
    for (cookie, expected) in [(&operator_cookie, 403), (&admin_cookie, 303)] {
        let (status, head) = post_form(&addr, cookie, &detail_page, &retry).await;
        assert_eq!(status, expected, "{head}");
    }
    // The job ran again, and the payout's record (dead) turned it away:
    // the record is what an operator retries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = api(&addr, "GET", &format!("/admin/queues/payouts/jobs/{dead_job}"), None).await;
        if job["last_error"].as_str().is_some_and(|e| e.contains("retries it by its record")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the retried job did not run: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, _, detail) = http(&addr, "GET", &detail_page, &[("Cookie", &admin_cookie)], "").await;
    assert!(detail.contains(r#"data-action="Retry payout by its record""#), "{detail}");
    let (status, head) =
        post_form(&addr, &admin_cookie, &detail_page, &format!("/admin/console/payouts/{dead_job}/retry")).await;
    assert_eq!(status, 303, "{head}");
    assert!(head.contains(&format!("/admin/console/groups/{id}")), "{head}");

    let audit = render(&bin, &format!("http://{as_operator}/admin/console/audit"), &dir.join("08-audit.png")).await;
    assert!(audit.contains(&format!("payouts/{dead_job}")), "{audit}");
    assert!(audit.contains(r#"class="succeeded""#) && audit.contains(r#"class="refused""#), "{audit}");
    assert!(audit.contains("queue_retry") && audit.contains("payout_retry"), "{audit}");
    // The retried job's page: its history holds the first run's errors and the retry's.
    let retried = render(
        &bin,
        &format!("http://{as_admin}/admin/console/jobs/payouts/{dead_job}"),
        &dir.join("09-job-retried.png"),
    )
    .await;
    let after = job_errors(&addr, &dead_job).await;
    assert!(after.len() > errors.len(), "the retry's failure joins the history: {after:?}");
    assert!(after.last().is_some_and(|e| e.contains("retries it by its record")), "{after:?}");
    assert!(retried.contains(&format!(r#"data-errors="{}""#, after.len())), "{retried}");
    assert!(retried.contains("retries it by its record") && retried.contains(&errors[0]), "{retried}");
    assert_live_update(&bin, &addr, &admin_cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_serves_the_console_as_html_on_either_listener_layout() {
    for ops in [false, true] {
        let mut extra = vec![("ADMIN_TOKEN".to_owned(), ADMIN.to_owned()), ("OPERATOR_TOKEN".into(), OPERATOR.into())];
        if ops {
            extra.push(("OPS_BIND_ADDR".into(), "127.0.0.1:0".into()));
        }
        let server = start_server(&ServerEnv { extra, ..ServerEnv::default() }).await;
        let addr = server.url.trim_start_matches("http://").to_owned();
        let (status, head, body) = http(&addr, "GET", "/admin/console", &[], "").await;
        assert_eq!(status, 401, "ops listener {ops}: {head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "not the JSON error layer's: {head}");
        assert!(body.contains(r#"data-code="unauthorized""#) && body.contains(r#"action="/admin/console/login""#));
        let (status, head, _) = http(&addr, "GET", "/admin/console/", &[], "").await;
        assert_eq!(status, 308, "ops listener {ops}: the root with a slash: {head}");
        assert!(head.lines().any(|l| l.eq_ignore_ascii_case("location: /admin/console")), "{head}");
        let auth = format!("Bearer {OPERATOR}");
        let (status, _, body) = http(&addr, "GET", "/admin/console/audit", &[("Authorization", &auth)], "").await;
        assert_eq!(status, 200, "ops listener {ops}: {body}");
        let (status, _, body) =
            http(&addr, "POST", "/admin/console/queues/payouts/pause", &[("Authorization", &auth)], "").await;
        assert_eq!(status, 403, "ops listener {ops}: {body}");
        // The JSON routes keep their JSON errors.
        let (status, _, body) = http(&addr, "GET", "/admin/queues/payouts/counts", &[], "").await;
        assert_eq!((status, body.contains(r#""code":"unauthorized""#)), (401, true), "{body}");
    }
}
