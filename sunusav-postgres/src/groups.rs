//! Groups: insert (with members in payout order), load (for update), save.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use sunusav_core::domain::auction::Bid;
use sunusav_core::domain::draw::DrawSeed;
use sunusav_core::domain::group::{CycleStatus, Group, GroupPolicy, GroupSpec, GroupStatus};
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::money::Msat;
use sunusav_core::domain::rules::PayoutOrder;
use sunusav_core::domain::schedule::Schedule;
use sunusav_core::ports::store::StoreError;
use uuid::Uuid;

use crate::convert::{hash_from_db, member_id, msat_from_db, msat_to_db, u32_from_db, u32_to_db};
use crate::error::map_err;

/// Whether [`load`] locks the group row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// `FOR UPDATE`: inside a unit of work, after the advisory lock.
    ForUpdate,
    /// A plain read (inside a read-only snapshot).
    None,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    contribution_msat: i64,
    fee_bps: i32,
    status: String,
    current_cycle: i32,
    cycle_status: String,
    apply_balance: bool,
    organizer: Option<Uuid>,
    schedule: Option<String>,
    policy: Option<String>,
    draw_seed: Option<Vec<u8>>,
    cycle_opened_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LateRow {
    member_id: Uuid,
    fine_msat: i64,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    member_id: Uuid,
    /// The member's contribution to the current cycle, if any.
    payment_hash: Option<Vec<u8>>,
    /// The cycle whose auction the member won, if any.
    payout_cycle: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct BidRow {
    member_id: Uuid,
    payout_msat: i64,
    at_ms: i64,
}

const SELECT_FOR_UPDATE: &str = "SELECT contribution_msat, fee_bps, status, current_cycle, cycle_status, apply_balance, organizer, schedule, policy, draw_seed, cycle_opened_ms \
     FROM tontine_groups WHERE id = $1 FOR UPDATE";
const SELECT_PLAIN: &str = "SELECT contribution_msat, fee_bps, status, current_cycle, cycle_status, apply_balance, organizer, schedule, policy, draw_seed, cycle_opened_ms \
     FROM tontine_groups WHERE id = $1";
/// Members in payout order, each with its contribution to cycle `$2`.
const SELECT_MEMBERS: &str = "SELECT m.member_id, c.payment_hash, m.payout_cycle \
     FROM group_members m \
     LEFT JOIN contributions c \
       ON c.group_id = m.group_id AND c.member_id = m.member_id AND c.cycle = $2 \
     WHERE m.group_id = $1 \
     ORDER BY m.position";

/// Inserts a group row and its members (positions 1..=N in payout order).
pub(crate) async fn insert(conn: &mut PgConnection, group: &Group) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tontine_groups \
         (id, contribution_msat, fee_bps, status, current_cycle, cycle_status, apply_balance, organizer, schedule, policy) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(group.id().as_uuid())
    .bind(msat_to_db(group.contribution())?)
    .bind(i32::from(group.fee_bps()))
    .bind(group.status().as_str())
    .bind(u32_to_db(group.cycle(), "cycle")?)
    .bind(group.cycle_status().as_str())
    .bind(group.policy().apply_balance)
    .bind(group.organizer().map(|m| m.as_uuid()))
    .bind(
        group
            .schedule()
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("schedule: {e}")))?,
    )
    .bind(serde_json::to_string(&group.policy()).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))?)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    let members: Vec<Uuid> = group.members().iter().map(sunusav_core::MemberId::as_uuid).collect();
    sqlx::query(
        "INSERT INTO group_members (group_id, position, member_id) \
         SELECT $1, t.ord::integer, t.member_id FROM unnest($2::uuid[]) WITH ORDINALITY AS t(member_id, ord)",
    )
    .bind(group.id().as_uuid())
    .bind(members)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Loads a group with its members and the current cycle's contributions.
pub(crate) async fn load(conn: &mut PgConnection, id: GroupId, lock: Lock) -> Result<Option<Group>, StoreError> {
    let sql = match lock {
        Lock::ForUpdate => SELECT_FOR_UPDATE,
        Lock::None => SELECT_PLAIN,
    };
    let Some(row) =
        sqlx::query_as::<_, GroupRow>(sql).bind(id.as_uuid()).fetch_optional(&mut *conn).await.map_err(map_err)?
    else {
        return Ok(None);
    };
    let members = sqlx::query_as::<_, MemberRow>(SELECT_MEMBERS)
        .bind(id.as_uuid())
        .bind(row.current_cycle)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    let mut winners: Vec<(i32, Uuid)> = members.iter().filter_map(|m| Some((m.payout_cycle?, m.member_id))).collect();
    winners.sort_unstable();
    let winners: Vec<_> = winners.into_iter().map(|(_, m)| member_id(m)).collect();
    let group = restore(id, &row, members)?;
    // Only a scheduled group has members told late, and only an auctioned
    // one bids: the reads every other group's load (a settlement's) skips.
    let late = if group.schedule().is_some() { late_of(conn, id, row.current_cycle).await? } else { BTreeMap::new() };
    let bids = if matches!(group.policy().order, PayoutOrder::Auction(_)) {
        bids_of(conn, id, row.current_cycle).await?
    } else {
        Vec::new()
    };
    let seed = row
        .draw_seed
        .as_deref()
        .map(|b| <[u8; 32]>::try_from(b).map(DrawSeed::from_bytes))
        .transpose()
        .map_err(|_| StoreError::Corrupt(format!("group {id}: a draw seed of another length than 32 bytes")))?;
    let opened = row
        .cycle_opened_ms
        .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("group {id}: cycle_opened_ms {v}"))))
        .transpose()?;
    group
        .with_auction(winners, bids)
        .and_then(|g| g.with_cycle_opened(opened).with_late(late))
        .and_then(|g| g.with_draw_seed(seed))
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("group {id}: {e}")))
}

/// The members told late in a group's `cycle`, with their fines.
async fn late_of(conn: &mut PgConnection, id: GroupId, cycle: i32) -> Result<BTreeMap<MemberId, Msat>, StoreError> {
    sqlx::query_as::<_, LateRow>("SELECT member_id, fine_msat FROM late_members WHERE group_id = $1 AND cycle = $2")
        .bind(id.as_uuid())
        .bind(cycle)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(|l| Ok((member_id(l.member_id), msat_from_db(l.fine_msat, "late_members.fine_msat")?)))
        .collect()
}

/// The sealed bids of a group's `cycle`.
async fn bids_of(conn: &mut PgConnection, id: GroupId, cycle: i32) -> Result<Vec<Bid>, StoreError> {
    sqlx::query_as::<_, BidRow>("SELECT member_id, payout_msat, at_ms FROM bids WHERE group_id = $1 AND cycle = $2")
        .bind(id.as_uuid())
        .bind(cycle)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(|b| {
            Ok(Bid {
                member: member_id(b.member_id),
                payout: msat_from_db(b.payout_msat, "bids.payout_msat")?,
                at_ms: u64::try_from(b.at_ms).map_err(|_| StoreError::Corrupt(format!("bids.at_ms {}", b.at_ms)))?,
            })
        })
        .collect()
}

/// An auctioned group's current bids (upserted: a member's latest) and its
/// winner once the cycle's auction closed.
async fn save_auction(conn: &mut PgConnection, group: &Group) -> Result<(), StoreError> {
    let cycle = u32_to_db(group.cycle(), "cycle")?;
    let bids: Vec<_> = group.bids().collect();
    if !bids.is_empty() {
        let members: Vec<Uuid> = bids.iter().map(|b| b.member.as_uuid()).collect();
        let payouts = bids.iter().map(|b| msat_to_db(b.payout)).collect::<Result<Vec<i64>, _>>()?;
        let at = bids
            .iter()
            .map(|b| i64::try_from(b.at_ms).map_err(|_| StoreError::Corrupt(format!("a bid at {}", b.at_ms))))
            .collect::<Result<Vec<i64>, _>>()?;
        sqlx::query(
            "INSERT INTO bids (group_id, cycle, member_id, payout_msat, at_ms) \
             SELECT $1, $2, t.m, t.p, t.a FROM unnest($3::uuid[], $4::bigint[], $5::bigint[]) AS t(m, p, a) \
             ON CONFLICT (group_id, cycle, member_id) DO UPDATE SET payout_msat = EXCLUDED.payout_msat, at_ms = EXCLUDED.at_ms",
        )
        .bind(group.id().as_uuid())
        .bind(cycle)
        .bind(members)
        .bind(payouts)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    if let Some(winner) = group.auction_result().map(|r| r.winner) {
        sqlx::query(
            "UPDATE group_members SET payout_cycle = $3 WHERE group_id = $1 AND member_id = $2 AND payout_cycle IS NULL",
        )
        .bind(group.id().as_uuid())
        .bind(winner.as_uuid())
        .bind(cycle)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Up to `limit` ids of active scheduled groups whose cycle is collecting,
/// after `after`, in id order.
pub(crate) async fn scheduled(
    conn: &mut PgConnection,
    after: Option<GroupId>,
    limit: u32,
) -> Result<Vec<GroupId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM tontine_groups \
         WHERE schedule IS NOT NULL AND status = 'active' AND cycle_status = 'collecting' \
           AND ($1::uuid IS NULL OR id > $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(after.map(|a| a.as_uuid()))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(ids.into_iter().map(GroupId::from_uuid).collect())
}

fn restore(id: GroupId, row: &GroupRow, members: Vec<MemberRow>) -> Result<Group, StoreError> {
    let status = GroupStatus::parse(&row.status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown group status {:?}", row.status)))?;
    let cycle_status = CycleStatus::parse(&row.cycle_status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown cycle status {:?}", row.cycle_status)))?;
    let fee_bps = u16::try_from(row.fee_bps).map_err(|_| StoreError::Corrupt(format!("fee_bps {}", row.fee_bps)))?;
    let mut order = Vec::with_capacity(members.len());
    let mut paid = BTreeMap::new();
    for m in members {
        let member = member_id(m.member_id);
        if let Some(hash) = m.payment_hash {
            paid.insert(member, hash_from_db(&hash, "contributions.payment_hash")?);
        }
        order.push(member);
    }
    let spec = GroupSpec {
        contribution: msat_from_db(row.contribution_msat, "contribution_msat")?,
        fee_bps,
        members: order,
        policy: policy_from_db(row)?,
        organizer: row.organizer.map(member_id),
        schedule: schedule_from_db(row.schedule.as_deref())?,
    };
    let cycle = u32_from_db(row.current_cycle, "current_cycle")?;
    Group::restore(id, spec, status, cycle, cycle_status, paid)
        .map_err(|e| StoreError::Corrupt(format!("group {id}: {e}")))
}

/// A group's stored rules, checked as the domain checks them; the defaults
/// with the `apply_balance` column for a group stored before them.
fn policy_from_db(row: &GroupRow) -> Result<GroupPolicy, StoreError> {
    match row.policy.as_deref() {
        None => Ok(GroupPolicy { apply_balance: row.apply_balance, ..GroupPolicy::default() }),
        Some(t) => serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("policy {t:?}: {e}"))),
    }
}

/// A stored schedule, checked as the domain checks one.
fn schedule_from_db(text: Option<&str>) -> Result<Option<Schedule>, StoreError> {
    text.map(|t| serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("schedule {t:?}: {e}")))).transpose()
}

/// Saves a group's status, cycle and cycle status.
pub(crate) async fn save(conn: &mut PgConnection, group: &Group) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE tontine_groups SET status = $2, current_cycle = $3, cycle_status = $4, updated_at = now(), \
         draw_seed = COALESCE(draw_seed, $5), cycle_opened_ms = $6 WHERE id = $1",
    )
    .bind(group.id().as_uuid())
    .bind(group.status().as_str())
    .bind(u32_to_db(group.cycle(), "cycle")?)
    .bind(group.cycle_status().as_str())
    .bind(group.draw_seed().map(|s| s.expose_bytes().to_vec()))
    .bind(
        group
            .cycle_opened_ms()
            .map(|v| i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("cycle opened at {v}"))))
            .transpose()?,
    )
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    save_auction(conn, group).await?;
    if !group.late().is_empty() {
        // Told late once: a member already recorded keeps their first row.
        let (members, fines): (Vec<Uuid>, Vec<i64>) = group
            .late()
            .iter()
            .map(|(m, f)| Ok((m.as_uuid(), msat_to_db(*f)?)))
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .unzip();
        sqlx::query(
            "INSERT INTO late_members (group_id, cycle, member_id, fine_msat) \
             SELECT $1, $2, t.member_id, t.fine FROM unnest($3::uuid[], $4::bigint[]) AS t(member_id, fine) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group.id().as_uuid())
        .bind(u32_to_db(group.cycle(), "cycle")?)
        .bind(members)
        .bind(fines)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}
