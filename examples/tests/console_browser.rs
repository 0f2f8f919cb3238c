//! The operations console in headless Chromium (Debian's `chromium`): the
//! server's router with the console nested at `/admin/console`, on the
//! in-memory adapters, served on port 0. The test logs in over HTTP (the
//! form's cookie), has Chromium render every page with that cookie (a
//! second listener adds it to each request: Chromium takes no cookie on its
//! command line), searches by payment hash, retries a dead job with the
//! form token, and finds the retry in the audit log. Screenshots of each
//! page are written under `target/console-screenshots/`.
//!
//! Without `chromium` on PATH (or `CHROMIUM_BIN`) the test is skipped, and
//! fails under `SUNUSAV_REQUIRE_SERVICES=1` (scripts/test.sh installs it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use http::HeaderValue;
use sunusav_axum::{AdminToken, AppState, console_router, router};
use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{FailKind, NewJob, QueueConfig, WebhookEvent};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_core::{IdempotencyKey, PaymentHash};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "browser-admin-token-0001";
const OPERATOR: &str = "browser-operator-token-01";

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
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_searches_by_payment_hash_retries_a_dead_job_and_finds_it_in_the_audit_log() {
    let Some(bin) = chromium() else { return };

    // Arrange: the server's router and the console on the in-memory adapters,
    // a dead payout job, and a delivery naming a payment hash with its job.
    let store = Arc::new(MemoryStore::new());
    let tontine = Tontine::new(
        store.clone(),
        Arc::new(SimulatedNode::new()),
        Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default())),
        Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default())),
    );
    let dead = IdempotencyKey::parse("payout:browser-dead").expect("key");
    let payouts = tontine.payout_queue();
    payouts.enqueue(NewJob::new(dead.clone(), br#"{"note":"a payout"}"#.to_vec())).await.expect("enqueue");
    let job = payouts.reserve(Duration::from_secs(30)).await.expect("reserve").expect("a job");
    payouts
        .fail(&job.id, &job.token, "node: <script>alert(1)</script> no route", FailKind::Permanent)
        .await
        .expect("fail");
    let hash = PaymentHash::from_bytes([0x5a; 32]);
    let delivery = IdempotencyKey::webhook(Some("evt-browser-1"), b"");
    store
        .record_webhook(&WebhookEvent::new(delivery.clone(), b"{}".to_vec()).with_payment_hash(hash))
        .await
        .expect("record");
    tontine.webhook_queue().enqueue(NewJob::new(delivery.clone(), b"{}".to_vec())).await.expect("enqueue");

    let verifier = Verifier::hex_sha256([Secret::from_text("browser-test-secret-0123").expect("secret")]).expect("v");
    let state = AppState::new(tontine.clone(), Arc::new(verifier))
        .with_admin_token(AdminToken::new(ADMIN).expect("admin"))
        .with_operator_token(AdminToken::new(OPERATOR).expect("operator"));
    let app = router(state.clone()).nest("/admin/console", console_router(state));
    let addr = serve(app.clone()).await;

    // Log in over HTTP: the form sets the cookie.
    let (status, head, _) = http(
        &addr,
        "POST",
        "/admin/console/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned();

    // Chromium's listener: the same app, each request with the session's cookie.
    let injected = HeaderValue::from_str(&cookie).expect("cookie header");
    let with_cookie = app.layer(from_fn(move |mut req: Request, next: Next| {
        let injected = injected.clone();
        async move {
            req.headers_mut().insert(http::header::COOKIE, injected);
            next.run(req).await
        }
    }));
    let browser = serve(with_cookie).await;
    let dir = screenshots_dir();

    // Act and assert, page by page.
    let login = render(&bin, &format!("http://{addr}/admin/console/login"), &dir.join("00-login.png")).await;
    assert!(login.contains(r#"name="token""#), "{login}");
    let pages = [
        ("01-overview.png", "/admin/console".to_owned(), "q-payouts-dead"),
        ("02-jobs-dead.png", "/admin/console/jobs?queue=payouts&state=dead".to_owned(), "payout:browser-dead"),
        ("03-search-payment-hash.png", format!("/admin/console/jobs?q={hash}"), "a delivery naming it"),
        ("04-job-detail.png", format!("/admin/console/jobs/payouts/{dead}"), "data-action=\"Retry\""),
        ("05-deliveries.png", "/admin/console/deliveries".to_owned(), "evt-browser-1"),
        ("06-unapplied.png", "/admin/console/unapplied".to_owned(), "Balances held for members"),
        ("07-groups.png", "/admin/console/groups".to_owned(), "group id"),
    ];
    for (shot, path, expect) in &pages {
        let dom = render(&bin, &format!("http://{browser}{path}"), &dir.join(shot)).await;
        assert!(dom.contains(expect), "{path} lacks {expect}: {dom}");
        assert!(!dom.contains("<script>alert"), "{path} runs a hostile value");
    }

    // Retry the dead job as the browser's form would: cookie and form token.
    let (_, _, detail) =
        http(&addr, "GET", &format!("/admin/console/jobs/payouts/{dead}"), &[("Cookie", &cookie)], "").await;
    let csrf = detail.split(r#"name="csrf" value=""#).nth(1).and_then(|s| s.split('"').next()).expect("a form token");
    let (status, head, _) = http(
        &addr,
        "POST",
        &format!("/admin/console/jobs/payouts/{dead}/retry"),
        &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    assert_eq!(payouts.get(&dead).await.expect("get").expect("job").state.as_str(), "waiting");

    let audit = render(&bin, &format!("http://{browser}/admin/console/audit"), &dir.join("08-audit.png")).await;
    assert!(audit.contains("queue_retry") && audit.contains("payouts/payout:browser-dead"), "{audit}");
    assert!(audit.contains(r#"class="succeeded""#), "{audit}");
    let after =
        render(&bin, &format!("http://{browser}/admin/console/jobs/payouts/{dead}"), &dir.join("09-job-retried.png"))
            .await;
    assert!(after.contains(r#"class="waiting""#), "{after}");
}
