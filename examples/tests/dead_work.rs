//! Dead work is recovered from the store, never from queue retention, on
//! PostgreSQL + Redis: the application wired in process (a fresh database
//! and Redis key prefix per test, a simulated node whose reachability the
//! test switches), served over HTTP on port 0, driven through the HTTP API.
//! The Redis queues keep their default retention: 50 dead letters, a gone
//! job's id held for 24 h.
//!
//! Issue 14's case 4 (more than 50 dead payouts; webhook jobs that die and
//! are trimmed) and case 5 (one event id with another body), each ending with
//! every group finished, each payout paid once and every msat accounted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{SECRET, fresh_database, fresh_prefix, services};
use http::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use sunusav_axum::{AdminToken, AppState, router};
use sunusav_core::memory::SimulatedNode;
use sunusav_core::ports::{Backoff, JobOptions, QueueConfig};
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::{GroupId, IdempotencyKey, LockKey};
use sunusav_examples::client::{HttpClient, Response};
use sunusav_examples::config::WebhookScheme;
use sunusav_examples::demo::sign;
use sunusav_examples::wiring::verifier;
use sunusav_postgres::{PgStore, PgStoreOptions};
use sunusav_redis::{RedisConfig, RedisConnection};

const ADMIN: &str = common::ADMIN_TOKEN;
const SIXTY: usize = 60;

/// The application on PostgreSQL + Redis, served on a free port.
struct Stack {
    client: HttpClient,
    node: SimulatedNode,
    db: String,
    workers: Workers,
    redis: RedisConnection,
    server: tokio::task::JoinHandle<()>,
}

impl Stack {
    /// Settlements wait at most `lock_timeout` for a group's lock; a payout
    /// job has 2 attempts and a webhook job `webhook_attempts`, with short
    /// backoffs (so that work dies within the test's time).
    async fn start(admin_url: &str, redis_url: &str, lock_timeout: Duration, webhook_attempts: u32) -> Self {
        let db = fresh_database(admin_url).await;
        let options = PgStoreOptions { lock_timeout, ..PgStoreOptions::default() };
        let store = PgStore::connect_with(&db, &options).await.expect("connect");
        sunusav_postgres::migrate(store.pool()).await.expect("migrate");
        let redis =
            RedisConnection::connect(RedisConfig::from_url(redis_url).expect("REDIS_URL")).await.expect("redis");
        let prefix = fresh_prefix();
        let payouts = redis.queue(PAYOUT_QUEUE, &prefix, QueueConfig::default()).expect("payout queue");
        let webhooks = redis.queue(WEBHOOK_QUEUE, &prefix, QueueConfig::default()).expect("webhook queue");
        let node = SimulatedNode::new();
        let short = Backoff { base: Duration::from_millis(50), max: Duration::from_millis(200), jitter: false };
        let tontine = Tontine::new(Arc::new(store), Arc::new(node.clone()), Arc::new(payouts), Arc::new(webhooks))
            .with_batched_ingest()
            .with_payout_job_options(JobOptions { max_attempts: 2, backoff: short, ..JobOptions::default() })
            .with_webhook_job_options(JobOptions {
                max_attempts: webhook_attempts,
                backoff: short,
                ..JobOptions::default()
            });
        let workers = Workers::start(
            &tontine,
            WorkersConfig::default()
                .with_lease(Duration::from_secs(10))
                .with_stalled_interval(Duration::from_millis(250)),
        );
        let verifier = verifier(WebhookScheme::Sha256, SECRET, None, None).expect("verifier");
        let admin = AdminToken::new(ADMIN).expect("token");
        let members = sunusav_axum::MemberTokens::new(b"dead-work-member-token-secret-0123456789").expect("secret");
        let state = AppState::new(tontine, Arc::new(verifier))
            .with_identity(sunusav_axum::BearerTokens::operator(admin.clone()).with_members(members.clone()))
            .with_member_tokens(members)
            .with_admin_token(admin);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            axum::serve(listener, router(state)).await.expect("serve");
        });
        Self { client: common::client(&url), node, db, workers, redis, server }
    }

    async fn stop(self) {
        self.server.abort();
        assert!(self.workers.shutdown(Duration::from_secs(10)).await, "workers stopped in time");
        self.redis.close().await;
    }

    async fn admin(&self, method: Method, path: &str) -> Response {
        let auth = format!("Bearer {ADMIN}");
        self.client.send(method, path, &[("authorization", auth.as_str())], Vec::new()).await.expect(path)
    }

    async fn group(&self, id: &str) -> Value {
        self.client.get(&format!("/groups/{id}")).await.expect("group").json()
    }

    /// `n` started groups of two; their ids and members.
    async fn groups(&self, n: usize) -> Vec<(String, Vec<String>)> {
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            let members: Vec<String> = (0..2).map(|_| uuid::Uuid::new_v4().to_string()).collect();
            let created = self
                .client
                .post_json("/groups", &json!({ "members": members, "contribution_msat": 10_000, "fee_bps": 100 }))
                .await
                .expect("create");
            assert_eq!(created.status, 201);
            self.client
                .set_destinations(&members, &sunusav_core::memory::SimulatedNode::payee_node().to_hex())
                .await
                .expect("destinations");
            let id = created.json()["id"].as_str().expect("id").to_owned();
            let started = self.client.post_json(&format!("/groups/{id}/start"), &json!({})).await.expect("start");
            assert!(started.status.is_success());
            all.push((id, members));
        }
        all
    }

    /// The signed deliveries paying every member's invoice of the current
    /// cycle (issued now): `(event key, body)`.
    async fn payments(&self, group: &str, members: &[String]) -> Vec<(IdempotencyKey, Vec<u8>)> {
        let mut all = Vec::new();
        for m in members {
            let inv = self
                .client
                .as_member(m)
                .await
                .expect("member token")
                .post_json(&format!("/groups/{group}/invoices"), &json!({ "member": m }))
                .await
                .expect("invoice")
                .json();
            let event_id = format!("evt-{}", inv["payment_hash"].as_str().expect("hash"));
            let body = serde_json::to_vec(&json!({
                "payment_hash": inv["payment_hash"], "status": "settled", "amount_msat": inv["amount_msat"],
                "event_id": event_id,
            }))
            .expect("json");
            all.push((IdempotencyKey::parse(format!("webhook:{event_id}")).expect("key"), body));
        }
        all
    }

    async fn deliver(&self, body: &[u8]) -> Response {
        let sig = sign(SECRET.as_bytes(), body);
        let headers = [("content-type", "application/json"), ("x-sunu-signature", sig.as_str())];
        self.client.send(Method::POST, "/webhook/lightning", &headers, body.to_vec()).await.expect("deliver")
    }

    /// Runs a count over sunusav's tables (in their schema, `sunusav`).
    async fn count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.db).await.expect("connect");
        sqlx::query("SET search_path TO sunusav").execute(&mut conn).await.expect("search_path");
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.expect(sql);
        conn.close().await.ok();
        n
    }

    /// Polls until `done(group)` holds for every group (within 60 s).
    async fn wait_groups(&self, groups: &[(String, Vec<String>)], what: &str, done: impl Fn(&Value) -> bool) {
        for (id, _) in groups {
            let mut g = Value::Null;
            for _ in 0..600 {
                g = self.group(id).await;
                if done(&g) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(done(&g), "{what}: not within 60 s: {g}");
        }
    }

    /// Pays every group's second (last) cycle, then checks that every group
    /// finished, each payout was paid once, and every msat is accounted.
    async fn finish(&self, groups: &[(String, Vec<String>)]) {
        for (id, members) in groups {
            for (_, body) in self.payments(id, members).await {
                assert_eq!(self.deliver(&body).await.status, 202);
            }
        }
        self.wait_groups(groups, "finished", |g| g["status"] == "finished").await;
        for (id, _) in groups {
            let g = self.group(id).await;
            assert_eq!(g["cycle_status"], "paid_out", "{g}");
            let ledger = self.client.get(&format!("/groups/{id}/ledger")).await.expect("ledger").json();
            let a = &ledger["accounting"];
            let sum = ["contributions", "balances", "released"].iter().map(|k| a[k].as_u64().expect(k)).sum::<u64>();
            assert_eq!(a["received"].as_u64(), Some(sum), "received = contributions + balances + released: {a}");
            assert_eq!(a["received"].as_u64(), Some(40_000), "two cycles of two contributions: {a}");
            for cycle in 1..=2 {
                let key = IdempotencyKey::parse(format!("payout:{id}:{cycle}")).expect("key");
                assert_eq!(self.node.times_paid(&key), 1, "{key} paid once");
            }
        }
        assert_eq!(self.node.max_times_paid(), 1, "nothing paid twice");
    }

    /// Keys of `keys` whose job the queue no longer has.
    async fn trimmed(&self, queue: &str, keys: &[IdempotencyKey]) -> Vec<IdempotencyKey> {
        let mut gone = Vec::new();
        for key in keys {
            let res = self.admin(Method::GET, &format!("/admin/queues/{queue}/jobs/{key}")).await;
            if res.status == 404 {
                gone.push(key.clone());
            }
        }
        gone
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_payouts_dead_at_once_the_oldest_retried_by_its_record_is_paid_once_and_every_group_finishes() {
    let Some((admin, redis)) = services() else { return };
    let stack = Stack::start(&admin, &redis, Duration::from_secs(10), 25).await;
    let groups = stack.groups(SIXTY).await;
    let mut deliveries = Vec::new();
    for (id, members) in &groups {
        deliveries.extend(stack.payments(id, members).await);
    }
    // The node goes down; every cycle completes; every payout dies.
    stack.node.set_unreachable(true);
    for (_, body) in &deliveries {
        assert_eq!(stack.deliver(body).await.status, 202);
    }
    stack.wait_groups(&groups, "payout failed", |g| g["cycle_status"] == "payout_failed").await;
    assert_eq!(stack.count("SELECT count(*) FROM payment_attempts WHERE status = 'dead'").await, 60);

    // Redis kept 50 dead letters; the ten oldest jobs are gone and their ids
    // still claimed: the queue's own retry cannot reach them.
    let counts = stack.admin(Method::GET, "/admin/queues/payouts/counts").await.json();
    assert_eq!(counts["dead"], 50, "{counts}");
    let keys: Vec<IdempotencyKey> =
        groups.iter().map(|(id, _)| IdempotencyKey::parse(format!("payout:{id}:1")).expect("key")).collect();
    let trimmed = stack.trimmed("payouts", &keys).await;
    assert_eq!(trimmed.len(), 10, "{trimmed:?}");
    let oldest = trimmed[0].clone();
    assert_eq!(oldest, keys[0], "the oldest payout's job is among those trimmed");
    let queue_retry = stack.admin(Method::POST, &format!("/admin/queues/payouts/jobs/{oldest}/retry")).await;
    assert_eq!(queue_retry.status, 404);

    // The node is back; an operator retries the oldest by its record.
    stack.node.set_unreachable(false);
    let retry = stack.admin(Method::POST, &format!("/admin/payouts/{oldest}/retry")).await;
    assert_eq!(retry.status, 202, "{}", String::from_utf8_lossy(&retry.body));
    assert_eq!(retry.json()["generation"], 1);
    let again = stack.admin(Method::POST, &format!("/admin/payouts/{oldest}/retry")).await;
    assert_eq!((again.status.as_u16(), again.json()["status"].clone()), (200, json!("already_retried")));
    let oldest_group = &groups[..1];
    stack.wait_groups(oldest_group, "the oldest paid", |g| g["cycle"] == 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.node.times_paid(&oldest), 1, "paid once");
    assert_eq!(stack.group(&groups[0].0).await["cycle_status"], "collecting");

    // The others, the same way, then every group's last cycle.
    for key in &keys[1..] {
        let retry = stack.admin(Method::POST, &format!("/admin/payouts/{key}/retry")).await;
        assert_eq!(retry.status, 202, "{key}");
    }
    stack.wait_groups(&groups, "every cycle 1 paid", |g| g["cycle"] == 2).await;
    stack.finish(&groups).await;
    assert_eq!(stack.count("SELECT max(generation)::bigint FROM payment_attempts").await, 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_jobs_that_die_and_are_trimmed_are_recovered_by_redelivery_and_replay_and_a_conflict_is_kept() {
    let Some((admin, redis)) = services() else { return };
    // A webhook job has one attempt; a settlement waits 200 ms for its group.
    let stack = Stack::start(&admin, &redis, Duration::from_millis(200), 1).await;
    let groups = stack.groups(SIXTY / 2).await;
    let mut deliveries = Vec::new();
    for (id, members) in &groups {
        deliveries.extend(stack.payments(id, members).await);
    }
    // Another session holds every group's lock: each settlement times out
    // and its job dies.
    let mut holder = sqlx::PgConnection::connect(&stack.db).await.expect("connect");
    for (id, _) in &groups {
        let group = GroupId::from_uuid(uuid::Uuid::parse_str(id).expect("uuid"));
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LockKey::group(group).value())
            .execute(&mut holder)
            .await
            .expect("lock");
    }
    for (_, body) in &deliveries {
        assert_eq!(stack.deliver(body).await.status, 202);
    }
    for _ in 0..600 {
        if stack.count("SELECT count(*) FROM webhook_events WHERE outcome = 'dead'").await == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stack.count("SELECT count(*) FROM webhook_events WHERE outcome = 'dead'").await, 60);
    holder.close().await.expect("release the locks");

    // Redis kept 50; ten jobs are gone, their deliveries are in the log as dead.
    let counts = stack.admin(Method::GET, "/admin/queues/webhooks/counts").await.json();
    assert_eq!(counts["dead"], 50, "{counts}");
    let keys: Vec<IdempotencyKey> = deliveries.iter().map(|(k, _)| k.clone()).collect();
    let trimmed = stack.trimmed("webhooks", &keys).await;
    assert_eq!(trimmed.len(), 10, "{trimmed:?}");
    let log = stack.admin(Method::GET, "/admin/webhooks?outcome=dead&limit=1000").await.json();
    assert_eq!(log["deliveries"].as_array().map(Vec::len), Some(60));

    // The provider redelivers a trimmed one: it runs again (202), then is a duplicate.
    let body = &deliveries.iter().find(|(k, _)| *k == trimmed[0]).expect("delivery").1;
    assert_eq!(stack.deliver(body).await.status, 202);
    assert_eq!(stack.deliver(body).await.status, 200);
    // An operator replays another by its record; the same request again reopens nothing.
    let replay = stack.admin(Method::POST, &format!("/admin/webhooks/{}/replay", trimmed[1])).await;
    assert_eq!((replay.status.as_u16(), replay.json()["status"].clone()), (202, json!("replaying")));
    let again = stack.admin(Method::POST, &format!("/admin/webhooks/{}/replay", trimmed[1])).await;
    assert_eq!(again.status, 200);
    // The rest, from the log, a page at a time.
    let mut after = 0;
    loop {
        let page =
            stack.admin(Method::GET, &format!("/admin/webhooks?outcome=dead&limit=7&after={after}")).await.json();
        let listed = page["deliveries"].as_array().expect("deliveries").clone();
        if listed.is_empty() {
            break;
        }
        for d in listed {
            let key = d["key"].as_str().expect("key");
            let replay = stack.admin(Method::POST, &format!("/admin/webhooks/{key}/replay")).await;
            assert!(replay.status.is_success(), "{key}: {}", replay.status);
        }
        after = page["next"].as_u64().expect("next");
    }
    stack.wait_groups(&groups, "every cycle 1 paid", |g| g["cycle"] == 2).await;
    assert_eq!(stack.count("SELECT count(*) FROM webhook_events WHERE outcome IS NULL OR outcome = 'dead'").await, 0);
    assert_eq!(stack.count("SELECT count(*) FROM contributions").await, 60, "each settled once");

    // Case 5: one event id, another body: 409, kept once, never acted on.
    let (key, first) = &deliveries[0];
    let mut other: Value = serde_json::from_slice(first).expect("json");
    other["amount_msat"] = json!(99_000);
    let other = serde_json::to_vec(&other).expect("json");
    for _ in 0..2 {
        let res = stack.deliver(&other).await;
        assert_eq!(res.status, 409);
        assert_eq!(res.json()["error"]["code"], "event_conflict");
    }
    assert_eq!(stack.deliver(first).await.status, 200, "the first body is a duplicate");
    let hash = serde_json::from_slice::<Value>(first).expect("json")["payment_hash"].as_str().expect("hash").to_owned();
    let log = stack.admin(Method::GET, &format!("/admin/webhooks?payment_hash={hash}")).await.json();
    assert_eq!(log["deliveries"][0]["key"], key.as_str());
    assert_eq!(log["deliveries"][0]["conflicts"], 1);
    assert_eq!(stack.count("SELECT count(*) FROM webhook_conflicts").await, 1);

    stack.finish(&groups).await;
    stack.stop().await;
}
