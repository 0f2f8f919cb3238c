//! The task that follows the node's stream of settled invoices
//! ([`crate::ports::SettleEvents`]) and feeds each to settlement
//! ([`Tontine::ingest_node_settlement`]).
//!
//! Each run opens a stream after the stored settle index; a cut, an error or
//! a failed ingestion ends the run, and the next one (after a backoff from
//! 100 ms doubling to [`SettleStreamConfig::max_backoff`] while the node
//! refuses, reset once a stream opens) resumes from the index stored last:
//! nothing is skipped, and what is seen twice is a replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ports::{SettleEvents, SettledStream};
use crate::runtime::series;
use crate::services::{StreamCut, Tontine};

/// Settings of the settle-stream task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettleStreamConfig {
    /// The longest wait before opening a stream again (default 5 s).
    pub max_backoff: Duration,
}

impl Default for SettleStreamConfig {
    fn default() -> Self {
        Self { max_backoff: Duration::from_secs(5) }
    }
}

impl SettleStreamConfig {
    /// This config with [`max_backoff`](Self::max_backoff) set.
    #[must_use]
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }
}

/// Live figures of the settle-stream task.
#[derive(Debug, Default)]
pub struct SettleStreamStats {
    received: AtomicU64,
    runs: AtomicU64,
    cuts: AtomicU64,
    connected: AtomicBool,
}

impl SettleStreamStats {
    /// Settled invoices received (replays included).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    /// Streams opened.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
    /// Streams cut, failed or refused.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
    /// Whether a stream is open now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// The running settle-stream task.
#[derive(Debug)]
pub struct SettleStream {
    task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    stats: Arc<SettleStreamStats>,
}

impl SettleStream {
    /// Starts following `events` on the current tokio runtime.
    pub fn start(tontine: &Tontine, events: Arc<dyn SettleEvents>, config: SettleStreamConfig) -> Self {
        let (tx, rx) = watch::channel(false);
        let stats = Arc::new(SettleStreamStats::default());
        let task = tokio::spawn(follow(tontine.clone(), events, config, Arc::clone(&stats), rx));
        Self { task, shutdown: tx, stats }
    }

    /// Its live figures.
    pub fn stats(&self) -> Arc<SettleStreamStats> {
        Arc::clone(&self.stats)
    }

    /// Stops it (an ingestion under way is dropped; it is replayed by the
    /// next run, from the stored index).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn follow(
    tontine: Tontine,
    events: Arc<dyn SettleEvents>,
    config: SettleStreamConfig,
    stats: Arc<SettleStreamStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let run = async {
            stats.runs.fetch_add(1, Ordering::Relaxed);
            let after = tontine.settle_index().await.map_err(|e| e.to_string())?;
            let mut stream = events.subscribe_settled(after).await.map_err(|e| e.to_string())?;
            stats.connected.store(true, Ordering::Relaxed);
            run_stream(&tontine, &mut *stream, after, &stats, &mut backoff).await
        };
        let cut = tokio::select! {
            _ = shutdown.changed() => return,
            cut = run => cut,
        };
        stats.connected.store(false, Ordering::Relaxed);
        series::counter(series::SETTLE_STREAM_CUTS_TOTAL, &[], 1);
        stats.cuts.fetch_add(1, Ordering::Relaxed);
        match cut {
            Ok(StreamCut::Ended) => tracing::info!("the node ended the settle stream; resuming"),
            Ok(StreamCut::Cut(why)) | Err(why) => {
                tracing::warn!(error = %why, "the settle stream was cut; resuming from the stored settle index");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.max_backoff.max(FIRST_BACKOFF));
    }
}

async fn run_stream(
    tontine: &Tontine,
    stream: &mut dyn SettledStream,
    mut after: u64,
    stats: &SettleStreamStats,
    backoff: &mut Duration,
) -> Result<StreamCut, String> {
    // The node answered: a cut from now on is retried soon again (a node
    // that keeps refusing backs off; one that keeps cutting is followed).
    *backoff = Duration::from_millis(100);
    loop {
        let Some(invoice) = stream.next().await.map_err(|e| e.to_string())? else {
            return Ok(StreamCut::Ended);
        };
        series::counter(series::SETTLE_STREAM_RECEIVED_TOTAL, &[], 1);
        stats.received.fetch_add(1, Ordering::Relaxed);
        *backoff = Duration::from_millis(100);
        if invoice.settle_index <= after {
            // Sent again by the node (at or before where this run started):
            // already durable.
            continue;
        }
        tontine.ingest_node_settlement(&invoice).await.map_err(|e| e.to_string())?;
        after = invoice.settle_index;
    }
}
