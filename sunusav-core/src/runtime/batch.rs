//! Group commit: items submitted while one batch is being written go together
//! in the next, so that a busy caller makes one write per batch and an idle one
//! a write per item, with no timer.
//!
//! One writing task runs while items are pending: it takes up to the
//! [`BatchLimits`] from the front of the queue, hands them to the writer, and
//! answers each submitter with its own answer, then looks again. Whatever
//! happens to a batch, every submitter is answered: a writer that panics, that
//! returns too few answers or whose task is dropped (its runtime shut down)
//! answers with a [`BatchError`] rather than leaving a submitter waiting.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::unwind::catch;

/// Why a submitted item got no answer from the writer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The writer panicked while writing the item's batch.
    #[error("the batch writer panicked: {0}")]
    Panicked(String),
    /// The writer returned fewer answers than its batch had items.
    #[error("the batch writer gave no answer for this item")]
    NoAnswer,
    /// The writing task was dropped (its runtime shut down) before the item was written.
    #[error("the batch writer stopped before answering")]
    Stopped,
}

type Weigh<T> = Box<dyn Fn(&T) -> usize + Send + Sync>;
type Write<T, A> = Box<dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Vec<A>> + Send>> + Send + Sync>;

/// How much one batch may carry: a count of items and, optionally, a total
/// weight (bytes, say). An item heavier than the weight alone goes alone.
pub struct BatchLimits<T> {
    max_items: usize,
    max_weight: usize,
    weigh: Option<Weigh<T>>,
}

impl<T> BatchLimits<T> {
    /// At most `max` items per batch (at least 1), whatever they weigh.
    pub fn items(max: usize) -> Self {
        Self { max_items: max.max(1), max_weight: usize::MAX, weigh: None }
    }

    /// Also at most `max` in total per batch, each item weighing `weigh(item)`
    /// (measured once, when it is submitted).
    #[must_use]
    pub fn weight(self, max: usize, weigh: impl Fn(&T) -> usize + Send + Sync + 'static) -> Self {
        Self { max_weight: max, weigh: Some(Box::new(weigh)), ..self }
    }

    fn weigh(&self, item: &T) -> usize {
        self.weigh.as_ref().map_or(0, |w| w(item))
    }
}

impl<T> fmt::Debug for BatchLimits<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchLimits")
            .field("max_items", &self.max_items)
            .field("max_weight", &self.weigh.as_ref().map(|_| self.max_weight))
            .finish()
    }
}

/// A group-commit batcher: [`GroupCommit::submit`] queues an item and waits
/// for its answer; the writer, an async fn given each batch, returns one
/// answer per item, in order. Cheap to clone: clones share the queue.
pub struct GroupCommit<T, A> {
    shared: Arc<Shared<T, A>>,
}

impl<T, A> Clone for GroupCommit<T, A> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T, A> fmt::Debug for GroupCommit<T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit").field("limits", &self.shared.limits).finish_non_exhaustive()
    }
}

struct Shared<T, A> {
    limits: BatchLimits<T>,
    write: Write<T, A>,
    state: Mutex<State<T, A>>,
}

struct State<T, A> {
    pending: VecDeque<Pending<T, A>>,
    /// A writing task runs (it drains `pending` before it ends).
    writing: bool,
}

type Reply<A> = oneshot::Sender<Result<A, BatchError>>;

struct Pending<T, A> {
    item: T,
    weight: usize,
    reply: Reply<A>,
}

impl<T: Send + 'static, A: Send + 'static> GroupCommit<T, A> {
    /// A batcher writing batches within `limits` with `write`, which returns
    /// one answer per item of the batch it is given, in order.
    pub fn new<W, F>(limits: BatchLimits<T>, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Vec<A>> + Send + 'static,
    {
        let write: Write<T, A> = Box::new(move |batch| Box::pin(write(batch)));
        let state = Mutex::new(State { pending: VecDeque::new(), writing: false });
        Self { shared: Arc::new(Shared { limits, write, state }) }
    }

    /// Queues `item` with whatever else is submitted meanwhile and waits for
    /// its answer. The item is queued when the returned future is first
    /// polled; once queued it is written even if that future is dropped.
    ///
    /// # Errors
    /// A [`BatchError`] when the writer gave no answer for the item.
    ///
    /// # Panics
    /// Outside a tokio runtime (the writing task is spawned on it).
    pub async fn submit(&self, item: T) -> Result<A, BatchError> {
        let (reply, answer) = oneshot::channel();
        let weight = self.shared.limits.weigh(&item);
        let start = {
            let mut st = self.shared.lock();
            st.pending.push_back(Pending { item, weight, reply });
            !std::mem::replace(&mut st.writing, true)
        };
        if start {
            tokio::spawn(Arc::clone(&self.shared).write_all());
        }
        answer.await.unwrap_or(Err(BatchError::Stopped))
    }
}

impl<T, A> Shared<T, A> {
    fn lock(&self) -> MutexGuard<'_, State<T, A>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next batch from the front of `pending`, within the limits; empty
    /// when nothing is pending, and then no writing task runs any more.
    fn take(&self) -> Vec<Pending<T, A>> {
        let mut st = self.lock();
        let mut weight = 0usize;
        let mut count = 0;
        for p in st.pending.iter().take(self.limits.max_items) {
            weight = weight.saturating_add(p.weight);
            if count > 0 && weight > self.limits.max_weight {
                break;
            }
            count += 1;
        }
        if count == 0 {
            st.writing = false;
        }
        st.pending.drain(..count).collect()
    }

    /// Writes batches until none is left.
    async fn write_all(self: Arc<Self>) {
        let mut guard = Stopped { shared: &self, done: false };
        loop {
            let batch = self.take();
            if batch.is_empty() {
                guard.done = true;
                return;
            }
            let (items, replies): (Vec<T>, Vec<Reply<A>>) = batch.into_iter().map(|p| (p.item, p.reply)).unzip();
            match catch(|| (self.write)(items)).await {
                Ok(answers) => {
                    let mut answers = answers.into_iter();
                    for reply in replies {
                        let _ = reply.send(answers.next().ok_or(BatchError::NoAnswer));
                    }
                }
                Err(message) => {
                    tracing::error!(error = %message, items = replies.len(), "a batch writer panicked");
                    for reply in replies {
                        let _ = reply.send(Err(BatchError::Panicked(message.clone())));
                    }
                }
            }
        }
    }
}

/// Dropped with a writing task that did not finish (its runtime shut down):
/// answers what is still pending, so that no submitter waits for a writer
/// that is gone, and lets the next submitter start a new one.
struct Stopped<'a, T, A> {
    shared: &'a Shared<T, A>,
    done: bool,
}

impl<T, A> Drop for Stopped<'_, T, A> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let pending = {
            let mut st = self.shared.lock();
            st.writing = false;
            std::mem::take(&mut st.pending)
        };
        for p in pending {
            let _ = p.reply.send(Err(BatchError::Stopped));
        }
    }
}
