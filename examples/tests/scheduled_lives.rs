//! Time-travel tests on PostgreSQL + Redis: whole lives of scheduled groups
//! on a clock moved by hand, for each late policy and each payout order,
//! with the store in its own database and the queues (payouts, webhooks,
//! timers, events) under their own key prefix; the invariants are those of
//! [`sunusav_core::conformance::scheduled`], as on the in-memory adapters.

mod common;

use std::sync::Arc;

use common::{fresh_database, fresh_prefix, services};
use sunusav_core::Msat;
use sunusav_core::conformance::scheduled::{LifeQueues, ScheduledLife, run_scheduled_life};
use sunusav_core::domain::rules::{CoverPolicy, FineAmount, FinePolicy, FineTo, LatePolicy, PayoutOrder};
use sunusav_core::ports::QueueConfig;
use sunusav_core::services::{EVENTS_QUEUE, PAYOUT_QUEUE, TIMERS_QUEUE, WEBHOOK_QUEUE};
use sunusav_postgres::PgStore;
use sunusav_redis::{RedisConfig, RedisConnection};

async fn lives(order: PayoutOrder) {
    let Some((admin, redis_url)) = services() else { return };
    let db = fresh_database(&admin).await;
    let store = PgStore::connect(&db).await.expect("connect");
    sunusav_postgres::migrate(store.pool()).await.expect("migrate");
    let store = Arc::new(store);
    let redis = RedisConnection::connect(RedisConfig::from_url(&redis_url).expect("REDIS_URL")).await.expect("redis");
    let policies = [
        LatePolicy::Wait,
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::new(1_500)), to: FineTo::Pot }),
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Bps(750), to: FineTo::Organizer }),
        LatePolicy::Cover(CoverPolicy { deposit_msat: Msat::new(10_000) }),
    ];
    for late in policies {
        let prefix = fresh_prefix();
        let queue = |name| Arc::new(redis.queue(name, &prefix, QueueConfig::default()).expect("queue"));
        let queues = LifeQueues {
            payouts: queue(PAYOUT_QUEUE),
            webhooks: queue(WEBHOOK_QUEUE),
            timers: queue(TIMERS_QUEUE),
            events: queue(EVENTS_QUEUE),
        };
        let life = ScheduledLife::every_third(4, late, order);
        let report = run_scheduled_life(store.clone(), queues, &life).await;
        let late_pairs = life.late_members.iter().flatten().filter(|l| **l).count();
        // Dividends on a balance may pay a member's contribution when a cycle opens.
        assert!(report.late <= late_pairs, "{late:?}");
        if !matches!(order, PayoutOrder::Auction(_)) {
            assert_eq!(report.late, late_pairs, "{late:?}");
        }
        assert_eq!(report.fines, u128::from(late.fine(Msat::new(10_000)).get()) * report.late as u128, "{late:?}");
    }
    redis.close().await;
}

#[tokio::test]
async fn scheduled_lives_in_the_listed_order_on_postgres_and_redis() {
    lives(PayoutOrder::Fixed).await;
}

#[tokio::test]
async fn scheduled_lives_in_a_drawn_order_on_postgres_and_redis() {
    lives(PayoutOrder::Draw).await;
}

#[tokio::test]
async fn scheduled_lives_in_an_auctioned_order_on_postgres_and_redis() {
    lives(PayoutOrder::Auction(sunusav_core::domain::auction::AuctionRules::new(1_000, 3_000).expect("rules"))).await;
}
