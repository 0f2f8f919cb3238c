//! `GET /jobs`: jobs by state a page at a time, and search; `GET
//! /jobs/{queue}/{id}`: one job.
//!
//! A state's pages follow the queue port's cursors
//! ([`QueueAdmin::list_after`](sunusav_core::ports::QueueAdmin::list_after)),
//! never an offset: the next page starts after the last job shown, so jobs
//! that leave the state ahead of it (retried, removed, reserved) never make a
//! page skip one. The memory queue's cursors are exact in every state, the
//! Redis queue's in waiting, delayed and failed (sorted sets); its active
//! jobs (whose set members carry lease tokens, which no URL may hold) and its
//! completed and dead jobs (lists) go by position and job id, and when that
//! job has left, the page goes on from its old place and says so.
//!
//! Search (`q`): a job id (each queue's `get`); a group id (its payouts'
//! jobs, by their keys); a member id (the jobs of the payouts and refunds
//! paying the member and of the deliveries paying the member's invoices, by
//! the store's indexes by member, bounded); a payment hash (the invoice's payout by its key, and
//! the deliveries naming the hash by the delivery log's index); and, for any
//! text, a scan of at most [`SCAN_BUDGET`] jobs (ids, payloads, errors) that
//! says where it stopped, run when the indexes found nothing. `from` and `to` (UTC, or unix ms) keep the jobs
//! created in that range.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use sunusav_core::domain::attempt::AttemptKind;
use sunusav_core::ports::{DeliveryFilter, JobCursor, JobInfo, JobState, Queue, QueueError};
use sunusav_core::{GroupId, IdempotencyKey, MemberId, PaymentHash};

use super::overview::STATES;
use super::{queue, queues};
use crate::console::auth::Viewer;
use crate::console::layout::{action, enc, error_page, page, parse_time, time};
use crate::extract::ApiPath;
use crate::state::AppState;

/// Jobs on one page.
pub(crate) const PAGE: u64 = 50;

/// The most jobs a free-text search reads.
pub(crate) const SCAN_BUDGET: u64 = 2_000;

/// The most payment attempts a search by member reads (newest first).
pub(crate) const MEMBER_ATTEMPTS: u32 = 50;

/// The most invoices a search by member reads (newest first).
pub(crate) const MEMBER_INVOICES: u32 = 20;

/// The most deliveries read per invoice of a search by member.
const DELIVERIES_PER_INVOICE: u32 = 10;

/// Jobs read per call of a scan.
const SCAN_CHUNK: u64 = 200;

/// The order a scan reads the states in: where errors are first.
const SCAN_ORDER: [JobState; 6] =
    [JobState::Dead, JobState::Failed, JobState::Delayed, JobState::Active, JobState::Waiting, JobState::Completed];

/// The query of `GET /jobs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct JobsQuery {
    queue: Option<String>,
    state: Option<String>,
    after: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A time range of creation (unix ms, both ends included).
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    from: Option<u64>,
    to: Option<u64>,
}

impl Range {
    fn contains(self, ms: u64) -> bool {
        self.from.is_none_or(|f| ms >= f) && self.to.is_none_or(|t| ms <= t)
    }

    fn is_set(self) -> bool {
        self.from.is_some() || self.to.is_some()
    }
}

/// One job found, and why.
struct Hit {
    queue: String,
    job: JobInfo,
    why: &'static str,
}

/// `GET /jobs`.
pub(crate) async fn list(
    State(state): State<AppState>,
    v: Viewer,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_query", "the query was not understood");
    };
    let name = query.queue.clone().unwrap_or_else(|| "payouts".into());
    let Some(q) = queue(&state, &name) else {
        return error_page(Some(&v), StatusCode::NOT_FOUND, "not_found", "no such queue");
    };
    let job_state = match query.state.as_deref() {
        None => JobState::Dead,
        Some(s) => match JobState::parse(s) {
            Some(js) => js,
            None => return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_query", "unknown job state"),
        },
    };
    let search = query.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let time = |s: &Option<String>| match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => parse_time(t).map(Some).ok_or(()),
    };
    let (Ok(from), Ok(to)) = (time(&query.from), time(&query.to)) else {
        return error_page(
            Some(&v),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "from and to are YYYY-MM-DDTHH:MM (UTC) or unix ms",
        );
    };
    let range = Range { from, to };
    let filters = html! {
        form.filters method="get" action=(v.url("/jobs")) {
            select name="queue" { @for each in queues(&state) {
                option value=(each.name()) selected[each.name() == name] { (each.name()) }
            } }
            " "
            select name="state" { @for s in STATES {
                option value=(s.as_str()) selected[s == job_state] { (s.as_str()) }
            } }
            " "
            input type="text" name="q" value=[search] placeholder="job id, group id, member id, payment hash or any text (error, payload)";
            " created (UTC) from "
            input type="datetime-local" name="from" step="1" value=[query.from.as_deref().filter(|s| !s.is_empty())];
            " to "
            input type="datetime-local" name="to" step="1" value=[query.to.as_deref().filter(|s| !s.is_empty())];
            " "
            button type="submit" { "Show" }
        }
    };
    let body = match search {
        Some(text) => search_results(&state, &v, text, range).await,
        None if range.is_set() => search_results(&state, &v, "", range).await,
        None => state_page(&v, q, job_state, query.after.as_deref()).await,
    };
    let content = html! { (filters) (body) };
    page(&v, "Jobs", None, &content)
}

async fn state_page(v: &Viewer, q: &Arc<dyn Queue>, job_state: JobState, after: Option<&str>) -> Markup {
    let invalid = || {
        html! { p.notice.bad data-code="invalid_cursor" { "That page link is not valid: start from the first page." } }
    };
    let Ok(cursor) = after.map(JobCursor::parse).transpose() else { return invalid() };
    let page = match q.list_after(job_state, cursor.as_ref(), PAGE).await {
        Ok(page) => page,
        Err(QueueError::Invalid(_)) => return invalid(),
        Err(e) => return unavailable(&e),
    };
    let note = page.resumed.then_some("The job the last page ended at has left this state: going on from its place.");
    let hits: Vec<Hit> =
        page.jobs.into_iter().map(|job| Hit { queue: q.name().to_owned(), job, why: job_state.as_str() }).collect();
    html! {
        @if let Some(n) = note { p.notice { (n) } }
        (table(v, &hits, false))
        nav.pager {
            a href={ (v.url("/jobs")) "?queue=" (enc(q.name())) "&state=" (job_state.as_str()) } { "First page" }
            @if let Some(next) = &page.next {
                a href={ (v.url("/jobs")) "?queue=" (enc(q.name())) "&state=" (job_state.as_str()) "&after=" (enc(next.as_str())) } { "Next page →" }
            }
        }
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Markup {
    tracing::warn!(error = %e, "console: queue unavailable");
    html! { p.notice.bad data-code="unavailable" { "The queue is unavailable; retry later." } }
}

async fn search_results(state: &AppState, v: &Viewer, text: &str, range: Range) -> Markup {
    let mut hits: Vec<Hit> = Vec::new();
    let mut notes: Vec<Markup> = Vec::new();
    if range.is_set() {
        notes.push(html! {
            "Created " @if let Some(f) = range.from { "from " (time(f)) " " } @if let Some(t) = range.to { "to " (time(t)) } "."
        });
    }
    let push = |hits: &mut Vec<Hit>, hit: Hit| {
        if !hits.iter().any(|h| h.queue == hit.queue && h.job.id == hit.job.id) {
            hits.push(hit);
        }
    };
    if let Ok(key) = IdempotencyKey::parse(text) {
        for q in queues(state) {
            if let Ok(Some(job)) = q.get(&key).await {
                push(&mut hits, Hit { queue: q.name().to_owned(), job, why: "job id" });
            }
        }
    }
    if let Ok(group) = text.parse::<GroupId>() {
        group_hits(state, v, group, &mut hits, &mut notes).await;
    }
    if let Ok(member) = text.parse::<MemberId>() {
        member_hits(state, v, member, &mut hits, &mut notes).await;
    }
    if let Ok(hash) = text.parse::<PaymentHash>() {
        let store = state.inner.tontine.store();
        match store.invoice(&hash).await {
            Ok(Some(inv)) => {
                notes.push(html! {
                    "An invoice of cycle " (inv.cycle) " of group "
                    a href=(v.url(&format!("/groups/{}", inv.group))) { code { (inv.group) } }
                    " (member " code { (inv.member) } ", " (inv.amount) ", " (inv.state) ")."
                });
                let key = IdempotencyKey::payout(inv.group, inv.cycle);
                if let Ok(Some(attempt)) = store.payment_attempt(&key).await {
                    let id = key.for_generation(attempt.generation());
                    if let Ok(Some(job)) = state.inner.tontine.payout_queue().get(&id).await {
                        push(&mut hits, Hit { queue: "payouts".into(), job, why: "the payout of its cycle" });
                    }
                }
            }
            Ok(None) => notes.push(html! { "No invoice of ours has this payment hash." }),
            Err(e) => notes.push(unavailable(&e)),
        }
        let filter = DeliveryFilter { payment_hash: Some(hash), ..DeliveryFilter::all(50) };
        match store.webhook_deliveries(&filter).await {
            Ok(page) => {
                notes.push(html! {
                    (page.deliveries.len()) " deliveries name it: "
                    a href={ (v.url("/deliveries")) "?payment_hash=" (hash) } { "see the delivery log" } "."
                });
                for d in page.deliveries {
                    let id = d.key.for_generation(d.generation);
                    if let Ok(Some(job)) = state.inner.tontine.webhook_queue().get(&id).await {
                        push(&mut hits, Hit { queue: "webhooks".into(), job, why: "a delivery naming it" });
                    }
                }
            }
            Err(e) => notes.push(unavailable(&e)),
        }
    }
    // The scan is the fallback of what the indexes did not find.
    let mut scan = if hits.is_empty() { Some(scan(state, text, range).await) } else { None };
    for hit in scan.as_mut().map(|s| std::mem::take(&mut s.hits)).unwrap_or_default() {
        push(&mut hits, hit);
    }
    hits.retain(|h| range.contains(h.job.created_at_ms));
    html! {
        @for n in &notes { p.notice { (n) } }
        @match &scan {
            None => p.notice data-scan="skipped" { "Found by id, group, member or payment hash: no text scan." }
            Some(scan) => p.notice data-scan=(if scan.complete { "complete" } else { "stopped" }) {
                "Text scan: read " (scan.read) " jobs"
                @if let Some(at) = &scan.stopped_at { ", stopped at the budget of " (SCAN_BUDGET) " at " (at) "; narrow the search (a job id, group id, member id or payment hash uses the indexes)." }
                @else { ", every retained job of every queue and state." }
            }
        }
        (table(v, &hits, true))
        (bulk_form(v, &hits))
    }
}

/// Retry or remove every job of a search result, for the admin role.
fn bulk_form(v: &Viewer, hits: &[Hit]) -> Markup {
    let lines = |keep: fn(JobState) -> bool| {
        hits.iter().filter(|h| keep(h.job.state)).map(|h| format!("{}/{}", h.queue, h.job.id)).collect::<Vec<_>>()
    };
    let dead = lines(|s| s == JobState::Dead);
    let removable = lines(|s| s != JobState::Active);
    html! {
        @if v.can_act() && !removable.is_empty() {
            @if !dead.is_empty() {
                form.inline method="post" action=(v.url("/jobs/bulk")) {
                    input type="hidden" name="csrf" value=(v.csrf);
                    input type="hidden" name="verb" value="retry";
                    input type="hidden" name="jobs" value=(dead.join("\n"));
                    button type="submit" data-action="bulk-retry" { "Retry the " (dead.len()) " dead jobs found" }
                }
                " "
            }
            form.inline method="post" action=(v.url("/jobs/bulk")) {
                input type="hidden" name="csrf" value=(v.csrf);
                input type="hidden" name="verb" value="remove";
                input type="hidden" name="jobs" value=(removable.join("\n"));
                button.danger type="submit" data-action="bulk-remove" { "Remove the " (removable.len()) " jobs found (not active)" }
            }
        }
    }
}

/// A member id: the jobs of the payouts and refunds paying the member (the
/// store's index by beneficiary, at most [`MEMBER_ATTEMPTS`]), and of the
/// deliveries that paid the member's invoices (the store's index by member,
/// at most [`MEMBER_INVOICES`] invoices, then the delivery log's index by
/// payment hash, at most [`DELIVERIES_PER_INVOICE`] each).
async fn member_hits(state: &AppState, v: &Viewer, member: MemberId, hits: &mut Vec<Hit>, notes: &mut Vec<Markup>) {
    let store = state.inner.tontine.store();
    let push = |hits: &mut Vec<Hit>, hit: Hit| {
        if !hits.iter().any(|h| h.queue == hit.queue && h.job.id == hit.job.id) {
            hits.push(hit);
        }
    };
    let (attempts, invoices) = match (
        store.member_attempts(member, MEMBER_ATTEMPTS).await,
        store.member_invoices(member, MEMBER_INVOICES).await,
    ) {
        (Ok(a), Ok(i)) => (a, i),
        (Err(e), _) | (_, Err(e)) => {
            notes.push(unavailable(&e));
            return;
        }
    };
    if attempts.is_empty() && invoices.is_empty() {
        return;
    }
    let groups: std::collections::BTreeSet<GroupId> =
        attempts.iter().map(|a| a.group).chain(invoices.iter().map(|i| i.group)).collect();
    notes.push(html! {
        "Member " code { (member) } ": " (attempts.len()) " payouts and refunds, " (invoices.len()) " invoices"
        @if u32::try_from(attempts.len()).is_ok_and(|n| n == MEMBER_ATTEMPTS) || u32::try_from(invoices.len()).is_ok_and(|n| n == MEMBER_INVOICES) {
            " (the most recent only)"
        }
        "; groups: "
        @for (i, g) in groups.iter().enumerate() {
            @if i > 0 { ", " }
            a href=(v.url(&format!("/groups/{g}"))) { code { (g) } }
        }
        "."
    });
    for attempt in attempts {
        let id = attempt.key.for_generation(attempt.generation());
        if let Ok(Some(job)) = state.inner.tontine.payout_queue().get(&id).await {
            let why =
                if attempt.kind == AttemptKind::Refund { "a refund to the member" } else { "a payout to the member" };
            push(hits, Hit { queue: "payouts".into(), job, why });
        }
    }
    for invoice in invoices {
        let filter =
            DeliveryFilter { payment_hash: Some(invoice.payment_hash), ..DeliveryFilter::all(DELIVERIES_PER_INVOICE) };
        match store.webhook_deliveries(&filter).await {
            Ok(page) => {
                for d in page.deliveries {
                    let id = d.key.for_generation(d.generation);
                    if let Ok(Some(job)) = state.inner.tontine.webhook_queue().get(&id).await {
                        push(hits, Hit { queue: "webhooks".into(), job, why: "a delivery paying the member" });
                    }
                }
            }
            Err(e) => {
                notes.push(unavailable(&e));
                return;
            }
        }
    }
}

/// A group id: a link to its page and the jobs of its payouts.
async fn group_hits(state: &AppState, v: &Viewer, group: GroupId, hits: &mut Vec<Hit>, notes: &mut Vec<Markup>) {
    match state.inner.tontine.group_view(group).await {
        Ok((_, attempts)) => {
            notes.push(html! {
                "Group " a href=(v.url(&format!("/groups/{group}"))) { code { (group) } } ": "
                (attempts.len()) " payouts so far."
            });
            for attempt in attempts {
                let id = attempt.key.for_generation(attempt.generation());
                if let Ok(Some(job)) = state.inner.tontine.payout_queue().get(&id).await
                    && !hits.iter().any(|h| h.job.id == job.id)
                {
                    hits.push(Hit { queue: "payouts".into(), job, why: "a payout of the group" });
                }
            }
        }
        Err(sunusav_core::services::ServiceError::NotFound(_)) => {}
        Err(e) => {
            tracing::warn!(error = %e, "console: group search unavailable");
            notes.push(html! { p.notice.bad data-code="unavailable" { "The store is unavailable; retry later." } });
        }
    }
}

struct Scan {
    hits: Vec<Hit>,
    read: u64,
    complete: bool,
    stopped_at: Option<String>,
}

/// Reads at most [`SCAN_BUDGET`] jobs of every queue and state (dead and
/// failed ones first: they hold the errors), by cursor, keeping those
/// created in `range` whose id, payload or an error of its history contains `text`.
async fn scan(state: &AppState, text: &str, range: Range) -> Scan {
    let mut out = Scan { hits: Vec::new(), read: 0, complete: true, stopped_at: None };
    for q in queues(state) {
        for s in SCAN_ORDER {
            let mut cursor: Option<JobCursor> = None;
            loop {
                if out.read >= SCAN_BUDGET {
                    out.complete = false;
                    out.stopped_at = Some(format!("{} / {} after {} jobs", q.name(), s.as_str(), out.read));
                    return out;
                }
                let chunk = SCAN_CHUNK.min(SCAN_BUDGET - out.read);
                let Ok(page) = q.list_after(s, cursor.as_ref(), chunk).await else {
                    out.complete = false;
                    out.stopped_at = Some(format!("{} / {}: the queue is unavailable", q.name(), s.as_str()));
                    return out;
                };
                out.read += u64::try_from(page.jobs.len()).unwrap_or(0);
                for job in page.jobs {
                    let matches = range.contains(job.created_at_ms)
                        && (job.id.as_str().contains(text)
                            || String::from_utf8_lossy(&job.payload).contains(text)
                            || job.errors.iter().any(|e| e.error.contains(text))
                            || job.last_error.as_deref().is_some_and(|e| e.contains(text)));
                    if matches {
                        out.hits.push(Hit { queue: q.name().to_owned(), job, why: "text" });
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    out
}

fn job_url(queue: &str, id: &str) -> String {
    format!("/jobs/{}/{}", enc(queue), enc(id))
}

fn buttons(v: &Viewer, queue: &str, job: &JobInfo) -> Markup {
    let url = job_url(queue, job.id.as_str());
    html! {
        @if job.state == JobState::Dead { (action(v, &format!("{url}/retry"), "Retry", false)) }
        @if matches!(job.state, JobState::Delayed | JobState::Failed) { (action(v, &format!("{url}/promote"), "Promote", false)) }
        @if job.state != JobState::Active { (action(v, &format!("{url}/remove"), "Remove", true)) }
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

fn table(v: &Viewer, hits: &[Hit], with_why: bool) -> Markup {
    html! {
        @if hits.is_empty() { p { "No job." } } @else {
            table.jobs {
                thead { tr {
                    @if with_why { th { "found by" } th { "queue" } }
                    th { "job id" } th { "state" } th { "attempts" } th { "created" } th { "due / finished" } th { "last error" } th { "actions" }
                } }
                tbody { @for h in hits {
                    tr data-job=(h.job.id.as_str()) {
                        @if with_why { td { (h.why) } td { (h.queue) } }
                        td.mono { a href=(v.url(&job_url(&h.queue, h.job.id.as_str()))) { (h.job.id.as_str()) } }
                        td class=(h.job.state.as_str()) { (h.job.state.as_str()) }
                        td.num { (h.job.attempts) " / " (h.job.max_attempts) }
                        td { (time(h.job.created_at_ms)) }
                        td { (h.job.finished_at_ms.map_or_else(|| time(h.job.due_at_ms), time)) }
                        td.mono { (short(h.job.last_error.as_deref().unwrap_or(""), 160)) }
                        td { (buttons(v, &h.queue, &h.job)) }
                    }
                } }
            }
        }
    }
}

/// `GET /jobs/{queue}/{id}`.
pub(crate) async fn detail(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Response {
    let Some(q) = queue(&state, &name) else {
        return error_page(Some(&v), StatusCode::NOT_FOUND, "not_found", "no such queue");
    };
    let Ok(key) = IdempotencyKey::parse(id) else {
        return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_job_id", "not a job id");
    };
    let job = match q.get(&key).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            return error_page(Some(&v), StatusCode::NOT_FOUND, "not_found", "no such job (or no longer retained)");
        }
        Err(e) => return crate::console::layout::api_error_page(&v, &e.into()),
    };
    let payload = serde_json::from_slice::<serde_json::Value>(&job.payload).map_or_else(
        |_| String::from_utf8_lossy(&job.payload).into_owned(),
        |p| serde_json::to_string_pretty(&p).unwrap_or_default(),
    );
    let parsed = serde_json::from_slice::<serde_json::Value>(&job.payload).ok();
    let field = |name: &str| parsed.as_ref().and_then(|p| p.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    let group = field("group").and_then(|g| g.parse::<sunusav_core::GroupId>().ok());
    // A payout job carries its attempt's key: a dead payout is retried by
    // its record (a new generation), which the queue's retry cannot do.
    let payout_key = if name == "payouts" { field("key").and_then(|k| IdempotencyKey::parse(k).ok()) } else { None };
    let content = html! {
        table {
            tr { th { "queue" } td { (name) } }
            tr { th { "id" } td.mono { (job.id.as_str()) } }
            tr { th { "state" } td class=(job.state.as_str()) { (job.state.as_str()) } }
            tr { th { "attempts" } td { (job.attempts) " / " (job.max_attempts) } }
            tr { th { "priority" } td { (job.priority) } }
            tr { th { "stalls" } td { (job.stalls) } }
            tr { th { "created" } td { (time(job.created_at_ms)) } }
            tr { th { "due" } td { (time(job.due_at_ms)) } }
            tr { th { "finished" } td { (job.finished_at_ms.map(time).unwrap_or_default()) } }
            @if let Some(g) = group { tr { th { "group" } td { a href=(v.url(&format!("/groups/{g}"))) { code { (g) } } } } }
        }
        h2 { "Last error" }
        pre.error { (job.last_error.as_deref().unwrap_or("none")) }
        h2 { "Error history" }
        @if job.errors.is_empty() { p data-errors="0" { "No failed attempt." } } @else {
            table.errors data-errors=(job.errors.len()) {
                thead { tr { th { "attempt" } th { "at" } th { "error" } } }
                tbody { @for e in job.errors.iter().rev() {
                    tr data-attempt=(e.attempt) {
                        td.num { (e.attempt) }
                        td { (time(e.at_ms)) }
                        td { pre.error { (e.error) } }
                    }
                } }
            }
        }
        p.hint { "Newest first; the queue keeps the last few errors of a job (an expired lease counts as one), across retries; the payout's own record (group page) keeps its last error too." }
        h2 { "Payload" }
        pre { (payload) }
        p {
            (buttons(&v, &name, &job))
            @if let (Some(key), JobState::Dead) = (&payout_key, job.state) {
                (action(&v, &format!("/payouts/{}/retry", enc(key.as_str())), "Retry payout by its record", false))
            }
        }
        @if payout_key.is_some() && job.state == JobState::Dead {
            p.hint { "A dead payout's job runs again only to find its record dead: retry the payout by its record (a new generation) once the cause is fixed." }
        }
    };
    page(&v, "Job", None, &content)
}
