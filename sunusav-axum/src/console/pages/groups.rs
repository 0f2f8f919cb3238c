//! `GET /groups/{id}`: what happened in a group, cycle by cycle: its
//! beneficiary, contributions, ledger entries, and the payout attempt with
//! its payment hash, route, status and the queue job behind it. `GET
//! /groups?id=` looks a group up (or asks for its id).

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use sunusav_core::domain::attempt::AttemptRoute;
use sunusav_core::{AttemptStatus, CycleStatus, GroupId, PaymentAttempt};

use crate::console::auth::{Viewer, see_other};
use crate::console::layout::{action, enc, error_page, page};
use crate::extract::ApiPath;
use crate::state::AppState;

/// The query of `GET /groups`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct LookupQuery {
    id: Option<String>,
}

/// `GET /groups?id=`: 303 to the group's page, or the form.
pub(crate) async fn lookup(
    v: Viewer,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let id = query.ok().and_then(|Query(q)| q.id).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if let Some(id) = id {
        return match id.parse::<GroupId>() {
            Ok(g) => see_other(&v.url(&format!("/groups/{g}"))),
            Err(_) => error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_query", "a group id is a UUID"),
        };
    }
    let content = html! {
        form.filters method="get" action=(v.url("/groups")) {
            input type="text" name="id" placeholder="group id (UUID)";
            " " button type="submit" { "Open" }
        }
        p.hint { "To trace a payment hash, search it on the Jobs page: it links to its group." }
    };
    page(&v, "Groups", None, &content)
}

fn route_text(route: Option<&AttemptRoute>) -> String {
    match route {
        None => String::new(),
        Some(AttemptRoute::Keysend(node)) => format!("keysend to {node}"),
        Some(AttemptRoute::Invoice(bolt11)) => {
            let head: String = bolt11.chars().take(32).collect();
            if head.len() < bolt11.len() { format!("invoice {head}…") } else { format!("invoice {bolt11}") }
        }
    }
}

/// `GET /groups/{id}`.
pub(crate) async fn page_of(State(state): State<AppState>, v: Viewer, ApiPath(id): ApiPath<GroupId>) -> Response {
    let tontine = &state.inner.tontine;
    let (group, attempts) = match tontine.group_view(id).await {
        Ok(view) => view,
        Err(e) => return crate::console::layout::api_error_page(&v, &e.into()),
    };
    let store = tontine.store();
    let (contributions, ledger) = match (store.contributions(id).await, store.ledger(id).await) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "console: group reads unavailable");
            return error_page(Some(&v), StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable");
        }
    };
    let attempt_of = |cycle: u32| attempts.iter().find(|a: &&PaymentAttempt| a.cycle == cycle);
    let cycle_state = |k: u32| -> String {
        match k.cmp(&group.cycle()) {
            std::cmp::Ordering::Less => "paid_out".into(),
            std::cmp::Ordering::Equal => group.cycle_status().as_str().into(),
            std::cmp::Ordering::Greater => "upcoming".into(),
        }
    };
    let content = html! {
        table {
            tr { th { "group" } td.mono { (group.id()) } }
            tr { th { "status" } td { (group.status()) } }
            tr { th { "cycle" } td { (group.cycle()) " of " (group.cycle_count()) " (" (group.cycle_status()) ")" } }
            tr { th { "contribution" } td { (group.contribution()) } }
            tr { th { "fee" } td { (group.fee_bps()) " bps" } }
        }
        h2 { "Cycles" }
        table.cycles {
            thead { tr {
                th { "cycle" } th { "beneficiary" } th { "state" } th { "contributions" }
                th { "payout status" } th { "payment hash" } th { "route" } th { "tries" } th { "generation" } th { "last error" } th { "job" } th { "actions" }
            } }
            tbody {
                @for (i, beneficiary) in group.members().iter().enumerate() {
                    @let k = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    @let paid = contributions.iter().filter(|c| c.cycle == k).count();
                    @let state_text = cycle_state(k);
                    tr data-cycle=(k) {
                        td.num { (k) }
                        td.mono { (beneficiary) }
                        td class=(state_text) { (state_text) }
                        td.num { (paid) " / " (group.members().len()) }
                        @if let Some(a) = attempt_of(k) {
                            td class=(a.status().as_str()) { (a.status()) }
                            td.mono { @if let Some(h) = a.payment_hash() { a href={ (v.url("/jobs")) "?q=" (h) } { (h) } } }
                            td.mono title=[a.route().map(|r| match r { AttemptRoute::Invoice(b) => b.clone(), AttemptRoute::Keysend(n) => n.to_string() })] { (route_text(a.route())) }
                            td.num { (a.attempts()) }
                            td.num { (a.generation()) }
                            td.mono { (a.last_error().unwrap_or("")) }
                            @let job = a.key.for_generation(a.generation());
                            td.mono { a href=(v.url(&format!("/jobs/payouts/{}", enc(job.as_str())))) { (job.as_str()) } }
                            td { @if a.status() == AttemptStatus::Dead || (k == group.cycle() && group.cycle_status() == CycleStatus::PayoutFailed) {
                                (action(&v, &format!("/payouts/{}/retry", enc(a.key.as_str())), "Retry payout", false))
                            } }
                        } @else {
                            td { "none" } td {} td {} td {} td {} td {} td {} td {}
                        }
                    }
                }
            }
        }
        h2 { "Contributions" }
        @if contributions.is_empty() { p { "None." } } @else {
            table.contributions {
                thead { tr { th { "cycle" } th { "member" } th { "amount" } th { "payment hash" } } }
                tbody { @for c in &contributions {
                    tr { td.num { (c.cycle) } td.mono { (c.member) } td.num { (c.amount) } td.mono { a href={ (v.url("/jobs")) "?q=" (c.payment_hash) } { (c.payment_hash) } } }
                } }
            }
        }
        h2 { "Ledger entries" }
        @if ledger.is_empty() { p { "None." } } @else {
            table.ledger {
                thead { tr { th { "cycle" } th { "member" } th { "reason" } th { "amount" } th { "payment hash" } th { "key" } } }
                tbody { @for e in &ledger {
                    tr {
                        td.num { (e.cycle) } td.mono { (e.member) } td { (e.reason) }
                        td.num {
                            @if e.reason.is_debit() { "−" } (e.amount)
                            // Moves of a held deposit (the `cover` policy) leave the balance alone.
                            @match e.reason.deposit_sign() {
                                1 => { " (deposit +)" }
                                -1 => { " (deposit −)" }
                                _ => {}
                            }
                        }
                        td.mono { @if let Some(h) = e.payment_hash { (h) } }
                        td.mono { (e.key.as_str()) }
                    }
                } }
            }
        }
    };
    page(&v, "Group", None, &content)
}
