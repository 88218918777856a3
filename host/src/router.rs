//! The router: from a subscription to calls into one component.
//!
//! One loop per subscription. It takes a concurrency permit *before* it
//! pulls the next delivery, so a component at its limit stops pulling and
//! its broker-side queue (bounded) fills instead of host memory. The
//! delivery is settled after the call, never before: acked when it
//! succeeded (and its reply was sent), redelivered or dead-lettered by the
//! error's disposition when it failed.
//!
//! Cheap calls run on the loop itself: a call is polled once where it was
//! pulled and only gets a task of its own if it has to wait (a guest's
//! outbound request, a slow broker, the epoch yielding a long computation).
//! A spawn and a cross-thread wake-up per message cost more than a small
//! call, and replies made back to back leave in fewer writes. A component
//! whose calls take longer than [`INLINE_BUDGET`] gets a task per call
//! instead, so its calls use every core and do not hold up the loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::{CallError, Disposition, ErrorKind};
use crate::handler::Handler;
use crate::message::Message;
use crate::quarantine::{Breaker, Policy};
use crate::runtime::InstanceMode;
use crate::stats::Stats;
use crate::transport::{Delivery, Settlement, Subscription};
use crate::versions::{Probation, Version, Versions};

/// Header naming the component that answered.
pub const COMPONENT_HEADER: &str = "Berth-Component";
/// Header with the version (content hash) of the component that answered.
pub const VERSION_HEADER: &str = "Berth-Version";

/// A component whose calls take longer than this (a moving average) runs
/// each call in a task of its own; below it, calls start on the
/// subscription's loop.
pub const INLINE_BUDGET: Duration = Duration::from_micros(50);

/// One call counts at most this much in the average, so that a cheap call
/// the kernel happened to preempt (measured: ~1% of calls under load, at
/// 0.1-1 ms) does not move a component off its loop alone.
const MAX_COST_SAMPLE: Duration = Duration::from_micros(200);

/// A component as the router sees it: its versions, its concurrency limit
/// and its counters. Subscriptions feed the route, never a version, so a
/// swap does not touch them.
pub struct Route {
    /// The component's name.
    pub name: String,
    /// Subject patterns it serves, for status output.
    pub subjects: Vec<String>,
    /// Messages taken from each subscription, in `subjects` order.
    received: Vec<AtomicU64>,
    /// The version that serves, and the one a rollback returns to.
    pub versions: Versions,
    /// `max_concurrency` permits, shared by all its subscriptions.
    pub limit: Arc<Semaphore>,
    /// Most calls in flight at once; an operator may change it.
    max_concurrency: AtomicUsize,
    /// Counters for status and tests; shared with the runtime, which
    /// counts refused outbound calls.
    pub stats: Arc<Stats>,
    /// Quarantines the component when it keeps trapping or timing out.
    pub breaker: Breaker,
    /// Whether successful replies say who answered.
    reply_headers: bool,
    /// Moving average of its calls' wall time in nanoseconds (weight 1/8
    /// per call, samples capped at [`MAX_COST_SAMPLE`]): below
    /// [`INLINE_BUDGET`], calls start on the loop that pulled them.
    call_cost: AtomicU64,
}

/// What describes a component to the router, apart from its versions.
#[derive(Clone, Debug)]
pub struct RouteInfo {
    /// The component's name.
    pub name: String,
    /// Subject patterns it serves.
    pub subjects: Vec<String>,
    /// Most calls in flight at once.
    pub max_concurrency: usize,
    /// When to quarantine it.
    pub policy: Policy,
    /// When to roll a swapped-in version back.
    pub probation: Probation,
    /// Whether successful replies carry [`COMPONENT_HEADER`] and
    /// [`VERSION_HEADER`].
    pub reply_headers: bool,
}

impl Route {
    /// A route serving `first`, with its own semaphore and breaker;
    /// `stats` is shared with whoever else counts for this component.
    pub fn new(info: RouteInfo, first: Version, stats: Arc<Stats>) -> Self {
        Self {
            limit: Arc::new(Semaphore::new(info.max_concurrency)),
            received: info.subjects.iter().map(|_| AtomicU64::new(0)).collect(),
            breaker: Breaker::new(info.policy),
            name: info.name,
            subjects: info.subjects,
            versions: Versions::new(first, info.probation),
            max_concurrency: AtomicUsize::new(info.max_concurrency),
            stats,
            call_cost: AtomicU64::new(0),
            reply_headers: info.reply_headers,
        }
    }

    /// Messages taken from each subscription so far, by subject pattern.
    pub fn received(&self) -> impl Iterator<Item = (&str, u64)> {
        self.subjects
            .iter()
            .zip(&self.received)
            .map(|(s, n)| (s.as_str(), n.load(Ordering::Relaxed)))
    }

    /// Most calls in flight at once.
    pub fn concurrency(&self) -> usize {
        self.max_concurrency.load(Ordering::Relaxed)
    }

    /// Changes the concurrency limit. Raising it adds permits at once;
    /// lowering it takes free permits away at once and the rest as calls
    /// finish, so no call is interrupted. (The broker-side prefetch stays
    /// as subscribed: messages beyond the limit wait in the host's bounded
    /// queue, unacked.)
    pub fn set_concurrency(&self, value: usize) {
        let old = self.max_concurrency.swap(value, Ordering::Relaxed);
        if value > old {
            self.limit.add_permits(value - old);
        } else if value < old {
            let missing = (old - value) - self.limit.forget_permits(old - value);
            if missing > 0 {
                let limit = self.limit.clone();
                tokio::spawn(async move {
                    if let Ok(permits) = limit.acquire_many_owned(missing as u32).await {
                        permits.forget();
                    }
                });
            }
        }
        tracing::info!(component = %self.name, from = old, to = value, "concurrency changed");
    }

    /// Feeds a call's wall time into the average that decides where its
    /// successors start. Concurrent calls may lose an update; the average
    /// only needs to be roughly right.
    fn weigh(&self, elapsed: Duration) {
        let sample = elapsed.min(MAX_COST_SAMPLE).as_nanos() as u64;
        let old = self.call_cost.load(Ordering::Relaxed);
        self.call_cost.store(old - old / 8 + sample / 8, Ordering::Relaxed);
    }

    /// Whether its calls are cheap enough to start on the loop that pulled
    /// them.
    fn runs_inline(&self) -> bool {
        self.call_cost.load(Ordering::Relaxed) < INLINE_BUDGET.as_nanos() as u64
    }

    /// A route for a handler that is not a wasm component (benchmarks,
    /// tests): version `native`, default policies.
    pub fn native(name: &str, subjects: &[&str], max_concurrency: usize, handler: Arc<dyn Handler>) -> Self {
        let info = RouteInfo {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrency,
            policy: Policy::default(),
            probation: Probation::default(),
            reply_headers: true,
        };
        let first = Version::new(handler, "native".to_owned(), None, InstanceMode::Pooled);
        Self::new(info, first, Arc::new(Stats::default()))
    }

    /// Counts a finished call and feeds the breaker and the version's
    /// probation, before any reply goes out: whoever sees the reply sees
    /// the counters, the quarantine or the rollback that call caused, and
    /// the next message is held or goes to the old version if it must.
    fn record(&self, version: &Arc<Version>, request: bool, outcome: Result<(), &CallError>, started: Instant) {
        if let Some(reason) = self.versions.record(version, outcome) {
            tracing::warn!(component = %self.name, %reason, "rolled back");
            // The breaker judged the failed version; the old one starts clean.
            self.breaker.resume();
        } else {
            self.breaker.record(outcome, &self.name);
        }
        let elapsed = started.elapsed();
        self.weigh(elapsed);
        self.stats.leave(request, outcome.err().map(|e| e.kind), elapsed);
    }
}

/// Serves one subscription (the route's `index`th subject) until `stop` is
/// cancelled or the transport closes. The spawned task and every call it
/// starts are tracked by `tasks`, so shutdown can wait for in-flight calls.
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
        // The selects poll the work first and `stop` only when there is
        // none: polling `stop` registers a waiter under a lock, which costs
        // more per message than the rest of the loop. The check at the top
        // sees a stop even while deliveries keep coming.
        while !stop.is_cancelled() {
            let permit = tokio::select! {
                biased;
                permit = route.limit.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_closed) => break,
                },
                _ = stop.cancelled() => break,
            };
            let delivery = tokio::select! {
                biased;
                d = subscription.next() => match d {
                    Some(d) => d,
                    None => break,
                },
                _ = stop.cancelled() => break,
            };
            if let Some(n) = route.received.get(index) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            // A quarantined or suspended component takes nothing: this one
            // delivery waits unsettled (on a broker: unacked, so it is not
            // lost if the host dies) and the rest stay at the broker.
            tokio::select! {
                biased;
                _ = route.breaker.admit() => {}
                _ = stop.cancelled() => {
                    refuse(delivery, &route.name).await;
                    break;
                }
            }
            // A component that keeps trapping or timing out is slowed down
            // (its messages wait at the broker), so it cannot burn the CPU
            // its neighbours need.
            if let Some(pause) = route.breaker.backoff() {
                tokio::select! {
                    _ = stop.cancelled() => {
                        refuse(delivery, &route.name).await;
                        break;
                    }
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            let call = dispatch(route.clone(), transport, delivery, permit);
            if route.runs_inline() {
                let mut call = Box::pin(call);
                // A panic here would end the loop, not just the call (a
                // spawned call's panic ends only its task).
                let first = std::future::poll_fn(|cx| {
                    Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))))
                })
                .await;
                match first {
                    Ok(Poll::Ready(())) => {}
                    Ok(Poll::Pending) => {
                        calls.spawn(call);
                    }
                    Err(_) => tracing::error!(
                        component = %route.name,
                        "a call panicked in the host (a bug); its message was left unsettled for the broker to redeliver"
                    ),
                }
            } else {
                calls.spawn(call);
            }
        }
        // Whatever is queued but not started is handed back: requests get a
        // clear error, events go back to the broker.
        while let Some(d) = subscription.try_next() {
            refuse(d, &route.name).await;
        }
    });
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
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::handler::{NativeHandler, Reply};
    use crate::transport::memory::MemoryTransport;
    use crate::transport::{SubscribeOptions, Transport};

    fn route(handler: impl Fn(Message) -> Result<Reply, CallError> + Send + Sync + 'static) -> Arc<Route> {
        Arc::new(Route::native("r", &["r.>"], 8, Arc::new(NativeHandler(handler))))
    }

    #[test]
    fn one_preempted_call_keeps_a_cheap_component_inline_but_steady_cost_moves_it() {
        let r = route(|_| Ok(Reply::default()));
        assert!(r.runs_inline());
        for _ in 0..20 {
            r.weigh(Duration::from_micros(3));
        }
        r.weigh(Duration::from_millis(5)); // preempted once
        assert!(r.runs_inline(), "one outlier moved it off the loop");
        let mut calls = 0;
        while r.runs_inline() {
            r.weigh(Duration::from_micros(120));
            calls += 1;
            assert!(calls < 20, "steady 120 µs calls never moved it off the loop");
        }
        for _ in 0..40 {
            r.weigh(Duration::from_micros(3));
        }
        assert!(r.runs_inline(), "cheap again, but not back on the loop");
    }

    /// Calls that keep a thread busy (the worst case for running on the
    /// loop) must still run side by side once the route sees their cost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn expensive_calls_run_in_parallel() {
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let r = {
            let (now, most) = (now.clone(), most.clone());
            route(move |_| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(3));
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(Reply::default())
            })
        };
        let bus = MemoryTransport::default();
        let sub = bus
            .subscribe(SubscribeOptions {
                pattern: "r.>".into(),
                capacity: 8,
                ..SubscribeOptions::default()
            })
            .await
            .expect("subscribe");
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        serve(r.clone(), 0, "memory", sub, &tasks, stop.clone());
        let requests: Vec<_> = (0..48)
            .map(|i| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    bus.request(Message::new(format!("r.{i}"), "x"), Duration::from_secs(10))
                        .await
                })
            })
            .collect();
        for request in requests {
            request.await.expect("request task").expect("reply");
        }
        assert!(!r.runs_inline());
        assert!(
            most.load(Ordering::SeqCst) >= 2,
            "expensive calls ran one at a time on the loop"
        );
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
