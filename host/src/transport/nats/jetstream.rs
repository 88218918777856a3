//! JetStream subscriptions on the NATS transport: at-least-once delivery.
//!
//! A subscription that names a `stream` reads through a durable pull
//! consumer on it (stream and consumer are created if missing). The
//! consumer's `max_ack_pending` is the component's `max_concurrency`, so
//! the server hands out only what the component has room for; nothing is
//! pulled into host memory beyond that. A message is acked only after its
//! call succeeded, and only on the connection it arrived on (see
//! [`JsAcker::conclude`]); a failed one follows [`crate::transport::retry`]: a
//! redelivery is a nak with the policy's delay, a dead letter is the
//! message republished with its reason (`berth-error` header) to the
//! dead-letter subject and then terminated, so the server stops
//! redelivering it.
//!
//! The guest sees `berth-attempt` (the delivery count), as on AMQP. If
//! the connection drops, the pull is started again once the client has
//! reconnected; messages that were in flight are redelivered by the server
//! after their ack wait (the subscription's, from the manifest or the
//! call timeout); while a message is held, queued or in its call, it is
//! reported as in progress ([`super::progress`]), so a call longer than the
//! ack wait is not redone beside itself. The server's own `max_deliver` is off: it would drop a
//! message silently that was redelivered for waiting too long, where
//! Berth dead-letters with a reason.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::convert::{header_value, to_nats_headers};
use super::progress::{InProgress, Tracked};
use super::{NatsTransport, from_nats};
use crate::core::headers;
use crate::core::message::Message;
use crate::transport::retry::{self, FIRST_BACKOFF, MAX_BACKOFF, Next};
use crate::transport::{
    AbortOnDrop, Acker, Delivery, Settlement, StreamOptions, SubscribeOptions, Subscription, TransportError,
};

fn broker(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Broker(anyhow::anyhow!("JetStream: {what}: {e}"))
}

/// Subscribes through a durable pull consumer; see the module docs.
pub(super) async fn subscribe(
    transport: &NatsTransport,
    options: &SubscribeOptions,
    stream: &StreamOptions,
) -> Result<Subscription, TransportError> {
    crate::core::subject::validate_subject(&stream.dead_letter)?;
    let js = jetstream::new(transport.client().clone());
    let created = js
        .get_or_create_stream(jetstream::stream::Config {
            name: stream.stream.clone(),
            subjects: vec![options.pattern.clone()],
            num_replicas: stream.replicas.unwrap_or(1),
            ..Default::default()
        })
        .await
        .map_err(|e| broker(&format!("cannot get or create stream `{}`", stream.stream), e))?;
    let capacity = options.capacity.max(1);
    let consumer: jetstream::consumer::PullConsumer = created
        .get_or_create_consumer(
            &stream.durable,
            pull::Config {
                durable_name: Some(stream.durable.clone()),
                filter_subject: options.pattern.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: stream.ack_wait,
                // The server never gives a message up on its own: a message
                // redelivered after its ack wait (a host that died, a call
                // that was still queued) would otherwise be dropped
                // silently once it reached max_deliver. Berth counts the
                // deliveries and dead-letters with the reason instead.
                max_deliver: -1,
                max_ack_pending: capacity as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            broker(
                &format!(
                    "cannot get or create consumer `{}` on `{}`",
                    stream.durable, stream.stream
                ),
                e,
            )
        })?;
    let mut messages = pull_stream(&consumer, capacity).await?;
    let (sender, receiver) = mpsc::channel(capacity);
    let (transport, stream, max_deliver) = (transport.clone(), stream.clone(), options.max_deliver.max(1));
    let in_progress = InProgress::new(transport.client().clone());
    let task = tokio::spawn(async move {
        let _keep_alive = AbortOnDrop(tokio::spawn(in_progress.clone().keep_alive(stream.ack_wait)));
        loop {
            while let Some(next) = messages.next().await {
                match next {
                    Ok(m) => {
                        // Read before the call can publish anything.
                        let connection = transport.connection();
                        let delivery = wrap(&transport, &stream, max_deliver, &in_progress, connection, m);
                        if sender.send(delivery).await.is_err() {
                            return; // unsubscribed
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, stream = %stream.stream, consumer = %stream.durable, "JetStream pull interrupted; starting it again");
                        break;
                    }
                }
            }
            // Start pulling again, waiting out a reconnect.
            let mut wait = FIRST_BACKOFF;
            loop {
                if sender.is_closed() {
                    return;
                }
                match pull_stream(&consumer, capacity).await {
                    Ok(m) => {
                        messages = m;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?wait, "JetStream pull cannot start yet");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    });
    Ok(Subscription::new(receiver, AbortOnDrop(task)))
}

async fn pull_stream(
    consumer: &jetstream::consumer::PullConsumer,
    capacity: usize,
) -> Result<pull::Stream, TransportError> {
    consumer
        .stream()
        .max_messages_per_batch(capacity)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| broker("cannot start pulling messages", e))
}

fn wrap(
    transport: &NatsTransport,
    stream: &StreamOptions,
    max_deliver: u32,
    in_progress: &std::sync::Arc<InProgress>,
    connection: u64,
    m: jetstream::Message,
) -> Delivery {
    let delivered = m.info().map(|i| u32::try_from(i.delivered).unwrap_or(1)).unwrap_or(1);
    let progress = m.message.reply.clone().map(|ack| in_progress.track(ack));
    let jetstream::Message { mut message, .. } = m;
    let ack_subject = message.reply.take();
    let mut message = from_nats(message);
    // A JetStream message's reply subject is its ack address, not a
    // requester waiting: it is an event.
    message.reply_to = None;
    // The server's count, not a copy its publisher passed on.
    message.set_header(headers::ATTEMPT, delivered.to_string());
    Delivery {
        acker: Box::new(JsAcker {
            transport: transport.clone(),
            ack_subject,
            connection,
            delivered,
            max_deliver,
            dead_letter: stream.dead_letter.clone(),
            message: message.clone(),
            progress,
        }),
        message,
    }
}

struct JsAcker {
    transport: NatsTransport,
    /// Where the server takes this delivery's ack.
    ack_subject: Option<async_nats::Subject>,
    /// The client's connection number when the message was delivered:
    /// everything the call published went out after it.
    connection: u64,
    delivered: u32,
    max_deliver: u32,
    dead_letter: String,
    /// Kept for dead-lettering; the body is shared, not copied.
    message: Message,
    /// Reported as in progress until settled (or dropped unsettled).
    progress: Option<Tracked>,
}

impl JsAcker {
    fn ack_subject(&self) -> Result<async_nats::Subject, TransportError> {
        self.ack_subject
            .clone()
            .ok_or_else(|| broker("cannot settle a message", "it has no ack subject"))
    }

    /// Sends a nak (or a nak with a delay): the message comes again
    /// whatever went missing.
    async fn nak(&self, delay: Option<Duration>) -> Result<(), TransportError> {
        self.transport
            .client()
            .publish(self.ack_subject()?, AckKind::Nak(delay).into())
            .await
            .map_err(|e| broker("cannot settle a message", e))
    }

    /// Sends an ack or a term, which end the message for good, only on the
    /// connection the message came on, behind everything the call (and a
    /// dead letter) published: the server then has those first. After a
    /// reconnect they may have died with the old connection, so the client
    /// sends a nak instead and the message is handled again, at least once.
    /// Not waited for, as an ack is not: a settle that waits for the
    /// client's connection task costs a third of the throughput.
    async fn conclude(&self, kind: AckKind) -> Result<(), TransportError> {
        self.transport
            .client()
            .publish_on_connection(
                self.connection,
                self.ack_subject()?,
                kind.into(),
                Some(AckKind::Nak(None).into()),
            )
            .await
            .map_err(|e| broker("cannot settle a message", e))
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), TransportError> {
        // The headers came from NATS, so they convert; the reason may span lines.
        let mut map = to_nats_headers(&self.message.headers).unwrap_or_default();
        map.insert(headers::DEAD_LETTER_REASON, header_value(reason));
        map.insert(headers::ORIGINAL_SUBJECT, header_value(&self.message.subject));
        let sent = self
            .transport
            .client()
            .publish_with_headers(self.dead_letter.clone(), map, self.message.body.clone())
            .await;
        match sent {
            Ok(()) => {
                tracing::warn!(subject = %self.message.subject, dead_letter = %self.dead_letter, %reason, "message dead-lettered");
                self.conclude(AckKind::Term).await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot dead-letter; leaving the message to be redelivered");
                self.nak(Some(MAX_BACKOFF)).await
            }
        }
    }
}

#[async_trait]
impl Acker for JsAcker {
    async fn reply(&mut self, _reply: Message) -> Result<(), TransportError> {
        Ok(()) // JetStream deliveries are events: nobody waits for a reply
    }

    async fn settle(mut self: Box<Self>, settlement: Settlement) -> Result<(), TransportError> {
        // Settled now: no in-progress report may follow the ack.
        self.progress = None;
        match retry::next(settlement, self.delivered, self.max_deliver) {
            Next::Ack => self.conclude(AckKind::Ack).await,
            Next::Release => self.nak(None).await,
            Next::Redeliver { delay } => self.nak(Some(delay)).await,
            Next::DeadLetter(reason) => self.dead_letter(&reason).await,
        }
    }
}
