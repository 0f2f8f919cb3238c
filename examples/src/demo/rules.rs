//! The demo's scheduled groups, on the server's real clock: a late member
//! under each late policy, and an auctioned cycle.
//!
//! A scheduled group's period is at least a day, so the demo places its
//! groups' first cycle a day back: cycle 1 opens after its calendar due
//! time, so it is due a grace period (two seconds) after it opened and late
//! two seconds later (both members are told late then, and pay what they
//! owe), and cycle 2 is due a few seconds ahead. In cycle 2 the first member pays
//! on time and the second only after the grace period ended: under `wait`
//! they pay the contribution, under `fine` the contribution and the fine,
//! under `cover` their deposit (paid with cycle 1) has paid it already. Each
//! group finishes; the driver checks the payouts (each cycle paid once, to
//! the right member, the fines where the policy puts them), the members told
//! late, and the ledger equation with the deposits held.
//!
//! The auctioned group has three members and its first cycle a few seconds
//! ahead: all bid and pay before it is due, the close pays the lowest bid
//! and credits the other two their dividends; the group is then cancelled
//! (its next cycle is a day away) and its ledger checked.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::StatusCode;
use serde_json::{Value, json};

use super::{Delivery, DemoConfig, DemoReport, Kind, check_ledger, set_destinations};
use crate::client::Servers;

const DAY_MS: u64 = 86_400_000;
/// How far ahead a live cycle is due, and its grace period.
const AHEAD_MS: u64 = 6_000;
const GRACE_MS: u64 = 2_000;

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis())
        .unwrap_or(u64::MAX)
}

/// Runs the scheduled groups (concurrently: each waits on the clock).
///
/// # Errors
/// When the server answers the group API unexpectedly.
pub(super) async fn scheduled_groups(
    client: &Servers,
    config: &DemoConfig,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let c = config.contribution_msat;
    let policies = [
        ("wait", json!("wait")),
        ("fine", json!({ "fine": { "amount": { "msat": c / 10 }, "to": "pot" } })),
        ("cover", json!({ "cover": { "deposit_msat": c } })),
    ];
    let (wait, fine, cover, auction) = tokio::join!(
        late_member(client, config, policies[0].0, &policies[0].1),
        late_member(client, config, policies[1].0, &policies[1].1),
        late_member(client, config, policies[2].0, &policies[2].1),
        auctioned(client, config),
    );
    for result in [wait, fine, cover, auction] {
        let (failures, paid) = result?;
        report.failures.extend(failures);
        report.ledgers_checked += 1;
        report.scheduled_groups += 1;
        report.scheduled_payouts += paid;
    }
    Ok(())
}

/// Two members, cycle 1 a day back, cycle 2 due a few seconds ahead; the
/// second member is late for cycle 2. Returns the broken invariants.
async fn late_member(
    client: &Servers,
    config: &DemoConfig,
    name: &str,
    policy: &Value,
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut failures = Vec::new();
    let members: Vec<String> = (0..2).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let schedule =
        json!({ "first_due_ms": now_ms() - DAY_MS + AHEAD_MS, "period": { "days": 1 }, "grace_ms": GRACE_MS });
    let body = json!({ "members": members, "contribution_msat": config.contribution_msat, "fee_bps": config.fee_bps,
                       "schedule": schedule, "late": policy });
    let group = create(client, &body).await?;
    set_destinations(client, &members, &config.payee_node).await?;
    client.post_json(&format!("/groups/{group}/start"), &json!({})).await?;
    let mut received = 0u128;
    // Cycle 1 opened after its calendar due time: it is due a grace period
    // after it opened, and late a grace period after that. Nobody pays in
    // time: both members are told late, then pay.
    let g = wait_for(client, &group, "both members told late in cycle 1", |g| {
        g["late_members"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await?;
    let fine = c_fine(policy);
    let deposit = policy["cover"]["deposit_msat"].as_u64().unwrap_or(0);
    for late in g["late_members"].as_array().into_iter().flatten() {
        let expected = config.contribution_msat + fine + deposit;
        if late["owed_msat"].as_u64() != Some(expected) {
            failures.push(format!("{name}: cycle 1, a late member owes {} (expected {expected})", late["owed_msat"]));
        }
    }
    for m in &members {
        received += pay(client, config, &group, m, &mut failures).await?;
    }
    let opened = wait_for(client, &group, "cycle 2", |g| g["cycle"] == 2).await?;
    let cycle2_grace_end = opened["cycle_grace_end_ms"].as_u64().context("cycle 2's grace end")?;
    // Cycle 2: the first member pays on time, the second after the grace end.
    received += pay(client, config, &group, &members[0], &mut failures).await?;
    let wait = cycle2_grace_end.saturating_sub(now_ms()) + 200;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let g = wait_for(client, &group, "the late member told late in cycle 2", |g| {
        g["late_members"].as_array().is_some_and(|l| l.len() == 1) || g["cycle"] != 2 || g["status"] == "finished"
    })
    .await?;
    if name == "cover" {
        // The deposit paid the contribution at the deadline: the cycle completed.
        wait_for(client, &group, "the group finished", |g| g["status"] == "finished").await?;
    } else {
        let late = &g["late_members"][0];
        if late["member"].as_str() != Some(members[1].as_str()) {
            failures.push(format!("{name}: cycle 2's late member is {late} (expected {})", members[1]));
        }
        if late["owed_msat"].as_u64() != Some(config.contribution_msat + fine) {
            failures.push(format!("{name}: cycle 2's late member owes {late}"));
        }
        received += pay(client, config, &group, &members[1], &mut failures).await?;
        wait_for(client, &group, "the group finished", |g| g["status"] == "finished").await?;
    }
    // Each cycle paid once to its member, the fines in the pot.
    let g = client.get(&format!("/groups/{group}")).await?.json();
    let pot = config.contribution_msat * 2;
    let net = pot - pot * u64::from(config.fee_bps) / 10_000;
    let payouts = g["payouts"].as_array().cloned().unwrap_or_default();
    let expected = [net + 2 * fine, net + fine];
    if payouts.len() != 2 {
        failures.push(format!("{name}: {} payouts for 2 cycles", payouts.len()));
    }
    for (k, p) in payouts.iter().enumerate() {
        let ok = p["status"] == "succeeded"
            && p["beneficiary"].as_str() == Some(members[k].as_str())
            && p["amount_msat"].as_u64() == Some(expected[k]);
        if !ok {
            failures.push(format!("{name}: cycle {} paid {p} (expected {} to {})", k + 1, expected[k], members[k]));
        }
    }
    let mut ledger_report = DemoReport::default();
    check_ledger(client, &group, received, config.cycle_timeout, &mut ledger_report).await?;
    failures.extend(ledger_report.failures);
    let ledger = client.get(&format!("/groups/{group}/ledger")).await?.json();
    if ledger["accounting"]["deposits"].as_u64() != Some(0) {
        failures.push(format!("{name}: deposits still held after the group finished: {}", ledger["accounting"]));
    }
    if name == "cover" && !has_entry(&ledger, "covered", &members[1]) {
        failures.push(format!("{name}: no covered entry on the late member's ledger"));
    }
    Ok((failures, succeeded(&payouts)))
}

/// Three members bid on cycle 1's pot, due a few seconds ahead, and all pay
/// before it is due; the close pays the lowest bid. Returns the broken invariants.
async fn auctioned(client: &Servers, config: &DemoConfig) -> anyhow::Result<(Vec<String>, usize)> {
    let mut failures = Vec::new();
    let members: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let schedule = json!({ "first_due_ms": now_ms() + AHEAD_MS, "period": { "days": 1 }, "grace_ms": GRACE_MS });
    let rules = json!({ "auction": { "commission_bps": 1_000, "max_discount_bps": 3_000 } });
    let body = json!({ "members": members, "contribution_msat": config.contribution_msat, "fee_bps": config.fee_bps,
                       "schedule": schedule, "payout_order": rules });
    let group = create(client, &body).await?;
    set_destinations(client, &members, &config.payee_node).await?;
    let started = client.post_json(&format!("/groups/{group}/start"), &json!({})).await?.json();
    let pot = started["auction"]["pot_msat"].as_u64().context("the auction's pot")?;
    let floor = started["auction"]["floor_msat"].as_u64().context("the auction's floor")?;
    // Member 1 bids lowest; member 0 bids twice (the second bid counts).
    let asks = [pot - (pot - floor) / 4, floor + (pot - floor) / 3, pot];
    for (m, ask) in members.iter().zip(asks) {
        bid(client, &group, m, ask).await?;
    }
    bid(client, &group, &members[0], asks[0] + 1).await?;
    let mut received = 0u128;
    for m in &members {
        received += pay(client, config, &group, m, &mut failures).await?;
    }
    wait_for(client, &group, "cycle 1 paid out", |g| g["cycle"] == 2).await?;
    let g = client.get(&format!("/groups/{group}")).await?.json();
    let payout = &g["payouts"][0];
    if payout["beneficiary"].as_str() != Some(members[1].as_str()) || payout["amount_msat"].as_u64() != Some(asks[1]) {
        failures.push(format!("auction: cycle 1 paid {payout} (expected {} to {})", asks[1], members[1]));
    }
    let ledger = client.get(&format!("/groups/{group}/ledger")).await?.json();
    for m in [&members[0], &members[2]] {
        if !has_entry(&ledger, "dividend", m) {
            failures.push(format!("auction: no dividend credited to {m}"));
        }
    }
    // Its next cycle is a day away: cancelled, and its ledger checked.
    let cancelled = client.post_json(&format!("/groups/{group}/cancel"), &json!({})).await?;
    // 409: a retry of a cancel that did happen before the server went away.
    let retried = cancelled.status == StatusCode::CONFLICT
        && client.get(&format!("/groups/{group}")).await?.json()["status"] == "cancelled";
    if !cancelled.status.is_success() && !retried {
        bail!("cancel answered {}", cancelled.status);
    }
    let mut ledger_report = DemoReport::default();
    check_ledger(client, &group, received, config.cycle_timeout, &mut ledger_report).await?;
    failures.extend(ledger_report.failures);
    let payouts = g["payouts"].as_array().cloned().unwrap_or_default();
    Ok((failures, succeeded(&payouts)))
}

/// How many payouts succeeded.
fn succeeded(payouts: &[Value]) -> usize {
    payouts.iter().filter(|p| p["status"] == "succeeded").count()
}

fn c_fine(policy: &Value) -> u64 {
    policy["fine"]["amount"]["msat"].as_u64().unwrap_or(0)
}

fn has_entry(ledger: &Value, reason: &str, member: &str) -> bool {
    ledger["entries"].as_array().into_iter().flatten().any(|e| e["reason"] == reason && e["member"] == member)
}

async fn create(client: &Servers, body: &Value) -> anyhow::Result<String> {
    let created = client.post_json("/groups", body).await?;
    if created.status != StatusCode::CREATED {
        bail!("create group answered {}: {}", created.status, String::from_utf8_lossy(&created.body));
    }
    Ok(created.json()["id"].as_str().context("group id")?.to_owned())
}

async fn bid(client: &Servers, group: &str, member: &str, payout: u64) -> anyhow::Result<()> {
    let placed = client
        .as_member(member)
        .await?
        .post_json(&format!("/groups/{group}/bids"), &json!({ "member": member, "payout_msat": payout }))
        .await?;
    if placed.status != StatusCode::CREATED {
        bail!("bid answered {}: {}", placed.status, String::from_utf8_lossy(&placed.body));
    }
    Ok(())
}

/// The member pays the invoice the server issues them (what they owe);
/// returns the amount paid.
async fn pay(
    client: &Servers,
    config: &DemoConfig,
    group: &str,
    member: &str,
    failures: &mut Vec<String>,
) -> anyhow::Result<u128> {
    let inv = client
        .as_member(member)
        .await?
        .post_json(&format!("/groups/{group}/invoices"), &json!({ "member": member }))
        .await?;
    if inv.status != StatusCode::CREATED {
        bail!("invoice answered {}: {}", inv.status, String::from_utf8_lossy(&inv.body));
    }
    let inv = inv.json();
    let hash = inv["payment_hash"].as_str().context("payment_hash")?.to_owned();
    let amount = inv["amount_msat"].as_u64().context("amount_msat")?;
    let body = serde_json::to_vec(&json!({
        "payment_hash": hash, "status": "settled", "amount_msat": amount, "event_id": format!("evt-{hash}")
    }))?;
    let signature = super::sign(config.secret.as_bytes(), &body);
    failures.extend(super::settle_one(client, config, Delivery { kind: Kind::Original, body, signature }).await);
    Ok(u128::from(amount))
}

/// Polls the group until `done` holds (at most 30 s).
async fn wait_for(client: &Servers, group: &str, what: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let g = client.get(&format!("/groups/{group}")).await?.json();
        if done(&g) {
            return Ok(g);
        }
        if Instant::now() > deadline {
            bail!("group {group}: {what}: not within 30 s: {g}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
