//! Catching a panic out of a future, without unsafe code and without a
//! dependency: each poll runs under [`std::panic::catch_unwind`].

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that resolves to `Err(message)` when the future it wraps panics.
///
/// The wrapped future is `Unpin` (a boxed future, as `async_trait` returns),
/// so no pin projection is needed. After a panic the wrapped future is not
/// polled again; the caller drops it.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> CatchUnwind<F> {
    fn new(future: F) -> Self {
        Self(future)
    }
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        // Unwind safety: the future that panicked is never polled again, and
        // the state it shares is the caller's to judge (a handler's state is
        // behind its own locks).
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
}

/// Starts a future with `start` and runs it, catching a panic in either:
/// `Err` with the panic's message.
pub(crate) async fn catch<F: Future + Unpin>(start: impl FnOnce() -> F) -> Result<F::Output, String> {
    match catch_unwind(AssertUnwindSafe(start)) {
        Ok(future) => CatchUnwind::new(future).await,
        Err(payload) => Err(panic_message(&*payload)),
    }
}

/// The message of a panic payload: the `&str` or `String` given to `panic!`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_future_resolves_to_its_message() {
        let n = 7;
        let formatted = catch(|| {
            Box::pin(async move {
                panic!("boom {n}");
            })
        });
        assert_eq!(formatted.await, Err("boom 7".to_owned()));
        let literal = catch(|| {
            Box::pin(async {
                panic!("static");
            })
        });
        assert_eq!(literal.await, Err("static".to_owned()));
    }

    #[tokio::test]
    async fn a_panic_while_starting_the_future_is_caught_too() {
        let out = catch(|| -> std::future::Ready<u8> { panic!("before the first poll") }).await;
        assert_eq!(out, Err("before the first poll".to_owned()));
    }

    #[tokio::test]
    async fn a_future_that_completes_passes_its_output_through() {
        assert_eq!(catch(|| Box::pin(async { 42 })).await, Ok(42));
    }
}
