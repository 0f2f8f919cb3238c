//! What every suite's `run_case` shares: a timeout per case, and a panic that
//! names the case.

use std::future::Future;
use std::time::Duration;

/// The longest a case may run.
pub(crate) const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `case` on its own task, within [`CASE_TIMEOUT`].
///
/// # Panics
/// When the case panics or times out; the message names the suite and the case.
pub(crate) async fn run_named<Fut>(suite: &str, name: &str, case: Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let handle = tokio::spawn(tokio::time::timeout(CASE_TIMEOUT, case));
    match handle.await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("{suite} conformance case `{name}` timed out after {CASE_TIMEOUT:?}"),
        Err(e) => {
            let msg = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!("{suite} conformance case `{name}` failed: {msg}");
        }
    }
}
