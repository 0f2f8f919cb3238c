//! `GET /events`: the overview's figures as server-sent events, one JSON
//! object (element id → text) a second, for as long as the page is open.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use super::auth::Viewer;
use super::pages::overview::figures;
use crate::state::AppState;

/// How often the figures are sent.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// `GET /events` (either role).
pub(crate) async fn stream(
    State(state): State<AppState>,
    _viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold((state, true), |(state, first)| async move {
        if !first {
            tokio::time::sleep(PERIOD).await;
        }
        let map: serde_json::Map<String, serde_json::Value> =
            figures(&state).await.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let event = Event::default().data(serde_json::Value::Object(map).to_string());
        Some((Ok(event), (state, false)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
