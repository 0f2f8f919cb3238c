//! `GET /deliveries`: the webhook delivery log by outcome and payment hash,
//! a page at a time by its cursor, with replay.

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use sunusav_core::ports::{DeliveryFilter, OutcomeFilter};
use sunusav_core::{DeliveryOutcome, PaymentHash};

use crate::console::auth::Viewer;
use crate::console::layout::{action, enc, error_page, page, time};
use crate::state::AppState;

/// Deliveries on one page.
pub(crate) const PAGE: u32 = 50;

/// The outcomes the filter offers (and `pending`).
const OUTCOMES: [DeliveryOutcome; 19] = [
    DeliveryOutcome::Dead,
    DeliveryOutcome::Recorded,
    DeliveryOutcome::CycleComplete,
    DeliveryOutcome::Replay,
    DeliveryOutcome::IgnoredStatus,
    DeliveryOutcome::UnknownInvoice,
    DeliveryOutcome::GroupNotActive,
    DeliveryOutcome::WrongGroup,
    DeliveryOutcome::NotAMember,
    DeliveryOutcome::WrongCycle,
    DeliveryOutcome::WrongAmount,
    DeliveryOutcome::AlreadyContributed,
    DeliveryOutcome::CycleClosed,
    DeliveryOutcome::InvalidJson,
    DeliveryOutcome::InvalidEvent,
    DeliveryOutcome::CreditedLate,
    DeliveryOutcome::CreditedDuplicateInvoice,
    DeliveryOutcome::CreditedGroupCancelled,
    DeliveryOutcome::CreditedUnderpaid,
];

/// The query of `GET /deliveries`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DeliveriesQuery {
    outcome: Option<String>,
    payment_hash: Option<String>,
    after: Option<u64>,
}

/// `GET /deliveries`.
pub(crate) async fn list(
    State(state): State<AppState>,
    v: Viewer,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |m: &str| error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_query", m);
    let Ok(Query(query)) = query else { return bad("the query was not understood") };
    let outcome_name = query.outcome.as_deref().filter(|s| !s.is_empty());
    let outcome = match outcome_name {
        None => None,
        Some("pending") => Some(OutcomeFilter::Pending),
        Some(name) => match DeliveryOutcome::parse(name) {
            Some(o) => Some(OutcomeFilter::Is(o)),
            None => return bad("outcome must be `pending` or an outcome's name"),
        },
    };
    let hash_text = query.payment_hash.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let Ok(payment_hash) = hash_text.map(str::parse::<PaymentHash>).transpose() else {
        return bad("payment_hash must be 64 hex digits");
    };
    let filter = DeliveryFilter { outcome, since_ms: None, payment_hash, after: query.after.unwrap_or(0), limit: PAGE };
    let page_of = match state.inner.tontine.store().webhook_deliveries(&filter).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "console: delivery log unavailable");
            return error_page(Some(&v), StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable");
        }
    };
    let full = page_of.deliveries.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
    let keep = |after: Option<u64>| {
        let mut parts = Vec::new();
        if let Some(o) = outcome_name {
            parts.push(format!("outcome={}", enc(o)));
        }
        if let Some(h) = payment_hash {
            parts.push(format!("payment_hash={h}"));
        }
        if let Some(a) = after {
            parts.push(format!("after={a}"));
        }
        format!("?{}", parts.join("&"))
    };
    let content = html! {
        form.filters method="get" action=(v.url("/deliveries")) {
            select name="outcome" {
                option value="" selected[outcome_name.is_none()] { "any outcome" }
                option value="pending" selected[outcome_name == Some("pending")] { "pending" }
                @for o in OUTCOMES { option value=(o.as_str()) selected[outcome_name == Some(o.as_str())] { (o.as_str()) } }
            }
            " "
            input type="text" name="payment_hash" value=[hash_text] placeholder="payment hash (64 hex digits)";
            " "
            button type="submit" { "Filter" }
        }
        @if page_of.deliveries.is_empty() { p { "No delivery." } } @else {
            table.deliveries {
                thead { tr {
                    th { "#" } th { "key" } th { "outcome" } th { "generation" } th { "payment hash" }
                    th { "received" } th { "body" } th { "conflicts" } th { "actions" }
                } }
                tbody { @for d in &page_of.deliveries {
                    @let job = d.key.for_generation(d.generation);
                    tr data-key=(d.key.as_str()) {
                        td.num { (d.position) }
                        td.mono { a href=(v.url(&format!("/jobs/webhooks/{}", enc(job.as_str())))) { (d.key.as_str()) } }
                        @let outcome = d.outcome.map_or("pending", DeliveryOutcome::as_str);
                        td class=(outcome) { (outcome) }
                        td.num { (d.generation) }
                        td.mono { @if let Some(h) = d.payment_hash {
                            a href={ (v.url("/jobs")) "?q=" (h) } { (h) }
                        } }
                        td { (time(d.received_at_ms)) }
                        td { (if d.body_kept { "kept" } else { "dropped" }) }
                        td.num { (d.conflicts) }
                        td { @if d.body_kept && d.outcome.is_some() {
                            (action(&v, &format!("/deliveries/{}/replay", enc(d.key.as_str())), "Replay", false))
                        } }
                    }
                } }
            }
        }
        nav.pager {
            a href={ (v.url("/deliveries")) (keep(None)) } { "First page" }
            @if full { a href={ (v.url("/deliveries")) (keep(Some(page_of.next))) } { "Next page →" } }
        }
    };
    page(&v, "Webhook deliveries", None, &content)
}
