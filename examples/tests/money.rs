//! Every msat a node reports lands somewhere, through the server binary:
//! issue 14's cases 1–3 reproduced as written (a second invoice for a member,
//! an overpayment, a payment after the cycle moved on or the group was
//! cancelled), on the embedded default and on PostgreSQL + Redis. Each ends
//! with the ledger equation holding and every group able to finish.

mod common;

use std::time::Duration;

use common::{SECRET, ServerEnv, fresh_database, fresh_prefix, paid_counts, services, start_server};
use http::Method;
use serde_json::{Value, json};
use sunusav_examples::client::HttpClient;
use sunusav_examples::demo::sign;

const ADMIN: &str = common::ADMIN_TOKEN;
const C: u64 = 10_000;

/// The server's settings for these tests: invoices expire after a second,
/// so that a member can hold two invoices of one cycle.
fn env(mut env: ServerEnv) -> ServerEnv {
    env.extra.push(("INVOICE_EXPIRY_SECS".into(), "1".into()));
    env.extra.push(("ADMIN_TOKEN".into(), ADMIN.into()));
    env
}

async fn group(client: &HttpClient, n: usize) -> (String, Vec<String>) {
    let members: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client.post_json("/groups", &json!({"members": members, "contribution_msat": C})).await.unwrap();
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    client.set_destinations(&members, &sunusav_core::memory::SimulatedNode::payee_node().to_hex()).await.unwrap();
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert!(client.post_json(&format!("/groups/{id}/start"), &json!({})).await.unwrap().status.is_success());
    (id, members)
}

async fn invoice(client: &HttpClient, group: &str, member: &str) -> Value {
    let client = client.as_member(member).await.expect("member token");
    let res = client.post_json(&format!("/groups/{group}/invoices"), &json!({ "member": member })).await.unwrap();
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    res.json()
}

/// Plays the node: a signed "settled" event for `inv`, paid `amount`.
async fn pay(client: &HttpClient, inv: &Value, amount: u64) {
    let hash = inv["payment_hash"].as_str().unwrap();
    let body = serde_json::to_vec(&json!({
        "payment_hash": hash, "status": "settled", "amount_msat": amount, "event_id": format!("evt-{hash}"),
    }))
    .unwrap();
    let sig = sign(SECRET.as_bytes(), &body);
    let headers = [("content-type", "application/json"), ("x-sunu-signature", sig.as_str())];
    let res = client.send(Method::POST, "/webhook/lightning", &headers, body).await.unwrap();
    assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
}

/// Polls `path` until `done` holds (within 30 s).
async fn wait_for(client: &HttpClient, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..300 {
        v = client.get(path).await.unwrap().json();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s: {v}");
}

async fn wait_cycle(client: &HttpClient, group: &str, cycle: u64) -> Value {
    wait_for(client, &format!("/groups/{group}"), &format!("cycle {cycle}"), |g| {
        g["cycle"] == cycle || g["status"] == "finished"
    })
    .await
}

/// Waits until the group's ledger says the node received `received` msat,
/// then checks that every msat of it is a contribution, a balance or a
/// released refund. Returns the ledger.
async fn accounted(client: &HttpClient, group: &str, received: u64) -> Value {
    let ledger =
        wait_for(client, &format!("/groups/{group}/ledger"), "the ledger", |l| l["accounting"]["received"] == received)
            .await;
    let a = &ledger["accounting"];
    let part = |k: &str| a[k].as_u64().unwrap();
    assert_eq!(part("contributions") + part("balances") + part("released"), received, "{ledger}");
    ledger
}

fn reasons(ledger: &Value) -> Vec<String> {
    ledger["entries"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap().to_owned()).collect()
}

async fn the_cases(url: &str) {
    let client = common::client(url);

    // Case 2, an overpayment; case 3, a payment after its cycle moved on.
    let (g1, m) = group(&client, 2).await;
    let first = invoice(&client, &g1, &m[0]).await;
    // Case 1's guard: asking again gives the open invoice.
    assert_eq!(invoice(&client, &g1, &m[0]).await["payment_hash"], first["payment_hash"]);
    pay(&client, &first, 2 * C).await;
    let stale = invoice(&client, &g1, &m[1]).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let fresh = invoice(&client, &g1, &m[1]).await;
    assert_ne!(fresh["payment_hash"], stale["payment_hash"], "an expired invoice is replaced");
    pay(&client, &fresh, C).await;
    // Cycle 1 is paid out; member 0's overpayment pays its cycle 2.
    let g = wait_cycle(&client, &g1, 2).await;
    assert_eq!(g["paid_members"], json!([m[0]]), "the balance paid member 0's cycle 2: {g}");
    // The expired cycle-1 invoice is paid anyway: late, credited, and it
    // pays member 1's cycle 2, which finishes the group.
    pay(&client, &stale, C).await;
    let g = wait_for(&client, &format!("/groups/{g1}"), "group 1 finished", |g| g["status"] == "finished").await;
    assert_eq!(g["payouts"].as_array().map(Vec::len), Some(2), "{g}");
    let ledger = accounted(&client, &g1, 4 * C).await;
    assert_eq!(reasons(&ledger), ["overpaid", "applied", "late", "applied"], "{ledger}");
    assert_eq!(ledger["accounting"]["balances"], 0);

    // Case 1 as written: two invoices of one member and cycle, both paid.
    let (g2, m) = group(&client, 2).await;
    let a = invoice(&client, &g2, &m[0]).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let b = invoice(&client, &g2, &m[0]).await;
    assert_ne!(a["payment_hash"], b["payment_hash"]);
    pay(&client, &b, C).await;
    pay(&client, &a, C).await;
    let ledger = accounted(&client, &g2, 2 * C).await;
    assert_eq!(reasons(&ledger), ["duplicate_invoice"], "the second payment is credited, not dropped: {ledger}");
    pay(&client, &invoice(&client, &g2, &m[1]).await, C).await;
    // Cycle 2 opens and the duplicate pays member 0's share of it.
    let g = wait_cycle(&client, &g2, 2).await;
    assert_eq!(g["paid_members"], json!([m[0]]), "{g}");
    pay(&client, &invoice(&client, &g2, &m[1]).await, C).await;
    wait_for(&client, &format!("/groups/{g2}"), "group 2 finished", |g| g["status"] == "finished").await;
    let ledger = accounted(&client, &g2, 4 * C).await;
    assert_eq!(ledger["accounting"]["balances"], 0, "{ledger}");

    // Case 3, after a cancellation: credited to the member, then released.
    let (g3, m) = group(&client, 2).await;
    let inv = invoice(&client, &g3, &m[0]).await;
    assert!(client.post_json(&format!("/groups/{g3}/cancel"), &json!({})).await.unwrap().status.is_success());
    pay(&client, &inv, C).await;
    let ledger = accounted(&client, &g3, C).await;
    assert_eq!(reasons(&ledger), ["group_cancelled"], "{ledger}");
    assert_eq!(ledger["accounting"]["balances"], C);
    let auth = format!("Bearer {ADMIN}");
    let path = format!("/admin/groups/{g3}/members/{}/release", m[0]);
    let res = client.send(Method::POST, &path, &[("authorization", auth.as_str())], Vec::new()).await.unwrap();
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let ledger = accounted(&client, &g3, C).await;
    assert_eq!(
        (ledger["accounting"]["balances"].clone(), ledger["accounting"]["released"].clone()),
        (json!(0), json!(C))
    );
    // The release is paid out through the payout engine, once.
    let g = wait_for(&client, &format!("/groups/{g3}"), "the refund paid", |g| {
        g["payouts"].as_array().is_some_and(|p| p.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded"))
    })
    .await;
    assert_eq!(g["status"], "cancelled", "a refund changes no cycle: {g}");
}

#[tokio::test]
async fn every_msat_is_accounted_for_on_the_embedded_default() {
    let mut server = start_server(&env(ServerEnv::default())).await;
    the_cases(&server.url).await;
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit with status 0");
}

#[tokio::test]
async fn every_msat_is_accounted_for_on_postgres_and_redis() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let mut server = start_server(&env(ServerEnv::real(&db, &redis, &fresh_prefix()))).await;
    the_cases(&server.url).await;
    assert_eq!(paid_counts(&db).await, (5, 1), "four payouts and a refund, none paid twice");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit with status 0");
}
