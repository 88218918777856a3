//! A subscription's consumer as the router reads it, resumed on a new
//! channel (with backoff) whenever its channel or connection dies.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::{Channel, Consumer};

use super::{Inner, MAX_BACKOFF, QueueSpec, acks, delivery};

/// A consumer as the router reads it: the consumer, the acks of its
/// channel (which hold the channel), and what it takes to open it again.
pub(super) struct Consuming {
    inner: Arc<Inner>,
    spec: QueueSpec,
    consumer: Consumer,
    queue: String,
    acks: Arc<acks::Acks>,
}

impl Consuming {
    pub(super) fn new(
        inner: Arc<Inner>,
        spec: QueueSpec,
        (channel, consumer, queue): (Channel, Consumer, String),
    ) -> Self {
        let acks = Arc::new(acks::Acks::new(channel, &spec));
        Self {
            inner,
            spec,
            consumer,
            queue,
            acks,
        }
    }

    /// The next delivery. When the channel or the connection dies,
    /// reconnects with backoff and consumes again: the deliveries that were
    /// in flight on the dead channel are redelivered by the broker, and
    /// their ackers are poisoned and never ack on the new one. Read by the
    /// router directly (no forwarding task): lapin's consumer already holds
    /// at most `prefetch` deliveries.
    pub(super) async fn next(&mut self) -> crate::transport::Delivery {
        loop {
            match self.consumer.next().await {
                Some(Ok(d)) => {
                    self.acks.delivered(d.delivery_tag);
                    let origin = delivery::Origin {
                        acks: &self.acks,
                        queue: &self.queue,
                        max_deliver: self.spec.max_deliver,
                    };
                    return delivery::wrap(&self.inner, origin, d);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, binding = %self.spec.binding, "AMQP consumer lost its channel; reconnecting")
                }
                None => tracing::warn!(binding = %self.spec.binding, "AMQP consumer was cancelled; reconnecting"),
            }
            self.resume().await;
        }
    }

    async fn resume(&mut self) {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.inner.open_consumer(&self.spec).await {
                Ok((channel, consumer, queue)) => {
                    tracing::info!(binding = %self.spec.binding, "AMQP consumer resumed");
                    self.acks = Arc::new(acks::Acks::new(channel, &self.spec));
                    (self.consumer, self.queue) = (consumer, queue);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "AMQP consumer cannot resume yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
