//! What the schema enforces for open invoices and the ledger, beyond the
//! conformance suite: one open invoice per member and cycle across concurrent
//! transactions, insertion order within one transaction, the balances' signed
//! sums, and the reasons listing's cursor.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, active_group, insert_group};
use sunusav_core::domain::group::{Group, Invoice, InvoiceState};
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::ledger::{Balance, LedgerEntry, LedgerReason, settlement_key};
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::store::{Contribution, Store, StoreError, Unique};

const EXPIRES_AT_MS: u64 = 1_764_720_000_000;

fn invoice(g: &Group, member: usize, cycle: u32) -> Invoice {
    Invoice {
        payment_hash: PaymentHash::from_bytes(rand::random()),
        group: g.id(),
        cycle,
        member: g.members()[member],
        amount: g.contribution(),
        bolt11: "lnbcrt1".into(),
        expires_at_ms: EXPIRES_AT_MS,
        state: InvoiceState::Open,
    }
}

fn credit(g: &Group, member: usize, reason: LedgerReason, msat: u64) -> LedgerEntry {
    LedgerEntry::settlement(
        g.id(),
        g.members()[member],
        g.cycle(),
        PaymentHash::from_bytes(rand::random()),
        reason,
        Msat::new(msat),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_invoice_waits_for_the_first_transaction_then_is_refused() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(2);
    insert_group(&store, &g).await;
    let (first, second) = (invoice(&g, 0, 1), invoice(&g, 0, 1));

    // Not under the group's lock: the index alone decides.
    let mut a = store.begin().await.expect("begin");
    a.insert_invoice(&first).await.expect("first open invoice");
    let racing = {
        let (store, second) = (Arc::clone(&store), second.clone());
        tokio::spawn(async move {
            let mut b = store.begin().await.expect("begin");
            b.insert_invoice(&second).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!racing.is_finished(), "the second insert waits for the first transaction");
    a.commit().await.expect("commit");
    assert_eq!(racing.await.expect("task"), Err(StoreError::Duplicate(Unique::OpenInvoice)));

    // A rolled-back first insert lets the second one through.
    let (third, fourth) = (invoice(&g, 1, 1), invoice(&g, 1, 1));
    let mut a = store.begin().await.expect("begin");
    a.insert_invoice(&third).await.expect("open invoice");
    let racing = {
        let (store, fourth) = (Arc::clone(&store), fourth.clone());
        tokio::spawn(async move {
            let mut b = store.begin().await.expect("begin");
            b.insert_invoice(&fourth).await?;
            b.commit().await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(a);
    racing.await.expect("task").expect("inserted once the first rolled back");
    assert_eq!(store.open_invoice(g.id(), 1, g.members()[1]).await.expect("read"), Some(fourth));
    assert_eq!(store.open_invoice(g.id(), 1, g.members()[0]).await.expect("read"), Some(first));
    db.drop_db().await;
}

#[tokio::test]
async fn invoice_states_move_and_open_invoices_list_in_insertion_order() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(3);
    insert_group(&store, &g).await;
    let (m0, m1, m2) = (invoice(&g, 0, 1), invoice(&g, 1, 1), invoice(&g, 2, 1));
    let other_cycle = invoice(&g, 0, 2);
    let settled = Invoice { state: InvoiceState::Settled, ..invoice(&g, 0, 1) };

    let mut tx = store.begin().await.expect("begin");
    // One transaction: created_at is the same for all; the order is kept anyway.
    for inv in [&m2, &m0, &other_cycle, &settled, &m1] {
        tx.insert_invoice(inv).await.expect("insert");
    }
    assert_eq!(tx.open_invoices(g.id(), 1).await.expect("list"), vec![m2.clone(), m0.clone(), m1.clone()]);
    assert_eq!(tx.open_invoice(g.id(), 1, g.members()[0]).await.expect("read"), Some(m0.clone()));
    assert_eq!(tx.invoice(&settled.payment_hash).await.expect("read"), Some(settled.clone()));
    tx.set_invoice_state(&m2.payment_hash, InvoiceState::Cancelled).await.expect("cancel");
    assert_eq!(
        tx.set_invoice_state(&PaymentHash::from_bytes([9; 32]), InvoiceState::Cancelled).await,
        Err(StoreError::NotFound)
    );
    drop(tx);

    // Dropped without a commit: nothing of it stays.
    assert_eq!(store.invoice(&m0.payment_hash).await.expect("read"), None);
    let mut tx = store.begin().await.expect("begin");
    for inv in [&m2, &m0, &m1] {
        tx.insert_invoice(inv).await.expect("insert");
    }
    tx.set_invoice_state(&m2.payment_hash, InvoiceState::Cancelled).await.expect("cancel");
    let replacement = invoice(&g, 2, 1);
    tx.insert_invoice(&replacement).await.expect("a cancelled invoice frees the slot");
    tx.commit().await.expect("commit");

    assert_eq!(store.open_invoice(g.id(), 1, g.members()[2]).await.expect("read"), Some(replacement.clone()));
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.open_invoices(g.id(), 1).await.expect("list"), vec![m0.clone(), m1.clone(), replacement]);
    assert_eq!(
        tx.set_invoice_state(&m2.payment_hash, InvoiceState::Open).await,
        Err(StoreError::Duplicate(Unique::OpenInvoice)),
        "reopening makes a second open invoice"
    );
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.set_invoice_state(&m0.payment_hash, InvoiceState::Settled).await.expect("settle");
    tx.commit().await.expect("commit");
    let read = store.invoices(&[m0.payment_hash, m2.payment_hash]).await.expect("read");
    assert!(read.iter().any(|i| i.payment_hash == m0.payment_hash && i.state == InvoiceState::Settled));
    assert!(read.iter().any(|i| i.payment_hash == m2.payment_hash && i.state == InvoiceState::Cancelled));
    assert_eq!(store.open_invoice(g.id(), 1, g.members()[0]).await.expect("read"), None);

    // An expiry that does not fit a BIGINT is refused before SQL.
    let mut tx = store.begin().await.expect("begin");
    let far = Invoice { expires_at_ms: u64::MAX, ..invoice(&g, 0, 3) };
    assert!(matches!(tx.insert_invoice(&far).await, Err(StoreError::Invalid(_))));
    db.drop_db().await;
}

#[tokio::test]
async fn contributions_list_oldest_first_within_one_transaction() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(4);
    insert_group(&store, &g).await;
    let c = |member: usize, cycle: u32| Contribution {
        payment_hash: PaymentHash::from_bytes(rand::random()),
        group: g.id(),
        cycle,
        member: g.members()[member],
        amount: g.contribution(),
    };
    let all = vec![c(3, 1), c(0, 1), c(2, 2), c(1, 1)];
    let mut tx = store.begin().await.expect("begin");
    for one in &all {
        assert!(tx.insert_contribution(one).await.expect("insert"));
    }
    tx.commit().await.expect("commit");
    let later = c(0, 2);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_contribution(&later).await.expect("insert"));
    tx.commit().await.expect("commit");
    let mut expected = all;
    expected.push(later);
    assert_eq!(store.contributions(g.id()).await.expect("read"), expected);
    assert!(store.contributions(active_group(2).id()).await.expect("read").is_empty());
    db.drop_db().await;
}

#[tokio::test]
async fn ledger_entries_are_claimed_once_and_listed_in_insertion_order() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let (g, h) = (active_group(2), active_group(2));
    insert_group(&store, &g).await;
    insert_group(&store, &h).await;

    let late = credit(&g, 0, LedgerReason::Late, 7_000);
    let over = credit(&h, 1, LedgerReason::Overpaid, 300);
    let applied = LedgerEntry::applied(g.id(), g.members()[0], 1, Msat::new(5_000));
    let released = LedgerEntry::released(g.id(), g.members()[0], 1, 1, Msat::new(2_000));
    let mut tx = store.begin().await.expect("begin");
    for e in [&late, &over, &applied] {
        assert!(tx.insert_ledger_entry(e).await.expect("insert"));
    }
    // The same key again, even with other fields: no change.
    let again = LedgerEntry { amount: Msat::new(1), ..late.clone() };
    assert!(!tx.insert_ledger_entry(&again).await.expect("replay"));
    let zero = LedgerEntry { amount: Msat::ZERO, ..credit(&g, 1, LedgerReason::Late, 1) };
    assert!(matches!(tx.insert_ledger_entry(&zero).await, Err(StoreError::Invalid(_))));
    // Refused before SQL: the unit of work goes on.
    assert!(tx.insert_ledger_entry(&released).await.expect("insert"));
    assert_eq!(tx.ledger_entry(&late.key).await.expect("read"), Some(late.clone()));
    assert_eq!(tx.ledger_entry(&settlement_key(&PaymentHash::from_bytes([1; 32]))).await.expect("read"), None);
    assert_eq!(tx.group_ledger(g.id()).await.expect("read"), vec![late.clone(), applied.clone(), released.clone()]);
    tx.commit().await.expect("commit");

    assert_eq!(store.ledger(g.id()).await.expect("read"), vec![late.clone(), applied, released]);
    assert_eq!(store.ledger(h.id()).await.expect("read"), vec![over.clone()]);

    // A member of another group is refused by the foreign key.
    let mut tx = store.begin().await.expect("begin");
    let stranger = LedgerEntry { group: h.id(), ..credit(&g, 0, LedgerReason::Late, 5) };
    assert!(matches!(tx.insert_ledger_entry(&stranger).await, Err(StoreError::Invalid(_))));
    db.drop_db().await;
}

#[tokio::test]
async fn unapplied_balances_are_signed_sums_above_zero_by_group_then_member() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let groups: Vec<Group> = (0..3).map(|_| active_group(3)).collect();
    for g in &groups {
        insert_group(&store, g).await;
    }
    let mut tx = store.begin().await.expect("begin");
    let mut expected = Vec::new();
    for g in &groups {
        let (a, b, c) = (g.members()[0], g.members()[1], g.members()[2]);
        // a: 7000 + 300 - 5000 = 2300; b: 5000 - 5000 = 0; c: 4000 - 4000 (released) = 0.
        for e in [
            credit(g, 0, LedgerReason::Late, 7_000),
            credit(g, 0, LedgerReason::Overpaid, 300),
            LedgerEntry::applied(g.id(), a, 2, Msat::new(5_000)),
            credit(g, 1, LedgerReason::DuplicateInvoice, 5_000),
            LedgerEntry::applied(g.id(), b, 2, Msat::new(5_000)),
            credit(g, 2, LedgerReason::Underpaid, 4_000),
            LedgerEntry::released(g.id(), c, 1, 1, Msat::new(4_000)),
        ] {
            assert!(tx.insert_ledger_entry(&e).await.expect("insert"));
        }
        expected.push(Balance { group: g.id(), member: a, amount: Msat::new(2_300) });
    }
    let g = &groups[0];
    assert!(tx.insert_ledger_entry(&credit(g, 1, LedgerReason::GroupCancelled, 10)).await.expect("insert"));
    expected.push(Balance { group: g.id(), member: g.members()[1], amount: Msat::new(10) });
    tx.commit().await.expect("commit");

    expected.sort_by_key(|b| (b.group, b.member));
    assert_eq!(store.unapplied_balances(None, 100).await.expect("read"), expected);
    assert_eq!(store.unapplied_balances(None, 2).await.expect("read"), expected[..2].to_vec());
    assert!(store.unapplied_balances(None, 0).await.expect("read").is_empty());
    let after = expected.get(1).map(|b| (b.group, b.member));
    assert_eq!(store.unapplied_balances(after, 100).await.expect("read"), expected[2..].to_vec(), "after a cursor");
    db.drop_db().await;
}

#[tokio::test]
async fn the_reasons_listing_pages_by_position_across_groups() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let (g, h) = (active_group(2), active_group(2));
    insert_group(&store, &g).await;
    insert_group(&store, &h).await;
    let entries = vec![
        credit(&g, 0, LedgerReason::Late, 1),
        LedgerEntry::released(h.id(), h.members()[1], 1, 1, Msat::new(2)),
        credit(&h, 0, LedgerReason::Underpaid, 3),
        LedgerEntry::released(g.id(), g.members()[0], 1, 1, Msat::new(4)),
        credit(&g, 1, LedgerReason::Late, 5),
        LedgerEntry::released(g.id(), g.members()[1], 1, 1, Msat::new(6)),
    ];
    let mut tx = store.begin().await.expect("begin");
    for e in &entries {
        assert!(tx.insert_ledger_entry(e).await.expect("insert"));
    }
    tx.commit().await.expect("commit");

    let wanted = [LedgerReason::RefundReleased, LedgerReason::Late, LedgerReason::RefundReleased];
    let expected: Vec<LedgerEntry> = entries
        .iter()
        .filter(|e| matches!(e.reason, LedgerReason::RefundReleased | LedgerReason::Late))
        .cloned()
        .collect();
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let page = store.ledger_entries(&wanted, after, 2).await.expect("page");
        if page.entries.is_empty() {
            assert_eq!(page.next, after, "an empty page keeps the position");
            break;
        }
        assert!(page.next > after);
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries);
        after = page.next;
    }
    assert_eq!(seen, expected, "every entry once, in insertion order, a reason listed twice or not");

    let all = store.ledger_entries(&[LedgerReason::Underpaid], 0, 10).await.expect("page");
    assert_eq!(all.entries, vec![entries[2].clone()]);
    let none = store.ledger_entries(&[], 0, 10).await.expect("page");
    assert_eq!((none.entries.len(), none.next), (0, 0));
    let past = store.ledger_entries(&wanted, u64::MAX, 10).await.expect("page");
    assert_eq!((past.entries.len(), past.next), (0, u64::MAX));
    let zero = store.ledger_entries(&wanted, 5, 0).await.expect("page");
    assert_eq!((zero.entries.len(), zero.next), (0, 5));
    db.drop_db().await;
}
