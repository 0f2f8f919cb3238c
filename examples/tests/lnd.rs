//! The example server paying through LND (the stand-in, over TLS with its
//! macaroon) on PostgreSQL + Redis, with no webhook at all: every
//! settlement arrives on the node's invoice stream, which is cut 20 times.

mod common;

use std::time::Duration;

use common::{SECRET, ServerEnv, fresh_database, fresh_prefix, services, start_server};
use http::Method;
use serde_json::{Value, json};
use sunusav_examples::client::HttpClient;
use sunusav_examples::demo::{DemoConfig, Payer, run};
use sunusav_lnd::stand_in::StandIn;

const PREIMAGE_SECRET: &str = "e2e-payout-preimage-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const CONTRIBUTION: u64 = 10_000;

async fn wait_for(client: &HttpClient, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..400 {
        v = client.get(path).await.expect("get").json();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 40 s: {v}");
}

/// The payer's wallet: pays invoices at the stand-in.
struct StandInPayer(StandIn);

impl std::fmt::Debug for StandInPayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandInPayer")
    }
}

impl Payer for StandInPayer {
    fn pay(&self, payment_hash: &str, amount_msat: u64) -> bool {
        self.0.pay_invoice(&hash_bytes(payment_hash), Some(amount_msat)).is_some()
    }
}

/// The server's environment for LND (the stand-in) on PostgreSQL + Redis.
fn lnd_env(lnd: &StandIn, db: &str, redis: &str) -> ServerEnv {
    let config = lnd.config();
    let mut env = ServerEnv::real(db, redis, &fresh_prefix());
    env.extra.extend([
        ("LND_REST_URL".into(), lnd.url()),
        ("LND_MACAROON_PATH".into(), config.macaroon_path().display().to_string()),
        ("LND_TLS_CERT_PATH".into(), config.tls_cert_path().display().to_string()),
        ("PAYOUT_PREIMAGE_SECRET".into(), PREIMAGE_SECRET.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        // Every line the server writes is searched for secrets.
        ("RUST_LOG".into(), "debug,sqlx=warn,hyper=info,hyper_util=info,h2=info,rustls=info,fred=info".into()),
    ]);
    env
}

/// Cuts the server's open invoice stream `n` times: each time once the
/// server says it is connected again (`sunusav_settle_stream_connected`).
fn cut_streams(lnd: &StandIn, server: &str, n: usize) -> tokio::task::JoinHandle<()> {
    let (lnd, client) = (lnd.clone(), common::client(server));
    tokio::spawn(async move {
        for i in 0..n {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let metrics = client.get("/metrics").await.expect("metrics");
                if String::from_utf8_lossy(&metrics.body).contains("sunusav_settle_stream_connected 1") {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "the stream did not reconnect after cut {i}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lnd.cut_subscriptions();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn hash_bytes(hex_hash: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).expect("a hex payment hash");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_go_through_lnd_and_settlements_come_only_from_its_stream() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let lnd = StandIn::start().await.expect("start the LND stand-in");
    let macaroon = std::fs::read(lnd.config().macaroon_path()).expect("the stand-in's macaroon");
    let mut server = start_server(&lnd_env(&lnd, &db, &redis)).await;
    let client = common::client(&server.url);

    let health = client.get("/health/detailed").await.expect("health").json();
    assert_eq!(health["checks"]["payments:ping"][0]["status"], "pass", "{health}");

    let members: Vec<String> = (0..4).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client.post_json("/groups", &json!({ "members": members, "contribution_msat": CONTRIBUTION })).await;
    let created = created.expect("create");
    assert_eq!(created.status, 201);
    let group = created.json()["id"].as_str().expect("id").to_owned();
    client.set_destinations(&members, &hex::encode(lnd.payee_pubkey())).await.expect("destinations");
    assert!(client.post_json(&format!("/groups/{group}/start"), &json!({})).await.expect("start").status.is_success());

    // 20 cuts of the invoice stream while the group runs.
    let cutter = cut_streams(&lnd, &server.url, 20);
    let mut received = 0u64;
    for cycle in 1..=members.len() as u64 {
        for (i, m) in members.iter().enumerate() {
            let member = client.as_member(m).await.expect("member token");
            let inv = member.post_json(&format!("/groups/{group}/invoices"), &json!({ "member": m })).await;
            let inv = inv.expect("invoice").json();
            let hash = hash_bytes(inv["payment_hash"].as_str().expect("payment_hash"));
            // The last member overpays: the node's amount is what counts.
            let paid = if i == members.len() - 1 { CONTRIBUTION + 700 } else { CONTRIBUTION };
            assert!(lnd.pay_invoice(&hash, Some(paid)).is_some(), "the payer settles the invoice");
            received += paid;
        }
        wait_for(&client, &format!("/groups/{group}"), &format!("cycle {cycle}"), |g| {
            g["cycle"].as_u64() > Some(cycle) || g["status"] == "finished"
        })
        .await;
    }
    cutter.await.expect("cutter");
    let g = wait_for(&client, &format!("/groups/{group}"), "the group finished", |g| g["status"] == "finished").await;
    let payouts = g["payouts"].as_array().expect("payouts").clone();
    assert_eq!(payouts.len(), members.len());
    for p in &payouts {
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["route"], "keysend", "{p}");
        let hash = hash_bytes(p["payment_hash"].as_str().expect("payment hash"));
        assert_eq!(lnd.payments_made(&hash), 1, "each payout paid once: {p}");
    }
    assert_eq!(lnd.max_payments_made(), 1);
    let ledger = client.get(&format!("/groups/{group}/ledger")).await.expect("ledger").json();
    assert_eq!(ledger["accounting"]["received"], json!(received), "every msat the node received: {ledger}");

    // No webhook was sent: every delivery came from the node's stream, once per invoice.
    let admin = |path: String| {
        let client = client.clone();
        async move {
            let auth = format!("Bearer {ADMIN_TOKEN}");
            client.send(Method::GET, &path, &[("authorization", auth.as_str())], Vec::new()).await.expect("admin")
        }
    };
    let log = admin("/admin/webhooks?limit=1000".into()).await.json();
    let deliveries = log["deliveries"].as_array().expect("deliveries").clone();
    assert_eq!(deliveries.len(), members.len() * members.len(), "one delivery per settled invoice");
    for d in &deliveries {
        assert!(d["key"].as_str().is_some_and(|k| k.starts_with("node-settle:")), "{d}");
    }

    // The stream was really cut, and resumed each time.
    let metrics = String::from_utf8(client.get("/metrics").await.expect("metrics").body.to_vec()).expect("UTF-8");
    let sample = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(sample("sunusav_settle_stream_cuts_total ") >= 20, "20 cuts of an open stream: {metrics}");
    assert!(sample("sunusav_settle_stream_received_total ") >= deliveries.len() as u64);

    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit");
    let logs = server.logs.lock().expect("logs").clone();
    assert!(!logs.is_empty(), "the server logged");
    assert!(!logs.contains(&hex::encode(&macaroon)), "a log line holds the macaroon");
    assert!(!logs.contains(PREIMAGE_SECRET), "a log line holds the preimage secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_holds_its_invariants_through_lnd_with_settlements_from_the_stream_only() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let lnd = StandIn::start().await.expect("start the LND stand-in");
    let macaroon = std::fs::read(lnd.config().macaroon_path()).expect("the stand-in's macaroon");
    let mut server = start_server(&lnd_env(&lnd, &db, &redis)).await;
    let cutter = cut_streams(&lnd, &server.url, 20);
    let config = DemoConfig {
        urls: vec![server.url.clone()],
        secret: SECRET.into(),
        members: 5,
        concurrency: 4,
        duplicates: 0,
        forgeries: 2,
        cycle_timeout: Duration::from_secs(40),
        payee_node: hex::encode(lnd.payee_pubkey()),
        payer: Some(std::sync::Arc::new(StandInPayer(lnd.clone()))),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..DemoConfig::default()
    };
    let report = run(&config).await.expect("the demo runs");
    cutter.await.expect("cutter");
    assert!(report.ok(), "{report}");
    assert_eq!(report.payouts, 5);
    assert_eq!(report.accepted, 0, "no genuine webhook was sent");
    assert_eq!(lnd.max_payments_made(), 1, "no payout paid twice");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit");
    let logs = server.logs.lock().expect("logs").clone();
    assert!(!logs.contains(&hex::encode(&macaroon)), "a log line holds the macaroon");
    assert!(!logs.contains(PREIMAGE_SECRET), "a log line holds the preimage secret");
}
