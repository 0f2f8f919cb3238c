//! Fault injection on PostgreSQL + Redis: processes killed at random points,
//! a crash between "paid" and "recorded", Redis restarted, Redis losing its
//! data, and PostgreSQL backends terminated mid-run. Every cycle is paid exactly once, no
//! contribution is lost, no job is left stuck. Bounded in time.

mod common;

use std::time::Duration;

use common::{
    OwnRedis, SECRET, ServerEnv, free_port, fresh_database, fresh_prefix, paid_counts, services, start_server,
};
use http::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use sunusav_examples::client::HttpClient;
use sunusav_examples::demo::{DemoConfig, DemoReport, run, sign};

fn demo(url: &str, members: usize) -> DemoConfig {
    DemoConfig {
        urls: vec![url.to_owned()],
        secret: SECRET.into(),
        members,
        concurrency: 8,
        duplicates: 2,
        forgeries: 1,
        cycle_timeout: Duration::from_secs(40),
        admin_token: Some(common::ADMIN_TOKEN.into()),
        ..DemoConfig::default()
    }
}

/// Waits until no job is waiting, active, delayed or failed, and none is dead.
async fn assert_drained(url: &str) {
    let client = common::client(url);
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        last = client.get("/health/workers").await.expect("health/workers").json();
        let busy: u64 = ["payouts", "webhooks"]
            .iter()
            .flat_map(|q| {
                ["waiting", "active", "delayed", "failed"].map(|s| last["queues"][q][s].as_u64().unwrap_or(1))
            })
            .sum();
        if busy == 0 {
            for q in ["payouts", "webhooks"] {
                assert_eq!(last["queues"][q]["dead"], 0, "dead jobs in {q}: {last}");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("jobs left stuck: {last}");
}

fn check(report: &DemoReport, members: usize, seed: u64) {
    assert!(report.ok(), "seed {seed}: {report}");
    assert_eq!(report.payouts, members, "seed {seed}: {report}");
}

/// xorshift, so that a failing iteration can be replayed from its seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_never_pays_twice_nor_loses_a_contribution() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let port = free_port();
    let mut env = ServerEnv::real(&db, &redis, &fresh_prefix());
    env.extra.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env.extra.push(("SIM_NODE_LATENCY_MS".into(), "15".into()));
    let url = format!("http://127.0.0.1:{port}");
    let base_seed =
        std::env::var("FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>) | 1;
    eprintln!("fault seed {base_seed} (replay with FAULT_SEED={base_seed})");
    let mut state = base_seed;
    let members = 4;
    let mut server = start_server(&env).await;
    for iteration in 0..20 {
        let seed = next(&mut state);
        let config = demo(&url, members);
        let run = tokio::spawn(async move { run(&config).await });
        let kill_after = Duration::from_millis(20 + seed % 700);
        tokio::time::sleep(kill_after).await;
        server.signal("KILL");
        let _ = server.wait(Duration::from_secs(10)).await;
        server = start_server(&env).await;
        let report = run.await.expect("demo task").unwrap_or_else(|e| panic!("seed {seed}: demo failed: {e:#}"));
        eprintln!("iteration {iteration}: killed after {kill_after:?}, {} webhooks", report.webhooks_sent);
        check(&report, members, seed);
        assert_drained(&url).await;
    }
    let (paid, max) = paid_counts(&db).await;
    assert_eq!(paid, 20 * i64::try_from(members).unwrap(), "every cycle of every run paid");
    assert_eq!(max, 1, "nothing paid twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_node_paid_is_reconciled_on_restart_and_never_paid_twice() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let port = free_port();
    let mut env = ServerEnv::real(&db, &redis, &fresh_prefix());
    env.extra.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    let url = format!("http://127.0.0.1:{port}");
    let mut crashing = env.clone();
    crashing.extra.push(("SIM_NODE_CRASH_AFTER_PAY".into(), "1".into()));
    let mut server = start_server(&crashing).await;
    let config = demo(&url, 2);
    let run = tokio::spawn(async move { run(&config).await });
    // The first payout aborts the process right after the node paid.
    let crashed = server.wait(Duration::from_secs(30)).await;
    assert!(!crashed, "the process must have aborted");
    assert_eq!(paid_counts(&db).await, (1, 1), "the node paid once before the crash");
    let _server = start_server(&env).await;
    let report = run.await.expect("demo task").expect("demo runs");
    check(&report, 2, 0);
    assert_eq!(paid_counts(&db).await, (2, 1), "reconciled through the node: never paid twice");
    assert_drained(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_loses_no_job() {
    let Some((admin, _)) = services() else { return };
    let mut redis = OwnRedis::start();
    let db = fresh_database(&admin).await;
    let mut env = ServerEnv::real(&db, &redis.url(), &fresh_prefix());
    env.extra.push(("SIM_NODE_LATENCY_MS".into(), "20".into()));
    let server = start_server(&env).await;
    let config = demo(&server.url, 6);
    let run = tokio::spawn(async move { run(&config).await });
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        redis.restart();
    }
    let report = run.await.expect("demo task").expect("demo runs");
    check(&report, 6, 0);
    assert_eq!(paid_counts(&db).await, (6, 1));
    assert_drained(&server.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backends_terminated_mid_run_leave_no_partial_state() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let db_name = db.rsplit('/').next().unwrap().to_owned();
    let mut env = ServerEnv::real(&db, &redis, &fresh_prefix());
    env.extra.push(("SIM_NODE_LATENCY_MS".into(), "20".into()));
    let server = start_server(&env).await;
    let config = demo(&server.url, 6);
    let run = tokio::spawn(async move { run(&config).await });
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
    let mut terminated = 0i64;
    for _ in 0..8 {
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db_name)
        .fetch_one(&mut admin_conn)
        .await
        .expect("terminate backends");
        terminated += n;
    }
    let report = run.await.expect("demo task").expect("demo runs");
    assert!(terminated > 0, "no backend was terminated");
    check(&report, 6, 0);
    assert_eq!(paid_counts(&db).await, (6, 1));
    assert_drained(&server.url).await;
    // No partial state: every contribution of the finished group belongs to a
    // complete, paid cycle. (The demo's second group is cancelled after one
    // member paid: its one contribution is returned to that member's balance.)
    let mut conn = sqlx::PgConnection::connect(&db).await.expect("connect");
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT g.status, count(*) FROM sunusav.contributions c JOIN sunusav.tontine_groups g ON g.id = c.group_id \
         GROUP BY g.status ORDER BY g.status",
    )
    .fetch_all(&mut conn)
    .await
    .expect("count");
    assert_eq!(
        counts,
        vec![("cancelled".into(), 1), ("finished".into(), 36)],
        "six cycles of six contributions, and the cancelled group's one"
    );
}

const ADMIN: &str = common::ADMIN_TOKEN;

/// `POST` to an admin route; panics unless it succeeds.
async fn admin_post(client: &HttpClient, path: &str) {
    let auth = format!("Bearer {ADMIN}");
    let res = client.send(Method::POST, path, &[("authorization", auth.as_str())], Vec::new()).await.expect(path);
    assert!(res.status.is_success(), "{path} answered {}", res.status);
}

/// A queue's counts, through the admin API.
async fn counts(client: &HttpClient, queue: &str) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let path = format!("/admin/queues/{queue}/counts");
    client.send(Method::GET, &path, &[("authorization", auth.as_str())], Vec::new()).await.expect("counts").json()
}

/// Issues each member's invoice of the current cycle and delivers it, signed;
/// every delivery must be answered 202.
async fn pay_cycle(client: &HttpClient, group: &str, members: &[String]) {
    for m in members {
        let member = client.as_member(m).await.expect("member token");
        let inv = member.post_json(&format!("/groups/{group}/invoices"), &json!({ "member": m })).await.unwrap().json();
        let body = serde_json::to_vec(&json!({
            "payment_hash": inv["payment_hash"], "status": "settled", "amount_msat": inv["amount_msat"],
            "event_id": format!("evt-{}", inv["payment_hash"].as_str().unwrap()),
        }))
        .unwrap();
        let sig = sign(SECRET.as_bytes(), &body);
        let headers = [("content-type", "application/json"), ("x-sunu-signature", sig.as_str())];
        let res = client.send(Method::POST, "/webhook/lightning", &headers, body).await.unwrap();
        assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
    }
}

/// Polls the group until `done` holds (within 30 s).
async fn wait_group(client: &HttpClient, group: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut g = Value::Null;
    for _ in 0..300 {
        g = client.get(&format!("/groups/{group}")).await.unwrap().json();
        if done(&g) {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s: {g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_loses_its_data_loses_no_contribution_and_no_payout() {
    let Some((admin, _)) = services() else { return };
    let redis = OwnRedis::start();
    let db = fresh_database(&admin).await;
    let mut env = ServerEnv::real(&db, &redis.url(), &fresh_prefix());
    // Warnings on: the sweeps say what they queued again.
    for (k, v) in
        [("ADMIN_TOKEN", ADMIN), ("SWEEP_INTERVAL_MS", "200"), ("SWEEP_AFTER_MS", "1000"), ("RUST_LOG", "warn")]
    {
        env.extra.push((k.into(), v.into()));
    }
    let server = start_server(&env).await;
    let client = common::client(&server.url);
    let members: Vec<String> = (0..2).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client
        .post_json("/groups", &json!({"members": members, "contribution_msat": 10_000, "fee_bps": 100}))
        .await
        .unwrap();
    assert_eq!(created.status, 201);
    client
        .set_destinations(&members, &sunusav_core::memory::SimulatedNode::payee_node().to_hex())
        .await
        .expect("destinations");
    let group = created.json()["id"].as_str().unwrap().to_owned();
    assert!(client.post_json(&format!("/groups/{group}/start"), &json!({})).await.unwrap().status.is_success());

    // Cycle 1: both deliveries answered and waiting in the paused queue, then
    // Redis loses everything. Only the store still has them.
    admin_post(&client, "/admin/queues/webhooks/pause").await;
    pay_cycle(&client, &group, &members).await;
    assert_eq!(counts(&client, "webhooks").await["waiting"], 2, "queued, not settled");
    redis.flush_all();
    assert_eq!(counts(&client, "webhooks").await["waiting"], 0, "the jobs are gone");
    wait_group(&client, &group, "cycle 1 paid", |g| g["cycle"] == 2).await;

    // Cycle 2 (the last): the payout's job waits in the paused queue when
    // Redis loses everything again.
    admin_post(&client, "/admin/queues/payouts/pause").await;
    pay_cycle(&client, &group, &members).await;
    wait_group(&client, &group, "cycle 2 complete", |g| g["cycle_status"] == "completing").await;
    for _ in 0..100 {
        if counts(&client, "payouts").await["waiting"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts(&client, "payouts").await["waiting"], 1, "the payout job waits");
    redis.flush_all();
    let g = wait_group(&client, &group, "cycle 2 paid", |g| g["status"] == "finished").await;

    assert_eq!(g["payouts"].as_array().map(Vec::len), Some(2), "{g}");
    assert_eq!(paid_counts(&db).await, (2, 1), "each cycle paid once");
    let mut conn = sqlx::PgConnection::connect(&db).await.expect("connect");
    let (contributions,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sunusav.contributions").fetch_one(&mut conn).await.expect("count");
    assert_eq!(contributions, 4, "no contribution lost");
    let logs = server.logs.lock().unwrap().clone();
    assert!(logs.contains("queued again webhook deliveries"), "the webhook sweep did it");
    assert!(logs.contains("queued again payouts"), "the payout sweep did it");
    assert_drained(&server.url).await;
}
