//! TLS to PostgreSQL and Redis, with the `tls` features the example server
//! turns on: a round trip over a verified connection to each; a server whose
//! certificate another CA signed, or that is reached at an address its
//! certificate does not name (127.0.0.2), is refused.
//!
//! `scripts/services.sh` generates a CA and a certificate for `localhost` for
//! the run, starts a PostgreSQL with `ssl = on` and a redis-server that speaks
//! only TLS, and exports `DATABASE_TLS_URL` (`sslmode=verify-full`,
//! `sslrootcert=` the CA), `REDIS_TLS_URL` (`rediss://`), `SUNUSAV_TLS_CA` and
//! `SUNUSAV_TLS_OTHER_CA` (a CA that signed nothing). Without them the tests
//! return early, unless `SUNUSAV_REQUIRE_SERVICES=1`, where they fail.
//! The tests start no process.

use std::time::Duration;

use sunusav_core::domain::group::{Group, GroupSpec};
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::ports::queue::{Consumer, ConsumerExt, NewJob, Producer, QueueConfig};
use sunusav_core::ports::store::{GroupReads, Store};
use sunusav_core::{IdempotencyKey, Msat};
use sunusav_postgres::{PgStore, PgStoreOptions, Schema};
use sunusav_redis::{RedisConfig, RedisConnection};

/// `name`'s value, or `None` (and a note); a missing one fails under
/// `SUNUSAV_REQUIRE_SERVICES=1`.
fn var(name: &str) -> Option<String> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        Some(v) => Some(v),
        None if std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{name} is required (SUNUSAV_REQUIRE_SERVICES=1); run scripts/services.sh run cargo test")
        }
        None => {
            eprintln!("skipping: {name} not set (scripts/services.sh starts the TLS servers)");
            None
        }
    }
}

fn active_group() -> Group {
    let members = (0..2).map(|_| MemberId::random()).collect();
    let spec = GroupSpec {
        contribution: Msat::new(5_000),
        fee_bps: 0,
        members,
        policy: sunusav_core::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let mut g = Group::new(GroupId::random(), spec).expect("valid spec");
    g.start().expect("start");
    g
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether an error chain is rustls's refusal of a certificate for another
/// name (its `Display`, or its `Debug` as fred reports it).
fn names_another_host(chain: &str) -> bool {
    chain.contains("not valid for name") || chain.contains("NotValidForName")
}

#[tokio::test]
async fn the_store_runs_over_verified_tls_and_refuses_a_certificate_of_another_ca_or_for_another_name() {
    let (Some(url), Some(ca), Some(other_ca)) =
        (var("DATABASE_TLS_URL"), var("SUNUSAV_TLS_CA"), var("SUNUSAV_TLS_OTHER_CA"))
    else {
        return;
    };
    assert!(url.contains("sslmode=verify-full"), "the URL asks for a verified certificate and host name");
    // A schema of this test's own on the shared server.
    let schema = Schema::new(&format!("tls_{}", uuid::Uuid::new_v4().simple())).expect("schema");
    let options = PgStoreOptions { schema: schema.clone(), ..PgStoreOptions::default() };

    let store = PgStore::connect_with(&url, &options).await.expect("connect over TLS");
    store.migrate().await.expect("migrate over TLS");
    store.ping().await.expect("ping");
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_ssl");
    assert!(encrypted, "the session is encrypted");
    let g = active_group();
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g).await.expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(store.group(g.id()).await.expect("read"), Some(g));

    let wrong = url.replace(&ca, &other_ca);
    assert_ne!(wrong, url);
    let refused = PgStore::connect_with(&wrong, &options).await.expect_err("another CA's certificate");
    assert!(chain(&refused).contains("UnknownIssuer"), "refused for its issuer: {}", chain(&refused));

    // verify-full checks the name too: the server at an address its
    // certificate does not name is refused.
    let unnamed = url.replacen("@localhost:", "@127.0.0.2:", 1);
    assert_ne!(unnamed, url);
    let refused = PgStore::connect_with(&unnamed, &options).await.expect_err("a name the certificate lacks");
    assert!(names_another_host(&chain(&refused)), "refused for its name: {}", chain(&refused));

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .expect("drop the test's schema");
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_runs_over_rediss_and_refuses_a_certificate_of_another_ca_or_for_another_name() {
    let (Some(url), Some(ca), Some(other_ca)) =
        (var("REDIS_TLS_URL"), var("SUNUSAV_TLS_CA"), var("SUNUSAV_TLS_OTHER_CA"))
    else {
        return;
    };
    let ca = std::fs::read(ca).expect("read the CA");
    let config = RedisConfig::from_url(&url).expect("a rediss:// URL").with_tls_ca_pem(ca);
    let conn = RedisConnection::connect(config.clone()).await.expect("connect over TLS");
    let prefix = format!("tls{:016x}", rand::random::<u64>());
    let queue = conn.queue("jobs", &prefix, QueueConfig::default()).expect("queue");
    let id = IdempotencyKey::parse("job:tls").expect("key");
    queue.enqueue(NewJob::new(id.clone(), b"over tls".to_vec())).await.expect("enqueue");
    // reserve_wait blocks on a second client, made with the same TLS settings.
    let job = queue.reserve_wait(Duration::from_secs(30), Duration::from_secs(2)).await.expect("reserve").expect("job");
    assert_eq!((job.id.clone(), job.payload.clone()), (id, b"over tls".to_vec()));
    queue.ack(&job.id, &job.token).await.expect("ack");
    conn.close().await;

    // The server at an address its certificate does not name is refused.
    let mut unnamed = RedisConfig::from_url(&url.replacen("127.0.0.1", "127.0.0.2", 1))
        .expect("url")
        .with_tls_ca_pem(std::fs::read(var("SUNUSAV_TLS_CA").expect("CA")).expect("read the CA"));
    unnamed.connect_timeout = Duration::from_secs(2);
    let refused = RedisConnection::connect(unnamed).await.expect_err("a name the certificate lacks");
    assert!(names_another_host(&chain(&refused)), "refused for its name: {}", chain(&refused));

    let other = std::fs::read(other_ca).expect("read the other CA");
    let mut wrong = config.with_tls_ca_pem(other);
    wrong.connect_timeout = Duration::from_secs(2);
    let refused = RedisConnection::connect(wrong).await.expect_err("another CA's certificate");
    assert!(chain(&refused).contains("UnknownIssuer"), "refused for its issuer: {}", chain(&refused));

    // Plain TCP to the TLS-only server gets nowhere either.
    let plain = url.replacen("rediss://", "redis://", 1);
    let mut plain = RedisConfig::from_url(&plain).expect("url");
    plain.connect_timeout = Duration::from_secs(2);
    assert!(RedisConnection::connect(plain).await.is_err());
}
