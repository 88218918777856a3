//! The router: from a subscription to calls into one component.
//!
//! One loop per subscription. It takes a concurrency permit *before* it
//! pulls the next delivery, so a component at its limit stops pulling and
//! its broker-side queue (bounded) fills instead of host memory. Each
//! delivery runs in its own task; the delivery is settled after the call,
//! never before: acked when it succeeded (and its reply was sent),
//! redelivered or dead-lettered by the error's disposition when it failed.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::{CallError, Disposition, ErrorKind};
use crate::handler::Handler;
use crate::quarantine::{Breaker, Policy};
use crate::stats::Stats;
use crate::message::Message;
use crate::runtime::InstanceMode;
use crate::transport::{Delivery, Settlement, Subscription};

/// Header naming the component that answered.
pub const COMPONENT_HEADER: &str = "Berth-Component";
/// Header with the version (content hash) of the component that answered.
pub const VERSION_HEADER: &str = "Berth-Version";

/// A component as the router sees it: its handler, its concurrency limit
/// and its counters.
pub struct Route {
    /// The component's name.
    pub name: String,
    /// Content hash of the running version.
    pub version: String,
    /// How its instances are used.
    pub mode: InstanceMode,
    /// Subject patterns it serves, for status output.
    pub subjects: Vec<String>,
    /// Where messages go.
    pub handler: Arc<dyn Handler>,
    /// `max_concurrency` permits, shared by all its subscriptions.
    pub limit: Arc<Semaphore>,
    /// Most calls in flight at once.
    pub max_concurrency: usize,
    /// Counters for status and tests; shared with the runtime, which
    /// counts refused outbound calls.
    pub stats: Arc<Stats>,
    /// Quarantines the component when it keeps trapping or timing out.
    pub breaker: Breaker,
}

/// What describes a component to the router, apart from its handler.
#[derive(Clone, Debug)]
pub struct RouteInfo {
    /// The component's name.
    pub name: String,
    /// Content hash of the running version.
    pub version: String,
    /// How its instances are used.
    pub mode: InstanceMode,
    /// Subject patterns it serves.
    pub subjects: Vec<String>,
    /// Most calls in flight at once.
    pub max_concurrency: usize,
    /// When to quarantine it.
    pub policy: Policy,
}

impl Route {
    /// A route for `handler` with its own semaphore and breaker; `stats` is
    /// shared with whoever else counts for this component.
    pub fn new(info: RouteInfo, handler: Arc<dyn Handler>, stats: Arc<Stats>) -> Self {
        Self {
            limit: Arc::new(Semaphore::new(info.max_concurrency)),
            breaker: Breaker::new(info.policy),
            name: info.name,
            version: info.version,
            mode: info.mode,
            subjects: info.subjects,
            handler,
            max_concurrency: info.max_concurrency,
            stats,
        }
    }

    /// Counts a finished call and feeds the breaker, before any reply goes
    /// out: whoever sees the reply sees the counters and the quarantine
    /// that call caused, and the next message is held if it must be.
    fn record(&self, request: bool, outcome: Result<(), &CallError>) {
        self.breaker.record(outcome, &self.name);
        self.stats.leave(request, outcome.is_err());
    }
}

/// Serves one subscription until `stop` is cancelled or the transport
/// closes. The spawned task and every call it starts are tracked by
/// `tasks`, so shutdown can wait for in-flight calls.
pub fn serve(route: Arc<Route>, transport: &'static str, mut subscription: Subscription, tasks: &TaskTracker, stop: CancellationToken) {
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
        component = %route.name,
    );
    route.stats.enter();
    let Delivery { message, mut acker } = delivery;
    async {
        let settlement = match message.reply_to.is_some().then(|| envelope(&message)) {
            Some(envelope) => {
                let result = route.handler.handle_request(message).await;
                route.record(true, result.as_ref().map(drop));
                let reply = match result {
                    Ok(r) => {
                        let mut headers = r.headers;
                        headers.push((COMPONENT_HEADER.to_owned(), route.name.clone()));
                        headers.push((VERSION_HEADER.to_owned(), route.version.clone()));
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
                            Settlement::Retry
                        }
                    },
                    None => Settlement::Ack,
                }
            }
            None => {
                let result = route.handler.handle_event(message).await;
                route.record(false, result.as_ref().map(drop));
                match result {
                    Ok(()) => Settlement::Ack,
                    Err(e) => {
                        tracing::warn!(error = %e, "event failed");
                        match e.disposition {
                            Disposition::Retry => Settlement::Retry,
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
    let error = CallError::new(ErrorKind::Overloaded, format!("component `{component}` is shutting down"));
    // A request is answered (and so done); an event goes back to the broker.
    let settlement = match error.to_reply(&message) {
        Some(reply) => match acker.reply(reply).await {
            Ok(()) => Settlement::Ack,
            Err(_) => Settlement::Retry,
        },
        None => Settlement::Retry,
    };
    settle(acker, settlement).await;
}
