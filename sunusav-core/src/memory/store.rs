//! The in-memory store: per-group async locks and all-or-nothing transactions.
//!
//! A transaction buffers its writes and applies them at commit under one short
//! critical section, so a dropped transaction leaves nothing behind. Reads inside
//! a transaction see its own writes first. Unique keys are checked again at
//! commit, as a database's constraints would.
//!
//! ## Memory bounds
//!
//! Nothing here grows with requests that change nothing: a group's lock
//! lives in the lock table only while a transaction holds or awaits it (a
//! lookup of an unknown id leaves no entry). What does grow is bounded by
//! [`MemoryStore::bounded`] (the embedded server's store): processed webhook
//! records beyond a retention limit are dropped oldest first (never an
//! unprocessed or dead one), a recorded delivery keeps at most
//! [`MAX_CONFLICT_BODIES`] conflicting bodies, and new groups are refused
//! past a group limit (`Unavailable`: money state is never dropped to make
//! room). [`MemoryStore::stats`] reports the sizes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;

use crate::domain::attempt::PaymentAttempt;
use crate::domain::delivery::BodyDigest;
use crate::domain::group::{Group, Invoice, InvoiceState};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::{Balance, LedgerEntry, LedgerReason, balances};
use crate::domain::outcome::DeliveryOutcome;
use crate::domain::payout::{Bolt11, PayoutDestination};
use crate::ports::store::{
    AttemptTx, AuditEntry, AuditLog, AuditPage, Contribution, Delivery, DeliveryFilter, DeliveryPage, DestinationTx,
    GroupReads, GroupTx, LedgerPage, LedgerTx, NewAuditEntry, NodeCursors, OutboxMessage, OutboxTx, OutcomeFilter,
    Recorded, Store, StoreError, StoreTx, Unique, WebhookEvent, WebhookLog, WebhookRecord, WebhookTx, audit_page,
    check_audit_entry,
};

#[derive(Default)]
struct State {
    groups: HashMap<GroupId, Group>,
    invoices: HashMap<PaymentHash, Invoice>,
    contributions: HashMap<PaymentHash, Contribution>,
    member_cycle: HashSet<(GroupId, u32, MemberId)>,
    attempts: BTreeMap<IdempotencyKey, PaymentAttempt>,
    outbox: BTreeMap<u64, (OutboxMessage, bool)>,
    outbox_claimed: HashSet<u64>,
    next_outbox: u64,
    webhooks: HashMap<IdempotencyKey, StoredWebhook>,
    /// Recorded keys by position (the delivery log's order).
    webhook_order: BTreeMap<u64, IdempotencyKey>,
    /// Conflicting bodies of recorded keys, once per distinct body (`None`
    /// once retention dropped it).
    webhook_conflicts: HashMap<(IdempotencyKey, BodyDigest), Option<Vec<u8>>>,
    /// Keys given a final outcome, oldest first, with the generation that got
    /// it (for the retention limit).
    processed: std::collections::VecDeque<(IdempotencyKey, u32)>,
    /// At most this many processed webhook records are kept (`None`: all).
    webhook_retention: Option<usize>,
    /// At most this many groups are held (`None`: no limit).
    group_limit: Option<usize>,
    /// Recorded deliveries without an outcome: their position, and when they
    /// were recorded (or reopened).
    unprocessed: HashMap<IdempotencyKey, (u64, tokio::time::Instant)>,
    next_webhook: u64,
    /// The open invoice of each (group, cycle, member).
    open_invoices: HashMap<(GroupId, u32, MemberId), PaymentHash>,
    /// Contributions in the order they were recorded.
    contribution_order: Vec<PaymentHash>,
    /// Ledger entries in the order they were recorded (position + 1 is the id).
    ledger: Vec<LedgerEntry>,
    ledger_keys: HashSet<IdempotencyKey>,
    /// Per payment attempt: the order it was inserted in and when it last changed.
    attempt_meta: HashMap<IdempotencyKey, (u64, tokio::time::Instant)>,
    next_attempt: u64,
    /// The attempt each payment hash was sent for (unique).
    attempt_hashes: HashMap<PaymentHash, IdempotencyKey>,
    /// Members' standing payout destinations.
    destinations: HashMap<MemberId, PayoutDestination>,
    /// Per member, the payment attempts paying them, in insertion order.
    member_attempts: HashMap<MemberId, Vec<IdempotencyKey>>,
    /// Per member, the invoices issued to them, in insertion order.
    member_invoices: HashMap<MemberId, Vec<PaymentHash>>,
    /// Submitted payout invoices, in order: (group, cycle, hash, text).
    payout_invoices: Vec<(GroupId, u32, PaymentHash, String)>,
    payout_invoice_hashes: HashSet<PaymentHash>,
    /// Settle indexes by source.
    cursors: HashMap<String, u64>,
    /// The audit log, oldest first (position = index + 1).
    audit: Vec<AuditEntry>,
}

/// A recorded delivery with what the log shows of it.
struct StoredWebhook {
    record: WebhookRecord,
    digest: BodyDigest,
    payment_hash: Option<PaymentHash>,
    position: u64,
    received_at_ms: u64,
    processed_at: Option<tokio::time::Instant>,
    conflicts: u32,
}

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl State {
    /// Records a delivery's outcome: the first final one is kept, and
    /// replaces `dead` (see [`WebhookLog`]).
    fn mark_webhook_processed(&mut self, key: &IdempotencyKey, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let w = self.webhooks.get_mut(key).ok_or(StoreError::NotFound)?;
        let replace = match w.record.outcome {
            None => true,
            Some(old) => !old.is_final() && outcome.is_final(),
        };
        if replace {
            w.record.outcome = Some(outcome);
            w.processed_at = Some(tokio::time::Instant::now());
            let generation = w.record.generation;
            self.unprocessed.remove(key);
            if outcome.is_final() {
                self.processed.push_back((key.clone(), generation));
                self.trim_webhooks();
            }
        }
        Ok(())
    }

    fn record_webhook(&mut self, event: &WebhookEvent) -> Recorded {
        let digest = *event.digest();
        if let Some(w) = self.webhooks.get_mut(event.key()) {
            if w.digest == digest {
                return Recorded::Replay { outcome: w.record.outcome, generation: w.record.generation };
            }
            let key = (event.key().clone(), digest);
            if self.webhook_conflicts.contains_key(&key) {
                return Recorded::Conflict;
            }
            // Bounded per key: past the cap a conflict is counted, its body not kept.
            if usize::try_from(w.conflicts).unwrap_or(usize::MAX) < MAX_CONFLICT_BODIES {
                self.webhook_conflicts.insert(key, Some(event.body().to_vec()));
            }
            w.conflicts = w.conflicts.saturating_add(1);
            return Recorded::Conflict;
        }
        self.next_webhook += 1;
        let position = self.next_webhook;
        self.webhooks.insert(
            event.key().clone(),
            StoredWebhook {
                record: WebhookRecord {
                    key: event.key().clone(),
                    body: Some(event.body().to_vec()),
                    outcome: None,
                    generation: 0,
                },
                digest,
                payment_hash: event.payment_hash(),
                position,
                received_at_ms: unix_ms_now(),
                processed_at: None,
                conflicts: 0,
            },
        );
        self.webhook_order.insert(position, event.key().clone());
        self.unprocessed.insert(event.key().clone(), (position, tokio::time::Instant::now()));
        Recorded::New
    }

    /// Drops the oldest records given a final outcome beyond the retention
    /// limit (an entry whose record was reopened since is skipped).
    fn trim_webhooks(&mut self) {
        let Some(limit) = self.webhook_retention else { return };
        while self.processed.len() > limit {
            let Some((old, generation)) = self.processed.pop_front() else { break };
            let evict = self.webhooks.get(&old).is_some_and(|w| {
                w.record.generation == generation && w.record.outcome.is_some_and(DeliveryOutcome::is_final)
            });
            if evict && let Some(w) = self.webhooks.remove(&old) {
                self.webhook_order.remove(&w.position);
                self.webhook_conflicts.retain(|(k, _), _| k != &old);
            }
        }
    }

    fn group(&self, id: GroupId) -> Option<Group> {
        self.groups.get(&id).cloned()
    }
}

/// Conflicting bodies kept per recorded delivery key; further conflicts are
/// counted (in the record's conflict count) but their bodies are not kept.
pub const MAX_CONFLICT_BODIES: usize = 8;

/// Processed webhook records [`MemoryStore::bounded`] keeps.
pub const BOUNDED_WEBHOOK_RETENTION: usize = 10_000;

/// Groups [`MemoryStore::bounded`] holds at most.
pub const BOUNDED_GROUP_LIMIT: usize = 100_000;

/// The sizes of what a [`MemoryStore`] keeps, to check its bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStoreStats {
    /// Entries in the group lock table (held or awaited locks).
    pub lock_entries: usize,
    /// Groups.
    pub groups: usize,
    /// Contribution invoices.
    pub invoices: usize,
    /// Recorded webhook deliveries (processed, unprocessed and dead).
    pub webhooks: usize,
    /// Conflicting webhook bodies kept.
    pub webhook_conflicts: usize,
    /// Entries of the processed-records order (for the retention limit).
    pub processed_order: usize,
}

/// One group's lock in the table, with the transactions holding or awaiting it.
#[derive(Default)]
struct LockEntry {
    lock: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    locks: Mutex<HashMap<GroupId, LockEntry>>,
    skip_commits: AtomicU32,
    fail_commits: AtomicU32,
}

/// The in-memory store. Clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` commits fail with `Unavailable` (nothing of them applied),
    /// as a dropped database connection would.
    pub fn fail_next_commits(&self, n: u32) {
        self.fail_commits_after(0, n);
    }

    /// Lets `skip` commits through, then makes the `n` after them fail: a
    /// connection lost at a chosen step of a multi-transaction use case.
    pub fn fail_commits_after(&self, skip: u32, n: u32) {
        self.shared.skip_commits.store(skip, Ordering::SeqCst);
        self.shared.fail_commits.store(n, Ordering::SeqCst);
    }

    /// Keeps at most `limit` processed webhook records, dropping the oldest:
    /// memory stays bounded under any load. Unprocessed and dead ones are
    /// always kept (work is left to do with them). A replay of a dropped
    /// delivery is recorded and settled again, which the contribution's own
    /// unique payment hash turns into a no-op; a conflicting body for a
    /// dropped key is not detected.
    pub fn set_webhook_retention(&self, limit: usize) {
        let mut st = self.state();
        st.webhook_retention = Some(limit);
        st.trim_webhooks();
    }

    /// A store with the embedded server's bounds: at most
    /// [`BOUNDED_WEBHOOK_RETENTION`] processed webhook records and
    /// [`BOUNDED_GROUP_LIMIT`] groups.
    pub fn bounded() -> Self {
        let store = Self::new();
        store.set_webhook_retention(BOUNDED_WEBHOOK_RETENTION);
        store.set_group_limit(BOUNDED_GROUP_LIMIT);
        store
    }

    /// Refuses a new group once `limit` are held: its commit fails with
    /// `Unavailable` (503 over HTTP). Groups are money state: none is ever
    /// dropped to make room.
    pub fn set_group_limit(&self, limit: usize) {
        self.state().group_limit = Some(limit);
    }

    /// The sizes of what the store keeps now.
    pub fn stats(&self) -> MemoryStoreStats {
        let lock_entries = self.shared.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        let st = self.state();
        MemoryStoreStats {
            lock_entries,
            groups: st.groups.len(),
            invoices: st.invoices.len(),
            webhooks: st.webhooks.len(),
            webhook_conflicts: st.webhook_conflicts.len(),
            processed_order: st.processed.len(),
        }
    }

    /// Every recorded contribution (for tests and reports).
    pub fn contributions(&self) -> Vec<Contribution> {
        self.state().contributions.values().cloned().collect()
    }

    /// Every outbox message and whether it was sent.
    pub fn outbox(&self) -> Vec<(OutboxMessage, bool)> {
        self.state().outbox.values().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn lock_state(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl Store for MemoryStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(MemoryTx {
            shared: Arc::clone(&self.shared),
            guards: Vec::new(),
            ops: Vec::new(),
            claimed: Vec::new(),
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl GroupReads for MemoryStore {
    async fn open_invoice(&self, group: GroupId, cycle: u32, member: MemberId) -> Result<Option<Invoice>, StoreError> {
        let st = self.state();
        Ok(st.open_invoices.get(&(group, cycle, member)).and_then(|h| st.invoices.get(h)).cloned())
    }

    async fn contributions(&self, group: GroupId) -> Result<Vec<Contribution>, StoreError> {
        let st = self.state();
        Ok(st
            .contribution_order
            .iter()
            .filter_map(|h| st.contributions.get(h))
            .filter(|c| c.group == group)
            .cloned()
            .collect())
    }

    async fn ledger(&self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
        Ok(self.state().ledger.iter().filter(|e| e.group == group).cloned().collect())
    }

    async fn unapplied_balances(
        &self,
        after: Option<(GroupId, MemberId)>,
        limit: u32,
    ) -> Result<Vec<Balance>, StoreError> {
        let st = self.state();
        let mut all = balances(&st.ledger).map_err(|e| StoreError::Corrupt(e.into()))?;
        all.retain(|b| !b.amount.is_zero() && after.is_none_or(|a| (b.group, b.member) > a));
        all.sort_by_key(|b| (b.group, b.member));
        all.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(all)
    }

    async fn ledger_entries(&self, reasons: &[LedgerReason], after: u64, limit: u32) -> Result<LedgerPage, StoreError> {
        let st = self.state();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        let mut page = LedgerPage { entries: Vec::new(), next: after };
        for (i, e) in st.ledger.iter().enumerate().skip(start) {
            if page.entries.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            if reasons.contains(&e.reason) {
                page.entries.push(e.clone());
                page.next = i as u64 + 1;
            }
        }
        Ok(page)
    }

    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        Ok(self.state().group(id))
    }

    async fn scheduled_groups(&self, after: Option<GroupId>, limit: u32) -> Result<Vec<GroupId>, StoreError> {
        let st = self.state();
        let mut found: Vec<&Group> = st
            .groups
            .values()
            .filter(|g| {
                g.schedule().is_some()
                    && g.status() == crate::domain::group::GroupStatus::Active
                    && g.cycle_status() == crate::domain::group::CycleStatus::Collecting
                    && after.is_none_or(|a| g.id().as_uuid() > a.as_uuid())
            })
            .collect();
        found.sort_by_key(|g| g.id().as_uuid());
        Ok(found.into_iter().take(limit as usize).map(Group::id).collect())
    }

    async fn payment_attempts(&self, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError> {
        let mut v: Vec<_> = self.state().attempts.values().filter(|a| a.group == group).cloned().collect();
        v.sort_by_key(|a| a.cycle);
        Ok(v)
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state().invoices.get(hash).cloned())
    }

    async fn payment_attempt(&self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
        Ok(self.state().attempts.get(key).cloned())
    }

    async fn payout_destination(&self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError> {
        Ok(self.state().destinations.get(&member).copied())
    }

    async fn member_attempts(&self, member: MemberId, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError> {
        let st = self.state();
        let keys = st.member_attempts.get(&member).map(Vec::as_slice).unwrap_or_default();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(keys.iter().rev().filter_map(|k| st.attempts.get(k)).take(limit).cloned().collect())
    }

    async fn member_invoices(&self, member: MemberId, limit: u32) -> Result<Vec<Invoice>, StoreError> {
        let st = self.state();
        let hashes = st.member_invoices.get(&member).map(Vec::as_slice).unwrap_or_default();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(hashes.iter().rev().filter_map(|h| st.invoices.get(h)).take(limit).cloned().collect())
    }

    async fn open_payment_attempts(&self, older_than: Duration, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError> {
        let st = self.state();
        let now = tokio::time::Instant::now();
        let mut open: Vec<(u64, &PaymentAttempt)> = st
            .attempts
            .values()
            // Open and with work for a job: one awaiting a destination waits
            // for a member, not for a worker.
            .filter(|a| a.is_open() && a.status() != crate::domain::attempt::AttemptStatus::AwaitingDestination)
            .filter_map(|a| {
                let (seq, touched) = st.attempt_meta.get(&a.key)?;
                (now.saturating_duration_since(*touched) >= older_than).then_some((*seq, a))
            })
            .collect();
        open.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(open.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)).map(|(_, a)| a.clone()).collect())
    }
}

#[async_trait]
impl WebhookLog for MemoryStore {
    async fn record_webhook(&self, event: &WebhookEvent) -> Result<Recorded, StoreError> {
        Ok(self.state().record_webhook(event))
    }

    async fn webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        Ok(self.state().webhooks.get(key).map(|w| w.record.clone()))
    }

    async fn mark_webhook_processed(&self, key: &IdempotencyKey, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let mut st = self.state();
        st.mark_webhook_processed(key, outcome)
    }

    async fn mark_webhook_dead(&self, key: &IdempotencyKey, generation: u32) -> Result<bool, StoreError> {
        let mut st = self.state();
        let w = st.webhooks.get_mut(key).ok_or(StoreError::NotFound)?;
        if w.record.outcome.is_some() || w.record.generation != generation {
            return Ok(false);
        }
        w.record.outcome = Some(DeliveryOutcome::Dead);
        w.processed_at = Some(tokio::time::Instant::now());
        st.unprocessed.remove(key);
        Ok(true)
    }

    async fn reopen_webhook(&self, key: &IdempotencyKey, generation: u32) -> Result<Option<u32>, StoreError> {
        let mut st = self.state();
        let w = st.webhooks.get_mut(key).ok_or(StoreError::NotFound)?;
        if w.record.outcome.is_none() || w.record.generation != generation || w.record.body.is_none() {
            return Ok(None);
        }
        w.record.outcome = None;
        w.processed_at = None;
        w.record.generation = generation.saturating_add(1);
        let (next, position) = (w.record.generation, w.position);
        st.unprocessed.insert(key.clone(), (position, tokio::time::Instant::now()));
        Ok(Some(next))
    }

    async fn unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<Vec<WebhookRecord>, StoreError> {
        let st = self.state();
        let now = tokio::time::Instant::now();
        let mut due: Vec<(u64, &IdempotencyKey)> = st
            .unprocessed
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) >= older_than)
            .map(|(key, (seq, _))| (*seq, key))
            .collect();
        due.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .filter_map(|(_, key)| st.webhooks.get(key).map(|w| w.record.clone()))
            .collect())
    }

    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<DeliveryPage, StoreError> {
        let st = self.state();
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let mut page = DeliveryPage { deliveries: Vec::new(), next: filter.after };
        if limit == 0 {
            return Ok(page);
        }
        let from = filter.after.saturating_add(1);
        for key in st.webhook_order.range(from..).map(|(_, k)| k) {
            let Some(w) = st.webhooks.get(key) else { continue };
            let outcome_matches = match filter.outcome {
                None => true,
                Some(OutcomeFilter::Pending) => w.record.outcome.is_none(),
                Some(OutcomeFilter::Is(o)) => w.record.outcome == Some(o),
            };
            if !outcome_matches
                || filter.since_ms.is_some_and(|since| w.received_at_ms < since)
                || filter.payment_hash.is_some_and(|h| w.payment_hash != Some(h))
            {
                continue;
            }
            page.deliveries.push(Delivery {
                position: w.position,
                key: w.record.key.clone(),
                outcome: w.record.outcome,
                generation: w.record.generation,
                payment_hash: w.payment_hash,
                received_at_ms: w.received_at_ms,
                body_kept: w.record.body.is_some(),
                conflicts: w.conflicts,
            });
            page.next = w.position;
            if page.deliveries.len() >= limit {
                break;
            }
        }
        Ok(page)
    }

    async fn drop_webhook_bodies(&self, older_than: Duration, limit: u32) -> Result<u64, StoreError> {
        let mut st = self.state();
        let now = tokio::time::Instant::now();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let due: Vec<IdempotencyKey> = st
            .webhook_order
            .values()
            .filter(|k| {
                st.webhooks.get(*k).is_some_and(|w| {
                    w.record.body.is_some()
                        && w.record.outcome.is_some_and(DeliveryOutcome::is_final)
                        && w.processed_at.is_some_and(|at| now.saturating_duration_since(at) >= older_than)
                })
            })
            .take(limit)
            .cloned()
            .collect();
        for key in &due {
            if let Some(w) = st.webhooks.get_mut(key) {
                w.record.body = None;
            }
            for ((k, _), body) in &mut st.webhook_conflicts {
                if k == key {
                    *body = None;
                }
            }
        }
        Ok(due.len() as u64)
    }
}

enum Op {
    InsertGroup(Group),
    SaveGroup(Group),
    Invoice(Invoice),
    Contribution(Contribution),
    InsertAttempt(PaymentAttempt),
    UpdateAttempt(PaymentAttempt),
    Outbox(OutboxMessage),
    OutboxSent(Vec<u64>),
    WebhookProcessed(IdempotencyKey, DeliveryOutcome),
    InvoiceState(PaymentHash, InvoiceState),
    Ledger(LedgerEntry),
    Destination(MemberId, Option<PayoutDestination>),
    PayoutInvoice(GroupId, u32, PaymentHash, String),
}

/// A group lock held by a transaction. Fields drop in order: the guard
/// first, then the ticket, which removes the table entry once no
/// transaction holds or awaits it.
struct HeldLock {
    id: GroupId,
    _guard: OwnedMutexGuard<()>,
    _ticket: LockTicket,
}

/// A transaction's use of a group's lock-table entry (held or awaited).
struct LockTicket {
    shared: Arc<Shared>,
    id: GroupId,
}

impl LockTicket {
    /// Counts one more user of `id`'s entry (creating it) and returns its lock.
    fn take(shared: &Arc<Shared>, id: GroupId) -> (Self, Arc<tokio::sync::Mutex<()>>) {
        let mut locks = shared.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = locks.entry(id).or_default();
        entry.users += 1;
        (Self { shared: Arc::clone(shared), id }, Arc::clone(&entry.lock))
    }
}

impl Drop for LockTicket {
    fn drop(&mut self) {
        let mut locks = self.shared.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = locks.get_mut(&self.id) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                locks.remove(&self.id);
            }
        }
    }
}

struct MemoryTx {
    shared: Arc<Shared>,
    guards: Vec<HeldLock>,
    ops: Vec<Op>,
    claimed: Vec<u64>,
}

impl Drop for MemoryTx {
    fn drop(&mut self) {
        if !self.claimed.is_empty() {
            let mut st = lock_state(&self.shared);
            for id in &self.claimed {
                st.outbox_claimed.remove(id);
            }
        }
    }
}

impl MemoryTx {
    fn pending_group(&self, id: GroupId) -> Option<&Group> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::InsertGroup(g) | Op::SaveGroup(g) if g.id() == id => Some(g),
            _ => None,
        })
    }

    fn pending_attempt(&self, key: &IdempotencyKey) -> Option<&PaymentAttempt> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::InsertAttempt(a) | Op::UpdateAttempt(a) if &a.key == key => Some(a),
            _ => None,
        })
    }

    fn pending_contributions(&self) -> impl Iterator<Item = &Contribution> {
        self.ops.iter().filter_map(|op| match op {
            Op::Contribution(c) => Some(c),
            _ => None,
        })
    }

    /// An invoice as this transaction sees it: its own writes first.
    fn tx_invoice(&self, st: &State, hash: &PaymentHash) -> Option<Invoice> {
        let mut inv = self
            .ops
            .iter()
            .rev()
            .find_map(|op| match op {
                Op::Invoice(i) if &i.payment_hash == hash => Some(i.clone()),
                _ => None,
            })
            .or_else(|| st.invoices.get(hash).cloned())?;
        for op in &self.ops {
            if let Op::InvoiceState(h, state) = op
                && h == hash
            {
                inv.state = *state;
            }
        }
        Some(inv)
    }

    /// The open invoice of a member for a cycle, as this transaction sees it.
    fn tx_open_invoice(&self, st: &State, group: GroupId, cycle: u32, member: MemberId) -> Option<Invoice> {
        let stored = st.open_invoices.get(&(group, cycle, member)).copied();
        let pending = self.ops.iter().filter_map(|op| match op {
            Op::Invoice(i) if (i.group, i.cycle, i.member) == (group, cycle, member) => Some(i.payment_hash),
            _ => None,
        });
        stored
            .into_iter()
            .chain(pending)
            .filter_map(|h| self.tx_invoice(st, &h))
            .find(|i| i.state == InvoiceState::Open)
    }

    /// Checks every unique rule of the buffered writes against `st`.
    fn check(&self, st: &State) -> Result<(), StoreError> {
        let mut groups = HashSet::new();
        let mut hashes = HashSet::new();
        let mut member_cycle = HashSet::new();
        let mut keys = HashSet::new();
        let mut attempt_hashes = HashMap::new();
        let mut payout_hashes = HashSet::new();
        for op in &self.ops {
            match op {
                Op::InsertGroup(g) => {
                    if st.groups.contains_key(&g.id()) || !groups.insert(g.id()) {
                        return Err(StoreError::Duplicate(Unique::Group));
                    }
                    if st.group_limit.is_some_and(|limit| st.groups.len() + groups.len() > limit) {
                        return Err(StoreError::Unavailable("the in-memory store holds its most groups".into()));
                    }
                }
                Op::SaveGroup(g) => {
                    if !st.groups.contains_key(&g.id()) && !groups.contains(&g.id()) {
                        return Err(StoreError::NotFound);
                    }
                }
                Op::Invoice(i) => {
                    if st.invoices.contains_key(&i.payment_hash) {
                        return Err(StoreError::Duplicate(Unique::Invoice));
                    }
                    // Another transaction may have opened one since.
                    let taken = st
                        .open_invoices
                        .get(&(i.group, i.cycle, i.member))
                        .is_some_and(|h| self.tx_invoice(st, h).is_some_and(|other| other.state == InvoiceState::Open));
                    if i.state == InvoiceState::Open && taken {
                        return Err(StoreError::Duplicate(Unique::OpenInvoice));
                    }
                }
                Op::InvoiceState(h, _) => {
                    if self.tx_invoice(st, h).is_none() {
                        return Err(StoreError::NotFound);
                    }
                }
                Op::Ledger(e) => {
                    if st.ledger_keys.contains(&e.key) {
                        return Err(StoreError::Duplicate(Unique::LedgerEntry));
                    }
                }
                Op::Contribution(c) => {
                    if st.contributions.contains_key(&c.payment_hash) || !hashes.insert(c.payment_hash) {
                        return Err(StoreError::Duplicate(Unique::Contribution));
                    }
                    let mc = (c.group, c.cycle, c.member);
                    if st.member_cycle.contains(&mc) || !member_cycle.insert(mc) {
                        return Err(StoreError::Duplicate(Unique::ContributionMemberCycle));
                    }
                }
                Op::InsertAttempt(a) => {
                    if st.attempts.contains_key(&a.key) || !keys.insert(a.key.clone()) {
                        return Err(StoreError::Duplicate(Unique::PaymentAttempt));
                    }
                    check_attempt_hash(st, &mut attempt_hashes, a)?;
                }
                Op::UpdateAttempt(a) => {
                    if !st.attempts.contains_key(&a.key) && !keys.contains(&a.key) {
                        return Err(StoreError::NotFound);
                    }
                    check_attempt_hash(st, &mut attempt_hashes, a)?;
                }
                Op::PayoutInvoice(_, _, h, _) => {
                    if st.payout_invoice_hashes.contains(h) || !payout_hashes.insert(*h) {
                        return Err(StoreError::Duplicate(Unique::PayoutInvoice));
                    }
                }
                Op::WebhookProcessed(k, _) => {
                    if !st.webhooks.contains_key(k) {
                        return Err(StoreError::NotFound);
                    }
                }
                Op::Outbox(_) | Op::OutboxSent(_) | Op::Destination(..) => {}
            }
        }
        Ok(())
    }
}

/// An attempt's payment hash is its own: no other attempt was sent with it.
fn check_attempt_hash(
    st: &State,
    seen: &mut HashMap<PaymentHash, IdempotencyKey>,
    a: &PaymentAttempt,
) -> Result<(), StoreError> {
    let Some(hash) = a.payment_hash() else { return Ok(()) };
    let taken_by_other = |k: &IdempotencyKey| k != &a.key;
    if st.attempt_hashes.get(&hash).is_some_and(taken_by_other) || seen.get(&hash).is_some_and(taken_by_other) {
        return Err(StoreError::Duplicate(Unique::AttemptPaymentHash));
    }
    seen.insert(hash, a.key.clone());
    Ok(())
}

fn invalid_attempt(a: &PaymentAttempt) -> Option<StoreError> {
    (a.amount.is_zero()).then(|| StoreError::Invalid("payment attempt amount must be more than zero".into()))
}

#[async_trait]
impl GroupTx for MemoryTx {
    async fn lock_group(&mut self, id: GroupId) -> Result<(), StoreError> {
        if self.guards.iter().any(|held| held.id == id) {
            return Ok(());
        }
        // The ticket is dropped with this future if the wait is cancelled.
        let (ticket, lock) = LockTicket::take(&self.shared, id);
        let guard = lock.lock_owned().await;
        self.guards.push(HeldLock { id, _guard: guard, _ticket: ticket });
        Ok(())
    }

    async fn insert_group(&mut self, group: &Group) -> Result<(), StoreError> {
        if self.pending_group(group.id()).is_some() || lock_state(&self.shared).groups.contains_key(&group.id()) {
            return Err(StoreError::Duplicate(Unique::Group));
        }
        self.ops.push(Op::InsertGroup(group.clone()));
        Ok(())
    }

    async fn load_group(&mut self, id: GroupId) -> Result<Option<Group>, StoreError> {
        if let Some(g) = self.pending_group(id) {
            return Ok(Some(g.clone()));
        }
        Ok(lock_state(&self.shared).group(id))
    }

    async fn save_group(&mut self, group: &Group) -> Result<(), StoreError> {
        if self.pending_group(group.id()).is_none() && !lock_state(&self.shared).groups.contains_key(&group.id()) {
            return Err(StoreError::NotFound);
        }
        self.ops.push(Op::SaveGroup(group.clone()));
        Ok(())
    }

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let st = lock_state(&shared);
        if self.tx_invoice(&st, &invoice.payment_hash).is_some() {
            return Err(StoreError::Duplicate(Unique::Invoice));
        }
        if invoice.state == InvoiceState::Open
            && self.tx_open_invoice(&st, invoice.group, invoice.cycle, invoice.member).is_some()
        {
            return Err(StoreError::Duplicate(Unique::OpenInvoice));
        }
        drop(st);
        self.ops.push(Op::Invoice(invoice.clone()));
        Ok(())
    }

    async fn invoice(&mut self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let st = lock_state(&shared);
        Ok(self.tx_invoice(&st, hash))
    }

    async fn open_invoice(
        &mut self,
        group: GroupId,
        cycle: u32,
        member: MemberId,
    ) -> Result<Option<Invoice>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let st = lock_state(&shared);
        Ok(self.tx_open_invoice(&st, group, cycle, member))
    }

    async fn open_invoices(&mut self, group: GroupId, cycle: u32) -> Result<Vec<Invoice>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let st = lock_state(&shared);
        let mut hashes: Vec<PaymentHash> =
            st.open_invoices.iter().filter(|((g, c, _), _)| *g == group && *c == cycle).map(|(_, h)| *h).collect();
        hashes.extend(self.ops.iter().filter_map(|op| match op {
            Op::Invoice(i) if i.group == group && i.cycle == cycle => Some(i.payment_hash),
            _ => None,
        }));
        hashes.sort_unstable();
        hashes.dedup();
        Ok(hashes.iter().filter_map(|h| self.tx_invoice(&st, h)).filter(|i| i.state == InvoiceState::Open).collect())
    }

    async fn set_invoice_state(&mut self, hash: &PaymentHash, state: InvoiceState) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let st = lock_state(&shared);
        if self.tx_invoice(&st, hash).is_none() {
            return Err(StoreError::NotFound);
        }
        drop(st);
        self.ops.push(Op::InvoiceState(*hash, state));
        Ok(())
    }

    async fn insert_contribution(&mut self, c: &Contribution) -> Result<bool, StoreError> {
        if c.amount.is_zero() {
            return Err(StoreError::Invalid("contribution amount must be more than zero".into()));
        }
        let (same_hash, same_slot) = {
            let st = lock_state(&self.shared);
            (st.contributions.contains_key(&c.payment_hash), st.member_cycle.contains(&(c.group, c.cycle, c.member)))
        };
        let pending_hash = self.pending_contributions().any(|p| p.payment_hash == c.payment_hash);
        if same_hash || pending_hash {
            return Ok(false);
        }
        let pending_slot =
            self.pending_contributions().any(|p| (p.group, p.cycle, p.member) == (c.group, c.cycle, c.member));
        if same_slot || pending_slot {
            return Err(StoreError::Duplicate(Unique::ContributionMemberCycle));
        }
        self.ops.push(Op::Contribution(c.clone()));
        Ok(true)
    }

    async fn contribution(&mut self, hash: &PaymentHash) -> Result<Option<Contribution>, StoreError> {
        if let Some(c) = self.pending_contributions().find(|c| &c.payment_hash == hash) {
            return Ok(Some(c.clone()));
        }
        Ok(lock_state(&self.shared).contributions.get(hash).cloned())
    }
}

#[async_trait]
impl AttemptTx for MemoryTx {
    async fn insert_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<bool, StoreError> {
        if let Some(e) = invalid_attempt(attempt) {
            return Err(e);
        }
        if self.pending_attempt(&attempt.key).is_some() || lock_state(&self.shared).attempts.contains_key(&attempt.key)
        {
            return Ok(false);
        }
        self.ops.push(Op::InsertAttempt(attempt.clone()));
        Ok(true)
    }

    async fn payment_attempt(&mut self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
        if let Some(a) = self.pending_attempt(key) {
            return Ok(Some(a.clone()));
        }
        Ok(lock_state(&self.shared).attempts.get(key).cloned())
    }

    async fn update_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<(), StoreError> {
        if let Some(e) = invalid_attempt(attempt) {
            return Err(e);
        }
        if self.pending_attempt(&attempt.key).is_none() && !lock_state(&self.shared).attempts.contains_key(&attempt.key)
        {
            return Err(StoreError::NotFound);
        }
        self.ops.push(Op::UpdateAttempt(attempt.clone()));
        Ok(())
    }
}

#[async_trait]
impl LedgerTx for MemoryTx {
    async fn insert_ledger_entry(&mut self, entry: &LedgerEntry) -> Result<bool, StoreError> {
        if entry.amount.is_zero() {
            return Err(StoreError::Invalid("ledger entry amount must be more than zero".into()));
        }
        if self.ledger_entry(&entry.key).await?.is_some() {
            return Ok(false);
        }
        self.ops.push(Op::Ledger(entry.clone()));
        Ok(true)
    }

    async fn ledger_entry(&mut self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, StoreError> {
        let pending = self.ops.iter().find_map(|op| match op {
            Op::Ledger(e) if &e.key == key => Some(e.clone()),
            _ => None,
        });
        if pending.is_some() {
            return Ok(pending);
        }
        let st = lock_state(&self.shared);
        Ok(if st.ledger_keys.contains(key) { st.ledger.iter().find(|e| &e.key == key).cloned() } else { None })
    }

    async fn group_ledger(&mut self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut entries: Vec<LedgerEntry> =
            lock_state(&self.shared).ledger.iter().filter(|e| e.group == group).cloned().collect();
        entries.extend(self.ops.iter().filter_map(|op| match op {
            Op::Ledger(e) if e.group == group => Some(e.clone()),
            _ => None,
        }));
        Ok(entries)
    }
}

#[async_trait]
impl OutboxTx for MemoryTx {
    async fn insert_outbox(&mut self, message: &OutboxMessage) -> Result<(), StoreError> {
        self.ops.push(Op::Outbox(message.clone()));
        Ok(())
    }

    async fn claim_outbox(&mut self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut st = lock_state(&self.shared);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let picked: Vec<OutboxMessage> = st
            .outbox
            .iter()
            .filter(|(id, (_, sent))| !*sent && !st.outbox_claimed.contains(id))
            .take(limit)
            .map(|(_, (m, _))| m.clone())
            .collect();
        for m in &picked {
            st.outbox_claimed.insert(m.id);
            self.claimed.push(m.id);
        }
        Ok(picked)
    }

    async fn mark_outbox_sent(&mut self, ids: &[u64]) -> Result<(), StoreError> {
        self.ops.push(Op::OutboxSent(ids.to_vec()));
        Ok(())
    }
}

#[async_trait]
impl WebhookTx for MemoryTx {
    async fn mark_webhook_processed(
        &mut self,
        key: &IdempotencyKey,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        if !lock_state(&self.shared).webhooks.contains_key(key) {
            return Err(StoreError::NotFound);
        }
        self.ops.push(Op::WebhookProcessed(key.clone(), outcome));
        Ok(())
    }
}

#[async_trait]
impl DestinationTx for MemoryTx {
    async fn set_payout_destination(
        &mut self,
        member: MemberId,
        destination: Option<PayoutDestination>,
    ) -> Result<(), StoreError> {
        self.ops.push(Op::Destination(member, destination));
        Ok(())
    }

    async fn payout_destination(&mut self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError> {
        let pending = self.ops.iter().rev().find_map(|op| match op {
            Op::Destination(m, d) if *m == member => Some(*d),
            _ => None,
        });
        Ok(match pending {
            Some(d) => d,
            None => lock_state(&self.shared).destinations.get(&member).copied(),
        })
    }

    async fn is_group_member(&mut self, member: MemberId) -> Result<bool, StoreError> {
        let pending = self.ops.iter().any(|op| matches!(op, Op::InsertGroup(g) if g.is_member(member)));
        Ok(pending || lock_state(&self.shared).groups.values().any(|g| g.is_member(member)))
    }

    async fn insert_payout_invoice(&mut self, group: GroupId, cycle: u32, invoice: &Bolt11) -> Result<(), StoreError> {
        let hash = invoice.payment_hash();
        let pending = self.ops.iter().any(|op| matches!(op, Op::PayoutInvoice(_, _, h, _) if *h == hash));
        if pending || lock_state(&self.shared).payout_invoice_hashes.contains(&hash) {
            return Err(StoreError::Duplicate(Unique::PayoutInvoice));
        }
        self.ops.push(Op::PayoutInvoice(group, cycle, hash, invoice.as_str().to_owned()));
        Ok(())
    }

    async fn payout_invoice(&mut self, group: GroupId, cycle: u32) -> Result<Option<String>, StoreError> {
        let pending = self.ops.iter().rev().find_map(|op| match op {
            Op::PayoutInvoice(g, c, _, text) if (*g, *c) == (group, cycle) => Some(text.clone()),
            _ => None,
        });
        if pending.is_some() {
            return Ok(pending);
        }
        let st = lock_state(&self.shared);
        Ok(st.payout_invoices.iter().rev().find(|(g, c, _, _)| (*g, *c) == (group, cycle)).map(|i| i.3.clone()))
    }

    async fn attempts_awaiting_destination(&mut self, member: MemberId) -> Result<Vec<PaymentAttempt>, StoreError> {
        let st = lock_state(&self.shared);
        let mut found: Vec<_> = st
            .attempts
            .values()
            .filter(|a| {
                a.beneficiary == member && a.status() == crate::domain::attempt::AttemptStatus::AwaitingDestination
            })
            .cloned()
            .collect();
        found.sort_by_key(|a| st.attempt_meta.get(&a.key).map(|m| m.0));
        Ok(found)
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<u64, StoreError> {
        check_audit_entry(entry)?;
        let mut st = self.state();
        let position = u64::try_from(st.audit.len()).unwrap_or(u64::MAX).saturating_add(1);
        st.audit.push(AuditEntry { position, entry: entry.clone() });
        Ok(position)
    }

    async fn audit_entries(&self, before: Option<u64>, limit: u32) -> Result<AuditPage, StoreError> {
        let st = self.state();
        let end = before
            .map_or(st.audit.len(), |b| usize::try_from(b.saturating_sub(1)).unwrap_or(usize::MAX).min(st.audit.len()));
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let entries = st.audit[..end].iter().rev().take(take).cloned().collect();
        Ok(audit_page(entries, limit))
    }
}

#[async_trait]
impl NodeCursors for MemoryStore {
    async fn settle_index(&self, source: &str) -> Result<u64, StoreError> {
        Ok(self.state().cursors.get(source).copied().unwrap_or(0))
    }

    async fn advance_settle_index(&self, source: &str, index: u64) -> Result<(), StoreError> {
        let mut st = self.state();
        let at = st.cursors.entry(source.to_owned()).or_default();
        *at = (*at).max(index);
        Ok(())
    }
}

#[async_trait]
impl StoreTx for MemoryTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let skipped =
            shared.skip_commits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if !skipped
            && shared.fail_commits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return Err(StoreError::Unavailable("injected commit failure".into()));
        }
        let mut st = lock_state(&shared);
        self.check(&st)?;
        for op in self.ops.drain(..) {
            match op {
                Op::InsertGroup(g) | Op::SaveGroup(g) => {
                    st.groups.insert(g.id(), g);
                }
                Op::Invoice(i) => {
                    if i.state == InvoiceState::Open {
                        st.open_invoices.insert((i.group, i.cycle, i.member), i.payment_hash);
                    }
                    let (member, hash) = (i.member, i.payment_hash);
                    if st.invoices.insert(hash, i).is_none() {
                        st.member_invoices.entry(member).or_default().push(hash);
                    }
                }
                Op::InvoiceState(h, state) => {
                    if let Some(i) = st.invoices.get_mut(&h) {
                        i.state = state;
                        let slot = (i.group, i.cycle, i.member);
                        if state == InvoiceState::Open {
                            st.open_invoices.insert(slot, h);
                        } else if st.open_invoices.get(&slot) == Some(&h) {
                            st.open_invoices.remove(&slot);
                        }
                    }
                }
                Op::Ledger(e) => {
                    st.ledger_keys.insert(e.key.clone());
                    st.ledger.push(e);
                }
                Op::Contribution(c) => {
                    st.member_cycle.insert((c.group, c.cycle, c.member));
                    st.contribution_order.push(c.payment_hash);
                    st.contributions.insert(c.payment_hash, c);
                }
                Op::InsertAttempt(a) | Op::UpdateAttempt(a) => {
                    let seq = if let Some((seq, _)) = st.attempt_meta.get(&a.key) {
                        *seq
                    } else {
                        st.next_attempt += 1;
                        st.member_attempts.entry(a.beneficiary).or_default().push(a.key.clone());
                        st.next_attempt
                    };
                    st.attempt_meta.insert(a.key.clone(), (seq, tokio::time::Instant::now()));
                    if let Some(hash) = a.payment_hash() {
                        st.attempt_hashes.insert(hash, a.key.clone());
                    }
                    st.attempts.insert(a.key.clone(), a);
                }
                Op::Destination(member, destination) => match destination {
                    Some(d) => {
                        st.destinations.insert(member, d);
                    }
                    None => {
                        st.destinations.remove(&member);
                    }
                },
                Op::PayoutInvoice(group, cycle, hash, text) => {
                    st.payout_invoice_hashes.insert(hash);
                    st.payout_invoices.push((group, cycle, hash, text));
                }
                Op::Outbox(mut m) => {
                    st.next_outbox += 1;
                    m.id = st.next_outbox;
                    st.outbox.insert(m.id, (m, false));
                }
                Op::OutboxSent(ids) => {
                    for id in ids {
                        if let Some((_, sent)) = st.outbox.get_mut(&id) {
                            *sent = true;
                        }
                    }
                }
                Op::WebhookProcessed(k, outcome) => {
                    // Checked when the op was queued; evicted since, it is simply gone.
                    let _ = st.mark_webhook_processed(&k, outcome);
                }
            }
        }
        for id in self.claimed.drain(..) {
            st.outbox_claimed.remove(&id);
        }
        Ok(())
    }
}
