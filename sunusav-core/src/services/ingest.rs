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

/// Records a batch, then queues every delivery not processed yet, then answers.
async fn write(store: &dyn Store, queue: &dyn Queue, batch: Vec<Pending>) {
    let (events, rest): (Vec<WebhookEvent>, Vec<(NewJob, Reply)>) =
        batch.into_iter().map(|p| (p.event, (p.job, p.reply))).unzip();
    let news = match store.record_webhooks(&events).await {
        Ok(news) => news,
        Err(e) => {
            for (_, reply) in rest {
                let _ = reply.send(Err(e.clone().into()));
            }
            return;
        }
    };
    let mut jobs = Vec::with_capacity(rest.len());
    let mut replies = Vec::with_capacity(rest.len());
    for ((job, reply), (event, new)) in rest.into_iter().zip(events.iter().zip(news)) {
        // A replay already processed has nothing to queue. One recorded but not
        // processed (an earlier enqueue may have failed) is queued again: the
        // job id dedups.
        if !new {
            match store.webhook(&event.key).await {
                Ok(Some(r)) if r.outcome.is_some() => {
                    let _ = reply.send(Ok(Ingested::Replay));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                    continue;
                }
            }
        }
        jobs.push(job);
        replies.push((reply, if new { Ingested::Accepted } else { Ingested::Replay }));
    }
    if jobs.is_empty() {
        return;
    }
    match queue.enqueue_bulk(jobs).await {
        Ok(_) => {
            for (reply, ingested) in replies {
                let _ = reply.send(Ok(ingested));
            }
        }
        Err(e) => {
            for (reply, _) in replies {
                let _ = reply.send(Err(e.clone().into()));
            }
        }
    }
}
