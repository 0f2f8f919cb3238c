//! `GET /`: each queue's counts by state and oldest waiting job's age, and
//! the worker pools; every figure has an element id that the live updates
//! (`GET /events`) set again each second.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use sunusav_core::ports::JobState;

use super::queues;
use crate::audit::now_ms;
use crate::console::auth::Viewer;
use crate::console::layout::{action, age, enc, page as render};
use crate::state::AppState;

/// The states in the order the overview shows them.
pub(crate) const STATES: [JobState; 6] =
    [JobState::Waiting, JobState::Active, JobState::Delayed, JobState::Failed, JobState::Completed, JobState::Dead];

/// The overview's live figures: (element id, text).
pub(crate) async fn figures(state: &AppState) -> Vec<(String, String)> {
    let now = now_ms(state);
    let mut out = Vec::new();
    for q in queues(state) {
        let name = q.name();
        match q.stats().await {
            Ok(counts) => {
                for s in STATES {
                    out.push((format!("q-{name}-{}", s.as_str()), counts.count(s).to_string()));
                }
                out.push((format!("q-{name}-paused"), if counts.paused { "paused" } else { "running" }.into()));
            }
            Err(e) => {
                tracing::warn!(error = %e, queue = name, "console: queue counts unavailable");
                for s in STATES {
                    out.push((format!("q-{name}-{}", s.as_str()), "unavailable".into()));
                }
                out.push((format!("q-{name}-paused"), "unavailable".into()));
            }
        }
        let oldest = match q.list(JobState::Waiting, 0, 1).await {
            Ok(jobs) => jobs.first().map_or_else(|| "none waiting".into(), |j| age(now.saturating_sub(j.due_at_ms))),
            Err(_) => "unavailable".into(),
        };
        out.push((format!("q-{name}-oldest"), oldest));
    }
    for (i, p) in state.inner.workers.snapshots().iter().enumerate() {
        out.push((format!("p-{i}-busy"), format!("{} / {}", p.busy, p.concurrency)));
        out.push((format!("p-{i}-processed"), format!("{} ({}/min)", p.processed, p.processed_per_minute)));
        out.push((format!("p-{i}-failed"), format!("{} ({}/min)", p.failed, p.failed_per_minute)));
        out.push((format!("p-{i}-dead"), p.dead_lettered.to_string()));
    }
    out
}

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>, v: Viewer) -> Response {
    let (state, v) = (&state, &v);
    let figures = figures(state).await;
    let fig = |id: &str| figures.iter().find(|(k, _)| k == id).map_or("", |(_, t)| t.as_str()).to_owned();
    let pools = state.inner.workers.snapshots();
    let content = html! {
        h2 { "Queues" }
        table {
            thead { tr {
                th { "queue" }
                @for s in STATES { th { (s.as_str()) } }
                th { "oldest waiting" } th { "state" } th { "actions" }
            } }
            tbody {
                @for q in queues(state) {
                    @let name = q.name();
                    tr {
                        td { a href={ (v.url("/jobs")) "?queue=" (enc(name)) "&state=waiting" } { (name) } }
                        @for s in STATES {
                            @let id = format!("q-{name}-{}", s.as_str());
                            td.num { a id=(id) href={ (v.url("/jobs")) "?queue=" (enc(name)) "&state=" (s.as_str()) } { (fig(&id)) } }
                        }
                        @let oldest = format!("q-{name}-oldest");
                        td id=(oldest) { (fig(&oldest)) }
                        @let paused = format!("q-{name}-paused");
                        td id=(paused) { (fig(&paused)) }
                        td {
                            @if fig(&paused) == "paused" {
                                (action(v, &format!("/queues/{}/resume", enc(name)), "Resume", false))
                            } @else {
                                (action(v, &format!("/queues/{}/pause", enc(name)), "Pause", true))
                            }
                            (action(v, &format!("/queues/{}/retry-dead", enc(name)), "Retry all dead", false))
                        }
                    }
                }
            }
        }
        h2 { "Worker pools" }
        @if pools.is_empty() {
            p { "No worker pool reports to this server." }
        } @else {
            table {
                thead { tr { th { "queue" } th { "busy / concurrency" } th { "processed" } th { "failed attempts" } th { "dead-lettered" } } }
                tbody {
                    @for (i, p) in pools.iter().enumerate() {
                        tr {
                            td { (p.queue) }
                            @for part in ["busy", "processed", "failed", "dead"] {
                                @let id = format!("p-{i}-{part}");
                                td.num id=(id) { (fig(&id)) }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Figures update every second while this page is open." }
    };
    render(v, "Overview", Some(&v.url("/events")), &content)
}
