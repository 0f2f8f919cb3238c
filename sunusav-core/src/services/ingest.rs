//! Group commit of webhook ingestion: deliveries that arrive while one batch
//! is being written go together in the next, as one store call and one bulk
//! enqueue. Each delivery is still answered only once it is durable.

use std::sync::{Arc, OnceLock};

use crate::ports::{BackendError, NewJob, Producer, QueueError, Store, WebhookEvent};
use crate::runtime::{BatchLimits, GroupCommit};

use super::ServiceError;
use super::settle::Ingested;

/// Most deliveries in one batch.
const MAX_BATCH: usize = 256;
/// Most body bytes in one batch (one delivery alone may exceed it).
const MAX_BATCH_BYTES: usize = 4 << 20;

type Delivery = (WebhookEvent, NewJob);

/// Batches concurrent ingestions.
///
/// Owned by one [`super::Tontine`], whose store and queue never change: the
/// first ingestion sets the batcher up with them.
#[derive(Default)]
pub(super) struct IngestBatcher {
    commit: OnceLock<GroupCommit<Delivery, Result<Ingested, ServiceError>>>,
}

impl IngestBatcher {
    /// Records and queues one delivery with whatever arrives meanwhile.
    pub(super) async fn ingest(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        queue: &Arc<dyn Producer>,
        event: WebhookEvent,
        job: NewJob,
    ) -> Result<Ingested, ServiceError> {
        let commit = self.commit.get_or_init(|| {
            let (store, queue) = (Arc::clone(store), Arc::clone(queue));
            let limits =
                BatchLimits::items(MAX_BATCH).weight(MAX_BATCH_BYTES, |(event, _): &Delivery| event.body.len());
            GroupCommit::new(limits, move |batch| {
                let (store, queue) = (Arc::clone(&store), Arc::clone(&queue));
                async move { ingest_all(&*store, &*queue, batch).await }
            })
        });
        commit.submit((event, job)).await.map_err(|e| {
            ServiceError::Queue(QueueError::Unavailable(BackendError::caused_by("ingestion stopped", e)))
        })?
    }
}

/// Records deliveries (one store call), then queues every one not processed
/// yet (one bulk enqueue); one answer per delivery, in order. A replay already
/// processed has nothing to queue. One recorded but not processed (an earlier
/// enqueue may have failed) is queued again: the job id dedups.
pub(super) async fn ingest_all(
    store: &dyn Store,
    queue: &dyn Producer,
    items: Vec<(WebhookEvent, NewJob)>,
) -> Vec<Result<Ingested, ServiceError>> {
    let (events, jobs): (Vec<WebhookEvent>, Vec<NewJob>) = items.into_iter().unzip();
    let news = match store.record_webhooks(&events).await {
        Ok(news) => news,
        Err(e) => return events.iter().map(|_| Err(e.clone().into())).collect(),
    };
    let mut answers = Vec::with_capacity(events.len());
    let mut to_queue = Vec::with_capacity(events.len());
    for ((event, job), new) in events.iter().zip(jobs).zip(news) {
        let processed = if new {
            Ok(false)
        } else {
            store.webhook(&event.key).await.map(|r| r.is_some_and(|r| r.outcome.is_some()))
        };
        answers.push(match processed {
            Ok(true) => Ok(Ingested::Replay),
            Ok(false) => {
                to_queue.push((answers.len(), job));
                Ok(if new { Ingested::Accepted } else { Ingested::Replay })
            }
            Err(e) => Err(e.into()),
        });
    }
    if to_queue.is_empty() {
        return answers;
    }
    let (indices, jobs): (Vec<usize>, Vec<NewJob>) = to_queue.into_iter().unzip();
    if let Err(e) = queue.enqueue_bulk(jobs).await {
        for i in indices {
            answers[i] = Err(e.clone().into());
        }
    }
    answers
}
