//! One delivery's call, or one batch's, and the settling of each message:
//! its reply sent, then acked, redelivered or dead-lettered by its outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::Route;
use super::busy::{Busy, Measured};
use super::chain::{Chain, Stopped};
use super::endpoint::Endpoint;
use crate::core::error::{CallError, Disposition, ErrorKind};
use crate::core::handler::Reply;
use crate::core::message::Message;
use crate::router::versions::Version;
use crate::transport::{Delivery, Settle, Settlement};

/// Runs one delivery's call and settles it, in a `berth.handle` span.
///
/// The span is at DEBUG level, as per-request spans are in tower-http: at
/// INFO the log subscriber formats its fields for every message, which
/// cost ~15% of the host's CPU under load (BENCHMARKS.md). Warnings about
/// one message therefore name the component and subject themselves.
pub(super) async fn dispatch<A: Settle>(
    route: Arc<Route>,
    transport: &'static str,
    endpoint: Arc<Endpoint>,
    delivery: Delivery<A>,
    _permit: OwnedSemaphorePermit,
) {
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
        && let Some(trace_id) = crate::core::trace::trace_id(&delivery.message.headers)
    {
        span.record("trace_id", trace_id);
    }
    let delivery = match endpoint.chain() {
        Some(chain) => match through(&route, &endpoint, &chain, delivery).await {
            Some(passed) => passed,
            None => return,
        },
        None => delivery,
    };
    route.stats.enter();
    let Delivery { message, acker } = delivery;
    // Loaded once: this message is handled by this version, whatever
    // swaps happen meanwhile.
    let version = route.versions.active();
    let started = Instant::now();
    async {
        let envelope = envelope(&message);
        let call = async {
            match message.reply_to {
                Some(_) => version.handler.handle_request(message).await.map(Some),
                None => version.handler.handle_event(message).await.map(|()| None),
            }
        };
        let Measured {
            output: outcome,
            busy,
            finished,
        } = Busy::new(call, started).await;
        let elapsed = finished - started;
        route.weigh(busy);
        conclude(&route, &version, &endpoint, envelope, acker, outcome, elapsed).await;
    }
    .instrument(span)
    .await;
}

/// Runs several deliveries in one call of the active version's
/// [`handle_batch`](crate::core::handler::Handler::handle_batch) and settles each
/// by its own outcome, in a `berth.handle_batch` span.
///
/// Each message counts as a call of its own in the statistics, with the
/// batch's wall time as its latency (that is how long its sender waited).
/// The batch is weighed once, at its per-message share, in deciding whether
/// the component's calls stay on the loop.
pub(super) async fn dispatch_batch<A: Settle>(
    route: Arc<Route>,
    transport: &'static str,
    endpoint: Arc<Endpoint>,
    batch: Vec<(Delivery<A>, OwnedSemaphorePermit)>,
) {
    let span = tracing::debug_span!(
        "berth.handle_batch",
        otel.kind = "consumer",
        messaging.system = transport,
        messaging.batch.message_count = batch.len(),
        messaging.operation.type = "process",
        component = %route.name,
    );
    let count = batch.len();
    let mut messages = Vec::with_capacity(count);
    let mut rest = Vec::with_capacity(count);
    route.stats.enter_many(count);
    for (Delivery { message, acker }, permit) in batch {
        messages.push(message);
        rest.push((acker, permit));
    }
    let version = route.versions.active();
    let started = Instant::now();
    async {
        let call = version.handler.handle_batch(&messages);
        let Measured {
            output: outcomes,
            busy,
            finished,
        } = Busy::new(call, started).await;
        let elapsed = finished - started;
        route.weigh(busy / count.max(1) as u32);
        // A handler that answers fewer messages than it was given (a bug)
        // leaves none unsettled.
        let outcomes = outcomes.into_iter().chain(std::iter::repeat_with(|| {
            Err(CallError::new(
                ErrorKind::Trap,
                "the handler gave no outcome for this message in its batch (a bug)",
            ))
        }));
        // Where a reply waits for the broker (AMQP's publisher confirm),
        // settled side by side: in turn, a batch of 30 waited for 30 round
        // trips. Elsewhere in turn: side by side moves each message's
        // (large) future into a shared allocation, for nothing when no
        // reply waits.
        // The messages stayed here, so each is its own envelope.
        let side_by_side = rest.iter().any(|(acker, _)| acker.waits_for_broker());
        let settling = messages.into_iter().zip(rest).zip(outcomes);
        let (route, version, endpoint) = (&route, &version, &endpoint);
        if side_by_side {
            futures_util::future::join_all(settling.map(|((message, (acker, permit)), outcome)| async move {
                conclude(route, version, endpoint, message, acker, outcome, elapsed).await;
                drop(permit);
            }))
            .await;
        } else {
            // Each call's future made where it is awaited: through an
            // `async` block per message it was moved twice more, ~150
            // instructions per message (callgrind).
            for ((message, (acker, permit)), outcome) in settling {
                conclude(route, version, endpoint, message, acker, outcome, elapsed).await;
                drop(permit);
            }
        }
    }
    .instrument(span)
    .await;
}

/// Runs a delivery through its subscription's middleware: the delivery as
/// the chain passed it, or `None` once a link has answered or refused it
/// and it is settled accordingly (a refused event by the error's
/// disposition). A refusal counts against the subscription and the link,
/// not the handler's component, which never saw the message.
async fn through<A: Settle>(
    route: &Route,
    endpoint: &Endpoint,
    chain: &Chain,
    delivery: Delivery<A>,
) -> Option<Delivery<A>> {
    let Delivery { message, mut acker } = delivery;
    let envelope = envelope(&message);
    let started = Instant::now();
    let stopped = match chain.run(message).await {
        Ok((message, _)) => return Some(Delivery { message, acker }),
        Err(stopped) => stopped,
    };
    let (outcome, answer) = match stopped {
        Stopped::Respond(reply) => (Ok(()), envelope.reply(reply.body, reply.headers)),
        Stopped::Fail(e) => {
            let answer = e.to_reply(&envelope);
            (Err(e), answer)
        }
    };
    endpoint.finish(outcome.as_ref().map(|_| ()), started.elapsed());
    let settlement = match (answer, outcome) {
        (Some(reply), _) => match acker.reply(reply).await {
            Ok(()) => Settlement::Ack,
            Err(e) => Settlement::Retry(format!("could not send the middleware's answer: {e}")),
        },
        (None, Ok(())) => Settlement::Ack,
        (None, Err(e)) => {
            tracing::debug!(component = %route.name, subject = %envelope.subject, error = %e, "middleware stopped an event");
            match e.disposition {
                Disposition::Retry => Settlement::Retry(e.to_string()),
                Disposition::Reject => Settlement::Reject(e.to_string()),
            }
        }
    };
    settle(acker, settlement, &route.name).await;
    None
}

/// What settling a message needs of it once it has moved into the call:
/// where a reply goes (a request), or the subject a warning names (an
/// event).
fn envelope(message: &Message) -> Message {
    match message.reply_to {
        Some(_) => Message {
            reply_to: message.reply_to.clone(),
            correlation_id: message.correlation_id.clone(),
            ..Message::default()
        },
        None => Message {
            subject: message.subject.clone(),
            ..Message::default()
        },
    }
}

/// Records a finished call, sends a request's reply (or its error) and
/// settles the delivery: acked only once the reply is handed to the
/// broker; a failed event by its error's disposition.
async fn conclude<A: Settle>(
    route: &Route,
    version: &Arc<Version>,
    endpoint: &Endpoint,
    envelope: Message,
    mut acker: A,
    outcome: Result<Option<Reply>, CallError>,
    elapsed: Duration,
) {
    let request = envelope.reply_to.is_some();
    route.record(version, Some(endpoint), request, outcome.as_ref().map(drop), elapsed);
    let settlement = if request {
        let reply = match outcome {
            Ok(reply) => {
                let Reply { body, mut headers } = reply.unwrap_or_default();
                route.sign(version, &mut headers);
                envelope.into_reply(body, headers)
            }
            Err(e) => {
                tracing::debug!(error = %e, "request failed");
                e.to_reply(&envelope)
            }
        };
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
    } else {
        match outcome {
            Ok(_) => Settlement::Ack,
            Err(e) => {
                tracing::warn!(component = %route.name, subject = %envelope.subject, error = %e, "event failed");
                match e.disposition {
                    Disposition::Retry => Settlement::Retry(e.to_string()),
                    Disposition::Reject => Settlement::Reject(e.to_string()),
                }
            }
        }
    };
    settle(acker, settlement, &route.name).await;
}

pub(super) async fn settle<A: Settle>(acker: A, settlement: Settlement, component: &str) {
    if let Err(e) = acker.settle(settlement).await {
        tracing::warn!(component, error = %e, "could not settle delivery; the broker will redeliver it");
    }
}
