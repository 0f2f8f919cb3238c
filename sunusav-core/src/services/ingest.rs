//! Group commit of webhook ingestion: deliveries that arrive while one batch
//! is being written go together in the next, as one store call and one bulk
//! enqueue. Each delivery is still answered only once it is durable.

use std::sync::{Arc, OnceLock};

use crate::ports::{BackendError, JobOptions, NewJob, Producer, QueueError, Recorded, Store, WebhookEvent};
use crate::runtime::{BatchLimits, GroupCommit};

use super::ServiceError;
use super::event::WebhookJob;
use super::settle::Ingested;

/// Most deliveries in one batch.
const MAX_BATCH: usize = 256;
/// Most body bytes in one batch (one delivery alone may exceed it).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// A delivery to record, its job, and the job's payload serialized on the
/// request's own task (for its first generation).
pub(super) type Delivery = (WebhookEvent, WebhookJob, Vec<u8>);

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
        options: JobOptions,
        delivery: Delivery,
    ) -> Result<Ingested, ServiceError> {
        let commit = self.commit.get_or_init(|| {
            let (store, queue) = (Arc::clone(store), Arc::clone(queue));
            let limits =
                BatchLimits::items(MAX_BATCH).weight(MAX_BATCH_BYTES, |(event, _, _): &Delivery| event.body().len());
            GroupCommit::new(limits, move |batch| {
                let (store, queue) = (Arc::clone(&store), Arc::clone(&queue));
                async move { ingest_all(&*store, &*queue, options, batch).await }
            })
        });
        commit.submit(delivery).await.map_err(|e| {
            ServiceError::Queue(QueueError::Unavailable(BackendError::caused_by("ingestion stopped", e)))
        })?
    }
}

/// Records deliveries (one store call), then queues every one that has work
/// left (one bulk enqueue); one answer per delivery, in order.
///
/// - New: queued (generation 0).
/// - Recorded before with the same body and not processed yet (an earlier
///   enqueue may have failed): its current generation's job is queued again;
///   the job id dedups.
/// - Recorded before, dead (its job died): the provider's redelivery is a
///   natural replay: the record is reopened as the next generation, whose
///   job is queued.
/// - Recorded before and processed: nothing to queue.
/// - Recorded before with another body: a conflict, recorded by the store,
///   never acted on.
pub(super) async fn ingest_all(
    store: &dyn Store,
    queue: &dyn Producer,
    options: JobOptions,
    items: Vec<Delivery>,
) -> Vec<Result<Ingested, ServiceError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut jobs = Vec::with_capacity(items.len());
    for (event, job, payload) in items {
        events.push(event);
        jobs.push((job, payload));
    }
    let recorded = match store.record_webhooks(&events).await {
        Ok(recorded) => recorded,
        Err(e) => return events.iter().map(|_| Err(e.clone().into())).collect(),
    };
    let mut answers = Vec::with_capacity(events.len());
    let mut to_queue = Vec::with_capacity(events.len());
    for ((event, (mut job, payload)), recorded) in events.iter().zip(jobs).zip(recorded) {
        let answer = match recorded {
            Recorded::New => Ok(Some(Ingested::Accepted)),
            Recorded::Replay { outcome: None, generation } => {
                job.generation = generation;
                Ok(Some(Ingested::Replay))
            }
            Recorded::Replay { outcome: Some(outcome), generation } if !outcome.is_final() => {
                match store.reopen_webhook(event.key(), generation).await {
                    Ok(Some(next)) => {
                        job.generation = next;
                        tracing::warn!(delivery = %event.key(), generation = next, "a dead webhook delivery was delivered again: reopened");
                        Ok(Some(Ingested::Reopened(next)))
                    }
                    // Reopened by another delivery meanwhile: its job is queued.
                    Ok(None) => Ok(None),
                    Err(e) => Err(ServiceError::from(e)),
                }
            }
            Recorded::Replay { .. } => Ok(None),
            Recorded::Conflict => {
                tracing::warn!(delivery = %event.key(), "a delivery reused a recorded event id with another body: kept as a conflict, not acted on");
                Ok(Some(Ingested::Conflict))
            }
        };
        answers.push(match answer {
            Ok(Some(Ingested::Conflict)) => Ok(Ingested::Conflict),
            Ok(Some(answer)) => {
                // The payload serialized up front is the first generation's.
                let payload = if job.generation == 0 { Ok(payload) } else { serde_json::to_vec(&job) };
                match payload {
                    Ok(payload) => {
                        to_queue.push((answers.len(), NewJob { id: job.job_id(), payload, options }));
                        Ok(answer)
                    }
                    Err(e) => Err(ServiceError::InvalidPayload(BackendError::from_source(e))),
                }
            }
            Ok(None) => Ok(Ingested::Replay),
            Err(e) => Err(e),
        });
    }
    if to_queue.is_empty() {
        return answers;
    }
    let (indices, new_jobs): (Vec<usize>, Vec<NewJob>) = to_queue.into_iter().unzip();
    if let Err(e) = queue.enqueue_bulk(new_jobs).await {
        for i in indices {
            answers[i] = Err(e.clone().into());
        }
    }
    answers
}
