//! Webhook intake on connections of its own: with every connection of the
//! main PostgreSQL pool held by requests waiting for a group's lock, a
//! provider's delivery is still answered 202; with intake sharing the main
//! pool (`INTAKE_DB_CONNECTIONS=0`), the same delivery waits for a connection
//! and gets 503 (the control that shows the check can fail).

mod common;

use std::time::Duration;

use common::{SECRET, ServerEnv, fresh_database, fresh_prefix, services, start_server};
use http::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection as _;
use sunusav_core::GroupId;
use sunusav_core::domain::keys::LockKey;
use sunusav_examples::demo::sign;

/// Starts a server whose main pool has 2 connections and whose intake has
/// `intake` of its own; holds a started group's lock from outside and sends
/// 6 invoice requests that wait for it (holding the main pool); then
/// delivers a webhook and returns its status, and whether the two invoice
/// requests holding the main pool's connections were still waiting for the
/// lock when it was answered.
async fn deliver_while_the_main_pool_is_held(intake: &str) -> (StatusCode, bool) {
    let (admin, redis) = services().expect("services");
    let db = fresh_database(&admin).await;
    let mut env = ServerEnv::real(&db, &redis, &fresh_prefix());
    env.extra
        .extend([("DATABASE_MAX_CONNECTIONS".into(), "2".into()), ("INTAKE_DB_CONNECTIONS".into(), intake.into())]);
    let mut server = start_server(&env).await;
    let client = common::client(&server.url);
    let members: Vec<String> = (0..2).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client.post_json("/groups", &json!({ "members": members, "contribution_msat": 1_000 })).await;
    let id = created.expect("create").json()["id"].as_str().expect("id").to_owned();
    assert!(client.post_json(&format!("/groups/{id}/start"), &json!({})).await.expect("start").status.is_success());

    let mut holder = sqlx::PgConnection::connect(&db).await.expect("connect");
    let key = LockKey::group(id.parse::<GroupId>().expect("group id")).value();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut holder).await.expect("hold the group's lock");
    let waiting: Vec<_> = (0..6)
        .map(|i| {
            let (client, id, member) = (client.clone(), id.clone(), members[i % 2].clone());
            tokio::spawn(async move {
                let client = client.as_member(&member).await?;
                client.post_json(&format!("/groups/{id}/invoices"), &json!({ "member": member })).await
            })
        })
        .collect();
    // Let them take the main pool's connections.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let body = serde_json::to_vec(&json!({
        "payment_hash": hex::encode([7u8; 32]), "status": "settled", "amount_msat": 1_000, "event_id": "evt-intake"
    }))
    .expect("JSON");
    let signature = sign(SECRET.as_bytes(), &body);
    let headers = [("content-type", "application/json"), ("x-sunu-signature", signature.as_str())];
    let answer = client.send(Method::POST, "/webhook/lightning", &headers, body).await.expect("deliver");
    // Those that got no connection give up after the pool's acquire timeout;
    // the two holding the connections wait for the lock (10 s).
    let all_waiting = waiting.iter().filter(|t| !t.is_finished()).count() >= 2;

    sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut holder).await.expect("release");
    for t in waiting {
        let _ = t.await.expect("invoice task");
    }
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "graceful exit");
    (answer.status, all_waiting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_intake_is_answered_while_the_main_pool_is_exhausted() {
    if services().is_none() {
        return;
    }
    let (status, all_waiting) = deliver_while_the_main_pool_is_held("2").await;
    assert!(all_waiting, "the main pool was not held while the delivery was answered");
    assert_eq!(status, StatusCode::ACCEPTED, "intake on its own connections answers");

    let (status, all_waiting) = deliver_while_the_main_pool_is_held("0").await;
    assert!(all_waiting, "the main pool was not held while the delivery was answered");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "sharing the held pool, intake cannot answer");
}
