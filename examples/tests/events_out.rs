//! Domain events out, through the server binary: a receiver checks every
//! delivery with sunusav's own Standard Webhooks verifier, refuses the first
//! try of each event (503: retried through the events queue with backoff),
//! and sees each of a group's events (9 contributions, 3 cycles completed,
//! 3 payouts paid) accepted exactly once, on the embedded default and on
//! PostgreSQL + Redis.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{SECRET, ServerEnv, fresh_database, fresh_prefix, services, start_server};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_examples::client::HttpClient;
use sunusav_examples::demo::sign;

const EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver saw, per event id: tries, accepted deliveries, type.
#[derive(Default)]
struct Seen {
    tries: BTreeMap<String, u32>,
    accepted: BTreeMap<String, (u32, String)>,
    forged: u32,
}

struct Receiver {
    verifier: Verifier,
    seen: Mutex<Seen>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| headers.get(name).map_or(&b""[..], http::HeaderValue::as_bytes);
    let now = sunusav_axum::clock::now_unix_secs();
    let verified = r.verifier.verify_standard_webhooks(
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        now,
    );
    let mut seen = r.seen.lock().unwrap();
    if verified.is_err() {
        seen.forged += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = String::from_utf8_lossy(h("webhook-id")).into_owned();
    let event: Value = serde_json::from_slice(&body).expect("an event is JSON");
    assert_eq!(event["id"].as_str(), Some(id.as_str()), "webhook-id is the event's id");
    let tries = seen.tries.entry(id.clone()).or_default();
    *tries += 1;
    if *tries == 1 {
        // Not now: the server retries it.
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let kind = event["type"].as_str().unwrap_or_default().to_owned();
    seen.accepted.entry(id).or_insert((0, kind)).0 += 1;
    StatusCode::NO_CONTENT
}

/// A receiver on a free loopback port: its URL and what it saw.
async fn receiver() -> (String, Arc<Receiver>) {
    let secret = Secret::from_standard_webhooks(EVENTS_SECRET).expect("secret");
    let r = Arc::new(Receiver {
        verifier: Verifier::standard_webhooks([secret]).expect("verifier"),
        seen: Mutex::new(Seen::default()),
    });
    let app = axum::Router::new().route("/events", post(receive)).with_state(Arc::clone(&r));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/events", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

fn with_events(mut env: ServerEnv, url: &str) -> ServerEnv {
    env.extra.push(("EVENTS_WEBHOOK_URL".into(), url.into()));
    env.extra.push(("EVENTS_WEBHOOK_SECRET".into(), EVENTS_SECRET.into()));
    env
}

/// A group of three through its whole life: create, destinations, start,
/// then each cycle every member's invoice paid by a signed webhook.
async fn a_group_life(client: &HttpClient) -> String {
    let members: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client.post_json("/groups", &json!({ "members": members, "contribution_msat": 10_000 })).await;
    let id = created.expect("create").json()["id"].as_str().expect("id").to_owned();
    client.set_destinations(&members, &sunusav_core::memory::SimulatedNode::payee_node().to_hex()).await.unwrap();
    assert!(client.post_json(&format!("/groups/{id}/start"), &json!({})).await.unwrap().status.is_success());
    for cycle in 1..=3 {
        for m in &members {
            let member = client.as_member(m).await.expect("member token");
            let inv = member.post_json(&format!("/groups/{id}/invoices"), &json!({ "member": m })).await.unwrap();
            let inv = inv.json();
            let body = serde_json::to_vec(&json!({
                "payment_hash": inv["payment_hash"], "status": "settled", "amount_msat": 10_000,
            }))
            .unwrap();
            let sig = sign(SECRET.as_bytes(), &body);
            let headers = [("content-type", "application/json"), ("x-sunu-signature", sig.as_str())];
            let res = client.send(Method::POST, "/webhook/lightning", &headers, body).await.unwrap();
            assert_eq!(res.status, 202);
        }
        let mut g = Value::Null;
        for _ in 0..300 {
            g = client.get(&format!("/groups/{id}")).await.unwrap().json();
            if g["cycle"].as_u64() > Some(cycle) || g["status"] == "finished" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(g["cycle"].as_u64() > Some(cycle) || g["status"] == "finished", "cycle {cycle} paid out: {g}");
    }
    id
}

async fn every_event_arrives_once(env: ServerEnv) {
    let (url, receiver) = receiver().await;
    let mut server = start_server(&with_events(env, &url)).await;
    let client = common::client(&server.url);
    let group = a_group_life(&client).await;
    let expected = BTreeMap::from([("contribution_recorded", 9), ("cycle_completed", 3), ("payout_succeeded", 3)]);
    let mut kinds = BTreeMap::new();
    for _ in 0..600 {
        kinds = BTreeMap::new();
        for (_, kind) in receiver.seen.lock().unwrap().accepted.values() {
            *kinds.entry(kind.clone()).or_insert(0) += 1;
        }
        if kinds.len() == expected.len() && expected.iter().all(|(k, n)| kinds.get(*k) == Some(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected: BTreeMap<String, i32> = expected.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    assert_eq!(kinds, expected, "every event of group {group}, once each");
    {
        let seen = receiver.seen.lock().unwrap();
        assert_eq!(seen.forged, 0, "every delivery carried a valid signature");
        for (id, (accepted, _)) in &seen.accepted {
            assert_eq!(*accepted, 1, "{id} accepted once");
            assert_eq!(seen.tries[id], 2, "{id}: refused once, retried once");
            assert!(id.contains(&group) || id.starts_with("contribution_recorded:"), "{id}");
        }
    }
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit with status 0");
}

#[tokio::test]
async fn every_event_reaches_the_subscriber_once_on_the_embedded_default() {
    every_event_arrives_once(ServerEnv::default()).await;
}

#[tokio::test]
async fn every_event_reaches_the_subscriber_once_on_postgres_and_redis() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    every_event_arrives_once(ServerEnv::real(&db, &redis, &fresh_prefix())).await;
}

#[tokio::test]
async fn the_server_refuses_an_events_url_without_a_secret() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sunusav-server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/events")
        .output()
        .await
        .expect("run sunusav-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("EVENTS_WEBHOOK_SECRET is required"), "{stderr}");
}

#[tokio::test]
async fn a_scheduled_groups_deadline_fires_through_the_timers_queue_and_tells_each_late_member() {
    let Some((admin, redis)) = services() else { return };
    let db = fresh_database(&admin).await;
    let (url, receiver) = receiver().await;
    let mut server = start_server(&with_events(ServerEnv::real(&db, &redis, &fresh_prefix()), &url)).await;
    let client = common::client(&server.url);
    let members: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let now = u64::try_from(sunusav_axum::clock::now_unix_secs()).unwrap() * 1000;
    // Cycle 1 is due in two seconds with a second of grace: its deadline
    // passes three seconds from now.
    let schedule = json!({ "first_due_ms": now + 2_000, "period": { "days": 30 }, "grace_ms": 1_000 });
    let body = json!({ "members": members, "contribution_msat": 10_000, "schedule": schedule });
    let id = client.post_json("/groups", &body).await.expect("create").json()["id"].as_str().expect("id").to_owned();
    assert!(client.post_json(&format!("/groups/{id}/start"), &json!({})).await.unwrap().status.is_success());
    let mut late = Vec::new();
    for _ in 0..300 {
        late = receiver
            .seen
            .lock()
            .unwrap()
            .accepted
            .iter()
            .filter(|(_, (_, kind))| kind == "member_late")
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>();
        if late.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut expected: Vec<String> = members.iter().map(|m| format!("member_late:{id}:1:{m}")).collect();
    expected.sort();
    assert_eq!(late, expected, "each member told late once");
    let g = client.get(&format!("/groups/{id}")).await.unwrap().json();
    assert_eq!(
        (g["cycle"].as_u64(), g["cycle_status"].as_str()),
        (Some(1), Some("collecting")),
        "the cycle waits: {g}"
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit with status 0");
}
