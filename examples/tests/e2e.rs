//! End to end: the server binary on port 0 driven by the demo driver, on the
//! embedded default and on PostgreSQL + Redis.

mod common;

use std::time::Duration;

use common::{SECRET, ServerEnv, fresh_database, fresh_prefix, paid_counts, services, start_server};
use sunusav_examples::client::HttpClient;
use sunusav_examples::demo::{DemoConfig, run};

fn demo(urls: Vec<String>, members: usize) -> DemoConfig {
    DemoConfig {
        urls,
        secret: SECRET.into(),
        members,
        concurrency: 16,
        duplicates: 3,
        forgeries: 3,
        cycle_timeout: Duration::from_secs(30),
        admin_token: Some(common::ADMIN_TOKEN.into()),
        ..DemoConfig::default()
    }
}

async fn processed(url: &str, queue: &str) -> u64 {
    let w = HttpClient::new(url).get("/health/workers").await.expect("health/workers").json();
    w["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["queue"] == queue)
        .map(|p| p["processed"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn the_demo_holds_its_invariants_on_the_embedded_default() {
    let mut server = start_server(&ServerEnv::default()).await;
    let report = run(&DemoConfig { scheduled: true, ..demo(vec![server.url.clone()], 6) }).await.expect("demo runs");
    assert!(report.ok(), "{report}");
    assert_eq!(report.payouts, 6);
    assert_eq!(report.forgeries_rejected, 18);
    assert_eq!(report.scheduled_groups, 4, "a late member under each late policy, and an auction");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit with status 0");
}

#[tokio::test]
async fn the_demo_holds_its_invariants_on_postgres_and_redis() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let mut server = start_server(&ServerEnv::real(&db, &redis, &fresh_prefix())).await;
    let report = run(&DemoConfig { scheduled: true, ..demo(vec![server.url.clone()], 6) }).await.expect("demo runs");
    assert!(report.ok(), "{report}");
    assert_eq!(report.payouts, 6);
    assert_eq!(report.scheduled_groups, 4, "a late member under each late policy, and an auction");
    // The main group's six, and the scheduled groups' seven (2 + 2 + 2 + 1).
    assert_eq!(report.scheduled_payouts, 7);
    assert_eq!(paid_counts(&db).await, (13, 1), "thirteen payouts, none paid twice");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await);
}

#[tokio::test]
async fn two_servers_on_one_postgres_and_redis_share_the_work_without_a_double_payout() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let env = ServerEnv::real(&db, &redis, &fresh_prefix());
    let a = start_server(&env).await;
    // The second fetches webhook jobs in batches, ahead of its workers.
    let mut prefetching = env.clone();
    prefetching.extra.push(("WEBHOOK_PREFETCH".into(), "16".into()));
    let b = start_server(&prefetching).await;
    let report =
        run(&DemoConfig { concurrency: 32, ..demo(vec![a.url.clone(), b.url.clone()], 8) }).await.expect("demo runs");
    assert!(report.ok(), "{report}");
    assert_eq!(paid_counts(&db).await, (8, 1), "eight payouts, none paid twice");
    let (pa, pb) = (processed(&a.url, "webhooks").await, processed(&b.url, "webhooks").await);
    assert!(pa > 0 && pb > 0, "both servers settled webhooks: {pa} and {pb}");
    assert!(pa + pb >= report.accepted, "every accepted webhook was processed: {pa} + {pb} < {}", report.accepted);
}

#[tokio::test]
async fn sigterm_during_a_run_loses_no_job_and_no_payout() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let env = ServerEnv::real(&db, &redis, &fresh_prefix());
    // A slow node keeps payouts running when the signal arrives.
    let mut env = env;
    env.extra.push(("SIM_NODE_LATENCY_MS".into(), "150".into()));
    // The stopped server holds webhook jobs ahead: they still run at shutdown.
    let mut prefetching = env.clone();
    prefetching.extra.push(("WEBHOOK_PREFETCH".into(), "16".into()));
    let mut a = start_server(&prefetching).await;
    let b = start_server(&env).await;
    let config = DemoConfig { concurrency: 8, ..demo(vec![a.url.clone(), b.url.clone()], 8) };
    let run = tokio::spawn(async move { run(&config).await });
    // Let the run get going, then stop one server gracefully in the middle of it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.signal("TERM");
    assert!(a.wait(Duration::from_secs(20)).await, "graceful exit with status 0");
    let report = run.await.expect("demo task").expect("demo runs");
    assert!(report.ok(), "{report}");
    assert_eq!(paid_counts(&db).await, (8, 1), "eight payouts, none paid twice");
    drop(b);
}

#[tokio::test]
async fn the_server_refuses_to_start_on_real_backends_without_a_webhook_secret() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sunusav-server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .await
        .expect("run sunusav-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WEBHOOK_HMAC_SECRET is required"), "{stderr}");
}

#[tokio::test]
async fn the_embedded_default_generates_and_prints_a_secret_when_none_is_set() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sunusav-server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sunusav-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("a line").expect("read");
    let first = first.expect("the server printed something");
    let secret = first.rsplit(' ').next().unwrap_or_default();
    assert!(first.starts_with("WEBHOOK_HMAC_SECRET not set; generated one"), "{first}");
    assert_eq!(secret.len(), 64, "a 32-byte hex secret: {first}");
    child.kill().await.expect("kill");
}
