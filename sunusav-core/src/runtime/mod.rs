//! Building blocks for concurrent work that know no port: the group-commit
//! [`GroupCommit`] batcher, and catching a panic out of a future (crate-private,
//! used by the worker pools and the batcher).

mod batch;
pub(crate) mod unwind;

pub use batch::{BatchError, BatchLimits, GroupCommit};
