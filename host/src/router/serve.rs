//! The loop that serves one subscription, and one delivery's call.
//!
//! The loop takes a concurrency permit *before* it pulls the next delivery,
//! so a component at its limit stops pulling and its broker-side queue
//! (bounded) fills instead of host memory.
//!
//! Cheap calls stay on the loop. A call is polled once where it was pulled;
//! if it has to wait (its reply's broker confirm, an ack, a guest's
//! outbound request) the loop keeps it among its waiting calls and polls it
//! again when it is woken, instead of giving it a task. A broker client
//! that completes many waits at once (lapin's I/O thread resolving a batch
//! of confirms) then wakes one task, not one per message: each wake-up
//! from another thread costs a futex or eventfd round trip, which on the
//! AMQP path was most of the host's CPU per message. A component whose
//! calls take longer than [`INLINE_BUDGET`](super::INLINE_BUDGET) gets a
//! task per call instead, so its calls use every core and do not hold up
//! the loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{COMPONENT_HEADER, Route, VERSION_HEADER};
use crate::error::{CallError, Disposition, ErrorKind};
use crate::message::Message;
use crate::transport::{Delivery, Settlement, Subscription};

/// Serves one subscription (the route's `index`th subject) until `stop` is
/// cancelled or the transport closes. The spawned task and every call it
/// starts are tracked by `tasks`, so shutdown can wait for in-flight calls;
/// calls waiting on the loop are finished by the loop before it ends.
pub fn serve(
    route: Arc<Route>,
    index: usize,
    transport: &'static str,
    mut subscription: Subscription,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    let calls = tasks.clone();
    tasks.spawn(async move {
        let mut waiting: FuturesUnordered<Guarded> = FuturesUnordered::new();
        // The check at the top sees a stop even while deliveries keep
        // coming: the selects below poll work first.
        while !stop.is_cancelled() {
            let ready = if waiting.is_empty() {
                try_pull(&route, &mut subscription).await
            } else {
                None
            };
            let pulled = match ready {
                Some(ready) => Some(ready),
                None => {
                    let pull = pull(&route, &mut subscription, &stop);
                    tokio::pin!(pull);
                    loop {
                        tokio::select! {
                            biased;
                            // Finishing calls first frees their permits.
                            Some(()) = waiting.next(), if !waiting.is_empty() => {}
                            pulled = &mut pull => break pulled,
                        }
                    }
                }
            };
            let Some((delivery, permit)) = pulled else { break };
            if let Some(n) = route.received.get(index) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            if route.runs_inline() {
                // Boxed where it is made, so it can be built in place: the
                // call's future is about a kilobyte.
                let mut call = Guarded {
                    call: Box::pin(dispatch(route.clone(), transport, delivery, permit)),
                    component: route.clone(),
                };
                if std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut call).poll(cx)))
                    .await
                    .is_pending()
                {
                    waiting.push(call);
                }
            } else {
                calls.spawn(dispatch(route.clone(), transport, delivery, permit));
            }
        }
        // Whatever is queued but not started is handed back: requests get a
        // clear error, events go back to the broker.
        while let Some(d) = subscription.try_next() {
            refuse(d, &route.name).await;
        }
        while waiting.next().await.is_some() {}
    });
}

/// A delivery that is already queued, with its permit, if the component
/// may take it at once; `None` if anything would have to wait, and then
/// [`pull`] waits for it.
///
/// Under load this is how most deliveries arrive, and it builds none of
/// `pull`'s futures (the permit's, the stop's, the breaker's and the
/// backoff's: together most of a kilobyte written and moved per message).
/// It spends the task's cooperative budget like an await would, so a loop
/// that always finds work still yields to the other tasks on its thread.
async fn try_pull(route: &Route, subscription: &mut Subscription) -> Option<(Delivery, OwnedSemaphorePermit)> {
    tokio::task::coop::consume_budget().await;
    if !route.breaker.is_clear() {
        return None;
    }
    let permit = route.limit.clone().try_acquire_owned().ok()?;
    let delivery = subscription.try_next()?;
    Some((delivery, permit))
}

/// The next delivery with its permit, once the component may take it;
/// `None` when the loop should end (stopped, or the transport closed).
///
/// Cancel-safe where the loop drops it: at the permit or while waiting for
/// a delivery (a subscription's `next` loses nothing when dropped). Once a
/// delivery is pulled, a stop refuses it rather than dropping it.
async fn pull(
    route: &Route,
    subscription: &mut Subscription,
    stop: &CancellationToken,
) -> Option<(Delivery, OwnedSemaphorePermit)> {
    // `biased`, work first: polling `stop` registers a waiter under a
    // lock, which costs more per message than the rest of the loop.
    let permit = tokio::select! {
        biased;
        permit = route.limit.clone().acquire_owned() => permit.ok()?,
        _ = stop.cancelled() => return None,
    };
    let delivery = tokio::select! {
        biased;
        d = subscription.next() => d?,
        _ = stop.cancelled() => return None,
    };
    // A quarantined or suspended component takes nothing: this one
    // delivery waits unsettled (on a broker: unacked, so it is not lost if
    // the host dies) and the rest stay at the broker.
    tokio::select! {
        biased;
        _ = route.breaker.admit() => {}
        _ = stop.cancelled() => {
            refuse(delivery, &route.name).await;
            return None;
        }
    }
    // A component that keeps trapping or timing out is slowed down (its
    // messages wait at the broker), so it cannot burn the CPU its
    // neighbours need.
    if let Some(pause) = route.breaker.backoff() {
        tokio::select! {
            _ = stop.cancelled() => {
                refuse(delivery, &route.name).await;
                return None;
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
    Some((delivery, permit))
}

/// A call kept on the loop. A panic in it (a bug in the host) would
/// otherwise end the loop, not just the call, as a spawned call's panic
/// ends only its task; here it ends the call, whose message is left
/// unsettled for the broker to redeliver.
struct Guarded {
    call: Pin<Box<dyn Future<Output = ()> + Send>>,
    component: Arc<Route>,
}

impl Future for Guarded {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let call = &mut self.call;
        match std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                tracing::error!(
                    component = %self.component.name,
                    "a call panicked in the host (a bug); its message was left unsettled for the broker to redeliver"
                );
                Poll::Ready(())
            }
        }
    }
}

/// Runs one delivery's call and settles it, in a `berth.handle` span.
///
/// The span is at DEBUG level, as per-request spans are in tower-http: at
/// INFO the log subscriber formats its fields for every message, which
/// cost ~15% of the host's CPU under load (BENCHMARKS.md). Warnings about
/// one message therefore name the component and subject themselves.
async fn dispatch(route: Arc<Route>, transport: &'static str, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let span = tracing::debug_span!(
        "berth.handle",
        otel.kind = "consumer",
        messaging.system = transport,
        messaging.destination.name = %delivery.message.subject,
        messaging.operation.type = "process",
        component = %route.name,
        trace_id = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(trace_id) = crate::trace::trace_id(&delivery.message.headers)
    {
        span.record("trace_id", trace_id);
    }
    route.stats.enter();
    let Delivery { message, mut acker } = delivery;
    // Loaded once: this message is handled by this version, whatever
    // swaps happen meanwhile.
    let version = route.versions.active();
    let started = Instant::now();
    async {
        let settlement = match message.reply_to.is_some().then(|| envelope(&message)) {
            Some(envelope) => {
                let result = version.handler.handle_request(message).await;
                route.record(&version, true, result.as_ref().map(drop), started);
                let reply = match result {
                    Ok(r) => {
                        let mut headers = r.headers;
                        if route.reply_headers {
                            headers.push((COMPONENT_HEADER.to_owned(), route.name.clone()));
                            headers.push((VERSION_HEADER.to_owned(), version.hash.clone()));
                        }
                        envelope.reply(r.body, headers)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "request failed");
                        e.to_reply(&envelope)
                    }
                };
                // Ack only once the reply is handed to the broker.
                match reply {
                    Some(reply) => match acker.reply(reply).await {
                        Ok(()) => Settlement::Ack,
                        Err(e) => {
                            tracing::warn!(component = %route.name, error = %e, "could not send reply; asking for redelivery");
                            Settlement::Retry(format!("could not send the reply: {e}"))
                        }
                    },
                    None => Settlement::Ack,
                }
            }
            None => {
                let subject = message.subject.clone();
                let result = version.handler.handle_event(message).await;
                route.record(&version, false, result.as_ref().map(drop), started);
                match result {
                    Ok(()) => Settlement::Ack,
                    Err(e) => {
                        tracing::warn!(component = %route.name, %subject, error = %e, "event failed");
                        match e.disposition {
                            Disposition::Retry => Settlement::Retry(e.to_string()),
                            Disposition::Reject => Settlement::Reject(e.to_string()),
                        }
                    }
                }
            }
        };
        settle(acker, settlement, &route.name).await;
    }
    .instrument(span)
    .await;
}

/// What a reply needs of its request (where to, which correlation), kept
/// after the body has moved into the call.
fn envelope(message: &Message) -> Message {
    Message {
        reply_to: message.reply_to.clone(),
        correlation_id: message.correlation_id.clone(),
        ..Message::default()
    }
}

async fn settle(acker: Box<dyn crate::transport::Acker>, settlement: Settlement, component: &str) {
    if let Err(e) = acker.settle(settlement).await {
        tracing::warn!(component, error = %e, "could not settle delivery; the broker will redeliver it");
    }
}

async fn refuse(delivery: Delivery, component: &str) {
    let Delivery { message, mut acker } = delivery;
    let error = CallError::new(
        ErrorKind::Overloaded,
        format!("component `{component}` is shutting down"),
    );
    // A request is answered (and so done); an event goes back to the broker.
    let settlement = match error.to_reply(&message) {
        Some(reply) => match acker.reply(reply).await {
            Ok(()) => Settlement::Ack,
            Err(_) => Settlement::Release,
        },
        None => Settlement::Release,
    };
    settle(acker, settlement, component).await;
}

#[cfg(test)]
mod tests;
