//! `GET /unapplied`: money held for members (balances above zero), with
//! release (a page at a time by the last (group, member) shown), and refunds
//! released (a page at a time by the ledger's cursor).

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use sunusav_core::{GroupId, LedgerReason, MemberId};

use crate::console::auth::Viewer;
use crate::console::layout::{action, error_page, page};
use crate::state::AppState;

/// Balances and refunds on one page.
pub(crate) const PAGE: u32 = 200;

/// The query of `GET /unapplied`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct UnappliedQuery {
    refunds_after: Option<u64>,
    /// The last balance of the previous page: `<group>:<member>`.
    balances_after: Option<String>,
}

/// `<group>:<member>`, the cursor of the balances.
fn parse_balance_cursor(s: &str) -> Option<(GroupId, MemberId)> {
    let (g, m) = s.split_once(':')?;
    Some((g.parse().ok()?, m.parse().ok()?))
}

/// `GET /unapplied`.
pub(crate) async fn page_of(
    State(state): State<AppState>,
    v: Viewer,
    query: Result<Query<UnappliedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.ok().map(|Query(q)| q);
    let after = query.as_ref().and_then(|q| q.refunds_after).unwrap_or(0);
    let balances_after = match query.as_ref().and_then(|q| q.balances_after.as_deref()) {
        None => None,
        Some(c) => match parse_balance_cursor(c) {
            Some(c) => Some(c),
            None => return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_cursor", "not a balances cursor"),
        },
    };
    let store = state.inner.tontine.store();
    let (balances, refunds) = match (
        store.unapplied_balances(balances_after, PAGE).await,
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
            @if let Some(last) = balances.last().filter(|_| balances.len() == usize::try_from(PAGE).unwrap_or(usize::MAX)) {
                nav.pager {
                    a href={ (v.url("/unapplied")) "?balances_after=" (last.group) ":" (last.member) } { "More balances →" }
                }
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
