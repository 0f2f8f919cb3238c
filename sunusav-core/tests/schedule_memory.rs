//! The scheduler conformance suite against [`MemoryQueue`]: every handle of
//! one queue is an instance over the same backing.

use std::sync::Arc;

use sunusav_core::conformance::schedule::{Open, OpenFuture, ScheduledQueue};
use sunusav_core::memory::MemoryQueue;

sunusav_core::schedule_conformance_tests!(|config| async move {
    let q = MemoryQueue::new("conformance", config);
    Arc::new(move || {
        let q = q.clone();
        Box::pin(async move { Arc::new(q) as Arc<dyn ScheduledQueue> }) as OpenFuture
    }) as Open
});
