//! `GET /audit`: the audit log, newest first, a page at a time by position.

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;

use crate::console::auth::Viewer;
use crate::console::layout::{error_page, page, time};
use crate::state::AppState;

/// Entries on one page.
pub(crate) const PAGE: u32 = 100;

/// The query of `GET /audit`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<u64>,
}

/// `GET /audit`.
pub(crate) async fn page_of(
    State(state): State<AppState>,
    v: Viewer,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let before = query.ok().and_then(|Query(q)| q.before);
    let log = match state.inner.tontine.store().audit_entries(before, PAGE).await {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(error = %e, "console: audit log unavailable");
            return error_page(Some(&v), StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable");
        }
    };
    let content = html! {
        @if log.entries.is_empty() { p { "No entry." } } @else {
            table.audit {
                thead { tr { th { "#" } th { "time" } th { "role" } th { "action" } th { "target" } th { "outcome" } th { "detail" } } }
                tbody { @for e in &log.entries {
                    tr data-action=(e.entry.action.as_str()) {
                        td.num { (e.position) }
                        td { (time(e.entry.at_ms)) }
                        td { (e.entry.role.as_str()) }
                        td { (e.entry.action.as_str()) }
                        td.mono { (e.entry.target) }
                        td class=(e.entry.outcome.as_str()) { (e.entry.outcome.as_str()) }
                        td.mono { (e.entry.detail.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        nav.pager {
            a href=(v.url("/audit")) { "Newest" }
            @if let Some(next) = log.next { a href={ (v.url("/audit")) "?before=" (next) } { "Older →" } }
        }
    };
    page(&v, "Audit log", None, &content)
}
