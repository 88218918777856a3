//! Work a client started that outlives the client's interest in it.
//!
//! An HTTP server drops a request's future when its client hangs up. A
//! component's call dropped there is cut wherever it was: between a
//! key-value write and the publish that announces it, say. A client that
//! goes away must not leave a backend half done, so what it started runs
//! to its end on a task of its own (within its deadlines, as before) and
//! only its answer is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `work`, run to its end even if this future is dropped first.
pub fn to_the_end<F>(work: F) -> ToTheEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    ToTheEnd(Some(Box::pin(work)))
}

/// See [`to_the_end`].
pub struct ToTheEnd<F: Future + Send + 'static>(Option<Pin<Box<F>>>)
where
    F::Output: Send;

impl<F> Future for ToTheEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(work) = self.0.as_mut() else {
            return Poll::Pending; // polled after it was ready: never woken again
        };
        let out = work.as_mut().poll(cx);
        if out.is_ready() {
            self.0 = None;
        }
        out
    }
}

impl<F> Drop for ToTheEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    fn drop(&mut self) {
        // Outside a runtime (the host is gone) there is nothing left to
        // finish it on.
        if let (Some(work), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                work.await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn dropped_before_its_end_it_still_finishes() {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (finished, done) = tokio::sync::oneshot::channel::<()>();
        let work = to_the_end(async move {
            let _ = wait.await;
            let _ = finished.send(());
        });
        let cut = tokio::time::timeout(Duration::from_millis(1), work).await;
        assert!(cut.is_err(), "the caller stopped waiting");
        go.send(()).expect("the dropped work still waits, on a task of its own");
        tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .expect("in time")
            .expect("it ran to its end");
    }

    #[tokio::test]
    async fn awaited_it_answers_as_the_work_does() {
        assert_eq!(to_the_end(async { 7 }).await, 7);
    }
}
