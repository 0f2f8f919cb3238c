//! The audit log of operator actions: appended, read newest first by id.

use sqlx::PgExecutor;
use sunusav_core::ports::store::{
    AuditAction, AuditEntry, AuditOutcome, AuditPage, AuditRole, NewAuditEntry, StoreError, audit_page,
    check_audit_entry,
};

use crate::convert::{id_from_db, id_to_db, ms_from_db, ms_to_db};
use crate::error::map_err;

/// Appends an entry; returns its id.
pub(crate) async fn record(exec: impl PgExecutor<'_>, entry: &NewAuditEntry) -> Result<u64, StoreError> {
    check_audit_entry(entry)?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO audit_log (at_ms, role, action, target, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(ms_to_db(entry.at_ms, "at_ms")?)
    .bind(entry.role.as_str())
    .bind(entry.action.as_str())
    .bind(&entry.target)
    .bind(entry.outcome.as_str())
    .bind(entry.detail.as_deref())
    .fetch_one(exec)
    .await
    .map_err(map_err)?;
    id_from_db(id)
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at_ms: i64,
    role: String,
    action: String,
    target: String,
    outcome: String,
    detail: Option<String>,
}

impl AuditRow {
    fn into_entry(self) -> Result<AuditEntry, StoreError> {
        let corrupt = |column: &str, value: &str| StoreError::Corrupt(format!("audit_log.{column} is `{value}`"));
        Ok(AuditEntry {
            position: id_from_db(self.id)?,
            entry: NewAuditEntry {
                at_ms: ms_from_db(self.at_ms, "audit_log.at_ms")?,
                role: AuditRole::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))?,
                action: AuditAction::parse(&self.action).ok_or_else(|| corrupt("action", &self.action))?,
                target: self.target,
                outcome: AuditOutcome::parse(&self.outcome).ok_or_else(|| corrupt("outcome", &self.outcome))?,
                detail: self.detail,
            },
        })
    }
}

/// Entries newest first, before `before` when given, at most `limit`.
pub(crate) async fn entries(
    exec: impl PgExecutor<'_>,
    before: Option<u64>,
    limit: u32,
) -> Result<AuditPage, StoreError> {
    if limit == 0 {
        return Ok(AuditPage::default());
    }
    let before = before.map(id_to_db).transpose()?.unwrap_or(i64::MAX);
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at_ms, role, action, target, outcome, detail FROM audit_log \
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    let entries = rows.into_iter().map(AuditRow::into_entry).collect::<Result<Vec<_>, _>>()?;
    Ok(audit_page(entries, limit))
}
