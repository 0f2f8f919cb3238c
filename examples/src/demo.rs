//! The demo/load driver: a group's whole life through the HTTP API.
//!
//! Creates a group of N members, issues every member's invoice each cycle,
//! and plays the Lightning node: sends the signed "settled" webhooks
//! concurrently, with exact replays, re-signed duplicates (a new event id for
//! the same payment) and forged signatures mixed in. It waits for every payout
//! and checks the invariants: every cycle paid exactly once to the right
//! member, no contribution lost, every forgery refused, nothing answered 5xx.
//!
//! It also moves money the way real payers do: a member asks for its invoice
//! twice (one invoice comes back), overpays in cycle 1 (the rest pays its
//! cycle-2 contribution from its balance), and in a second group that is
//! cancelled mid-cycle, a member pays after the cancellation. For both
//! groups it checks the ledger equation: what the node received = the
//! contributions in force + the members' balances + the deposits held +
//! the released refunds.
//!
//! Then scheduled groups on the server's clock (the `rules` module): a late member
//! under each late policy (wait, a fine, a deposit covering them), and an
//! auctioned cycle, each with its payouts and its ledger checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, KeyInit, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::client::Servers;

mod rules;

/// What to drive.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// The servers, e.g. `http://127.0.0.1:3000`: requests go round-robin and
    /// fail over to the next one when a server cannot be reached.
    pub urls: Vec<String>,
    /// The webhook secret (`sha256=` scheme).
    pub secret: String,
    /// Members (and cycles).
    pub members: usize,
    /// Concurrent webhook senders.
    pub concurrency: usize,
    /// Extra deliveries per invoice (alternately exact replays and re-signed copies).
    pub duplicates: usize,
    /// Forged deliveries per cycle.
    pub forgeries: usize,
    /// Each member's contribution.
    pub contribution_msat: u64,
    /// The fee in basis points.
    pub fee_bps: u16,
    /// How long to wait for one cycle's payout.
    pub cycle_timeout: Duration,
    /// The keysend node every member is paid at (66 hex characters).
    pub payee_node: String,
    /// Pays invoices at the node instead of sending webhooks for them (the
    /// server then learns of payments from the node's settle stream only;
    /// forgeries are still sent, and still refused).
    pub payer: Option<Arc<dyn Payer>>,
    /// The servers' admin token: the driver creates and starts groups as
    /// the operator, and acts as each member (invoices, payout
    /// destinations) with a member token issued through it.
    pub admin_token: Option<String>,
    /// Also runs the scheduled groups on the server's clock (a late member
    /// under each late policy, an auctioned cycle: about ten seconds).
    pub scheduled: bool,
}

/// A payer's wallet: pays an invoice at the node.
pub trait Payer: Send + Sync + std::fmt::Debug {
    /// Pays `amount_msat` for the invoice with this payment hash (hex);
    /// whether the node settled it.
    fn pay(&self, payment_hash: &str, amount_msat: u64) -> bool;
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            urls: vec!["http://127.0.0.1:3000".into()],
            secret: String::new(),
            members: 10,
            concurrency: 32,
            duplicates: 2,
            forgeries: 5,
            contribution_msat: 10_000,
            fee_bps: 100,
            cycle_timeout: Duration::from_mins(1),
            payee_node: sunusav_core::memory::SimulatedNode::payee_node().to_hex(),
            payer: None,
            admin_token: None,
            scheduled: false,
        }
    }
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    /// The group's id.
    pub group: String,
    /// Cycles completed.
    pub cycles: usize,
    /// Payouts that succeeded.
    pub payouts: usize,
    /// Webhooks sent (all kinds).
    pub webhooks_sent: u64,
    /// Webhooks answered 202 (new deliveries).
    pub accepted: u64,
    /// Deliveries absorbed as duplicates (answered 200, or re-signed copies that settled nothing).
    pub duplicates_absorbed: u64,
    /// Forgeries answered 401.
    pub forgeries_rejected: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Webhooks per second while sending.
    pub webhooks_per_sec: f64,
    /// Median webhook latency.
    pub p50: Duration,
    /// 99th percentile webhook latency.
    pub p99: Duration,
    /// Contributions paid from a member's balance.
    pub paid_from_balance: usize,
    /// Groups whose ledger equation was checked.
    pub ledgers_checked: usize,
    /// Scheduled groups run (a late member under each late policy, an auction).
    pub scheduled_groups: usize,
    /// Payouts of the scheduled groups (each cycle paid once).
    pub scheduled_payouts: usize,
    /// Broken invariants (empty when all hold).
    pub failures: Vec<String>,
}

impl DemoReport {
    /// Whether every invariant held.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "group               {}", self.group)?;
        writeln!(f, "cycles              {}", self.cycles)?;
        writeln!(f, "payouts             {}", self.payouts)?;
        writeln!(f, "webhooks sent       {}", self.webhooks_sent)?;
        writeln!(f, "accepted (202)      {}", self.accepted)?;
        writeln!(f, "duplicates absorbed {}", self.duplicates_absorbed)?;
        writeln!(f, "forgeries rejected  {}", self.forgeries_rejected)?;
        writeln!(f, "paid from balance   {}", self.paid_from_balance)?;
        writeln!(f, "ledgers balanced    {}", self.ledgers_checked)?;
        writeln!(f, "scheduled groups    {}", self.scheduled_groups)?;
        writeln!(f, "elapsed             {:.2?}", self.elapsed)?;
        writeln!(f, "throughput          {:.0} webhooks/s", self.webhooks_per_sec)?;
        writeln!(f, "latency p50 / p99   {:.2?} / {:.2?}", self.p50, self.p99)?;
        if self.failures.is_empty() {
            write!(f, "invariants          all hold")
        } else {
            write!(f, "INVARIANTS BROKEN:\n  {}", self.failures.join("\n  "))
        }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Original,
    Replay,
    Resigned,
    Forged,
}

struct Delivery {
    kind: Kind,
    body: Vec<u8>,
    signature: String,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    accepted: AtomicU64,
    duplicate: AtomicU64,
    forged_rejected: AtomicU64,
}

/// Runs the demo against a running server.
///
/// # Errors
/// When the server cannot be reached or answers the group API unexpectedly;
/// broken invariants are reported in [`DemoReport::failures`] instead.
pub async fn run(config: &DemoConfig) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let client = match &config.admin_token {
        Some(token) => Servers::new(&config.urls).with_bearer(token),
        None => Servers::new(&config.urls),
    };
    let members: Vec<String> = (0..config.members).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client
        .post_json(
            "/groups",
            &json!({"members": members, "contribution_msat": config.contribution_msat, "fee_bps": config.fee_bps}),
        )
        .await?;
    if created.status != StatusCode::CREATED {
        bail!("create group answered {}: {}", created.status, String::from_utf8_lossy(&created.body));
    }
    let group = created.json()["id"].as_str().context("group id")?.to_owned();
    set_destinations(&client, &members, &config.payee_node).await?;
    let started_group = client.post_json(&format!("/groups/{group}/start"), &json!({})).await?;
    // 409: a retry of a start that did happen before the server went away.
    if !started_group.status.is_success() && started_group.status != StatusCode::CONFLICT {
        bail!("start answered {}", started_group.status);
    }

    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut report = DemoReport { group: group.clone(), ..DemoReport::default() };
    let mut sending = Duration::ZERO;
    let mut rng_state: u64 = rand::random::<u64>() | 1;
    let mut received: u128 = 0;

    for cycle in 1..=config.members {
        let mut deliveries = Vec::new();
        for (i, m) in members.iter().enumerate() {
            received += member_payment(&client, config, &group, cycle, i, m, &mut deliveries, &mut report).await?;
        }
        for i in 0..config.forgeries {
            let b = serde_json::to_vec(&json!({
                "payment_hash": hex::encode([u8::try_from(i % 256).unwrap_or(0); 32]),
                "status": "settled", "amount_msat": config.contribution_msat
            }))?;
            let s = sign(b"not-the-secret-at-all-0123456789", &b);
            deliveries.push(Delivery { kind: Kind::Forged, body: b, signature: s });
        }
        shuffle(&mut deliveries, &mut rng_state);
        let t0 = Instant::now();
        let failures = send_all(&client, deliveries, config.concurrency, &counters, &latencies).await;
        sending += t0.elapsed();
        report.failures.extend(failures);
        wait_for_cycle(&client, &group, cycle, config.cycle_timeout).await?;
    }

    let final_state = client.get(&format!("/groups/{group}")).await?.json();
    check_final(&final_state, &members, config, &mut report);
    if config.members > 1 && report.paid_from_balance != 1 {
        report.failures.push(format!("{} contributions paid from a balance (expected 1)", report.paid_from_balance));
    }
    check_ledger(&client, &group, received, config.cycle_timeout, &mut report).await?;
    cancelled_group(&client, config, &mut report).await?;
    if config.scheduled {
        rules::scheduled_groups(&client, config, &mut report).await?;
    }
    let mut lat = latencies.lock().await.clone();
    lat.sort();
    report.p50 = percentile(&lat, 50);
    report.p99 = percentile(&lat, 99);
    report.webhooks_sent = counters.sent.load(Ordering::Relaxed);
    report.accepted = counters.accepted.load(Ordering::Relaxed);
    report.forgeries_rejected = counters.forged_rejected.load(Ordering::Relaxed);
    let settled = u64::try_from(config.members * config.members - report.paid_from_balance).unwrap_or(u64::MAX);
    report.duplicates_absorbed = counters.duplicate.load(Ordering::Relaxed) + report.accepted.saturating_sub(settled);
    let expected_forged = u64::try_from(config.forgeries * config.members).unwrap_or(u64::MAX);
    if report.forgeries_rejected != expected_forged {
        report.failures.push(format!("{} of {expected_forged} forgeries rejected", report.forgeries_rejected));
    }
    report.elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    {
        report.webhooks_per_sec = report.webhooks_sent as f64 / sending.as_secs_f64().max(1e-9);
    }
    Ok(report)
}

/// Gets member `i`'s invoice for `cycle` and queues its payment, with its
/// replays and re-signed copies; returns the amount paid (zero when the
/// member's balance already paid the cycle). Member 0 asks twice for its
/// invoice (one comes back) and overpays cycle 1 twice over.
#[allow(clippy::too_many_arguments)]
async fn member_payment(
    client: &Servers,
    config: &DemoConfig,
    group: &str,
    cycle: usize,
    i: usize,
    member: &str,
    deliveries: &mut Vec<Delivery>,
    report: &mut DemoReport,
) -> anyhow::Result<u128> {
    let inv = client
        .as_member(member)
        .await?
        .post_json(&format!("/groups/{group}/invoices"), &json!({ "member": member }))
        .await?;
    if inv.status == StatusCode::CONFLICT && inv.json()["error"]["code"] == "already_contributed" {
        // Paid from the member's balance (its overpayment of cycle 1).
        report.paid_from_balance += 1;
        return Ok(0);
    }
    if inv.status != StatusCode::CREATED {
        bail!("invoice answered {}: {}", inv.status, String::from_utf8_lossy(&inv.body));
    }
    let inv = inv.json();
    let hash = inv["payment_hash"].as_str().context("payment_hash")?.to_owned();
    if i == 0 {
        // Asked twice: the same open invoice.
        let again = client
            .as_member(member)
            .await?
            .post_json(&format!("/groups/{group}/invoices"), &json!({ "member": member }))
            .await?;
        if again.json()["payment_hash"].as_str() != Some(hash.as_str()) {
            report.failures.push(format!("cycle {cycle}: a second invoice request gave another invoice"));
        }
    }
    let mut amount = inv["amount_msat"].as_u64().context("amount_msat")?;
    if cycle == 1 && i == 0 {
        // Overpaid: LND settles an invoice paid above its amount.
        amount *= 2;
    }
    if let Some(payer) = &config.payer {
        if !payer.pay(&hash, amount) {
            report.failures.push(format!("cycle {cycle}: the node refused the payment of {hash}"));
        }
        return Ok(u128::from(amount));
    }
    let body = |event: &str| {
        serde_json::to_vec(&json!({
            "payment_hash": hash, "status": "settled", "amount_msat": amount, "event_id": event
        }))
        .expect("JSON")
    };
    let original = body(&format!("evt-{hash}"));
    let sig = sign(config.secret.as_bytes(), &original);
    for d in 0..config.duplicates {
        if d % 2 == 0 {
            deliveries.push(Delivery { kind: Kind::Replay, body: original.clone(), signature: sig.clone() });
        } else {
            let b = body(&format!("evt-{hash}-resent-{d}"));
            let s = sign(config.secret.as_bytes(), &b);
            deliveries.push(Delivery { kind: Kind::Resigned, body: b, signature: s });
        }
    }
    deliveries.push(Delivery { kind: Kind::Original, body: original, signature: sig });
    Ok(u128::from(amount))
}

async fn send_all(
    client: &Servers,
    deliveries: Vec<Delivery>,
    concurrency: usize,
    counters: &Arc<Counters>,
    latencies: &Arc<Mutex<Vec<Duration>>>,
) -> Vec<String> {
    let queue = Arc::new(Mutex::new(deliveries));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, queue, counters, latencies, failures) =
            (client.clone(), Arc::clone(&queue), Arc::clone(counters), Arc::clone(latencies), Arc::clone(&failures));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let Some(d) = queue.lock().await.pop() else { break };
                let t = Instant::now();
                let headers = [("content-type", "application/json"), ("x-sunu-signature", d.signature.as_str())];
                let res = client.send(Method::POST, "/webhook/lightning", &headers, d.body.into()).await;
                mine.push(t.elapsed());
                counters.sent.fetch_add(1, Ordering::Relaxed);
                let status = match res {
                    Ok(r) => r.status,
                    Err(e) => {
                        failures.lock().await.push(format!("webhook request failed: {e:#}"));
                        continue;
                    }
                };
                match (d.kind, status) {
                    (Kind::Forged, StatusCode::UNAUTHORIZED) => {
                        counters.forged_rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    (Kind::Forged, s) => failures.lock().await.push(format!("a forgery was answered {s}")),
                    (_, StatusCode::ACCEPTED) => {
                        counters.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    // A replay, or a delivery retried after a lost answer.
                    (_, StatusCode::OK) => {
                        counters.duplicate.fetch_add(1, Ordering::Relaxed);
                    }
                    (_, s) => failures.lock().await.push(format!("a genuine webhook was answered {s}")),
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(failures).map(Mutex::into_inner).unwrap_or_default()
}

async fn wait_for_cycle(client: &Servers, group: &str, cycle: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let g = client.get(&format!("/groups/{group}")).await?.json();
        let current = usize::try_from(g["cycle"].as_u64().unwrap_or(0)).unwrap_or(0);
        if current > cycle || g["status"] == "finished" {
            return Ok(());
        }
        if g["cycle_status"] == "payout_failed" {
            bail!("cycle {cycle}'s payout failed: {g}");
        }
        if Instant::now() > deadline {
            bail!("cycle {cycle} not paid within {timeout:?}: {g}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check_final(state: &Value, members: &[String], config: &DemoConfig, report: &mut DemoReport) {
    if state["status"] != "finished" {
        report.failures.push(format!("the group is {} (expected finished)", state["status"]));
    }
    let payouts = state["payouts"].as_array().cloned().unwrap_or_default();
    if payouts.len() != members.len() {
        report.failures.push(format!("{} payouts for {} cycles", payouts.len(), members.len()));
    }
    let pot = config.contribution_msat * members.len() as u64;
    let fee = pot * u64::from(config.fee_bps) / 10_000;
    for (k, p) in payouts.iter().enumerate() {
        let cycle = k + 1;
        if p["status"] == "succeeded" {
            report.payouts += 1;
        } else {
            report.failures.push(format!("cycle {cycle}'s payout is {}", p["status"]));
        }
        if p["cycle"].as_u64() != Some(cycle as u64) {
            report.failures.push(format!("payout {k} is for cycle {}", p["cycle"]));
        }
        if p["beneficiary"].as_str() != members.get(k).map(String::as_str) {
            report.failures.push(format!("cycle {cycle} paid {} instead of member {k}", p["beneficiary"]));
        }
        if p["amount_msat"].as_u64() != Some(pot - fee) {
            report.failures.push(format!("cycle {cycle} paid {} instead of {}", p["amount_msat"], pot - fee));
        }
    }
    report.cycles = usize::try_from(state["cycle"].as_u64().unwrap_or(0)).unwrap_or(0);
}

/// Waits until the group's ledger says the node received `received`, then
/// checks `received = contributions + balances + deposits + released`.
async fn check_ledger(
    client: &Servers,
    group: &str,
    received: u128,
    timeout: Duration,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let ledger = client.get(&format!("/groups/{group}/ledger")).await?.json();
        let acc = &ledger["accounting"];
        let n = |k: &str| acc[k].as_u64().map(u128::from);
        if n("received") == Some(received) {
            let parts = ["contributions", "balances", "deposits", "released"].map(n);
            match parts.iter().try_fold(0u128, |sum, p| p.map(|p| sum + p)) {
                Some(total) if total == received => report.ledgers_checked += 1,
                _ => report.failures.push(format!("group {group}: ledger does not balance: {acc}")),
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            report.failures.push(format!("group {group}: the node received {received} msat, the ledger says {acc}"));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A group of three cancelled mid-cycle: one member had paid (returned to
/// its balance), another pays after the cancellation (credited).
async fn cancelled_group(client: &Servers, config: &DemoConfig, report: &mut DemoReport) -> anyhow::Result<()> {
    let members: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let created = client
        .post_json("/groups", &json!({"members": members, "contribution_msat": config.contribution_msat}))
        .await?;
    let group = created.json()["id"].as_str().context("group id")?.to_owned();
    set_destinations(client, &members, &config.payee_node).await?;
    client.post_json(&format!("/groups/{group}/start"), &json!({})).await?;
    let mut received = 0u128;
    let mut pay = Vec::new();
    for m in &members[..2] {
        let inv = client
            .as_member(m)
            .await?
            .post_json(&format!("/groups/{group}/invoices"), &json!({ "member": m }))
            .await?
            .json();
        let hash = inv["payment_hash"].as_str().context("payment_hash")?.to_owned();
        let body = serde_json::to_vec(&json!({
            "payment_hash": hash, "status": "settled", "amount_msat": config.contribution_msat, "event_id": format!("evt-{hash}")
        }))?;
        let signature = sign(config.secret.as_bytes(), &body);
        pay.push(Delivery { kind: Kind::Original, body, signature });
    }
    let late = pay.pop().context("two payments")?;
    for d in pay {
        report.failures.extend(settle_one(client, config, d).await);
    }
    received += u128::from(config.contribution_msat);
    // The first payment is settled before the cancellation.
    check_ledger(client, &group, received, config.cycle_timeout, report).await?;
    report.ledgers_checked = report.ledgers_checked.saturating_sub(1);
    let cancelled = client.post_json(&format!("/groups/{group}/cancel"), &json!({})).await?;
    // 409: a retry of a cancel that did happen before the server went away.
    let retried = cancelled.status == StatusCode::CONFLICT
        && client.get(&format!("/groups/{group}")).await?.json()["status"] == "cancelled";
    if !cancelled.status.is_success() && !retried {
        bail!("cancel answered {}", cancelled.status);
    }
    report.failures.extend(settle_one(client, config, late).await);
    received += u128::from(config.contribution_msat);
    check_ledger(client, &group, received, config.cycle_timeout, report).await?;
    let ledger = client.get(&format!("/groups/{group}/ledger")).await?.json();
    let held = ledger["accounting"]["balances"].as_u64().map(u128::from);
    if held != Some(received) {
        report.failures.push(format!("cancelled group {group}: balances {held:?}, expected {received}"));
    }
    Ok(())
}

/// Settles one payment: pays its invoice at the node in payer mode, else
/// sends its signed webhook. Returns what went wrong.
async fn settle_one(client: &Servers, config: &DemoConfig, d: Delivery) -> Vec<String> {
    let Some(payer) = &config.payer else {
        let counters = Arc::new(Counters::default());
        let latencies = Arc::new(Mutex::new(Vec::new()));
        return send_all(client, vec![d], 1, &counters, &latencies).await;
    };
    let event: serde_json::Value = serde_json::from_slice(&d.body).unwrap_or_default();
    let hash = event["payment_hash"].as_str().unwrap_or_default();
    let amount = event["amount_msat"].as_u64().unwrap_or_default();
    if payer.pay(hash, amount) { vec![] } else { vec![format!("the node refused the payment of {hash}")] }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[idx]
}

fn shuffle<T>(v: &mut [T], state: &mut u64) {
    for i in (1..v.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = usize::try_from(*state % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
}

/// Gives each member a keysend destination.
async fn set_destinations(client: &Servers, members: &[String], node: &str) -> anyhow::Result<()> {
    for m in members {
        let r = client
            .as_member(m)
            .await?
            .put_json(&format!("/members/{m}/payout-destination"), &json!({ "keysend": node }))
            .await?;
        if !r.status.is_success() {
            bail!("set destination answered {}: {}", r.status, String::from_utf8_lossy(&r.body));
        }
    }
    Ok(())
}
