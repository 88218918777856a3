//! One AMQP delivery: replying to it and settling it.
//!
//! A failed delivery follows [`crate::transport::retry`]; this file says
//! how AMQP carries its answer out. The first redelivery is a plain
//! requeue (RabbitMQ marks it `redelivered`); classic queues count no
//! further, so later ones republish the message to its own queue with a
//! `berth-attempt` header and ack the original once the copy is confirmed.
//! Every delivery carries `berth-attempt` (1, 2, ...), so a guest can tell
//! a retry the same way on AMQP and JetStream.
//!
//! Dead-lettering republishes the message, with its properties and a
//! `berth-error` header saying why, to `<exchange>.dlx` and acks the
//! original only after the broker confirmed the copy. RabbitMQ's own
//! dead-lettering (reject without requeue to an `x-dead-letter-exchange`)
//! cannot carry our reason, and would need queue arguments that clash with
//! queues declared without them.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::options::BasicNackOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::Inner;
use super::acks::Acks;
use super::convert::{self, TRANSIENT};
use crate::core::headers::{ATTEMPT, DEAD_LETTER_REASON, ORIGINAL_EXCHANGE, ORIGINAL_SUBJECT};
use crate::core::message::Message;
use crate::transport::retry::{self, Next};
use crate::transport::{Acker, Delivery, Settlement, TransportError};

/// Where a delivery came from.
pub(super) struct Origin<'a> {
    /// The acks of its channel; the delivery is already recorded there.
    /// Holding them keeps the channel open while the delivery is
    /// unsettled (lapin closes a channel when its last handle goes).
    pub acks: &'a Arc<Acks>,
    pub queue: &'a str,
    pub max_deliver: u32,
}

/// Turns a lapin delivery into the router's, keeping what settling needs.
pub(super) fn wrap(inner: &Arc<Inner>, origin: Origin<'_>, d: lapin::message::Delivery) -> Delivery {
    let lapin::message::Delivery {
        delivery_tag,
        exchange,
        routing_key,
        redelivered,
        properties,
        data,
        acker,
        ..
    } = d;
    let mut message = convert::to_message(routing_key.as_str(), exchange.as_str(), redelivered, &properties, data);
    if exchange.as_str().is_empty()
        && let Some(subject) = message.header(ORIGINAL_SUBJECT)
    {
        message.subject = subject.to_owned();
    }
    let attempt = attempt(&mut message, exchange.as_str().is_empty(), redelivered);
    let acker = AmqpAcker {
        inner: inner.clone(),
        acks: origin.acks.clone(),
        tag: delivery_tag,
        queue: origin.queue.to_owned(),
        max_deliver: origin.max_deliver,
        attempt,
        acker,
        redelivered,
        routing_key: message.subject.clone(),
        body: message.body.clone(),
        properties,
    };
    Delivery {
        message,
        acker: Box::new(acker),
    }
}

/// Which delivery of its message this is, also stated in the message's
/// `berth-attempt` header (every delivery says which it is, as on
/// JetStream). Only the host's own retry copies, sent straight to the queue
/// through the default exchange, count in that header; on a message
/// published through the exchange it was its publisher's (a guest that
/// passed on the headers of a delivery it handled, say) and is replaced:
/// trusted, a copy taken from a third delivery would arrive as one and
/// be dead-lettered early.
fn attempt(message: &mut Message, retry_copy: bool, redelivered: bool) -> u32 {
    if retry_copy && let Some(n) = message.header(ATTEMPT).and_then(|a| a.parse().ok()) {
        return n;
    }
    let n: u32 = if redelivered { 2 } else { 1 };
    message.set_header(ATTEMPT, n.to_string());
    n
}

struct AmqpAcker {
    inner: Arc<Inner>,
    /// Where its ack goes, coalesced with its neighbours'; also keeps
    /// its channel open while it is unsettled.
    acks: Arc<Acks>,
    tag: u64,
    /// The queue it came from, for retries past the first.
    queue: String,
    max_deliver: u32,
    /// Which delivery of this message this is, from 1.
    attempt: u32,
    acker: lapin::Acker,
    redelivered: bool,
    /// The subject as first published (a retry is routed by queue name).
    routing_key: String,
    body: Bytes,
    properties: BasicProperties,
}

impl AmqpAcker {
    async fn ack(&self) -> Result<(), TransportError> {
        self.acks.ack(self.tag).await;
        if self.acker.poisoned() {
            // Its channel died: the broker has already requeued it.
            tracing::debug!(subject = %self.routing_key, "delivery's channel is gone; the broker redelivers it");
        }
        Ok(())
    }

    async fn requeue(&self) -> Result<(), TransportError> {
        self.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map_err(super::link::broker("requeue a delivery"))?;
        self.acks.settled(self.tag).await;
        Ok(())
    }

    /// Delivers the message again: a requeue the first time, a copy to its
    /// own queue after that (see the module docs).
    async fn redeliver(&self) -> Result<(), TransportError> {
        if self.attempt == 1 && !self.redelivered {
            return self.requeue().await;
        }
        let mut table = self.properties.headers().clone().unwrap_or_default();
        let next = (self.attempt + 1).to_string();
        put(&mut table, ATTEMPT, &next);
        put(&mut table, ORIGINAL_SUBJECT, &self.routing_key);
        let properties = self.properties.clone().with_headers(table);
        // The default exchange routes by queue name: straight back to us.
        match self.inner.send("", &self.queue, &self.body, properties, false).await {
            Ok(_) => self.ack().await,
            Err(e) => {
                tracing::warn!(error = %e, subject = %self.routing_key, "cannot re-send for a retry; requeueing instead");
                self.requeue().await
            }
        }
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), TransportError> {
        let mut table = self.properties.headers().clone().unwrap_or_default();
        // On which delivery it failed: the host's count, as the guest saw it.
        put(&mut table, ATTEMPT, &self.attempt.to_string());
        put(&mut table, DEAD_LETTER_REASON, reason);
        let properties = self
            .properties
            .clone()
            .with_headers(with_origin(table, &self.inner.config.exchange));
        let dlx = self.inner.config.dead_letter_exchange();
        match self
            .inner
            .send(&dlx, &self.routing_key, &self.body, properties, false)
            .await
        {
            Ok(_) => {
                tracing::warn!(subject = %self.routing_key, %reason, exchange = %dlx, "event dead-lettered");
                self.ack().await
            }
            Err(e) => {
                // Never drop it: back to its queue, to be tried again.
                tracing::error!(error = %e, subject = %self.routing_key, "cannot dead-letter; requeueing instead");
                self.requeue().await?;
                Err(e)
            }
        }
    }
}

fn with_origin(mut table: FieldTable, exchange: &str) -> FieldTable {
    put(&mut table, ORIGINAL_EXCHANGE, exchange);
    table
}

/// Sets one of the host's own headers in a header table, as text.
fn put(table: &mut FieldTable, name: &str, value: &str) {
    table.insert(name.into(), AMQPValue::LongString(LongString::from(value.as_bytes())));
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        // Replies go to the default exchange, which routes by queue name.
        let properties = convert::properties(&reply, TRANSIENT)?;
        self.inner
            .send("", &reply.subject, &reply.body, properties, false)
            .await
            .map(drop)
    }

    async fn settle(self: Box<Self>, settlement: Settlement) -> Result<(), TransportError> {
        match retry::next(settlement, self.attempt, self.max_deliver) {
            Next::Ack => self.ack().await,
            Next::Release => self.requeue().await,
            Next::Redeliver { .. } => self.redeliver().await,
            Next::DeadLetter(reason) => self.dead_letter(&reason).await,
        }
    }

    /// A reply waits for its publisher confirm.
    fn waits_for_broker(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publishers_attempt_header_is_replaced_by_the_brokers_count() {
        let mut forwarded = Message::new("orders.enriched", "x").with_header("Berth-Attempt", "3");
        assert_eq!(attempt(&mut forwarded, false, false), 1);
        assert_eq!(forwarded.header(ATTEMPT), Some("1"));
        assert_eq!(forwarded.headers.len(), 1, "{:?}", forwarded.headers);
        let mut requeued = Message::new("orders.created", "x").with_header(ATTEMPT, "9");
        assert_eq!(attempt(&mut requeued, false, true), 2);
        assert_eq!(requeued.header(ATTEMPT), Some("2"));
    }

    #[test]
    fn the_hosts_own_retry_copy_keeps_its_count() {
        let mut copy = Message::new("orders.created", "x").with_header(ATTEMPT, "4");
        assert_eq!(attempt(&mut copy, true, false), 4);
        assert_eq!(copy.header(ATTEMPT), Some("4"));
        // A copy whose count is unreadable is counted as the broker sees it.
        let mut garbled = Message::new("orders.created", "x").with_header(ATTEMPT, "four");
        assert_eq!(attempt(&mut garbled, true, true), 2);
        assert_eq!(garbled.header(ATTEMPT), Some("2"));
    }
}
