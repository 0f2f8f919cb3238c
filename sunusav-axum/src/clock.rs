//! The injectable clock: Unix seconds, system time by default.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix seconds. Tests pass a fixed one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(now_unix_secs)
}

/// A clock that always answers `secs` (for tests).
pub fn fixed_clock(secs: i64) -> Clock {
    Arc::new(move || secs)
}

/// The system time in Unix seconds (0 before the epoch, `i64::MAX` far after).
pub fn now_unix_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
