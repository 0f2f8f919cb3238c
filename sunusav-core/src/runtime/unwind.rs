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
pub(crate) struct CatchUnwind<F>(F);

impl<F: Future + Unpin> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
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
        let formatted = CatchUnwind::new(Box::pin(async move {
            panic!("boom {n}");
        }));
        assert_eq!(formatted.await, Err("boom 7".to_owned()));
        let literal = CatchUnwind::new(Box::pin(async {
            panic!("static");
        }));
        assert_eq!(literal.await, Err("static".to_owned()));
    }

    #[tokio::test]
    async fn a_future_that_completes_passes_its_output_through() {
        assert_eq!(CatchUnwind::new(Box::pin(async { 42 })).await, Ok(42));
    }
}
