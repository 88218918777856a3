//! A subscription as the router reads it: a stream of deliveries that
//! unsubscribes when dropped, and on core NATS can first *drain*: stop new
//! deliveries at the server while those already on their way still come,
//! so a host that stops serves what was sent to it instead of losing it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

use super::{Acker, Delivery};

/// A stream of deliveries that may be drained.
pub trait Deliveries<A>: Stream<Item = Delivery<A>> + Send {
    /// Stops new deliveries at the broker; the stream then ends after those
    /// already on their way. `false` where the transport has no such step
    /// (its broker keeps what was not settled, or it has no broker): the
    /// stream goes on as before.
    fn drain(self: Pin<&mut Self>) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async { false })
    }
}

pin_project_lite::pin_project! {
    /// A stream with nothing to drain, held inline (no second box to
    /// follow for every delivery).
    struct Plain<S> {
        #[pin]
        inner: S,
    }
}

impl<A, S: Stream<Item = Delivery<A>> + Send> Stream for Plain<S> {
    type Item = Delivery<A>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().inner.poll_next(cx)
    }
}

impl<A, S: Stream<Item = Delivery<A>> + Send> Deliveries<A> for Plain<S> {}

/// Deliveries with their ackers boxed, drained as the inner ones.
struct Boxed<A>(Pin<Box<dyn Deliveries<A>>>);

impl<A: Acker + 'static> Stream for Boxed<A> {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx).map(|d| {
            d.map(|d| Delivery {
                message: d.message,
                acker: Box::new(d.acker) as Box<dyn Acker>,
            })
        })
    }
}

impl<A: Acker + 'static> Deliveries<Box<dyn Acker>> for Boxed<A> {
    fn drain(mut self: Pin<&mut Self>) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.0.as_mut().drain().await })
    }
}

/// A stream of deliveries; dropping it unsubscribes.
///
/// Either a bounded queue a transport's own task fills, or the client's
/// stream mapped straight into deliveries: the latter saves a task and a
/// cross-thread wake-up per message where the client already buffers and
/// bounds (core NATS).
///
/// `A` is its deliveries' acker: `Box<dyn Acker>` through the
/// [`super::Transport`] trait; a transport's own type where the app layer
/// asks the concrete transport (see [`super::Settle`]).
pub struct Subscription<A = Box<dyn Acker>> {
    deliveries: Pin<Box<dyn Deliveries<A>>>,
    /// Held for its `Drop`: removes the subscription at the broker.
    _guard: Box<dyn Send + Sync>,
}

impl<A: 'static> Subscription<A> {
    /// Wraps a bounded receiver and whatever undoes the subscription.
    pub fn new(mut receiver: mpsc::Receiver<Delivery<A>>, guard: impl Send + Sync + 'static) -> Self
    where
        A: Send,
    {
        Self::from_stream(futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))).guarded(guard)
    }

    /// Wraps a stream that unsubscribes when dropped.
    pub fn from_stream(deliveries: impl Stream<Item = Delivery<A>> + Send + 'static) -> Self {
        Self::drainable(Plain { inner: deliveries })
    }

    /// Wraps a stream that unsubscribes when dropped and can be drained.
    pub fn drainable(deliveries: impl Deliveries<A> + 'static) -> Self {
        Self {
            deliveries: Box::pin(deliveries),
            _guard: Box::new(()),
        }
    }

    fn guarded(mut self, guard: impl Send + Sync + 'static) -> Self {
        self._guard = Box::new(guard);
        self
    }

    /// The next delivery; `None` once the transport has closed (or a
    /// drain is done).
    pub async fn next(&mut self) -> Option<Delivery<A>> {
        self.deliveries.next().await
    }

    /// A delivery that is already queued, without waiting.
    pub fn try_next(&mut self) -> Option<Delivery<A>> {
        self.deliveries.next().now_or_never().flatten()
    }

    /// Stops new deliveries at the broker; [`Self::next`] then yields
    /// those on their way and ends. `false` if the transport cannot.
    pub async fn drain(&mut self) -> bool {
        self.deliveries.as_mut().drain().await
    }

    /// The same deliveries with their ackers behind the [`Acker`] trait,
    /// for whoever takes any transport's subscription.
    pub fn boxed(self) -> Subscription
    where
        A: Acker + 'static,
    {
        Subscription {
            deliveries: Box::pin(Boxed(self.deliveries)),
            _guard: self._guard,
        }
    }
}
