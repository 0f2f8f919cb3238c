//! The console's pages, one per file.

pub(crate) mod audit;
pub(crate) mod deliveries;
pub(crate) mod groups;
pub(crate) mod jobs;
pub(crate) mod overview;
pub(crate) mod unapplied;

use std::sync::Arc;

use sunusav_core::ports::Queue;

use crate::state::AppState;

/// The queues the console shows: payouts, then webhooks.
pub(crate) fn queues(state: &AppState) -> [&Arc<dyn Queue>; 2] {
    [state.inner.tontine.payout_queue(), state.inner.tontine.webhook_queue()]
}

/// The queue named `name`.
pub(crate) fn queue<'a>(state: &'a AppState, name: &str) -> Option<&'a Arc<dyn Queue>> {
    queues(state).into_iter().find(|q| q.name() == name)
}
