//! Settles contributions through the adapter at concurrency 1, 16 and 64 and
//! prints contributions/s; `bench/postgres/run.sh` runs the same transaction as
//! hand-written SQL under pgbench, so the two rates read as a ratio.
//!
//! Run with:
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release -p sunusav-bench --bin pg-bench`
//!
//! It creates its own database (`sunusav_bench_<random>`), migrates it, loads
//! `bench/postgres/setup.sql`, and drops it at the end. Environment: `BENCH_LEVELS`
//! (default `1,16,64`), `BENCH_TOTAL` transactions per level (default 9600),
//! `BENCH_GROUPS` (200) and `BENCH_MEMBERS` (50).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use sqlx::{Connection, PgConnection};
use sunusav_core::domain::group::InvoiceState;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::ledger::settlement_key;
use sunusav_core::ports::store::{Contribution, Store};
use sunusav_postgres::{PgStore, PgStoreOptions};

const SETUP_SQL: &str = include_str!("../../postgres/setup.sql");

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = base[host_start..].find('/').map_or(base, |i| &base[..host_start + i]);
    query.map_or_else(|| format!("{root}/{db}"), |q| format!("{root}/{db}?{q}"))
}

/// One contribution, settled the way the service does it, in one unit of work.
async fn settle(store: &dyn Store, hash: PaymentHash) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    let invoice = tx.invoice(&hash).await?.ok_or_else(|| anyhow!("no invoice {hash}"))?;
    tx.lock_group(invoice.group).await?;
    if tx.contribution(&hash).await?.is_some() || tx.ledger_entry(&settlement_key(&hash)).await?.is_some() {
        bail!("slot {hash} settled twice");
    }
    let mut group = tx.load_group(invoice.group).await?.ok_or_else(|| anyhow!("no group"))?;
    group.record_contribution(&invoice, invoice.amount)?;
    tx.set_invoice_state(&hash, InvoiceState::Settled).await?;
    let c = Contribution {
        payment_hash: hash,
        group: invoice.group,
        cycle: invoice.cycle,
        member: invoice.member,
        amount: invoice.amount,
    };
    if !tx.insert_contribution(&c).await? {
        bail!("contribution {hash} already recorded");
    }
    tx.save_group(&group).await?;
    tx.commit().await?;
    Ok(())
}

/// `n` per second with one decimal, in integer arithmetic.
fn rate(n: usize, elapsed: Duration) -> String {
    let micros = elapsed.as_micros().max(1);
    let tenths = u128::try_from(n).unwrap_or(u128::MAX).saturating_mul(10_000_000) / micros;
    format!("{}.{}", tenths / 10, tenths % 10)
}

async fn run_level(
    url: &str,
    admin: &mut PgConnection,
    level: usize,
    total: usize,
    groups: i32,
    members: i32,
) -> anyhow::Result<()> {
    let slots: i64 =
        sqlx::query_scalar("SELECT bench_setup($1, $2)").bind(groups).bind(members).fetch_one(&mut *admin).await?;
    if usize::try_from(slots)? < total {
        bail!("{slots} slots for {total} transactions: raise BENCH_GROUPS or BENCH_MEMBERS");
    }
    let hashes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payment_hash FROM bench_slots ORDER BY id").fetch_all(&mut *admin).await?;
    let hashes: Arc<Vec<PaymentHash>> = Arc::new(
        hashes
            .iter()
            .map(|h| <[u8; 32]>::try_from(h.as_slice()).map(PaymentHash::from_bytes))
            .collect::<Result<_, _>>()?,
    );
    let options = PgStoreOptions { max_connections: u32::try_from(level)?, ..PgStoreOptions::default() };
    let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(url, &options).await?);
    // Open every connection first: pgbench reports its rate without connection time.
    let barrier = Arc::new(tokio::sync::Barrier::new(level));
    let warm: Vec<_> = (0..level)
        .map(|_| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                let tx = store.begin().await?;
                barrier.wait().await;
                drop(tx);
                anyhow::Ok(())
            })
        })
        .collect();
    for w in warm {
        w.await??;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..level)
        .map(|_| {
            let (store, next, hashes) = (Arc::clone(&store), Arc::clone(&next), Arc::clone(&hashes));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(());
                    }
                    settle(store.as_ref(), hashes[i]).await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed();
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM contributions").fetch_one(&mut *admin).await?;
    if usize::try_from(recorded)? != total {
        bail!("{recorded} contributions recorded, {total} expected");
    }
    println!(
        "pg-bench concurrency={level}: {total} contributions in {} ms = {} contributions/s",
        elapsed.as_millis(),
        rate(total, elapsed)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL").context("DATABASE_URL must name a superuser connection")?;
    let levels: Vec<usize> = env_or("BENCH_LEVELS", "1,16,64").split(',').map(str::parse).collect::<Result<_, _>>()?;
    let total: usize = env_or("BENCH_TOTAL", "9600").parse()?;
    let groups: i32 = env_or("BENCH_GROUPS", "200").parse()?;
    let members: i32 = env_or("BENCH_MEMBERS", "50").parse()?;

    let name = format!("sunusav_bench_{}", uuid::Uuid::new_v4().simple());
    let mut root = PgConnection::connect(&admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut root).await?;
    let url = with_database(&admin_url, &name);
    let result = async {
        let mut admin = PgConnection::connect(&url).await?;
        let pool = sqlx::PgPool::connect(&url).await?;
        sunusav_postgres::migrate(&pool).await?;
        pool.close().await;
        // The bench's SQL names the store's tables, in the schema `sunusav`.
        sqlx::raw_sql("SET search_path TO sunusav").execute(&mut admin).await?;
        sqlx::raw_sql(SETUP_SQL).execute(&mut admin).await?;
        for &level in &levels {
            run_level(&url, &mut admin, level, total, groups, members).await?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut root)
        .await?;
    result
}
