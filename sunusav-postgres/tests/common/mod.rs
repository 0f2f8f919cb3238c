//! Test helper: each test gets its own freshly created and migrated database.
//!
//! `DATABASE_URL` names a superuser connection (the admin URL). Without it the
//! tests return early, unless `SUNUSAV_REQUIRE_SERVICES=1`, where they fail.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sunusav_core::domain::group::{Group, GroupSpec};
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::store::Store;
use sunusav_postgres::{PgStore, PgStoreOptions};

/// The admin URL, or `None` (after a note) when the tests should be skipped.
pub fn admin_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SUNUSAV_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "SUNUSAV_REQUIRE_SERVICES=1 but DATABASE_URL is not set: PostgreSQL tests cannot run \
                 (start services with scripts/services.sh run cargo test)"
            );
            eprintln!("DATABASE_URL is not set: skipping a PostgreSQL test");
            None
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = base[host_start..].find('/').map_or(base, |i| &base[..host_start + i]);
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// A database created for one test, dropped by [`TestDb::drop_db`].
#[derive(Debug)]
pub struct TestDb {
    admin: String,
    /// The database's name.
    pub name: String,
    /// A URL to it.
    pub url: String,
}

impl TestDb {
    /// Creates an empty database (not migrated); `None` when tests are skipped.
    pub async fn empty() -> Option<Self> {
        let admin = admin_url()?;
        let name = format!("sunusav_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.expect("connect to DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        Some(Self { admin, name, url })
    }

    /// Creates and migrates a database; `None` when tests are skipped.
    pub async fn migrated() -> Option<Self> {
        let db = Self::empty().await?;
        let store = db.store().await;
        sunusav_postgres::migrate(store.pool()).await.expect("migrate");
        store.pool().close().await;
        Some(db)
    }

    /// A store on this database with default options.
    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.expect("connect store")
    }

    /// A store on this database with `options`.
    pub async fn store_with(&self, options: &PgStoreOptions) -> PgStore {
        PgStore::connect_with(&self.url, options).await.expect("connect store")
    }

    /// Drops the database (terminating its sessions).
    pub async fn drop_db(self) {
        let mut conn = PgConnection::connect(&self.admin).await.expect("connect to DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut conn)
            .await
            .expect("drop test database");
        conn.close().await.ok();
    }
}

/// An active group of `n` fresh members.
pub fn active_group(n: usize) -> Group {
    let members = (0..n).map(|_| MemberId::random()).collect();
    let spec = GroupSpec {
        contribution: Msat::new(5_000),
        fee_bps: 100,
        members,
        policy: sunusav_core::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let mut g = Group::new(GroupId::random(), spec).expect("valid spec");
    g.start().expect("start");
    g
}

/// Inserts `g` in its own committed transaction.
pub async fn insert_group(store: &Arc<dyn Store>, g: &Group) {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(g).await.expect("insert group");
    tx.commit().await.expect("commit");
}
