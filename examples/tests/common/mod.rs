//! Helpers of the end-to-end tests: the server as a child process, and a
//! fresh database and key prefix per test.

#![allow(dead_code, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "e2e-webhook-secret-0123456789";
/// The servers' admin token (set by [`start_server`] unless a test sets its
/// own): the operator on the group API and the issuer of member tokens.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// A client of `url` holding [`ADMIN_TOKEN`].
pub fn client(url: &str) -> sunusav_examples::client::HttpClient {
    sunusav_examples::client::HttpClient::new(url).with_bearer(ADMIN_TOKEN)
}

/// The services the README's test command starts, or `None` (and a note)
/// when they are not configured; under `SUNUSAV_REQUIRE_SERVICES=1` a
/// missing one fails the test.
pub fn services() -> Option<(String, String)> {
    let db = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    let redis = std::env::var("REDIS_URL").ok().filter(|v| !v.is_empty());
    match (db, redis) {
        (Some(d), Some(r)) => Some((d, r)),
        _ if std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("DATABASE_URL and REDIS_URL are required (SUNUSAV_REQUIRE_SERVICES=1); run scripts/test.sh")
        }
        _ => {
            eprintln!("skipping: DATABASE_URL / REDIS_URL not set (scripts/test.sh starts them)");
            None
        }
    }
}

/// `DATABASE_URL`, or `None` (and a note) when it is not configured; under
/// `SUNUSAV_REQUIRE_SERVICES=1` a missing one fails the test.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()) {
        Some(d) => Some(d),
        None if std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("DATABASE_URL is required (SUNUSAV_REQUIRE_SERVICES=1); run scripts/test.sh")
        }
        None => {
            eprintln!("skipping: DATABASE_URL not set (scripts/test.sh starts PostgreSQL)");
            None
        }
    }
}

/// A new, empty database on the server of `admin_url`; returns its URL.
pub async fn fresh_database(admin_url: &str) -> String {
    let name = format!("sunusav_e2e_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("connect to the admin database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{name}")
}

/// `(payouts the simulated node paid, most payments of any one payout)`:
/// `(cycles, 1)` when every cycle was paid exactly once.
pub async fn paid_counts(database_url: &str) -> (i64, i32) {
    let mut conn = sqlx::PgConnection::connect(database_url).await.expect("connect");
    sqlx::query_as(
        "SELECT count(*), COALESCE(max(n), 0)::int FROM (SELECT sum(times_paid) AS n FROM sunusav.sim_node_hash_payments \
         GROUP BY payout_key HAVING sum(times_paid) > 0) paid",
    )
    .fetch_one(&mut conn)
    .await
    .expect("query the simulated node")
}

/// A random Redis key prefix.
pub fn fresh_prefix() -> String {
    format!("e2e-{}", uuid::Uuid::new_v4().simple())
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A Redis server of the test's own, with `appendonly yes`, restartable by pid.
pub struct OwnRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts one (needs `REDIS_SERVER_BIN` or `redis-server` on PATH).
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sunusav-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut r = Self { port: free_port(), dir, child: None };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--save", "", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (set REDIS_SERVER_BIN)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Drops every key (`FLUSHALL`): Redis as it comes back after losing its
    /// data (no persistence, or a lost disk).
    pub fn flush_all(&self) {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        conn.write_all(b"FLUSHALL\r\n").expect("send FLUSHALL");
        let mut reply = [0u8; 5];
        conn.read_exact(&mut reply).expect("read the reply to FLUSHALL");
        assert_eq!(&reply, b"+OK\r\n", "FLUSHALL answered {:?}", String::from_utf8_lossy(&reply));
    }

    /// Stops the server (SIGTERM by pid, as a restart does) and starts it again
    /// on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running server process.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub pid: u32,
    /// Everything the server wrote (its logs).
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Settings of a server started by a test.
#[derive(Clone, Default)]
pub struct ServerEnv {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub prefix: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl ServerEnv {
    pub fn real(database_url: &str, redis_url: &str, prefix: &str) -> Self {
        Self {
            database_url: Some(database_url.into()),
            redis_url: Some(redis_url.into()),
            prefix: Some(prefix.into()),
            extra: Vec::new(),
        }
    }
}

/// Starts `sunusav-server` on a free port with only the given environment.
pub async fn start_server(env: &ServerEnv) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sunusav-server"));
    cmd.env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("WEBHOOK_HMAC_SECRET", SECRET)
        // Fixed, as a deployment's is: a keysend payout retried after a
        // restart is sent with the same preimage.
        .env("PAYOUT_PREIMAGE_SECRET", "e2e-payout-preimage-secret-0123456789abcdef")
        .env("RUST_LOG", "error")
        .env("JOB_LEASE_MS", "2000")
        .env("STALLED_INTERVAL_MS", "250")
        .env("SHUTDOWN_DEADLINE_SECS", "10")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = &env.database_url {
        cmd.env("DATABASE_URL", d);
    }
    if let Some(r) = &env.redis_url {
        cmd.env("REDIS_URL", r);
    }
    if let Some(p) = &env.prefix {
        cmd.env("QUEUE_PREFIX", p);
    }
    for (k, v) in &env.extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn sunusav-server");
    let pid = child.id().expect("pid");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_mins(1), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.to_owned();
            }
        }
        panic!("sunusav-server exited before listening");
    })
    .await
    .expect("sunusav-server did not start within 60 s");
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    // Keep draining stdout and stderr so the child never blocks on a full pipe;
    // stderr (the logs) is kept for the tests that read it, and echoed.
    let sink = std::sync::Arc::clone(&logs);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push_str(&line);
        }
    });
    let stderr = child.stderr.take().expect("stderr");
    let sink = std::sync::Arc::clone(&logs);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[server {pid}] {line}");
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    Server { child, url, pid, logs }
}

impl Server {
    /// Sends a signal to the server by its pid.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    /// Waits for the process to exit; returns whether it exited with success.
    pub async fn wait(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("server did not exit in time")
            .expect("wait")
            .success()
    }
}
