//! Malformed requests sent over raw TCP to the running server: each gets its
//! documented 4xx code, none a 5xx, and the server keeps serving. Then the
//! captured logs are searched for the secrets: they never appear.

mod common;

use std::time::Duration;

use common::{SECRET, ServerEnv, start_server};
use sunusav_examples::demo::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_TOKEN: &str = "admin-token-for-the-bad-input-test";

/// Sends raw bytes, returns the status code and the body.
async fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn post(path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n", body.len())
            .into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

fn event(hash_byte: u8, extra: &str) -> Vec<u8> {
    format!(r#"{{"payment_hash":"{}","status":"settled","amount_msat":1000{extra}}}"#, hex::encode([hash_byte; 32]))
        .into_bytes()
}

fn signed(body: &[u8], content_type: &[u8]) -> Vec<u8> {
    let sig = sign(SECRET.as_bytes(), body);
    post("/webhook/lightning", &[("content-type", content_type), ("x-sunu-signature", sig.as_bytes())], body)
}

fn unsigned(sig: &[u8]) -> Vec<u8> {
    let body = event(1, "");
    post("/webhook/lightning", &[("content-type", b"application/json"), ("x-sunu-signature", sig)], &body)
}

#[tokio::test]
async fn every_malformed_request_gets_its_documented_4xx_and_the_server_keeps_serving() {
    let mut env = ServerEnv::default();
    env.extra.push(("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()));
    env.extra.push(("RUST_LOG".into(), "trace".into()));
    let server = start_server(&env).await;
    let addr = server.url.trim_start_matches("http://").to_owned();

    let big = vec![b'x'; 300 * 1024];
    let huge = br#"{"payment_hash":"0101010101010101010101010101010101010101010101010101010101010101","status":"settled","amount_msat":123456789012345678901234567890}"#.to_vec();
    let mut chunked = b"POST /webhook/lightning HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\nx-sunu-signature: sha256=00\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
        chunked.extend_from_slice(&[b'y'; 8192]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let replay = signed(&event(7, r#","event_id":"evt-replayed""#), b"application/json");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("no signature header", post("/webhook/lightning", &[("content-type", b"application/json")], &event(1, "")), 401, "missing_signature"),
        ("sha1= prefix", unsigned(b"sha1=0123"), 401, "malformed_signature"),
        ("no prefix", unsigned(&[b'a'; 64]), 401, "malformed_signature"),
        ("non-hex digest", unsigned(format!("sha256={}", "zz".repeat(32)).as_bytes()), 401, "malformed_signature"),
        ("odd-length digest", unsigned(b"sha256=abc"), 401, "malformed_signature"),
        ("short digest", unsigned(b"sha256=abcd"), 401, "malformed_signature"),
        ("empty digest", unsigned(b"sha256="), 401, "malformed_signature"),
        ("non-UTF-8 header", unsigned(b"sha256=\xff\xfe"), 401, "malformed_signature"),
        ("wrong signature", unsigned(format!("sha256={}", "ab".repeat(32)).as_bytes()), 401, "invalid_signature"),
        ("signed with another secret", {
            let b = event(1, "");
            let s = sign(b"another-secret-entirely-0123456", &b);
            post("/webhook/lightning", &[("content-type", b"application/json"), ("x-sunu-signature", s.as_bytes())], &b)
        }, 401, "invalid_signature"),
        ("body over the limit", signed(&big, b"application/json"), 413, "body_too_large"),
        ("chunked body over the limit", chunked, 413, "body_too_large"),
        ("invalid JSON", signed(b"{\"payment_hash\":", b"application/json"), 400, "invalid_json"),
        ("non-UTF-8 body", signed(b"\xff\xfe\xfd", b"application/json"), 400, "invalid_json"),
        ("a JSON array", signed(b"[]", b"application/json"), 400, "invalid_json"),
        ("a huge amount", signed(&huge, b"application/json"), 400, "invalid_json"),
        ("a negative amount", signed(br#"{"payment_hash":"0101010101010101010101010101010101010101010101010101010101010101","status":"settled","amount_msat":-1}"#, b"application/json"), 400, "invalid_json"),
        ("a short payment hash", signed(br#"{"payment_hash":"01","status":"settled","amount_msat":1}"#, b"application/json"), 400, "invalid_json"),
        ("an empty status", signed(br#"{"payment_hash":"0101010101010101010101010101010101010101010101010101010101010101","status":"","amount_msat":1}"#, b"application/json"), 400, "invalid_event"),
        ("wrong content type", signed(&event(3, ""), b"text/plain"), 415, "unsupported_media_type"),
        ("unknown fields are accepted", signed(&event(4, r#","extra":{"nested":[1,2]}"#), b"application/json"), 202, ""),
        ("a first delivery", replay.clone(), 202, ""),
        ("the same delivery replayed", replay, 200, ""),
        ("the same payment re-signed", signed(&event(7, r#","event_id":"evt-resent""#), b"application/json"), 202, ""),
        ("GET on the webhook", b"GET /webhook/lightning HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), 405, "method_not_allowed"),
        ("unknown path", b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), 404, "not_found"),
        ("malformed group id", format!("GET /groups/not-a-uuid HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\r\n").into_bytes(), 400, "invalid_path"),
        ("a group without credentials", b"GET /groups/not-a-uuid HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), 401, "unauthorized"),
        ("unknown group", format!("GET /groups/{} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\r\n", uuid::Uuid::nil()).into_bytes(), 404, "not_found"),
        ("group with one member", post("/groups", &[("content-type", b"application/json"), ("authorization", auth.as_bytes())], format!(r#"{{"members":["{}"],"contribution_msat":1}}"#, uuid::Uuid::new_v4()).as_bytes()), 422, "too_few_members"),
        ("group body not JSON", post("/groups", &[("content-type", b"application/json"), ("authorization", auth.as_bytes())], b"members=1"), 400, "invalid_json"),
        ("admin without a token", b"GET /admin/queues/payouts/counts HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), 401, "unauthorized"),
        ("admin with a wrong token", b"GET /admin/queues/payouts/counts HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer nope-nope-nope-nope-nope\r\n\r\n".to_vec(), 401, "unauthorized"),
        ("garbage instead of HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400, ""),
    ];
    for (name, request, status, code) in &cases {
        let (got, body) = raw(&addr, request).await;
        assert_eq!(got, *status, "{name}: answered {got} {body}");
        if !code.is_empty() {
            assert!(body.contains(&format!("\"code\":\"{code}\"")), "{name}: body {body}");
        }
        assert!(!body.contains(SECRET), "{name}: the secret leaked into a response");
    }
    let (status, _) = raw(&addr, b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    assert_eq!(status, 200, "the server keeps serving");
    let admin = format!(
        "GET /admin/queues/payouts/counts HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    );
    assert_eq!(raw(&addr, admin.as_bytes()).await.0, 200, "the right admin token works");

    // The logs, at trace level, hold the requests but never a secret.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(logs.contains("invalid_signature"), "the logs were captured: {} bytes", logs.len());
    assert!(!logs.contains(SECRET), "the webhook secret reached the logs");
    assert!(!logs.contains(ADMIN_TOKEN), "the admin token reached the logs");
}
