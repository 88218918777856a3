//! The router: from a subscription to calls into one component.
//!
//! One loop per subscription. It takes a concurrency permit *before* it
//! pulls the next delivery, so a component at its limit stops pulling and
//! its broker-side queue (bounded) fills instead of host memory. Each
//! delivery runs in its own task; the delivery is settled after the call,
//! never before: acked when it succeeded (and its reply was sent),
//! redelivered or dead-lettered by the error's disposition when it failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

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

    /// A route for a handler that is not a wasm component (benchmarks,
    /// tests): version `native`, default policies.
    pub fn native(name: &str, subjects: &[&str], max_concurrency: usize, handler: Arc<dyn Handler>) -> Self {
        let info = RouteInfo {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrency,
            policy: Policy::default(),
            probation: Probation::default(),
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
        self.stats
            .leave(request, outcome.err().map(|e| e.kind), started.elapsed());
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
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                permit = route.limit.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_closed) => break,
                },
            };
            let delivery = tokio::select! {
                _ = stop.cancelled() => break,
                d = subscription.next() => match d {
                    Some(d) => d,
                    None => break,
                },
            };
            if let Some(n) = route.received.get(index) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            // A quarantined or suspended component takes nothing: this one
            // delivery waits unsettled (on a broker: unacked, so it is not
            // lost if the host dies) and the rest stay at the broker.
            tokio::select! {
                _ = stop.cancelled() => {
                    refuse(delivery, &route.name).await;
                    break;
                }
                _ = route.breaker.admit() => {}
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
            calls.spawn(dispatch(route.clone(), transport, delivery, permit));
        }
        // Whatever is queued but not started is handed back: requests get a
        // clear error, events go back to the broker.
        while let Some(d) = subscription.try_next() {
            refuse(d, &route.name).await;
        }
    });
}

async fn dispatch(route: Arc<Route>, transport: &'static str, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let span = tracing::info_span!(
        "berth.handle",
        otel.kind = "consumer",
        messaging.system = transport,
        messaging.destination.name = %delivery.message.subject,
        messaging.operation.type = "process",
        component = %route.name,
        trace_id = tracing::field::Empty,
    );
    if let Some(trace_id) = crate::trace::trace_id(&delivery.message.headers) {
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
                        headers.push((COMPONENT_HEADER.to_owned(), route.name.clone()));
                        headers.push((VERSION_HEADER.to_owned(), version.hash.clone()));
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
                            tracing::warn!(error = %e, "could not send reply; asking for redelivery");
                            Settlement::Retry(format!("could not send the reply: {e}"))
                        }
                    },
                    None => Settlement::Ack,
                }
            }
            None => {
                let result = version.handler.handle_event(message).await;
                route.record(&version, false, result.as_ref().map(drop), started);
                match result {
                    Ok(()) => Settlement::Ack,
                    Err(e) => {
                        tracing::warn!(error = %e, "event failed");
                        match e.disposition {
                            Disposition::Retry => Settlement::Retry(e.to_string()),
                            Disposition::Reject => Settlement::Reject(e.to_string()),
                        }
                    }
                }
            }
        };
        settle(acker, settlement).await;
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

async fn settle(acker: Box<dyn crate::transport::Acker>, settlement: Settlement) {
    if let Err(e) = acker.settle(settlement).await {
        tracing::warn!(error = %e, "could not settle delivery; the broker will redeliver it");
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
    settle(acker, settlement).await;
}
