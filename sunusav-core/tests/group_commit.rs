//! The group-commit batcher: what arrives during a write goes in the next
//! batch, within its limits, and every submitter is answered, whatever the
//! writer does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sunusav_core::runtime::{BatchError, BatchLimits, GroupCommit};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A writer that records each batch and answers each item with ten times it;
/// each write waits for a permit of `gate` when there is one.
struct Recorder {
    batches: Mutex<Vec<Vec<u32>>>,
    gate: Option<Semaphore>,
}

impl Recorder {
    fn new(gated: bool) -> Arc<Self> {
        Arc::new(Self { batches: Mutex::new(Vec::new()), gate: gated.then(|| Semaphore::new(0)) })
    }

    fn batches(&self) -> Vec<Vec<u32>> {
        self.batches.lock().unwrap().clone()
    }

    fn open(&self, writes: usize) {
        self.gate.as_ref().unwrap().add_permits(writes);
    }

    fn commit(self: &Arc<Self>, limits: BatchLimits<u32>) -> GroupCommit<u32, u32> {
        let recorder = Arc::clone(self);
        GroupCommit::new(limits, move |batch: Vec<u32>| {
            let recorder = Arc::clone(&recorder);
            async move {
                recorder.batches.lock().unwrap().push(batch.clone());
                if let Some(gate) = &recorder.gate {
                    gate.acquire().await.unwrap().forget();
                }
                batch.iter().map(|i| i * 10).collect()
            }
        })
    }
}

/// Submits `items` one after the other, each queued before the next is.
async fn submit_in_order(commit: &GroupCommit<u32, u32>, items: &[u32]) -> JoinSet<(u32, Result<u32, BatchError>)> {
    let mut set = JoinSet::new();
    for &i in items {
        let commit = commit.clone();
        set.spawn(async move { (i, commit.submit(i).await) });
        // Paused time: the sleep ends once every task waits, the new one queued.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    set
}

async fn answers(mut set: JoinSet<(u32, Result<u32, BatchError>)>) -> Vec<(u32, Result<u32, BatchError>)> {
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.push(r.unwrap());
    }
    all.sort_by_key(|(i, _)| *i);
    all
}

#[tokio::test(start_paused = true)]
async fn items_submitted_during_a_write_go_together_in_the_next_batch() {
    let recorder = Recorder::new(true);
    let commit = recorder.commit(BatchLimits::items(100));

    let first = submit_in_order(&commit, &[0]).await;
    let during = submit_in_order(&commit, &[1, 2, 3, 4, 5]).await;
    assert_eq!(recorder.batches(), vec![vec![0]], "the first write is under way");
    recorder.open(2);

    let all: Vec<_> = answers(first).await.into_iter().chain(answers(during).await).collect();
    assert_eq!(recorder.batches(), vec![vec![0], vec![1, 2, 3, 4, 5]]);
    assert_eq!(all, (0..6).map(|i| (i, Ok(i * 10))).collect::<Vec<_>>(), "each submitter gets its own answer");

    // An idle batcher writes the next item alone, at once.
    recorder.open(1);
    assert_eq!(commit.submit(6).await, Ok(60));
    assert_eq!(recorder.batches().last(), Some(&vec![6]));
}

#[tokio::test(start_paused = true)]
async fn a_batch_keeps_within_its_count_and_weight_and_a_heavy_item_goes_alone() {
    // Items weigh their value; a batch carries at most 3 items and 8 in weight.
    let recorder = Recorder::new(true);
    let commit = recorder.commit(BatchLimits::items(3).weight(8, |&i| usize::try_from(i).unwrap()));

    let blocker = submit_in_order(&commit, &[1]).await;
    let queued = submit_in_order(&commit, &[4, 4, 4, 10, 1, 1, 1, 2]).await;
    recorder.open(100);
    let all: Vec<_> = answers(blocker).await.into_iter().chain(answers(queued).await).collect();

    assert_eq!(
        recorder.batches(),
        vec![vec![1], vec![4, 4], vec![4], vec![10], vec![1, 1, 1], vec![2]],
        "in order, each batch within 3 items and 8 in weight but the item over 8 alone"
    );
    assert!(all.iter().all(|(i, r)| *r == Ok(i * 10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_one_of_many_concurrent_submitters_gets_its_own_answer() {
    let recorder = Recorder::new(false);
    let commit = recorder.commit(BatchLimits::items(64));
    let mut set = JoinSet::new();
    for i in 0..2_000u32 {
        let commit = commit.clone();
        set.spawn(async move { (i, commit.submit(i).await) });
    }
    let all = answers(set).await;

    assert_eq!(all, (0..2_000).map(|i| (i, Ok(i * 10))).collect::<Vec<_>>());
    let batches = recorder.batches();
    let mut written: Vec<u32> = batches.iter().flatten().copied().collect();
    written.sort_unstable();
    assert_eq!(written, (0..2_000).collect::<Vec<_>>(), "each item written once");
    assert!(batches.iter().all(|b| (1..=64).contains(&b.len())));
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_panics_answers_its_batch_with_the_panic_and_the_next_batch_is_written() {
    let calls = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&calls);
    let commit: GroupCommit<u32, u32> = GroupCommit::new(BatchLimits::items(2), move |batch: Vec<u32>| {
        *counted.lock().unwrap() += 1;
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(!batch.contains(&13), "unlucky batch {batch:?}");
            batch
        }
    });

    let set = submit_in_order(&commit, &[1, 13, 14, 2, 3]).await;
    let all = answers(set).await;

    // Batches: [1], [13, 14] (panics), [2, 3].
    let panicked = BatchError::Panicked("unlucky batch [13, 14]".to_owned());
    assert_eq!(all, vec![(1, Ok(1)), (2, Ok(2)), (3, Ok(3)), (13, Err(panicked.clone())), (14, Err(panicked))]);
    assert_eq!(*calls.lock().unwrap(), 3);
    assert_eq!(commit.submit(4).await, Ok(4), "the batcher still writes after a panic");
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_returns_too_few_answers_leaves_no_submitter_waiting() {
    let commit: GroupCommit<u32, u32> = GroupCommit::new(BatchLimits::items(10), |batch: Vec<u32>| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        batch.into_iter().take(1).collect()
    });
    let blocker = submit_in_order(&commit, &[0]).await;
    let set = submit_in_order(&commit, &[1, 2, 3]).await;
    assert_eq!(answers(blocker).await, vec![(0, Ok(0))]);
    assert_eq!(answers(set).await, vec![(1, Ok(1)), (2, Err(BatchError::NoAnswer)), (3, Err(BatchError::NoAnswer))]);
}

#[test]
fn a_writer_dropped_with_its_runtime_answers_every_submitter_and_a_new_writer_takes_over() {
    // Item 1's write never ends; its task is dropped with runtime `a`.
    let commit: GroupCommit<u32, u32> = GroupCommit::new(BatchLimits::items(10), |batch: Vec<u32>| async move {
        if batch.contains(&1) {
            std::future::pending::<()>().await;
        }
        batch
    });
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let a = runtime();
    let mut writing = Box::pin(commit.submit(1));
    let mut pending = Box::pin(commit.submit(2));
    a.block_on(async {
        let wait = Duration::from_millis(20);
        assert!(tokio::time::timeout(wait, &mut writing).await.is_err(), "item 1 is being written");
        assert!(tokio::time::timeout(wait, &mut pending).await.is_err(), "item 2 waits for the next batch");
    });
    drop(a);

    let b = runtime();
    b.block_on(async {
        assert_eq!(writing.await, Err(BatchError::Stopped), "the item being written");
        assert_eq!(pending.await, Err(BatchError::Stopped), "the item queued behind it");
        assert_eq!(commit.submit(3).await, Ok(3), "a new writer starts on the next submission");
    });
}
