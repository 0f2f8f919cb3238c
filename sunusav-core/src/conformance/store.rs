//! The conformance suite of the [`Store`] port: every adapter must pass it.
//!
//! Each case gets a fresh, empty, migrated store from a factory
//! `Fn() -> impl Future<Output = Arc<dyn Store>>` (a PostgreSQL factory gives
//! each its own database). Run every case as one test:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use sunusav_core::{memory::MemoryStore, ports::Store};
//! # async fn example() {
//! sunusav_core::conformance::store::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
//! # }
//! ```
//!
//! or one `#[tokio::test]` per case with [`store_conformance_tests!`](crate::store_conformance_tests)
//! (the calling crate needs `tokio` with the `macros` and `rt-multi-thread` features):
//!
//! ```text
//! sunusav_core::store_conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
//! ```
//!
//! Each case is also a public `async fn` taking a store; [`cases`] lists them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::harness::run_named;
use crate::domain::attempt::{AttemptRoute, AttemptStatus, PaymentAttempt, StoredAttempt};
use crate::domain::group::{ContributionOutcome, Group, GroupSpec, GroupStatus, Invoice, InvoiceState};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::{Balance, LedgerEntry, LedgerReason};
use crate::domain::money::Msat;
use crate::domain::outcome::DeliveryOutcome;
use crate::domain::payout::{Bolt11, Network, PayoutDestination};
use crate::memory::{InvoiceSigner, SimulatedNode};
use crate::ports::store::{
    AuditAction, AuditOutcome, AuditRole, Contribution, DeliveryFilter, MAX_AUDIT_TARGET, NewAuditEntry, OutboxMessage,
    OutcomeFilter, Recorded, Store, StoreError, Unique, WebhookEvent, WebhookRecord,
};

/// A boxed case future.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name (its function's name).
    pub name: &'static str,
    /// The case.
    pub run: fn(Arc<dyn Store>) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish_non_exhaustive()
    }
}

macro_rules! case {
    ($name:ident) => {
        Case { name: stringify!($name), run: |s| Box::pin($name(s)) }
    };
}

/// Every case.
pub fn cases() -> Vec<Case> {
    vec![
        case!(a_group_round_trips_and_its_id_is_unique),
        case!(saving_a_group_persists_its_state),
        case!(a_dropped_transaction_leaves_nothing),
        case!(invoices_are_unique_by_payment_hash),
        case!(contributions_are_claimed_atomically),
        case!(a_cycle_completion_commits_as_one_unit),
        case!(payment_attempts_are_unique_by_key),
        case!(outbox_claims_skip_locked_rows),
        case!(a_group_lock_is_exclusive_until_commit),
        case!(webhook_events_are_recorded_once),
        case!(invoices_and_outcomes_work_outside_a_transaction),
        case!(webhook_events_are_recorded_in_batches),
        case!(invoices_and_outcomes_work_in_batches),
        case!(unprocessed_webhooks_are_listed_oldest_first),
        case!(open_payment_attempts_are_listed_oldest_first),
        case!(one_invoice_is_open_per_member_and_cycle_under_a_race),
        case!(invoice_states_move_and_free_the_slot),
        case!(ledger_entries_are_unique_by_key_and_balances_follow),
        case!(contributions_of_a_group_are_listed_oldest_first),
        case!(money_is_conserved_over_random_group_lives),
        case!(payment_attempts_keep_their_generation),
        case!(a_recorded_key_with_another_body_is_a_conflict),
        case!(a_dead_delivery_is_marked_at_its_generation_and_a_real_outcome_replaces_it),
        case!(a_processed_delivery_reopens_once_per_generation),
        case!(the_delivery_log_filters_and_pages),
        case!(retention_drops_the_bodies_of_processed_deliveries_only),
        case!(payout_destinations_are_set_cleared_and_wake_waiting_attempts),
        case!(a_payout_invoice_hash_is_used_once_and_the_last_one_wins),
        case!(two_attempts_never_share_a_payment_hash),
        case!(the_settle_index_only_moves_forward),
        case!(a_refund_attempt_keeps_its_kind),
        case!(the_audit_log_appends_and_pages_newest_first),
        case!(a_members_attempts_and_invoices_are_read_newest_first_and_bounded),
        case!(a_groups_rules_and_their_state_round_trip),
        case!(scheduled_collecting_groups_are_listed_by_id),
    ]
}

fn find(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no store conformance case named `{name}`"))
}

/// Runs one case by name against a fresh store from `make`.
///
/// # Panics
/// When the case fails (the message names it), or takes longer than 30 s.
pub async fn run_case<F, Fut>(make: &F, name: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let case = find(name);
    let store = make().await;
    run_named("store", name, (case.run)(store)).await;
}

/// Runs every case, each against a fresh store from `make`.
///
/// # Panics
/// On the first failing case, naming it.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for case in cases() {
        run_case(&make, case.name).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance case of the store port,
/// given a factory `Fn() -> impl Future<Output = Arc<dyn Store>>` that
/// returns a fresh, empty, migrated store on each call.
///
/// ```text
/// mod memory_store {
///     use std::sync::Arc;
///     use sunusav_core::memory::MemoryStore;
///     use sunusav_core::ports::Store;
///
///     sunusav_core::store_conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
/// }
/// ```
///
/// With `skip_unless = <bool expression>`, each test first evaluates the
/// expression and returns at once when it is false (a backing service that
/// is not configured; the expression decides whether that is an error).
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr $(, skip_unless = $ready:expr)? $(,)?) => {
        $crate::store_conformance_tests!(@cases $make; { $(if !$ready { return; })? };
            a_group_round_trips_and_its_id_is_unique,
            saving_a_group_persists_its_state,
            a_dropped_transaction_leaves_nothing,
            invoices_are_unique_by_payment_hash,
            contributions_are_claimed_atomically,
            a_cycle_completion_commits_as_one_unit,
            payment_attempts_are_unique_by_key,
            outbox_claims_skip_locked_rows,
            a_group_lock_is_exclusive_until_commit,
            webhook_events_are_recorded_once,
            invoices_and_outcomes_work_outside_a_transaction,
            webhook_events_are_recorded_in_batches,
            invoices_and_outcomes_work_in_batches,
            unprocessed_webhooks_are_listed_oldest_first,
            open_payment_attempts_are_listed_oldest_first,
            one_invoice_is_open_per_member_and_cycle_under_a_race,
            invoice_states_move_and_free_the_slot,
            ledger_entries_are_unique_by_key_and_balances_follow,
            contributions_of_a_group_are_listed_oldest_first,
            money_is_conserved_over_random_group_lives,
            payment_attempts_keep_their_generation,
            a_recorded_key_with_another_body_is_a_conflict,
            a_dead_delivery_is_marked_at_its_generation_and_a_real_outcome_replaces_it,
            a_processed_delivery_reopens_once_per_generation,
            the_delivery_log_filters_and_pages,
            retention_drops_the_bodies_of_processed_deliveries_only,
            payout_destinations_are_set_cleared_and_wake_waiting_attempts,
            a_payout_invoice_hash_is_used_once_and_the_last_one_wins,
            two_attempts_never_share_a_payment_hash,
            the_settle_index_only_moves_forward,
            a_refund_attempt_keeps_its_kind,
            the_audit_log_appends_and_pages_newest_first,
            a_members_attempts_and_invoices_are_read_newest_first_and_bounded,
            a_groups_rules_and_their_state_round_trip,
            scheduled_collecting_groups_are_listed_by_id,
        );
    };
    (@cases $make:expr; $guard:block; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $guard
                $crate::conformance::store::run_case(&$make, stringify!($case)).await;
            }
        )*

        #[test]
        fn store_conformance_macro_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let known: ::std::vec::Vec<&str> =
                $crate::conformance::store::cases().iter().map(|c| c.name).collect();
            assert_eq!(listed, known.as_slice(), "store_conformance_tests! and cases() disagree");
        }
    };
}

// ---------------------------------------------------------------- helpers

fn active_group(n: usize) -> Group {
    let members = (0..n).map(|_| MemberId::random()).collect();
    let spec = GroupSpec {
        contribution: Msat::new(5_000),
        fee_bps: 100,
        members,
        policy: crate::domain::group::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let mut g = Group::new(GroupId::random(), spec).expect("valid spec");
    g.start().expect("start");
    g
}

fn invoice(g: &Group, member: MemberId) -> Invoice {
    Invoice {
        payment_hash: PaymentHash::from_bytes(rand_bytes()),
        group: g.id(),
        cycle: g.cycle(),
        member,
        amount: g.contribution(),
        bolt11: "lnbcrt-test".into(),
        // 2100-01-01: open and unexpired for the cases' lifetime.
        expires_at_ms: 4_102_444_800_000,
        state: InvoiceState::Open,
    }
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}

/// The attempt of cycle 1's payout of `g` to its first member, no fee, never sent.
fn first_payout(g: &Group, amount: Msat, status: AttemptStatus) -> PaymentAttempt {
    PaymentAttempt::restore(stored_first_payout(g, amount, status))
}

/// As [`first_payout`], as a store keeps it.
fn stored_first_payout(g: &Group, amount: Msat, status: AttemptStatus) -> StoredAttempt {
    StoredAttempt {
        key: IdempotencyKey::payout(g.id(), 1),
        group: g.id(),
        cycle: 1,
        beneficiary: g.members()[0],
        amount,
        fee: Msat::ZERO,
        status,
        attempts: 0,
        last_error: None,
        payment_hash: None,
        preimage: None,
        routing_fee: None,
        generation: 0,
        route: None,
        kind: crate::domain::attempt::AttemptKind::Payout,
    }
}

async fn insert(store: &Arc<dyn Store>, g: &Group) {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(g).await.expect("insert group");
    tx.commit().await.expect("commit");
}

/// Settles one contribution the way the service does; returns the outcome.
async fn settle(store: &Arc<dyn Store>, inv: &Invoice) -> ContributionOutcome {
    let mut tx = store.begin().await.expect("begin");
    tx.lock_group(inv.group).await.expect("lock");
    let mut g = tx.load_group(inv.group).await.expect("load").expect("group exists");
    let outcome = g.record_contribution(inv, inv.amount).expect("valid contribution");
    let c = Contribution {
        payment_hash: inv.payment_hash,
        group: inv.group,
        cycle: inv.cycle,
        member: inv.member,
        amount: inv.amount,
    };
    assert!(tx.insert_contribution(&c).await.expect("insert contribution"));
    tx.save_group(&g).await.expect("save");
    tx.commit().await.expect("commit");
    outcome
}

// ---------------------------------------------------------------- cases

/// A group round-trips with its members in payout order; a second insert is a duplicate.
pub async fn a_group_round_trips_and_its_id_is_unique(store: Arc<dyn Store>) {
    let g = active_group(4);
    insert(&store, &g).await;
    let loaded = store.group(g.id()).await.expect("read").expect("found");
    assert_eq!(loaded, g);
    let mut tx = store.begin().await.expect("begin");
    tx.lock_group(g.id()).await.expect("lock");
    assert_eq!(tx.load_group(g.id()).await.expect("load"), Some(g.clone()));
    assert_eq!(tx.insert_group(&g).await, Err(StoreError::Duplicate(Unique::Group)));
    drop(tx);
    assert_eq!(store.group(GroupId::random()).await.expect("read"), None);

    // The group's policy, organizer and schedule are part of what round-trips.
    let mut spec = active_group(2).spec();
    spec.policy.apply_balance = false;
    spec.organizer = Some(spec.members[1]);
    let every_month = crate::domain::schedule::Period::Months(1);
    spec.schedule =
        Some(crate::domain::schedule::Schedule::new(1_767_225_600_000, every_month, 86_400_000).expect("schedule"));
    let mut kept = Group::new(GroupId::random(), spec).expect("valid spec");
    kept.start().expect("start");
    insert(&store, &kept).await;
    let loaded = store.group(kept.id()).await.expect("read").expect("found");
    assert!(!loaded.policy().apply_balance, "apply_balance = false was lost");
    assert_eq!(loaded.organizer(), kept.organizer(), "the organizer was lost");
    assert_eq!(loaded.schedule(), kept.schedule(), "the schedule was lost");
    assert_eq!(loaded.cycle_due_ms(), Some(1_767_225_600_000), "cycle 1 is due at the first due time");
    assert_eq!(loaded, kept);
}

/// Saving changes status and cycle; saving an unknown group is `NotFound`.
pub async fn saving_a_group_persists_its_state(store: Arc<dyn Store>) {
    let mut g = active_group(3);
    insert(&store, &g).await;
    g.cancel().expect("cancel");
    let mut tx = store.begin().await.expect("begin");
    tx.lock_group(g.id()).await.expect("lock");
    tx.save_group(&g).await.expect("save");
    tx.commit().await.expect("commit");
    assert_eq!(store.group(g.id()).await.expect("read").expect("found").status(), GroupStatus::Cancelled);

    let unknown = active_group(2);
    let mut tx = store.begin().await.expect("begin");
    let res = tx.save_group(&unknown).await;
    let res = match res {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::NotFound));
}

/// A transaction dropped without commit leaves nothing behind.
pub async fn a_dropped_transaction_leaves_nothing(store: Arc<dyn Store>) {
    let g = active_group(2);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g).await.expect("insert");
    let inv = invoice(&g, g.members()[0]);
    tx.insert_invoice(&inv).await.expect("invoice");
    drop(tx);
    assert_eq!(store.group(g.id()).await.expect("read"), None);
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.invoice(&inv.payment_hash).await.expect("read"), None);
}

/// Invoices are found by payment hash; the same hash twice is a duplicate.
pub async fn invoices_are_unique_by_payment_hash(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let inv = invoice(&g, g.members()[1]);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_invoice(&inv).await.expect("insert");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.invoice(&inv.payment_hash).await.expect("read"), Some(inv.clone()));
    let res = match tx.insert_invoice(&inv).await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::Duplicate(Unique::Invoice)));
}

/// Contributions: one per payment hash (a replay inserts nothing), one per member and cycle.
pub async fn contributions_are_claimed_atomically(store: Arc<dyn Store>) {
    let g = active_group(3);
    insert(&store, &g).await;
    let m = g.members()[0];
    let inv = invoice(&g, m);
    assert_eq!(settle(&store, &inv).await, ContributionOutcome::Recorded);

    let c = Contribution { payment_hash: inv.payment_hash, group: g.id(), cycle: 1, member: m, amount: inv.amount };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.contribution(&inv.payment_hash).await.expect("read"), Some(c.clone()));
    assert!(!tx.insert_contribution(&c).await.expect("replay is not an error"), "a replay inserted a row");
    let other = Contribution { payment_hash: PaymentHash::from_bytes(rand_bytes()), ..c };
    let res = match tx.insert_contribution(&other).await {
        Ok(_) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::Duplicate(Unique::ContributionMemberCycle)));

    let loaded = store.group(g.id()).await.expect("read").expect("found");
    assert_eq!(loaded.paid().get(&m), Some(&inv.payment_hash), "the current cycle's contributions are loaded");
    assert_eq!(loaded.paid().len(), 1);
}

/// A completed cycle, its payment attempt and outbox row commit together.
pub async fn a_cycle_completion_commits_as_one_unit(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    settle(&store, &invoice(&g, g.members()[0])).await;
    let last = invoice(&g, g.members()[1]);
    let mut tx = store.begin().await.expect("begin");
    tx.lock_group(g.id()).await.expect("lock");
    let mut loaded = tx.load_group(g.id()).await.expect("load").expect("found");
    let ContributionOutcome::CycleComplete(due) = loaded.record_contribution(&last, last.amount).expect("ok") else {
        panic!("the last contribution must complete the cycle");
    };
    let c = Contribution {
        payment_hash: last.payment_hash,
        group: g.id(),
        cycle: 1,
        member: last.member,
        amount: last.amount,
    };
    assert!(tx.insert_contribution(&c).await.expect("insert"));
    tx.save_group(&loaded).await.expect("save");
    assert!(tx.insert_payment_attempt(&PaymentAttempt::pending(&due)).await.expect("attempt"));
    let msg = OutboxMessage { id: 0, queue: "payouts".into(), job_id: due.key.clone(), payload: b"{}".to_vec() };
    tx.insert_outbox(&msg).await.expect("outbox");
    // Not committed: nothing is visible yet from outside.
    assert!(store.payment_attempts(g.id()).await.expect("read").is_empty());
    tx.commit().await.expect("commit");
    let attempts = store.payment_attempts(g.id()).await.expect("read");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status(), AttemptStatus::Pending);
    assert_eq!(attempts[0].amount, due.amount);
    let mut tx = store.begin().await.expect("begin");
    let claimed = tx.claim_outbox(10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job_id, due.key);
    assert!(claimed[0].id > 0, "the store assigns outbox ids");
}

/// Payment attempts are unique by key, updatable, and validated.
pub async fn payment_attempts_are_unique_by_key(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let key = IdempotencyKey::payout(g.id(), 1);
    let stored =
        StoredAttempt { fee: Msat::new(100), ..stored_first_payout(&g, Msat::new(9_900), AttemptStatus::Pending) };
    let a = PaymentAttempt::restore(stored.clone());
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_payment_attempt(&a).await.expect("insert"));
    assert!(!tx.insert_payment_attempt(&a).await.expect("second insert is not an error"));
    tx.commit().await.expect("commit");

    // Every field round-trips, whatever the lifecycle would allow.
    let a = PaymentAttempt::restore(StoredAttempt {
        status: AttemptStatus::Succeeded,
        attempts: 2,
        last_error: Some("no route".into()),
        payment_hash: Some(PaymentHash::from_bytes([1; 32])),
        preimage: Some("00".repeat(32)),
        routing_fee: Some(Msat::new(3)),
        ..stored
    });
    let mut tx = store.begin().await.expect("begin");
    tx.update_payment_attempt(&a).await.expect("update");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.payment_attempt(&key).await.expect("read"), Some(a.clone()));

    let mut unknown = a.clone();
    unknown.key = IdempotencyKey::payout(g.id(), 2);
    let res = match tx.update_payment_attempt(&unknown).await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::NotFound));
    let mut zero = a;
    zero.key = IdempotencyKey::payout(g.id(), 3);
    zero.amount = Msat::ZERO;
    let mut tx = store.begin().await.expect("begin");
    let res = match tx.insert_payment_attempt(&zero).await {
        Ok(_) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert!(matches!(res, Err(StoreError::Invalid(_))), "zero amount accepted: {res:?}");
}

/// Two relays never claim the same outbox row; rows of a dropped claim come back.
pub async fn outbox_claims_skip_locked_rows(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.expect("begin");
    for i in 0..3 {
        let key = IdempotencyKey::parse(format!("job:{i}")).expect("key");
        let msg = OutboxMessage { id: 0, queue: "payouts".into(), job_id: key, payload: vec![i] };
        tx.insert_outbox(&msg).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let mut a = store.begin().await.expect("begin a");
    let first = a.claim_outbox(2).await.expect("claim a");
    assert_eq!(first.len(), 2);
    assert!(first[0].id < first[1].id, "oldest first");
    let mut b = store.begin().await.expect("begin b");
    let second = b.claim_outbox(10).await.expect("claim b");
    assert_eq!(second.len(), 1, "b must skip a's rows");
    assert!(first.iter().all(|m| m.id != second[0].id));
    let ids: Vec<u64> = first.iter().map(|m| m.id).collect();
    a.mark_outbox_sent(&ids).await.expect("mark");
    a.commit().await.expect("commit a");
    drop(b);

    // A dropped transaction rolls back once its connection is next used (a
    // pool may hand `c` another connection first): its row comes back soon,
    // not necessarily at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let left = loop {
        let mut c = store.begin().await.expect("begin c");
        let left = c.claim_outbox(10).await.expect("claim c");
        if !left.is_empty() || tokio::time::Instant::now() > deadline {
            break left;
        }
        drop(c);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(left.len(), 1, "only the row of the dropped claim is left");
    assert_eq!(left[0].id, second[0].id);
}

/// A group's lock is exclusive until commit; another group's is independent.
pub async fn a_group_lock_is_exclusive_until_commit(store: Arc<dyn Store>) {
    let g = active_group(2);
    let h = active_group(2);
    insert(&store, &g).await;
    insert(&store, &h).await;
    let mut t1 = store.begin().await.expect("begin");
    t1.lock_group(g.id()).await.expect("lock");

    let mut t3 = store.begin().await.expect("begin");
    tokio::time::timeout(Duration::from_secs(5), t3.lock_group(h.id()))
        .await
        .expect("another group's lock must not wait")
        .expect("lock h");
    drop(t3);

    let s2 = Arc::clone(&store);
    let gid = g.id();
    let waiter = tokio::spawn(async move {
        let mut t2 = s2.begin().await.expect("begin");
        t2.lock_group(gid).await.expect("lock");
        t2.commit().await.expect("commit");
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished(), "a second transaction took a held group lock");
    t1.commit().await.expect("commit");
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the lock must be released at commit")
        .expect("waiter");
}

/// Webhook deliveries are recorded once by key; their outcome is kept.
pub async fn webhook_events_are_recorded_once(store: Arc<dyn Store>) {
    let key = IdempotencyKey::webhook(None, b"{\"a\":1}");
    let ev = WebhookEvent::new(key.clone(), b"{\"a\":1}".to_vec());
    assert_eq!(store.record_webhook(&ev).await.expect("record"), Recorded::New);
    assert_eq!(store.record_webhook(&ev).await.expect("replay"), Recorded::Replay { outcome: None, generation: 0 });
    let rec = store.webhook(&key).await.expect("read").expect("found");
    assert_eq!(rec.body, Some(ev.body().to_vec()), "the first body is kept");
    assert_eq!((rec.outcome, rec.generation), (None, 0));
    let mut tx = store.begin().await.expect("begin");
    tx.mark_webhook_processed(&key, DeliveryOutcome::UnknownInvoice).await.expect("mark");
    tx.commit().await.expect("commit");
    assert_eq!(store.webhook(&key).await.expect("read").expect("found").outcome, Some(DeliveryOutcome::UnknownInvoice));
    let mut tx = store.begin().await.expect("begin");
    tx.mark_webhook_processed(&key, DeliveryOutcome::Replay).await.expect("mark again");
    tx.commit().await.expect("commit");
    assert_eq!(
        store.webhook(&key).await.expect("read").expect("found").outcome,
        Some(DeliveryOutcome::UnknownInvoice),
        "the first outcome is kept"
    );
    assert_eq!(
        store.record_webhook(&ev).await.expect("replay"),
        Recorded::Replay { outcome: Some(DeliveryOutcome::UnknownInvoice), generation: 0 },
        "a replay says what became of the delivery"
    );
    let unknown = IdempotencyKey::webhook(Some("nope"), b"");
    let mut tx = store.begin().await.expect("begin");
    let res = match tx.mark_webhook_processed(&unknown, DeliveryOutcome::Recorded).await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::NotFound));
    store.ping().await.expect("ping");
}

/// A batch of deliveries: each key new once, the first body kept; a key
/// again in the batch is a replay or a conflict of the first.
pub async fn webhook_events_are_recorded_in_batches(store: Arc<dyn Store>) {
    let ev = |id: &str, body: &str| {
        WebhookEvent::new(IdempotencyKey::webhook(Some(id), body.as_bytes()), body.as_bytes().to_vec())
    };
    assert_eq!(store.record_webhook(&ev("c", "{\"c\":1}")).await.expect("record"), Recorded::New);
    let batch =
        [ev("a", "{\"a\":1}"), ev("b", "{\"b\":1}"), ev("a", "{\"a\":1}"), ev("c", "{\"c\":1}"), ev("a", "{\"a\":2}")];
    let replay = Recorded::Replay { outcome: None, generation: 0 };
    assert_eq!(
        store.record_webhooks(&batch).await.expect("batch"),
        [Recorded::New, Recorded::New, replay, replay, Recorded::Conflict]
    );
    let body = |id: &str| {
        let store = Arc::clone(&store);
        let key = IdempotencyKey::webhook(Some(id), b"");
        async move { store.webhook(&key).await.expect("read").expect("found").body }
    };
    assert_eq!(body("a").await.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(body("c").await.as_deref(), Some(&b"{\"c\":1}"[..]));
    assert_eq!(store.record_webhooks(&[]).await.expect("empty batch"), Vec::<Recorded>::new());
}

/// Outside a transaction: an invoice is read by hash, and a delivery's outcome
/// is recorded on its own, the first one kept.
pub async fn invoices_and_outcomes_work_outside_a_transaction(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let inv = invoice(&g, g.members()[1]);
    assert_eq!(store.invoice(&inv.payment_hash).await.expect("read"), None);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_invoice(&inv).await.expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(store.invoice(&inv.payment_hash).await.expect("read"), Some(inv));

    let key = IdempotencyKey::webhook(Some("outside"), b"{}");
    store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec())).await.expect("record");
    store.mark_webhook_processed(&key, DeliveryOutcome::UnknownInvoice).await.expect("mark");
    store.mark_webhook_processed(&key, DeliveryOutcome::Replay).await.expect("mark again");
    assert_eq!(
        store.webhook(&key).await.expect("read").expect("found").outcome,
        Some(DeliveryOutcome::UnknownInvoice),
        "the first outcome is kept"
    );
    let unknown = IdempotencyKey::webhook(Some("never recorded"), b"");
    assert_eq!(store.mark_webhook_processed(&unknown, DeliveryOutcome::Recorded).await, Err(StoreError::NotFound));
}

/// The batch forms: `invoices` returns the existing ones among the hashes
/// asked (a hash twice, or unknown, is no error); `mark_webhooks_processed`
/// marks each recorded key once, keeps a first outcome, and answers `false`
/// for a key never recorded.
pub async fn invoices_and_outcomes_work_in_batches(store: Arc<dyn Store>) {
    let g = active_group(3);
    insert(&store, &g).await;
    let (a, b) = (invoice(&g, g.members()[1]), invoice(&g, g.members()[2]));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_invoice(&a).await.expect("insert");
    tx.insert_invoice(&b).await.expect("insert");
    tx.commit().await.expect("commit");
    let unknown = PaymentHash::from_bytes(rand_bytes());
    let mut found = store.invoices(&[unknown, b.payment_hash, a.payment_hash, b.payment_hash]).await.expect("read");
    found.sort_by_key(|i| i.member == b.member);
    found.dedup();
    assert_eq!(found, vec![a, b]);
    assert_eq!(store.invoices(&[]).await.expect("read nothing"), vec![]);

    let key = |s: &str| IdempotencyKey::webhook(Some(s), s.as_bytes());
    let (first, second, earlier) = (key("batch-1"), key("batch-2"), key("batch-0"));
    for k in [&first, &second, &earlier] {
        store.record_webhook(&WebhookEvent::new(k.clone(), b"{}".to_vec())).await.expect("record");
    }
    store.mark_webhook_processed(&earlier, DeliveryOutcome::Recorded).await.expect("mark");
    let never = key("never recorded");
    let marked = store
        .mark_webhooks_processed(&[
            (first.clone(), DeliveryOutcome::UnknownInvoice),
            (never, DeliveryOutcome::WrongAmount),
            (second.clone(), DeliveryOutcome::IgnoredStatus),
            (earlier.clone(), DeliveryOutcome::Replay),
        ])
        .await
        .expect("mark many");
    assert_eq!(marked, vec![true, false, true, true]);
    let outcome = |r: Option<WebhookRecord>| r.expect("found").outcome;
    assert_eq!(outcome(store.webhook(&first).await.expect("read")), Some(DeliveryOutcome::UnknownInvoice));
    assert_eq!(outcome(store.webhook(&second).await.expect("read")), Some(DeliveryOutcome::IgnoredStatus));
    assert_eq!(
        outcome(store.webhook(&earlier).await.expect("read")),
        Some(DeliveryOutcome::Recorded),
        "the first outcome is kept"
    );
    assert_eq!(store.mark_webhooks_processed(&[]).await.expect("mark nothing"), Vec::<bool>::new());
}

/// `unprocessed_webhooks` lists recorded deliveries without an outcome,
/// oldest first, up to `limit`, only those recorded at least `older_than` ago;
/// one processed, in or out of a transaction, is not listed again.
pub async fn unprocessed_webhooks_are_listed_oldest_first(store: Arc<dyn Store>) {
    let key = |s: &str| IdempotencyKey::webhook(Some(s), s.as_bytes());
    let keys: Vec<IdempotencyKey> = (0..5).map(|i| key(&format!("sweep-{i}"))).collect();
    for k in &keys {
        let body = format!("{{\"n\":\"{k}\"}}").into_bytes();
        assert_eq!(store.record_webhook(&WebhookEvent::new(k.clone(), body)).await.expect("record"), Recorded::New);
    }
    store.mark_webhook_processed(&keys[1], DeliveryOutcome::UnknownInvoice).await.expect("mark");
    let mut tx = store.begin().await.expect("begin");
    tx.mark_webhook_processed(&keys[3], DeliveryOutcome::Recorded).await.expect("mark in tx");
    tx.commit().await.expect("commit");

    let listed = |records: Vec<WebhookRecord>| records.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let all = store.unprocessed_webhooks(Duration::ZERO, 10).await.expect("list");
    assert!(all.iter().all(|r| r.outcome.is_none()));
    assert_eq!(all[0].body, Some(format!("{{\"n\":\"{}\"}}", keys[0]).into_bytes()), "the body as recorded");
    assert_eq!(listed(all), vec![keys[0].clone(), keys[2].clone(), keys[4].clone()]);
    assert_eq!(
        listed(store.unprocessed_webhooks(Duration::ZERO, 2).await.expect("list")),
        vec![keys[0].clone(), keys[2].clone()]
    );
    assert_eq!(store.unprocessed_webhooks(Duration::from_hours(1), 10).await.expect("list"), vec![]);
    assert_eq!(store.unprocessed_webhooks(Duration::ZERO, 0).await.expect("list"), vec![]);
}

/// `open_payment_attempts` lists attempts neither paid nor dead, in the order
/// they were inserted, up to `limit`, only those unchanged for `older_than`;
/// an attempt that succeeds or dies is not listed again.
pub async fn open_payment_attempts_are_listed_oldest_first(store: Arc<dyn Store>) {
    let mut attempts = Vec::new();
    for (i, status) in [
        AttemptStatus::Pending,
        AttemptStatus::InFlight,
        AttemptStatus::Succeeded,
        AttemptStatus::Failed,
        AttemptStatus::Dead,
        AttemptStatus::Pending,
    ]
    .into_iter()
    .enumerate()
    {
        let g = active_group(2);
        insert(&store, &g).await;
        let a = first_payout(&g, Msat::new(1_000 + u64::try_from(i).expect("small")), status);
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.insert_payment_attempt(&a).await.expect("insert"));
        tx.commit().await.expect("commit");
        attempts.push(a);
    }
    let keys = |v: Vec<PaymentAttempt>| v.into_iter().map(|a| a.key).collect::<Vec<_>>();
    let open = store.open_payment_attempts(Duration::ZERO, 10).await.expect("list");
    assert_eq!(open[0], attempts[0], "the attempt as stored");
    let expected: Vec<IdempotencyKey> = [0, 1, 3, 5].iter().map(|&i| attempts[i].key.clone()).collect();
    assert_eq!(keys(open), expected);
    assert_eq!(keys(store.open_payment_attempts(Duration::ZERO, 2).await.expect("list")), expected[..2].to_vec());
    assert_eq!(store.open_payment_attempts(Duration::from_hours(1), 10).await.expect("list"), vec![]);

    // The first one is paid: no longer open.
    let mut paid = attempts[0].clone();
    paid.succeed(PaymentHash::from_bytes([2; 32]), "00".repeat(32), Msat::ZERO).expect("a pending attempt may succeed");
    let mut tx = store.begin().await.expect("begin");
    tx.update_payment_attempt(&paid).await.expect("update");
    tx.commit().await.expect("commit");
    assert_eq!(keys(store.open_payment_attempts(Duration::ZERO, 10).await.expect("list")), expected[1..].to_vec());
}

/// 50 transactions race to open an invoice for one member and cycle, without
/// the group's lock: exactly one commits; the others are refused with
/// `Duplicate(OpenInvoice)`, at insert or at commit.
pub async fn one_invoice_is_open_per_member_and_cycle_under_a_race(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let member = g.members()[0];
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            let inv = invoice(&g, member);
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                tx.insert_invoice(&inv).await?;
                tx.commit().await.map(|()| inv)
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(inv) => won.push(inv),
            Err(e) => assert_eq!(e, StoreError::Duplicate(Unique::OpenInvoice)),
        }
    }
    assert_eq!(won.len(), 1, "exactly one open invoice");
    assert_eq!(store.open_invoice(g.id(), g.cycle(), member).await.expect("read"), Some(won[0].clone()));
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.open_invoice(g.id(), g.cycle(), member).await.expect("read"), Some(won[0].clone()));
    assert_eq!(tx.open_invoices(g.id(), g.cycle()).await.expect("read"), vec![won[0].clone()]);
    // Another member, or a settled invoice, does not take the slot.
    tx.insert_invoice(&invoice(&g, g.members()[1])).await.expect("another member");
    let settled = Invoice { state: InvoiceState::Settled, ..invoice(&g, member) };
    tx.insert_invoice(&settled).await.expect("a settled invoice takes no slot");
    tx.commit().await.expect("commit");
}

/// An invoice's state moves; a cancelled or settled invoice frees its
/// member's slot for a new open one; an unknown hash is `NotFound`.
pub async fn invoice_states_move_and_free_the_slot(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let member = g.members()[0];
    let first = Invoice { expires_at_ms: 1_000, ..invoice(&g, member) };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_invoice(&first).await.expect("insert");
    tx.commit().await.expect("commit");
    let open = store.open_invoice(g.id(), g.cycle(), member).await.expect("read").expect("open");
    assert_eq!(open.expires_at_ms, 1_000, "the expiry round-trips");
    assert!(!open.is_live(1_000), "expired");

    let mut tx = store.begin().await.expect("begin");
    let second = invoice(&g, member);
    assert_eq!(tx.insert_invoice(&second).await, Err(StoreError::Duplicate(Unique::OpenInvoice)));
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.set_invoice_state(&first.payment_hash, InvoiceState::Cancelled).await.expect("cancel");
    assert_eq!(tx.open_invoice(g.id(), g.cycle(), member).await.expect("read"), None, "its own write first");
    tx.insert_invoice(&second).await.expect("the slot is free in the same transaction");
    tx.commit().await.expect("commit");
    assert_eq!(store.invoice(&first.payment_hash).await.expect("read").map(|i| i.state), Some(InvoiceState::Cancelled));
    assert_eq!(store.open_invoice(g.id(), g.cycle(), member).await.expect("read"), Some(second.clone()));

    let mut tx = store.begin().await.expect("begin");
    tx.set_invoice_state(&second.payment_hash, InvoiceState::Settled).await.expect("settle");
    let unknown = PaymentHash::from_bytes([0xab; 32]);
    let res = match tx.set_invoice_state(&unknown, InvoiceState::Cancelled).await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_eq!(res, Err(StoreError::NotFound));
    // That transaction failed whole: the second invoice is still open.
    assert_eq!(store.open_invoice(g.id(), g.cycle(), member).await.expect("read"), Some(second));
}

/// Ledger entries are unique by key (a second insert is `false`, no change),
/// listed per group in the order recorded, and leave the balances their
/// signed sum says; positive balances of every group are listed; entries are
/// paged by reason with a cursor; a zero amount is `Invalid`.
pub async fn ledger_entries_are_unique_by_key_and_balances_follow(store: Arc<dyn Store>) {
    let g = active_group(2);
    let other = active_group(2);
    insert(&store, &g).await;
    insert(&store, &other).await;
    let (m0, m1) = (g.members()[0], g.members()[1]);
    let h = |b: u8| PaymentHash::from_bytes([b; 32]);
    let entries = [
        LedgerEntry::settlement(g.id(), m0, 1, h(1), LedgerReason::Overpaid, Msat::new(700)),
        LedgerEntry::settlement(g.id(), m1, 1, h(2), LedgerReason::Late, Msat::new(5_000)),
        LedgerEntry::applied(g.id(), m1, 1, Msat::new(5_000)),
        LedgerEntry::settlement(other.id(), other.members()[0], 1, h(3), LedgerReason::DuplicateInvoice, Msat::new(9)),
        LedgerEntry::released(g.id(), m0, 1, 1, Msat::new(200)),
    ];
    let mut tx = store.begin().await.expect("begin");
    for e in &entries {
        assert!(tx.insert_ledger_entry(e).await.expect("insert"));
    }
    assert!(!tx.insert_ledger_entry(&entries[0]).await.expect("a second insert is no error"));
    assert_eq!(tx.ledger_entry(&entries[1].key).await.expect("read"), Some(entries[1].clone()), "its own write");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let again = LedgerEntry::settlement(g.id(), m0, 2, h(1), LedgerReason::Late, Msat::new(1));
    assert!(!tx.insert_ledger_entry(&again).await.expect("same key"), "one settlement, one entry");
    assert_eq!(
        tx.group_ledger(g.id()).await.expect("read"),
        vec![entries[0].clone(), entries[1].clone(), entries[2].clone(), entries[4].clone()]
    );
    let zero = LedgerEntry::settlement(g.id(), m0, 1, h(9), LedgerReason::Late, Msat::ZERO);
    let res = match tx.insert_ledger_entry(&zero).await {
        Ok(_) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert!(matches!(res, Err(StoreError::Invalid(_))), "zero amount accepted: {res:?}");

    let ledger = store.ledger(g.id()).await.expect("read");
    assert_eq!(ledger.len(), 4);
    let held = crate::domain::ledger::balances(&ledger).expect("valid");
    assert_eq!(held.iter().find(|b| b.member == m0).map(|b| b.amount), Some(Msat::new(500)));
    assert_eq!(held.iter().find(|b| b.member == m1).map(|b| b.amount), Some(Msat::ZERO));
    let unapplied = store.unapplied_balances(None, 100).await.expect("read");
    let mut expected = vec![
        Balance { group: g.id(), member: m0, amount: Msat::new(500) },
        Balance { group: other.id(), member: other.members()[0], amount: Msat::new(9) },
    ];
    expected.sort_by_key(|b| (b.group, b.member));
    assert_eq!(unapplied, expected, "only balances above zero, by group then member");
    let first = store.unapplied_balances(None, 1).await.expect("read");
    assert_eq!(first, expected[..1].to_vec());
    let after = first.last().map(|b| (b.group, b.member));
    assert_eq!(store.unapplied_balances(after, 1).await.expect("read"), expected[1..].to_vec(), "after the cursor");
    let last = expected.last().map(|b| (b.group, b.member));
    assert!(store.unapplied_balances(last, 10).await.expect("read").is_empty(), "nothing after the last");

    let credits = [LedgerReason::Overpaid, LedgerReason::Late, LedgerReason::DuplicateInvoice];
    let page = store.ledger_entries(&credits, 0, 2).await.expect("read");
    assert_eq!(page.entries, vec![entries[0].clone(), entries[1].clone()]);
    let page = store.ledger_entries(&credits, page.next, 2).await.expect("read");
    assert_eq!(page.entries, vec![entries[3].clone()]);
    let last = store.ledger_entries(&credits, page.next, 2).await.expect("read");
    assert_eq!((last.entries.len(), last.next), (0, page.next), "an empty page keeps the cursor");
    let refunds = store.ledger_entries(&[LedgerReason::RefundReleased], 0, 10).await.expect("read");
    assert_eq!(refunds.entries, vec![entries[4].clone()]);
}

/// A group's contributions, of every cycle, are listed in the order recorded.
pub async fn contributions_of_a_group_are_listed_oldest_first(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    assert_eq!(store.contributions(g.id()).await.expect("read"), vec![]);
    let a = invoice(&g, g.members()[1]);
    let b = invoice(&g, g.members()[0]);
    let mut recorded = Vec::new();
    for inv in [&a, &b] {
        let mut tx = store.begin().await.expect("begin");
        tx.insert_invoice(inv).await.expect("invoice");
        tx.commit().await.expect("commit");
        settle(&store, inv).await;
        recorded.push(inv.payment_hash);
    }
    let listed: Vec<PaymentHash> =
        store.contributions(g.id()).await.expect("read").into_iter().map(|c| c.payment_hash).collect();
    assert_eq!(listed, recorded);
}

/// Twelve whole group lives, from a fixed seed, with random overpayments,
/// duplicate invoices, late payments, underpayments, cancellations and
/// releases: every msat received stays accounted for, no cycle is paid
/// twice (see [`super::lives`]).
pub async fn money_is_conserved_over_random_group_lives(store: Arc<dyn Store>) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_2026);
    for _ in 0..12 {
        let life = super::lives::Life::random(&mut rng, 24);
        super::lives::run_life(Arc::clone(&store), &life).await;
    }
}

/// A payment attempt keeps its generation, and is read outside a
/// transaction by its key.
pub async fn payment_attempts_keep_their_generation(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let key = IdempotencyKey::payout(g.id(), 1);
    assert_eq!(store.payment_attempt(&key).await.expect("read"), None);
    let mut a = first_payout(&g, Msat::new(9_900), AttemptStatus::Pending);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_payment_attempt(&a).await.expect("insert"));
    tx.commit().await.expect("commit");
    assert_eq!(store.payment_attempt(&key).await.expect("read"), Some(a.clone()));

    let hash = PaymentHash::from_bytes(rand_bytes());
    a.send(false, AttemptRoute::Keysend(SimulatedNode::payee_node()), hash).expect("sent");
    a.die("no route").expect("dead");
    assert_eq!(a.reopen(), Ok(1));
    let mut tx = store.begin().await.expect("begin");
    tx.update_payment_attempt(&a).await.expect("update");
    tx.commit().await.expect("commit");
    let read = store.payment_attempt(&key).await.expect("read").expect("found");
    assert_eq!((read.generation(), read.status()), (1, AttemptStatus::Failed));
    assert_eq!(read, a, "every field round-trips");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.payment_attempt(&key).await.expect("read in tx"), Some(a.clone()));
    drop(tx);
    assert_eq!(store.payment_attempts(g.id()).await.expect("list")[0].generation(), 1);
    assert_eq!(store.open_payment_attempts(Duration::ZERO, 10).await.expect("open")[0].generation(), 1);
}

/// A delivery of a recorded key with another body is a conflict: the first
/// record is unchanged, the conflict is counted once per distinct body.
pub async fn a_recorded_key_with_another_body_is_a_conflict(store: Arc<dyn Store>) {
    let key = IdempotencyKey::webhook(Some("evt-conflict"), b"");
    let first = WebhookEvent::new(key.clone(), b"{\"amount_msat\":1000}".to_vec());
    let other = WebhookEvent::new(key.clone(), b"{\"amount_msat\":9000}".to_vec());
    let third = WebhookEvent::new(key.clone(), b"{\"amount_msat\":1}".to_vec());
    assert_eq!(store.record_webhook(&first).await.expect("record"), Recorded::New);
    assert_eq!(store.record_webhook(&other).await.expect("conflict"), Recorded::Conflict);
    assert_eq!(store.record_webhook(&other).await.expect("the same conflict"), Recorded::Conflict);
    let rec = store.webhook(&key).await.expect("read").expect("found");
    assert_eq!((rec.body.as_deref(), rec.outcome, rec.generation), (Some(first.body()), None, 0), "unchanged");
    let conflicts = |store: Arc<dyn Store>| async move {
        store.webhook_deliveries(&DeliveryFilter::all(10)).await.expect("log").deliveries[0].conflicts
    };
    assert_eq!(conflicts(Arc::clone(&store)).await, 1, "one distinct conflicting body");
    assert_eq!(store.record_webhooks(&[third, first.clone()]).await.expect("batch")[0], Recorded::Conflict);
    assert_eq!(conflicts(Arc::clone(&store)).await, 2);
    assert_eq!(
        store.record_webhook(&first).await.expect("replay"),
        Recorded::Replay { outcome: None, generation: 0 },
        "the first body is still a replay"
    );
}

/// `dead` is written only at the record's generation and while it has no
/// outcome, and a real outcome replaces it; other outcomes are kept.
pub async fn a_dead_delivery_is_marked_at_its_generation_and_a_real_outcome_replaces_it(store: Arc<dyn Store>) {
    let key = IdempotencyKey::webhook(Some("evt-dead"), b"");
    store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec())).await.expect("record");
    assert!(!store.mark_webhook_dead(&key, 1).await.expect("another generation"), "not its generation");
    assert!(store.mark_webhook_dead(&key, 0).await.expect("dead"));
    assert!(!store.mark_webhook_dead(&key, 0).await.expect("again"), "dead already");
    let rec = store.webhook(&key).await.expect("read").expect("found");
    assert_eq!(rec.outcome, Some(DeliveryOutcome::Dead));
    assert_eq!(store.unprocessed_webhooks(Duration::ZERO, 10).await.expect("list"), vec![], "dead is not pending");
    assert_eq!(
        store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec())).await.expect("replay"),
        Recorded::Replay { outcome: Some(DeliveryOutcome::Dead), generation: 0 }
    );
    // A run that settled while the job was dead-lettered (its lease lost) wins.
    let mut tx = store.begin().await.expect("begin");
    tx.mark_webhook_processed(&key, DeliveryOutcome::Recorded).await.expect("mark");
    tx.commit().await.expect("commit");
    assert_eq!(store.webhook(&key).await.expect("read").expect("found").outcome, Some(DeliveryOutcome::Recorded));
    assert!(!store.mark_webhook_dead(&key, 0).await.expect("settled"), "a settled delivery is never marked dead");
    store.mark_webhook_processed(&key, DeliveryOutcome::Replay).await.expect("mark");
    assert_eq!(store.webhook(&key).await.expect("read").expect("found").outcome, Some(DeliveryOutcome::Recorded));

    let other = IdempotencyKey::webhook(Some("evt-dead-2"), b"");
    store.record_webhook(&WebhookEvent::new(other.clone(), b"{}".to_vec())).await.expect("record");
    assert!(store.mark_webhook_dead(&other, 0).await.expect("dead"));
    assert_eq!(
        store.mark_webhooks_processed(&[(other.clone(), DeliveryOutcome::UnknownInvoice)]).await.expect("batch"),
        vec![true]
    );
    assert_eq!(
        store.webhook(&other).await.expect("read").expect("found").outcome,
        Some(DeliveryOutcome::UnknownInvoice)
    );
    let never = IdempotencyKey::webhook(Some("never"), b"");
    assert_eq!(store.mark_webhook_dead(&never, 0).await, Err(StoreError::NotFound));
}

/// A processed delivery reopens once per generation: its outcome cleared,
/// listed as unprocessed again; a pending one, or one at another
/// generation, does not.
pub async fn a_processed_delivery_reopens_once_per_generation(store: Arc<dyn Store>) {
    let key = IdempotencyKey::webhook(Some("evt-reopen"), b"");
    let ev = WebhookEvent::new(key.clone(), b"{\"r\":1}".to_vec());
    store.record_webhook(&ev).await.expect("record");
    assert_eq!(store.reopen_webhook(&key, 0).await.expect("pending"), None, "nothing to reopen");
    assert!(store.mark_webhook_dead(&key, 0).await.expect("dead"));
    assert_eq!(store.reopen_webhook(&key, 1).await.expect("stale"), None, "another generation");
    assert_eq!(store.reopen_webhook(&key, 0).await.expect("reopen"), Some(1));
    assert_eq!(store.reopen_webhook(&key, 0).await.expect("twice"), None, "reopened once");
    let rec = store.webhook(&key).await.expect("read").expect("found");
    assert_eq!((rec.outcome, rec.generation, rec.body.as_deref()), (None, 1, Some(ev.body())));
    let pending = store.unprocessed_webhooks(Duration::ZERO, 10).await.expect("list");
    assert_eq!(pending.iter().map(|r| (r.key.clone(), r.generation)).collect::<Vec<_>>(), vec![(key.clone(), 1)]);
    assert_eq!(store.record_webhook(&ev).await.expect("replay"), Recorded::Replay { outcome: None, generation: 1 });
    assert!(!store.mark_webhook_dead(&key, 0).await.expect("old generation"), "an older job's death changes nothing");
    store.mark_webhook_processed(&key, DeliveryOutcome::Recorded).await.expect("settled");
    assert_eq!(store.reopen_webhook(&key, 1).await.expect("a processed one reopens too"), Some(2));
    let never = IdempotencyKey::webhook(Some("never"), b"");
    assert_eq!(store.reopen_webhook(&never, 0).await, Err(StoreError::NotFound));
}

/// The delivery log lists deliveries in the order recorded, by outcome
/// (or pending), payment hash and time, a page at a time.
pub async fn the_delivery_log_filters_and_pages(store: Arc<dyn Store>) {
    let hash = PaymentHash::from_bytes(rand_bytes());
    let key = |i: usize| IdempotencyKey::webhook(Some(&format!("log-{i}")), b"");
    for i in 0..5 {
        let mut ev = WebhookEvent::new(key(i), format!("{{\"n\":{i}}}").into_bytes());
        if i % 2 == 0 {
            ev = ev.with_payment_hash(hash);
        }
        assert_eq!(store.record_webhook(&ev).await.expect("record"), Recorded::New);
    }
    store.mark_webhook_processed(&key(1), DeliveryOutcome::Recorded).await.expect("mark");
    assert!(store.mark_webhook_dead(&key(2), 0).await.expect("dead"));
    assert!(store.mark_webhook_dead(&key(4), 0).await.expect("dead"));

    let keys = |f: DeliveryFilter| {
        let store = Arc::clone(&store);
        async move {
            let page = store.webhook_deliveries(&f).await.expect("log");
            (page.deliveries.iter().map(|d| d.key.clone()).collect::<Vec<_>>(), page.next)
        }
    };
    let all = store.webhook_deliveries(&DeliveryFilter::all(10)).await.expect("log");
    assert_eq!(all.deliveries.iter().map(|d| d.key.clone()).collect::<Vec<_>>(), (0..5).map(key).collect::<Vec<_>>());
    let first = &all.deliveries[0];
    assert_eq!(
        (first.outcome, first.generation, first.payment_hash, first.body_kept, first.conflicts),
        (None, 0, Some(hash), true, 0)
    );
    assert!(first.received_at_ms > 1_700_000_000_000, "unix ms: {}", first.received_at_ms);
    assert!(all.deliveries.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all.next, all.deliveries[4].position);
    assert_eq!(all.deliveries[1].payment_hash, None);

    let dead = DeliveryFilter { outcome: Some(OutcomeFilter::Is(DeliveryOutcome::Dead)), ..DeliveryFilter::all(10) };
    assert_eq!(keys(dead).await.0, vec![key(2), key(4)]);
    let pending = DeliveryFilter { outcome: Some(OutcomeFilter::Pending), ..DeliveryFilter::all(10) };
    assert_eq!(keys(pending).await.0, vec![key(0), key(3)]);
    let by_hash = DeliveryFilter { payment_hash: Some(hash), ..DeliveryFilter::all(10) };
    assert_eq!(keys(by_hash).await.0, vec![key(0), key(2), key(4)]);
    let dead_of_hash = DeliveryFilter { payment_hash: Some(hash), ..dead };
    assert_eq!(keys(dead_of_hash).await.0, vec![key(2), key(4)]);
    let future = DeliveryFilter { since_ms: Some(first.received_at_ms + 86_400_000), ..DeliveryFilter::all(10) };
    assert_eq!(keys(future).await, (vec![], 0));
    let since =
        DeliveryFilter { since_ms: Some(first.received_at_ms.saturating_sub(60_000)), ..DeliveryFilter::all(10) };
    assert_eq!(keys(since).await.0.len(), 5);

    // Pages of two.
    let (page1, next1) = keys(DeliveryFilter::all(2)).await;
    let (page2, next2) = keys(DeliveryFilter { after: next1, ..DeliveryFilter::all(2) }).await;
    let (page3, next3) = keys(DeliveryFilter { after: next2, ..DeliveryFilter::all(2) }).await;
    let (page4, next4) = keys(DeliveryFilter { after: next3, ..DeliveryFilter::all(2) }).await;
    assert_eq!([page1, page2, page3].concat(), (0..5).map(key).collect::<Vec<_>>());
    assert_eq!((page4, next4), (vec![], next3), "past the end: empty, the cursor unchanged");
    assert_eq!(keys(DeliveryFilter::all(0)).await, (vec![], 0));
}

/// Retention drops the bodies of processed deliveries only (not of dead or
/// pending ones); the record, its outcome and its digest stay, so a replay
/// is still told from a conflict, and a dropped body is never reopened.
pub async fn retention_drops_the_bodies_of_processed_deliveries_only(store: Arc<dyn Store>) {
    let key = |s: &str| IdempotencyKey::webhook(Some(s), b"");
    let ev = |s: &str| WebhookEvent::new(key(s), format!("{{\"id\":\"{s}\"}}").into_bytes());
    for s in ["done-1", "done-2", "dead", "pending"] {
        store.record_webhook(&ev(s)).await.expect("record");
    }
    store.record_webhook(&WebhookEvent::new(key("done-1"), b"other".to_vec())).await.expect("conflict");
    store.mark_webhook_processed(&key("done-1"), DeliveryOutcome::Recorded).await.expect("mark");
    store.mark_webhook_processed(&key("done-2"), DeliveryOutcome::UnknownInvoice).await.expect("mark");
    assert!(store.mark_webhook_dead(&key("dead"), 0).await.expect("dead"));

    assert_eq!(store.drop_webhook_bodies(Duration::from_hours(1), 10).await.expect("too recent"), 0);
    assert_eq!(store.drop_webhook_bodies(Duration::ZERO, 1).await.expect("one"), 1, "bounded by the limit");
    assert_eq!(store.drop_webhook_bodies(Duration::ZERO, 10).await.expect("the rest"), 1);
    assert_eq!(store.drop_webhook_bodies(Duration::ZERO, 10).await.expect("none left"), 0);
    for (s, kept) in [("done-1", false), ("done-2", false), ("dead", true), ("pending", true)] {
        let rec = store.webhook(&key(s)).await.expect("read").expect("the record stays");
        assert_eq!(rec.body.is_some(), kept, "{s}");
    }
    assert_eq!(
        store.webhook(&key("done-1")).await.expect("read").expect("found").outcome,
        Some(DeliveryOutcome::Recorded)
    );
    let log = store.webhook_deliveries(&DeliveryFilter::all(10)).await.expect("log");
    assert_eq!(log.deliveries.iter().map(|d| d.body_kept).collect::<Vec<_>>(), vec![false, false, true, true]);
    assert_eq!(log.deliveries[0].conflicts, 1, "the conflict count stays");

    assert_eq!(
        store.record_webhook(&ev("done-1")).await.expect("replay"),
        Recorded::Replay { outcome: Some(DeliveryOutcome::Recorded), generation: 0 },
        "the digest outlives the body"
    );
    assert_eq!(
        store.record_webhook(&WebhookEvent::new(key("done-1"), b"x".to_vec())).await.expect("c"),
        Recorded::Conflict
    );
    assert_eq!(store.reopen_webhook(&key("done-2"), 0).await.expect("no body"), None, "nothing left to replay");
}

/// A member's destination is set, replaced, cleared, and read inside and
/// outside a transaction; the member's attempts that await one are listed.
pub async fn payout_destinations_are_set_cleared_and_wake_waiting_attempts(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let member = g.members()[0];
    let node = SimulatedNode::payee_node();
    let other = InvoiceSigner::from_bytes([0x33; 32]).node();
    assert_eq!(store.payout_destination(member).await.expect("read"), None);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.is_group_member(member).await.expect("member"), "a member of a group");
    assert!(!tx.is_group_member(MemberId::random()).await.expect("member"), "an id of no group");
    tx.set_payout_destination(member, Some(PayoutDestination::Keysend(node))).await.expect("set");
    assert_eq!(tx.payout_destination(member).await.expect("read in tx"), Some(PayoutDestination::Keysend(node)));
    let mut waiting = first_payout(&g, Msat::new(9_900), AttemptStatus::Pending);
    waiting.await_destination(false).expect("waits");
    assert!(tx.insert_payment_attempt(&waiting).await.expect("insert"));
    tx.commit().await.expect("commit");
    assert_eq!(store.payout_destination(member).await.expect("read"), Some(PayoutDestination::Keysend(node)));
    assert_eq!(store.payout_destination(g.members()[1]).await.expect("read"), None, "per member");

    assert!(
        store.open_payment_attempts(Duration::ZERO, 10).await.expect("open").is_empty(),
        "one awaiting a destination is no work for the payout sweep"
    );
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.attempts_awaiting_destination(member).await.expect("list"), vec![waiting.clone()]);
    assert_eq!(tx.attempts_awaiting_destination(g.members()[1]).await.expect("list"), vec![]);
    tx.set_payout_destination(member, Some(PayoutDestination::Keysend(other))).await.expect("replace");
    tx.commit().await.expect("commit");
    assert_eq!(store.payout_destination(member).await.expect("read"), Some(PayoutDestination::Keysend(other)));

    let mut tx = store.begin().await.expect("begin");
    tx.set_payout_destination(member, None).await.expect("clear");
    drop(tx);
    assert!(store.payout_destination(member).await.expect("read").is_some(), "a dropped transaction changes nothing");
    let mut tx = store.begin().await.expect("begin");
    tx.set_payout_destination(member, None).await.expect("clear");
    tx.commit().await.expect("commit");
    assert_eq!(store.payout_destination(member).await.expect("read"), None);
}

/// Payout invoices: the last submitted for a cycle is the one read; a
/// payment hash submitted before (for any cycle or group) is a duplicate.
pub async fn a_payout_invoice_hash_is_used_once_and_the_last_one_wins(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let mint = |n: u8| {
        let text = InvoiceSigner::from_bytes([0x44; 32]).mint(
            PaymentHash::from_bytes([n; 32]),
            None,
            Duration::from_hours(1),
            Network::Regtest,
            std::time::SystemTime::now(),
        );
        Bolt11::parse(&text).expect("a valid invoice")
    };
    let (a, b) = (mint(rand_bytes()[0] | 1), mint(0));
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.payout_invoice(g.id(), 1).await.expect("read"), None);
    tx.insert_payout_invoice(g.id(), 1, &a).await.expect("insert");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_payout_invoice(g.id(), 1, &b).await.expect("insert a second");
    assert_eq!(tx.payout_invoice(g.id(), 1).await.expect("read in tx").as_deref(), Some(b.as_str()));
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.payout_invoice(g.id(), 1).await.expect("read").as_deref(), Some(b.as_str()), "the last one");
    assert_eq!(tx.payout_invoice(g.id(), 2).await.expect("read"), None, "per cycle");
    let again = tx.insert_payout_invoice(g.id(), 2, &a).await;
    let dup = match again {
        Err(e) => e,
        Ok(()) => tx.commit().await.expect_err("a hash submitted before"),
    };
    assert_eq!(dup, StoreError::Duplicate(Unique::PayoutInvoice));
}

/// Two payment attempts are never sent with one payment hash: one payment
/// must never count as two payouts.
pub async fn two_attempts_never_share_a_payment_hash(store: Arc<dyn Store>) {
    let (first, second) = (active_group(2), active_group(2));
    insert(&store, &first).await;
    insert(&store, &second).await;
    let hash = PaymentHash::from_bytes(rand_bytes());
    let route = AttemptRoute::Invoice("lnbcrt1same".into());
    let mut a = first_payout(&first, Msat::new(9_900), AttemptStatus::Pending);
    a.send(false, route.clone(), hash).expect("send");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_payment_attempt(&a).await.expect("insert"));
    tx.commit().await.expect("commit");
    // The same attempt again with its own hash is fine.
    let mut tx = store.begin().await.expect("begin");
    tx.update_payment_attempt(&a).await.expect("update");
    tx.commit().await.expect("commit");
    let mut b = first_payout(&second, Msat::new(9_900), AttemptStatus::Pending);
    b.send(false, route, hash).expect("send");
    let mut tx = store.begin().await.expect("begin");
    let dup = match tx.insert_payment_attempt(&b).await {
        Err(e) => e,
        Ok(_) => tx.commit().await.expect_err("a hash of another attempt"),
    };
    assert_eq!(dup, StoreError::Duplicate(Unique::AttemptPaymentHash));
    assert_eq!(store.payment_attempt(&b.key).await.expect("read"), None);
}

/// A source's settle index starts at 0, moves forward, and never back.
pub async fn the_settle_index_only_moves_forward(store: Arc<dyn Store>) {
    let source = format!("test-{}", GroupId::random());
    assert_eq!(store.settle_index(&source).await.expect("read"), 0);
    store.advance_settle_index(&source, 7).await.expect("advance");
    assert_eq!(store.settle_index(&source).await.expect("read"), 7);
    store.advance_settle_index(&source, 3).await.expect("not back");
    assert_eq!(store.settle_index(&source).await.expect("read"), 7);
    store.advance_settle_index(&source, 9).await.expect("advance");
    assert_eq!(store.settle_index(&source).await.expect("read"), 9);
    assert_eq!(store.settle_index("another").await.expect("read"), 0, "per source");
}

/// A refund attempt (keyed by its ledger entry) round-trips with its kind
/// and is listed with the group's attempts.
pub async fn a_refund_attempt_keeps_its_kind(store: Arc<dyn Store>) {
    let g = active_group(2);
    insert(&store, &g).await;
    let key = IdempotencyKey::parse(format!("refund:{}:{}:1", g.id(), g.members()[1])).expect("key");
    let refund = PaymentAttempt::refund(key.clone(), g.id(), 1, g.members()[1], Msat::new(700));
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_payment_attempt(&refund).await.expect("insert"));
    tx.commit().await.expect("commit");
    let read = store.payment_attempt(&key).await.expect("read").expect("found");
    assert_eq!(read.kind, crate::domain::attempt::AttemptKind::Refund);
    assert_eq!(read, refund, "every field round-trips");
    assert_eq!(store.payment_attempts(g.id()).await.expect("list"), vec![refund]);
}

/// The audit log keeps each entry as given, numbers them in the order
/// recorded, and reads them newest first a page at a time; a target or a
/// detail too long is refused.
pub async fn the_audit_log_appends_and_pages_newest_first(store: Arc<dyn Store>) {
    let empty = store.audit_entries(None, 10).await.expect("read");
    assert_eq!((empty.entries.len(), empty.next), (0, None));
    let entry = |i: u64| {
        NewAuditEntry::new(
            1_700_000_000_000 + i,
            if i.is_multiple_of(2) { AuditRole::Admin } else { AuditRole::Operator },
            AuditAction::ALL[usize::try_from(i).expect("small") % AuditAction::ALL.len()],
            format!("payouts/payout:<script>alert({i})</script>"),
            if i.is_multiple_of(2) { AuditOutcome::Succeeded } else { AuditOutcome::Refused },
            i.is_multiple_of(3).then(|| format!("generation {i}")),
        )
    };
    let mut positions = Vec::new();
    for i in 0..5 {
        positions.push(store.record_audit(&entry(i)).await.expect("record"));
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "ascending: {positions:?}");

    let all = store.audit_entries(None, 10).await.expect("read");
    assert_eq!(
        all.entries.iter().map(|e| e.entry.clone()).collect::<Vec<_>>(),
        (0..5).rev().map(entry).collect::<Vec<_>>()
    );
    assert_eq!(
        all.entries.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(all.next, None, "not a full page: nothing older");

    // Pages of two, newest first.
    let p1 = store.audit_entries(None, 2).await.expect("read");
    let p2 = store.audit_entries(p1.next, 2).await.expect("read");
    let p3 = store.audit_entries(p2.next, 2).await.expect("read");
    let seen: Vec<u64> = [&p1, &p2, &p3].iter().flat_map(|p| p.entries.iter().map(|e| e.position)).collect();
    assert_eq!(seen, positions.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(p3.next, None);
    assert_eq!(p1.next, Some(positions[3]));
    assert!(store.audit_entries(Some(positions[0]), 10).await.expect("read").entries.is_empty());
    assert!(store.audit_entries(None, 0).await.expect("read").entries.is_empty());

    let mut long = entry(9);
    long.target = "x".repeat(MAX_AUDIT_TARGET + 1);
    assert!(matches!(store.record_audit(&long).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.audit_entries(None, 10).await.expect("read").entries.len(), 5, "nothing recorded");
}

/// A member's payment attempts (payouts and refunds, of every group) and
/// invoices are read newest first, at most `limit`; another member's are not
/// among them; an unknown member has none.
pub async fn a_members_attempts_and_invoices_are_read_newest_first_and_bounded(store: Arc<dyn Store>) {
    let g = active_group(2);
    let (m, other) = (g.members()[0], g.members()[1]);
    // A second group with the same member.
    let spec = GroupSpec {
        contribution: Msat::new(5_000),
        fee_bps: 0,
        members: vec![other, m],
        policy: crate::domain::group::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let mut h = Group::new(GroupId::random(), spec).expect("valid spec");
    h.start().expect("start");
    insert(&store, &g).await;
    insert(&store, &h).await;
    let payout = first_payout(&g, Msat::new(9_000), AttemptStatus::Pending);
    let theirs = PaymentAttempt::restore(StoredAttempt {
        key: IdempotencyKey::payout(h.id(), 1),
        group: h.id(),
        beneficiary: other,
        ..stored_first_payout(&h, Msat::new(9_000), AttemptStatus::Pending)
    });
    let refund_key = IdempotencyKey::parse(format!("refund:{}:{m}:1", h.id())).expect("key");
    let refund = PaymentAttempt::refund(refund_key, h.id(), 1, m, Msat::new(700));
    let (inv_g, inv_other, inv_h) = (invoice(&g, m), invoice(&g, other), invoice(&h, m));
    // One transaction each: the order of insertion is the order read back (reversed).
    for attempt in [&payout, &theirs, &refund] {
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.insert_payment_attempt(attempt).await.expect("insert attempt"));
        tx.commit().await.expect("commit");
    }
    for inv in [&inv_g, &inv_other, &inv_h] {
        let mut tx = store.begin().await.expect("begin");
        tx.insert_invoice(inv).await.expect("insert invoice");
        tx.commit().await.expect("commit");
    }
    let keys = |v: Vec<PaymentAttempt>| v.into_iter().map(|a| a.key.to_string()).collect::<Vec<_>>();
    let attempts = store.member_attempts(m, 10).await.expect("read");
    assert_eq!(keys(attempts), [refund.key.to_string(), payout.key.to_string()], "newest first, only the member's");
    assert_eq!(keys(store.member_attempts(m, 1).await.expect("read")), [refund.key.to_string()], "at most limit");
    assert_eq!(store.member_attempts(m, 10).await.expect("read")[0], refund, "every field round-trips");
    assert_eq!(keys(store.member_attempts(other, 10).await.expect("read")), [theirs.key.to_string()]);
    let hashes = |v: Vec<Invoice>| v.into_iter().map(|i| i.payment_hash).collect::<Vec<_>>();
    assert_eq!(hashes(store.member_invoices(m, 10).await.expect("read")), [inv_h.payment_hash, inv_g.payment_hash]);
    assert_eq!(store.member_invoices(m, 1).await.expect("read"), vec![inv_h.clone()], "at most limit, every field");
    assert_eq!(hashes(store.member_invoices(other, 10).await.expect("read")), [inv_other.payment_hash]);
    let nobody = MemberId::random();
    assert!(store.member_attempts(nobody, 10).await.expect("read").is_empty());
    assert!(store.member_invoices(nobody, 10).await.expect("read").is_empty());
    assert!(store.member_attempts(m, 0).await.expect("read").is_empty(), "limit 0");
}

async fn save(store: &Arc<dyn Store>, g: &Group) {
    let mut tx = store.begin().await.expect("begin");
    tx.lock_group(g.id()).await.expect("lock");
    tx.save_group(g).await.expect("save group");
    tx.commit().await.expect("commit");
}

/// A scheduled group with these rules, created (forming).
fn ruled(n: usize, late: crate::domain::rules::LatePolicy, order: crate::domain::rules::PayoutOrder) -> Group {
    let mut spec = active_group(n).spec();
    spec.schedule = Some(
        crate::domain::schedule::Schedule::new(
            1_767_225_600_000,
            crate::domain::schedule::Period::Weeks(1),
            86_400_000,
        )
        .expect("schedule"),
    );
    spec.policy.late = late;
    spec.policy.order = order;
    Group::new(GroupId::random(), spec).expect("valid spec")
}

/// What the rules keep round-trips, as the memory store keeps the whole
/// aggregate: a drawn order (from its stored seed), the members told late
/// with their fines, when the cycle opened, an auction's sealed bids and
/// its winner; a drawn group cancelled before it started reloads.
pub async fn a_groups_rules_and_their_state_round_trip(store: Arc<dyn Store>) {
    use crate::domain::auction::{AuctionRules, Bid};
    use crate::domain::draw::DrawSeed;
    use crate::domain::rules::{FineAmount, FinePolicy, FineTo, LatePolicy, PayoutOrder};
    let fine = LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::new(50)), to: FineTo::Pot });
    let mut drawn = ruled(4, fine, PayoutOrder::Draw);
    insert(&store, &drawn).await;
    drawn.start_drawn(DrawSeed::from_bytes([7; 32])).expect("start");
    drawn.open_cycle_at(1_767_000_000_000);
    assert_eq!(drawn.mark_late().len(), 4);
    save(&store, &drawn).await;
    let loaded = store.group(drawn.id()).await.expect("read").expect("found");
    assert_eq!(loaded, drawn, "the draw, the late members and the opening time");
    assert_eq!(loaded.draw_seed().map(DrawSeed::expose_bytes), Some([7; 32]));
    assert_eq!(loaded.owed(drawn.members()[0]), Msat::new(5_050), "the fine is owed");

    let rules = AuctionRules::new(1_000, 3_000).expect("rules");
    let mut auctioned = ruled(3, LatePolicy::Wait, PayoutOrder::Auction(rules));
    insert(&store, &auctioned).await;
    auctioned.start().expect("start");
    auctioned.open_cycle_at(1_767_000_000_000);
    let pot = auctioned.auction_pot();
    for (i, m) in auctioned.members().to_vec().into_iter().enumerate() {
        let payout = Msat::new(pot.get() - 100 * (i as u64 + 1));
        auctioned.place_bid(Bid { member: m, payout, at_ms: 1_767_000_000_000 + i as u64 }).expect("bid");
    }
    save(&store, &auctioned).await;
    assert_eq!(store.group(auctioned.id()).await.expect("read").expect("found"), auctioned, "sealed bids");
    assert_eq!(auctioned.close_auction().expect("close"), None, "nobody paid yet");
    save(&store, &auctioned).await;
    let loaded = store.group(auctioned.id()).await.expect("read").expect("found");
    assert_eq!(loaded, auctioned, "the winner");
    assert_eq!(loaded.beneficiary(), Some(auctioned.members()[2]), "the lowest bid");

    let mut forming = ruled(2, LatePolicy::Wait, PayoutOrder::Draw);
    insert(&store, &forming).await;
    forming.cancel().expect("cancel");
    save(&store, &forming).await;
    assert_eq!(store.group(forming.id()).await.expect("read").expect("found"), forming, "cancelled while forming");
}

/// The timers' sweep reads the ids of active scheduled groups whose cycle
/// is collecting, in id order, by pages.
pub async fn scheduled_collecting_groups_are_listed_by_id(store: Arc<dyn Store>) {
    use crate::domain::rules::{LatePolicy, PayoutOrder};
    let mut listed = Vec::new();
    for _ in 0..3 {
        let mut g = ruled(2, LatePolicy::Wait, PayoutOrder::Fixed);
        insert(&store, &g).await;
        g.start().expect("start");
        save(&store, &g).await;
        listed.push(g.id());
    }
    // Not listed: forming, cancelled, unscheduled.
    let forming = ruled(2, LatePolicy::Wait, PayoutOrder::Fixed);
    insert(&store, &forming).await;
    let mut cancelled = ruled(2, LatePolicy::Wait, PayoutOrder::Fixed);
    insert(&store, &cancelled).await;
    cancelled.start().expect("start");
    cancelled.cancel().expect("cancel");
    save(&store, &cancelled).await;
    insert(&store, &active_group(2)).await;
    listed.sort_by_key(GroupId::as_uuid);
    assert_eq!(store.scheduled_groups(None, 10).await.expect("list"), listed);
    let first = store.scheduled_groups(None, 2).await.expect("page");
    assert_eq!(first, listed[..2]);
    assert_eq!(store.scheduled_groups(first.last().copied(), 2).await.expect("page"), listed[2..]);
}
