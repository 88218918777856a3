//! How long a call was busy: the time spent inside its polls, not the time
//! from its start to its end.
//!
//! Where a component's calls start (on the subscription's loop, or in a
//! task each; see [`super::serve`]) follows what they cost the thread that
//! runs them. A call that waits on the network for a millisecond but
//! computes for five microseconds is cheap to keep on the loop, and
//! cheapest there: the waits it makes are then completed by waking one
//! task, not one per call. Measured by wall time, such a call looked
//! expensive and got a task of its own.
//!
//! A call that finishes in its first poll costs no clock reading beyond
//! the two its latency needs anyway.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What [`Busy`] resolves to.
pub(super) struct Measured<T> {
    pub(super) output: T,
    /// Time spent inside the inner future's polls.
    pub(super) busy: Duration,
    /// When it finished.
    pub(super) finished: Instant,
}

pin_project_lite::pin_project! {
    /// `inner`, timed poll by poll.
    pub(super) struct Busy<F> {
        #[pin]
        inner: F,
        busy: Duration,
        // When the first poll starts: the caller's reading, taken just before.
        first: Option<Instant>,
    }
}

impl<F: Future> Busy<F> {
    /// Times `inner`, whose first poll starts at `started`.
    pub(super) fn new(inner: F, started: Instant) -> Self {
        Self {
            inner,
            busy: Duration::ZERO,
            first: Some(started),
        }
    }
}

impl<F: Future> Future for Busy<F> {
    type Output = Measured<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let start = this.first.take().unwrap_or_else(Instant::now);
        let polled = this.inner.poll(cx);
        let now = Instant::now();
        *this.busy += now - start;
        polled.map(|output| Measured {
            output,
            busy: *this.busy,
            finished: now,
        })
    }
}
