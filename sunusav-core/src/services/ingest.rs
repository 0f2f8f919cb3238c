//! Group commit of webhook ingestion: deliveries that arrive while one batch
//! is being written go together in the next, as one store call and one bulk
//! enqueue. Each delivery is still answered only once it is durable.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::ports::{NewJob, Queue, QueueError, Store, WebhookEvent};

use super::ServiceError;
use super::settle::Ingested;

/// Most deliveries in one batch.
const MAX_BATCH: usize = 256;
/// Most body bytes in one batch (one delivery alone may exceed it).
const MAX_BATCH_BYTES: usize = 4 << 20;

type Reply = oneshot::Sender<Result<Ingested, ServiceError>>;

/// One delivery waiting for its batch.
struct Pending {
    event: WebhookEvent,
    job: NewJob,
    reply: Reply,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    /// A batch is being written (its task drains `pending` before it ends).
    sending: bool,
}

/// Batches concurrent ingestions.
#[derive(Default)]
pub(super) struct IngestBatcher {
    state: Mutex<State>,
}

impl IngestBatcher {
    /// Records and queues one delivery with whatever arrives meanwhile.
    pub(super) async fn ingest(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        queue: &Arc<dyn Queue>,
        event: WebhookEvent,
        job: NewJob,
    ) -> Result<Ingested, ServiceError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.pending.push(Pending { event, job, reply });
            !std::mem::replace(&mut st.sending, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).write_all(Arc::clone(store), Arc::clone(queue)));
        }
        // The writing task never drops a reply unanswered unless the runtime shuts down.
        answer.await.map_err(|_| ServiceError::Queue(QueueError::Unavailable("ingestion stopped".into())))?
    }

    /// Writes batches until none is left.
    async fn write_all(self: Arc<Self>, store: Arc<dyn Store>, queue: Arc<dyn Queue>) {
        loop {
            let batch: Vec<Pending> = {
                let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if st.pending.is_empty() {
                    st.sending = false;
                    return;
                }
                let mut bytes = 0;
                let take = st
                    .pending
                    .iter()
                    .take(MAX_BATCH)
                    .take_while(|p| {
                        bytes += p.event.body.len();
                        bytes <= MAX_BATCH_BYTES
                    })
                    .count()
                    .max(1);
                st.pending.drain(..take).collect()
            };
            write(&*store, &*queue, batch).await;
        }
    }
}

/// Writes a batch and answers each delivery.
async fn write(store: &dyn Store, queue: &dyn Queue, batch: Vec<Pending>) {
    let (items, replies): (Vec<(WebhookEvent, NewJob)>, Vec<Reply>) =
        batch.into_iter().map(|p| ((p.event, p.job), p.reply)).unzip();
    for (reply, answer) in replies.into_iter().zip(ingest_all(store, queue, items).await) {
        let _ = reply.send(answer);
    }
}

/// Records deliveries (one store call), then queues every one not processed
/// yet (one bulk enqueue); one answer per delivery, in order. A replay already
/// processed has nothing to queue. One recorded but not processed (an earlier
/// enqueue may have failed) is queued again: the job id dedups.
pub(super) async fn ingest_all(
    store: &dyn Store,
    queue: &dyn Queue,
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
