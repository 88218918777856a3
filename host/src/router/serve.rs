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
//! calls are busy longer than [`INLINE_BUDGET`](super::INLINE_BUDGET) (time
//! computing, not waiting; see [`super::busy`]) gets a
//! task per call instead, so its calls use every core and do not hold up
//! the loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::Route;
use super::dispatch::{dispatch, dispatch_batch, settle};
use super::endpoint::Endpoint;
use crate::core::error::{CallError, ErrorKind};
use crate::transport::{Delivery, Settle, Settlement, Subscription};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves one subscription (the route's `index`th subject) until `stop` is
/// cancelled or the transport closes. The spawned task and every call it
/// starts are tracked by `tasks`, so shutdown can wait for in-flight calls;
/// calls waiting on the loop are finished by the loop before it ends.
pub fn serve<A: Settle>(
    route: Arc<Route>,
    index: usize,
    transport: &'static str,
    mut subscription: Subscription<A>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    let calls = tasks.clone();
    // The subscription's counters, and its own stop: the host's, or its
    // removal from the route.
    let endpoint = route
        .endpoints()
        .get(index)
        .cloned()
        .unwrap_or_else(|| Arc::new(Endpoint::new(String::new(), "detached".to_owned())));
    let stop = stop.child_token();
    endpoint.attach(stop.clone());
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
            let received = |n: usize| endpoint.receive(n);
            if route.runs_inline() {
                // Boxed where it is made, so it can be built in place: the
                // call's future is about a kilobyte.
                // A subscription with middleware takes one message per call: each
                // goes through the chain on its own.
                let more = match endpoint.is_chained() {
                    false => gather(&route, &mut subscription),
                    true => None,
                };
                let call: Pin<Box<dyn Future<Output = ()> + Send>> = match more {
                    Some(more) => {
                        let mut batch = Vec::with_capacity(more.len() + 1);
                        batch.push((delivery, permit));
                        batch.extend(more);
                        received(batch.len());
                        Box::pin(dispatch_batch(route.clone(), transport, endpoint.clone(), batch))
                    }
                    None => {
                        received(1);
                        Box::pin(dispatch(route.clone(), transport, endpoint.clone(), delivery, permit))
                    }
                };
                let mut call = Guarded {
                    call,
                    component: route.clone(),
                };
                if std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut call).poll(cx)))
                    .await
                    .is_pending()
                {
                    waiting.push(call);
                }
            } else {
                received(1);
                calls.spawn(dispatch(route.clone(), transport, endpoint.clone(), delivery, permit));
            }
        }
        // A broker that does not keep what it delivered (core NATS) would
        // lose what is on its way here: the subscription drains (no more
        // come) and those are served, as the other hosts of the group
        // take the new ones.
        if stop.is_cancelled() && subscription.drain().await {
            let served = drain(&route, transport, &endpoint, &mut subscription, &mut waiting);
            if tokio::time::timeout(DRAIN_WAIT, served).await.is_err() {
                tracing::warn!(component = %route.name, "draining took over {DRAIN_WAIT:?}; the rest is refused");
            }
        }
        // Whatever else is queued but not started: an event a broker keeps
        // goes back to it (another host takes it); a request, whose caller
        // waits (one that reached a subscription a swap replaced, say), and
        // what no broker keeps are served here rather than refused.
        while let Some(d) = subscription.try_next() {
            if d.acker.kept_by_broker() && d.message.reply_to.is_none() {
                refuse(d, &route.name, SHUTTING_DOWN).await;
            } else {
                serve_late(&route, transport, &endpoint, d, &mut waiting).await;
            }
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
async fn try_pull<A: Settle>(
    route: &Route,
    subscription: &mut Subscription<A>,
) -> Option<(Delivery<A>, OwnedSemaphorePermit)> {
    tokio::task::coop::consume_budget().await;
    if !route.breaker.is_clear() {
        return None;
    }
    let permit = route.limit.clone().try_acquire_owned().ok()?;
    let delivery = subscription.try_next()?;
    Some((delivery, permit))
}

/// More deliveries that are already queued, with their permits, to share
/// one call with the one just pulled: `None` unless the active version
/// takes batches and at least one more delivery is ready. Never waits.
fn gather<A: Settle>(
    route: &Route,
    subscription: &mut Subscription<A>,
) -> Option<Vec<(Delivery<A>, OwnedSemaphorePermit)>> {
    // A component on trial after a quarantine takes one message at a time.
    if !route.breaker.is_clear() {
        return None;
    }
    let limit = route.versions.active().handler.batch_limit();
    if limit < 2 {
        return None;
    }
    let mut more = Vec::new();
    while more.len() + 1 < limit {
        let Ok(permit) = route.limit.clone().try_acquire_owned() else {
            break;
        };
        let Some(delivery) = subscription.try_next() else { break };
        more.push((delivery, permit));
    }
    (!more.is_empty()).then_some(more)
}

/// The next delivery with its permit, once the component may take it;
/// `None` when the loop should end (stopped, or the transport closed).
///
/// Cancel-safe where the loop drops it: at the permit or while waiting for
/// a delivery (a subscription's `next` loses nothing when dropped). Once a
/// delivery is pulled, a stop refuses it rather than dropping it.
async fn pull<A: Settle>(
    route: &Route,
    subscription: &mut Subscription<A>,
    stop: &CancellationToken,
) -> Option<(Delivery<A>, OwnedSemaphorePermit)> {
    // `biased`, work first: polling `stop` registers a waiter under a
    // lock, which costs more per message than the rest of the loop.
    let permit = tokio::select! {
        biased;
        permit = route.limit.clone().acquire_owned() => permit.ok()?,
        _ = stop.cancelled() => return None,
    };
    let delivery = loop {
        let delivery = tokio::select! {
            biased;
            d = subscription.next() => d?,
            _ = stop.cancelled() => return None,
        };
        // A request no broker keeps (core NATS: its caller waits, nothing
        // is redelivered) is answered at once while the component takes
        // nothing, instead of at its caller's timeout. Events still wait.
        if delivery.message.reply_to.is_some()
            && !delivery.acker.kept_by_broker()
            && let Some(why) = route.breaker.refusal()
        {
            refuse(delivery, &route.name, &format!("is {why}")).await;
            continue;
        }
        break delivery;
    };
    // A quarantined or suspended component takes nothing: this one
    // delivery waits unsettled (on a broker: unacked, so it is not lost if
    // the host dies) and the rest stay at the broker.
    tokio::select! {
        biased;
        _ = route.breaker.admit() => {}
        _ = stop.cancelled() => {
            refuse(delivery, &route.name, SHUTTING_DOWN).await;
            return None;
        }
    }
    // A component that keeps trapping or timing out is slowed down (its
    // messages wait at the broker), so it cannot burn the CPU its
    // neighbours need.
    if let Some(pause) = route.breaker.backoff() {
        tokio::select! {
            _ = stop.cancelled() => {
                refuse(delivery, &route.name, SHUTTING_DOWN).await;
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

/// How long a stopping subscription serves what is on its way to it.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves a drained subscription's last deliveries while the calls
/// already running finish.
async fn drain<A: Settle>(
    route: &Arc<Route>,
    transport: &'static str,
    endpoint: &Arc<Endpoint>,
    subscription: &mut Subscription<A>,
    waiting: &mut FuturesUnordered<Guarded>,
) {
    loop {
        let delivery = tokio::select! {
            biased;
            Some(()) = waiting.next(), if !waiting.is_empty() => continue,
            delivery = subscription.next() => delivery,
        };
        let Some(delivery) = delivery else { return };
        serve_late(route, transport, endpoint, delivery, waiting).await;
    }
}

/// Runs one delivery of a stopping subscription: with a permit (waited
/// for while the running calls finish), among `waiting`.
async fn serve_late<A: Settle>(
    route: &Arc<Route>,
    transport: &'static str,
    endpoint: &Arc<Endpoint>,
    delivery: Delivery<A>,
    waiting: &mut FuturesUnordered<Guarded>,
) {
    let permit = loop {
        tokio::select! {
            biased;
            Some(()) = waiting.next(), if !waiting.is_empty() => {}
            permit = route.limit.clone().acquire_owned() => break permit,
        }
    };
    let Ok(permit) = permit else {
        return refuse(delivery, &route.name, SHUTTING_DOWN).await;
    };
    endpoint.receive(1);
    waiting.push(Guarded {
        call: Box::pin(dispatch(route.clone(), transport, endpoint.clone(), delivery, permit)),
        component: route.clone(),
    });
}

/// Why a delivery is refused at a stop.
const SHUTTING_DOWN: &str = "is shutting down";

/// Answers a request with `overloaded` (503) saying why, or gives an event
/// back to the broker.
async fn refuse<A: Settle>(delivery: Delivery<A>, component: &str, why: &str) {
    let Delivery { message, mut acker } = delivery;
    let error = CallError::new(ErrorKind::Overloaded, format!("component `{component}` {why}"));
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
