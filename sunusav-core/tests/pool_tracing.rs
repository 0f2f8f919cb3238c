//! The worker pool's `tracing` spans: each job runs in a span with its queue,
//! id and attempt; a batch in a span with its queue and count, each job's
//! span inside it while the job is settled.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sunusav_core::IdempotencyKey;
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::{Consumer, NewJob, Queue, QueueConfig, ReservedJob};
use sunusav_core::runtime::{JobFailure, JobHandler, PoolConfig, WorkerPool};
use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records, for each event, its message and the spans it happened in
/// (`name{field=value …}`, outermost first). One thread only.
#[derive(Default)]
struct Recorder {
    spans: Mutex<Vec<String>>,
    stack: Mutex<Vec<u64>>,
    events: Mutex<Vec<(String, Vec<String>)>>,
}

#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let sep = if self.0.is_empty() { "" } else { " " };
        let _ = write!(self.0, "{sep}{}={value:?}", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let mut spans = self.spans.lock().unwrap();
        spans.push(format!("{}{{{}}}", span.metadata().name(), fields.0));
        Id::from_u64(u64::try_from(spans.len()).unwrap())
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans = self.spans.lock().unwrap();
        let context =
            self.stack.lock().unwrap().iter().map(|&i| spans[usize::try_from(i - 1).unwrap()].clone()).collect();
        self.events.lock().unwrap().push((fields.0, context));
    }

    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(at) = stack.iter().rposition(|&i| i == span.into_u64()) {
            stack.remove(at);
        }
    }
}

impl Recorder {
    /// The spans around each event whose message contains `text`.
    fn around(&self, text: &str) -> Vec<Vec<String>> {
        self.events.lock().unwrap().iter().filter(|(m, _)| m.contains(text)).map(|(_, s)| s.clone()).collect()
    }
}

/// Says so in each run; fails `job-2` for a retry.
struct Talking;

#[async_trait]
impl JobHandler for Talking {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        self.handle_batch(std::slice::from_ref(job)).await.remove(0)
    }

    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        tracing::info!("handling");
        jobs.iter().map(|j| if j.id.as_str() == "job-2" { Err(JobFailure::retry("two")) } else { Ok(()) }).collect()
    }
}

async fn run_pool(batch: usize, jobs: usize) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&recorder));
    let q: Arc<dyn Queue> = Arc::new(MemoryQueue::new("pool", QueueConfig::default()));
    let new = (0..jobs).map(|i| NewJob::new(IdempotencyKey::parse(format!("job-{i}")).unwrap(), vec![1])).collect();
    q.enqueue_bulk(new).await.unwrap();
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::new(Talking);
    let config = PoolConfig::default().with_batch(batch).with_idle_wait(Duration::from_millis(100));
    let pool = WorkerPool::spawn(&(q.clone() as Arc<dyn Consumer>), &handler, config, &rx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await);
    recorder
}

#[tokio::test(start_paused = true)]
async fn each_job_runs_and_is_settled_in_a_span_with_its_queue_id_and_attempt() {
    let recorder = run_pool(1, 3).await;

    let handled = recorder.around("handling");
    assert_eq!(handled.len(), 3, "{handled:?}");
    assert_eq!(handled[0], ["job{queue=\"pool\" job=job-0 attempt=1}"]);
    assert_eq!(handled[2], ["job{queue=\"pool\" job=job-2 attempt=1}"]);
    assert_eq!(recorder.around("will retry"), [["job{queue=\"pool\" job=job-2 attempt=1}"]]);
}

#[tokio::test(start_paused = true)]
async fn a_batch_runs_in_a_span_with_its_count_and_each_failed_job_is_settled_in_its_own_span_inside() {
    // The first job wakes the worker and runs alone; the other three together.
    let recorder = run_pool(4, 4).await;

    let handled = recorder.around("handling");
    assert_eq!(handled.len(), 2, "{handled:?}");
    assert_eq!(handled[1], ["batch{queue=\"pool\" jobs=3}"]);
    assert_eq!(
        recorder.around("will retry"),
        [["batch{queue=\"pool\" jobs=3}", "job{queue=\"pool\" job=job-2 attempt=1}"]]
    );
}
