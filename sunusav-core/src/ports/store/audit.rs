//! The audit log: every operator action (a queue move, a payout retry, a
//! delivery replay, a balance release), who took it and what came of it.
//!
//! Entries are appended, never changed, and read newest first a page at a
//! time by position (a cursor, never an offset). The caller gives the time
//! ([`NewAuditEntry::at_ms`]): the store keeps it as given.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The longest target an entry keeps, in bytes; a longer one is cut (on a
/// character boundary) by [`NewAuditEntry::new`].
pub const MAX_AUDIT_TARGET: usize = 512;

/// The longest detail an entry keeps, in bytes (cut as the target is).
pub const MAX_AUDIT_DETAIL: usize = 512;

/// Who took an action: the role the credentials presented carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditRole {
    /// The admin role: reads and acts.
    Admin,
    /// The read-only operator role (its attempts to act are refused, and recorded).
    Operator,
}

impl AuditRole {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
        }
    }

    /// The role of a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Operator].into_iter().find(|r| r.as_str() == s)
    }
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A dead job moved back to waiting.
    QueueRetry,
    /// Every dead job of a queue moved back to waiting.
    QueueRetryAllDead,
    /// A job removed.
    QueueRemove,
    /// A delayed or failed job made due now.
    QueuePromote,
    /// A queue paused.
    QueuePause,
    /// A queue resumed.
    QueueResume,
    /// A dead payout retried by its record.
    PayoutRetry,
    /// A webhook delivery replayed by its record.
    WebhookReplay,
    /// A member's balance released for a refund.
    BalanceRelease,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [Self; 9] = [
        Self::QueueRetry,
        Self::QueueRetryAllDead,
        Self::QueueRemove,
        Self::QueuePromote,
        Self::QueuePause,
        Self::QueueResume,
        Self::PayoutRetry,
        Self::WebhookReplay,
        Self::BalanceRelease,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueRetry => "queue_retry",
            Self::QueueRetryAllDead => "queue_retry_all_dead",
            Self::QueueRemove => "queue_remove",
            Self::QueuePromote => "queue_promote",
            Self::QueuePause => "queue_pause",
            Self::QueueResume => "queue_resume",
            Self::PayoutRetry => "payout_retry",
            Self::WebhookReplay => "webhook_replay",
            Self::BalanceRelease => "balance_release",
        }
    }

    /// The action of a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What came of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It was carried out.
    Succeeded,
    /// It was tried and failed (the detail holds the error's code).
    Failed,
    /// The role may not take it: nothing was tried.
    Refused,
}

impl AuditOutcome {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    /// The outcome of a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Succeeded, Self::Failed, Self::Refused].into_iter().find(|o| o.as_str() == s)
    }
}

/// An entry to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// When it was taken (unix ms), as the caller's clock read it.
    pub at_ms: u64,
    /// Who took it.
    pub role: AuditRole,
    /// What was done.
    pub action: AuditAction,
    /// What it was done to: `<queue>/<job id>`, a payout or delivery key,
    /// `<group>/<member>`.
    pub target: String,
    /// What came of it.
    pub outcome: AuditOutcome,
    /// A short, public detail: an error's stable code, a new generation.
    pub detail: Option<String>,
}

impl NewAuditEntry {
    /// An entry, its target and detail cut to [`MAX_AUDIT_TARGET`] and
    /// [`MAX_AUDIT_DETAIL`] bytes.
    pub fn new(
        at_ms: u64,
        role: AuditRole,
        action: AuditAction,
        target: impl Into<String>,
        outcome: AuditOutcome,
        detail: Option<String>,
    ) -> Self {
        Self {
            at_ms,
            role,
            action,
            target: cut(target.into(), MAX_AUDIT_TARGET),
            outcome,
            detail: detail.map(|d| cut(d, MAX_AUDIT_DETAIL)),
        }
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A recorded entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position in the log (ascending in the order recorded, from 1).
    pub position: u64,
    /// The entry as recorded.
    #[serde(flatten)]
    pub entry: NewAuditEntry,
}

/// A page of the audit log, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// The position of the last (oldest) entry of the page, to pass as
    /// `before` for the next page; `None` when the page is not full (no
    /// older entry is left).
    pub next: Option<u64>,
}

/// The audit log of operator actions.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends an entry; returns its position, greater than every position
    /// returned before.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached (the entry
    /// is then not recorded), `Invalid` for a target or detail longer than
    /// [`MAX_AUDIT_TARGET`] / [`MAX_AUDIT_DETAIL`] bytes.
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<u64, StoreError>;

    /// Entries newest first, those before position `before` when given (a
    /// page's [`AuditPage::next`]), at most `limit`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached, `Corrupt`
    /// for a row that is not a valid entry.
    async fn audit_entries(&self, before: Option<u64>, limit: u32) -> Result<AuditPage, StoreError>;
}

/// Checks an entry's lengths, as every adapter must.
///
/// # Errors
/// `Invalid` when the target or the detail is too long.
pub fn check_audit_entry(entry: &NewAuditEntry) -> Result<(), StoreError> {
    if entry.target.len() > MAX_AUDIT_TARGET {
        return Err(StoreError::Invalid(format!("audit target over {MAX_AUDIT_TARGET} bytes")));
    }
    if entry.detail.as_ref().is_some_and(|d| d.len() > MAX_AUDIT_DETAIL) {
        return Err(StoreError::Invalid(format!("audit detail over {MAX_AUDIT_DETAIL} bytes")));
    }
    Ok(())
}

/// The `next` cursor of a page of `limit` entries.
pub fn audit_page(entries: Vec<AuditEntry>, limit: u32) -> AuditPage {
    let full = usize::try_from(limit).is_ok_and(|l| l > 0 && entries.len() >= l);
    let next = if full { entries.last().map(|e| e.position) } else { None };
    AuditPage { entries, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_long_texts_are_cut_on_a_character_boundary() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        for r in [AuditRole::Admin, AuditRole::Operator] {
            assert_eq!(AuditRole::parse(r.as_str()), Some(r));
        }
        for o in [AuditOutcome::Succeeded, AuditOutcome::Failed, AuditOutcome::Refused] {
            assert_eq!(AuditOutcome::parse(o.as_str()), Some(o));
        }
        let long = "é".repeat(MAX_AUDIT_TARGET);
        let e = NewAuditEntry::new(1, AuditRole::Admin, AuditAction::QueueRetry, long, AuditOutcome::Succeeded, None);
        assert!(e.target.len() <= MAX_AUDIT_TARGET && e.target.len() >= MAX_AUDIT_TARGET - 1);
        assert!(check_audit_entry(&e).is_ok());
    }
}
