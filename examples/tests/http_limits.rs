//! The server on the open internet, on the embedded default (no services):
//! stalled clients get 408 or are cut off, shutdown ends within its deadline
//! whatever the clients do, and the signature header comes from the
//! configuration.

mod common;

use std::time::{Duration, Instant};

use common::{SECRET, ServerEnv, free_port, start_server};
use sunusav_examples::demo::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env(pairs: &[(&str, &str)]) -> ServerEnv {
    ServerEnv { extra: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), ..ServerEnv::default() }
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// The headers of a POST with a 100-byte JSON body, and its first byte only.
fn stalled_post(path: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-sunu-signature: sha256={}\r\nauthorization: Bearer {}\r\ncontent-length: 100\r\n\r\n{{",
        "00".repeat(32),
        common::ADMIN_TOKEN
    )
    .into_bytes()
}

/// Writes `request`, reads until the server closes (or `within` passes):
/// `(status, whole reply)`, status 0 when nothing came back.
async fn exchange(addr: &str, request: &[u8], within: Duration) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut buf))
        .await
        .expect("the server closed the connection in time")
        .ok();
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn a_stalled_body_gets_408_request_timeout_and_stalled_headers_are_cut_off() {
    let server = start_server(&env(&[("REQUEST_TIMEOUT_MS", "300"), ("HEADER_READ_TIMEOUT_MS", "300")])).await;
    let addr = addr(&server.url);

    for path in ["/webhook/lightning", "/groups"] {
        let started = Instant::now();
        let (status, reply) = exchange(&addr, &stalled_post(path), Duration::from_secs(10)).await;
        assert_eq!(status, 408, "{path}: {reply}");
        assert!(reply.contains(r#""code":"request_timeout""#), "{path}: {reply}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: answered after {:?}", started.elapsed());
    }

    // Headers never finished: the connection is closed, and no 5xx is sent.
    let started = Instant::now();
    let (status, reply) = exchange(&addr, b"POST /groups HTTP/1.1\r\nhost: x\r\n", Duration::from_secs(10)).await;
    assert!(status < 500, "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5), "cut off after {:?}", started.elapsed());

    // A connection that never sends a byte is closed too.
    let started = Instant::now();
    let (status, reply) = exchange(&addr, b"", Duration::from_secs(10)).await;
    assert_eq!(status, 0, "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());

    assert_eq!(exchange(&addr, HEALTH, Duration::from_secs(10)).await.0, 200, "the server keeps serving");
}

#[tokio::test]
async fn a_request_over_the_concurrency_limit_waits_for_a_slot() {
    let server = start_server(&env(&[("MAX_CONCURRENT_REQUESTS", "1"), ("REQUEST_TIMEOUT_MS", "1000")])).await;
    let addr = addr(&server.url);

    // One request holds the only slot, stalling its body, until its timeout.
    let mut holder = TcpStream::connect(&addr).await.expect("connect");
    holder.write_all(&stalled_post("/groups")).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Another is served only once the holder's 408 frees the slot.
    let started = Instant::now();
    let (status, reply) = exchange(&addr, HEALTH, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{reply}");
    assert!(waited >= Duration::from_millis(600), "served after {waited:?}, without waiting for the slot");
    let mut held = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), holder.read_to_end(&mut held)).await.expect("closed").ok();
    assert!(String::from_utf8_lossy(&held).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&held));

    // With the slot free, no wait.
    let started = Instant::now();
    assert_eq!(exchange(&addr, HEALTH, Duration::from_secs(10)).await.0, 200);
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn shutdown_ends_within_its_deadline_with_200_stalled_connections_and_drains_the_workers() {
    // Arrange: timeouts far beyond the deadline, so only the shutdown ends
    // the stalled requests.
    let deadline = Duration::from_secs(4);
    let mut server = start_server(&env(&[
        ("SHUTDOWN_DEADLINE_SECS", "4"),
        ("REQUEST_TIMEOUT_MS", "600000"),
        ("HEADER_READ_TIMEOUT_MS", "600000"),
        ("RUST_LOG", "info"),
    ]))
    .await;
    let addr = addr(&server.url);
    let mut stalled = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let path = if i % 2 == 0 { "/webhook/lightning" } else { "/groups" };
        stream.write_all(&stalled_post(path)).await.expect("write");
        stalled.push(stream);
    }
    // An idle keep-alive connection, after one full request.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let mut first = [0_u8; 12];
    idle.read_exact(&mut first).await.expect("read");
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(exchange(&addr, HEALTH, Duration::from_secs(10)).await.0, 200, "serving beside the stalled ones");

    // Act.
    let signalled = Instant::now();
    server.signal("TERM");

    // New connections are refused soon after the signal.
    let refused = async {
        while TcpStream::connect(&addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), refused).await.expect("the listener closed after SIGTERM");

    // Assert: the process exits cleanly within the deadline (plus slack).
    assert!(server.wait(deadline + Duration::from_secs(5)).await, "the server exits with success");
    let took = signalled.elapsed();
    assert!(took < deadline + Duration::from_secs(3), "exited {took:?} after SIGTERM (deadline {deadline:?})");
    drop(stalled);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(logs.contains("HTTP: stopped accepting"), "{logs}");
    // The 200 stalled ones were dropped at the drain deadline; the idle one
    // had closed at once.
    assert!(logs.contains("connections still open at the drain deadline were dropped dropped=200"), "{logs}");
    assert!(logs.contains("workers drained") && logs.contains("clean=true"), "the workers were drained: {logs}");
}

#[tokio::test]
async fn the_signature_is_read_from_the_header_webhook_signature_header_names() {
    let server = start_server(&env(&[("WEBHOOK_SIGNATURE_HEADER", "BTCPay-Sig")])).await;
    let addr = addr(&server.url);
    let body = format!(r#"{{"payment_hash":"{}","status":"settled","amount_msat":1000}}"#, "0a".repeat(32));
    let request = |header: &str| {
        format!(
            "POST /webhook/lightning HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n{header}: {}\r\ncontent-length: {}\r\n\r\n{body}",
            sign(SECRET.as_bytes(), body.as_bytes()),
            body.len()
        )
    };

    let (status, reply) = exchange(&addr, request("BTCPay-Sig").as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(status, 202, "{reply}");
    let (status, reply) = exchange(&addr, request("x-sunu-signature").as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains(r#""code":"missing_signature""#), "{reply}");
}

#[tokio::test]
async fn ops_bind_addr_moves_health_and_metrics_to_an_internal_listener() {
    let ops = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&env(&[("OPS_BIND_ADDR", &ops)])).await;
    let main = addr(&server.url);
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes();

    for path in ["/health", "/health/detailed", "/health/workers", "/metrics"] {
        let (status, reply) = exchange(&ops, &get(path), Duration::from_secs(10)).await;
        assert_eq!(status, 200, "{path} on the ops listener: {reply}");
        let (status, reply) = exchange(&main, &get(path), Duration::from_secs(10)).await;
        assert_eq!(status, 404, "{path} on the main listener: {reply}");
        assert!(reply.contains(r#""code":"not_found""#), "{reply}");
    }
    let (status, reply) = exchange(&ops, &get("/groups/x"), Duration::from_secs(10)).await;
    assert_eq!(status, 404, "the group API is not on the ops listener: {reply}");

    let body = format!(r#"{{"payment_hash":"{}","status":"settled","amount_msat":1000}}"#, "0b".repeat(32));
    let webhook = format!(
        "POST /webhook/lightning HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\nx-sunu-signature: {}\r\ncontent-length: {}\r\n\r\n{body}",
        sign(SECRET.as_bytes(), body.as_bytes()),
        body.len()
    );
    assert_eq!(exchange(&main, webhook.as_bytes(), Duration::from_secs(10)).await.0, 202);

    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(15)).await, "both listeners stop at SIGTERM");
}

#[tokio::test]
async fn each_client_is_rate_limited_on_the_group_api_only() {
    let server = start_server(&env(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "2")])).await;
    let client = common::client(&server.url);
    let path = format!("/groups/{}", uuid::Uuid::new_v4());
    for _ in 0..2 {
        assert_eq!(client.get(&path).await.expect("get").status, 404);
    }
    let refused = client.get(&path).await.expect("get");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    // The webhook route (signed) and the ops routes are not limited.
    for _ in 0..5 {
        let headers = [("content-type", "application/json"), ("x-sunu-signature", "sha256=00")];
        let r = client.send(http::Method::POST, "/webhook/lightning", &headers, b"{}".to_vec()).await.expect("post");
        assert_eq!(r.status, 401);
        assert_eq!(client.get("/health").await.expect("health").status, 200);
    }
}
