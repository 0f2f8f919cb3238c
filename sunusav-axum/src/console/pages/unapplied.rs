//! `GET /unapplied`: money held for members (balances above zero), with
//! release, and refunds released, a page at a time by the ledger's cursor.

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use sunusav_core::LedgerReason;

use crate::console::auth::Viewer;
use crate::console::layout::{action, error_page, page};
use crate::state::AppState;

/// Balances and refunds on one page.
pub(crate) const PAGE: u32 = 200;

/// The query of `GET /unapplied`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct UnappliedQuery {
    refunds_after: Option<u64>,
}

/// `GET /unapplied`.
pub(crate) async fn page_of(
    State(state): State<AppState>,
    v: Viewer,
    query: Result<Query<UnappliedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let after = query.ok().and_then(|Query(q)| q.refunds_after).unwrap_or(0);
    let store = state.inner.tontine.store();
    let (balances, refunds) = match (
        store.unapplied_balances(PAGE).await,
        store.ledger_entries(&[LedgerReason::RefundReleased], after, PAGE).await,
    ) {
        (Ok(b), Ok(r)) => (b, r),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "console: unapplied funds unavailable");
            return error_page(Some(&v), StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable");
        }
    };
    let content = html! {
        h2 { "Balances held for members" }
        @if balances.is_empty() { p { "None." } } @else {
            table.balances {
                thead { tr { th { "group" } th { "member" } th { "amount" } th { "actions" } } }
                tbody { @for b in &balances {
                    tr {
                        td.mono { a href=(v.url(&format!("/groups/{}", b.group))) { (b.group) } }
                        td.mono { (b.member) }
                        td.num { (b.amount) }
                        td { (action(&v, &format!("/unapplied/{}/{}/release", b.group, b.member), "Release for refund", true)) }
                    }
                } }
            }
            @if balances.len() == usize::try_from(PAGE).unwrap_or(usize::MAX) {
                p.hint { "The first " (PAGE) " balances, by group then member." }
            }
        }
        h2 { "Refunds released" }
        @if refunds.entries.is_empty() { p { "None." } } @else {
            table.refunds {
                thead { tr { th { "group" } th { "member" } th { "cycle" } th { "amount" } th { "key" } } }
                tbody { @for e in &refunds.entries {
                    tr {
                        td.mono { a href=(v.url(&format!("/groups/{}", e.group))) { (e.group) } }
                        td.mono { (e.member) } td.num { (e.cycle) } td.num { (e.amount) } td.mono { (e.key.as_str()) }
                    }
                } }
            }
        }
        nav.pager {
            a href=(v.url("/unapplied")) { "First page" }
            @if refunds.entries.len() == usize::try_from(PAGE).unwrap_or(usize::MAX) {
                a href={ (v.url("/unapplied")) "?refunds_after=" (refunds.next) } { "More refunds →" }
            }
        }
    };
    page(&v, "Unapplied funds and refunds", None, &content)
}
