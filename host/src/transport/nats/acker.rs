//! The acker of a core NATS delivery: a reply goes to the request's inbox,
//! and there is nothing to settle.
//!
//! It implements [`Settle`] itself, so the router, which the app layer
//! hands core NATS subscriptions as this type, runs its reply (an
//! async-nats publish) inside its own future: no box for the acker or
//! its futures, on the transport that carries the most messages per
//! second. Behind the [`Acker`] trait it serves whoever takes any
//! transport's subscription.

use async_trait::async_trait;

use super::NatsTransport;
use crate::core::message::Message;
use crate::transport::{Acker, Settle, Settlement, TransportError};

/// Replies go to the request's inbox; core NATS has nothing to settle.
pub struct NatsAcker {
    pub(super) transport: NatsTransport,
    /// The inbox as the server sent it: a reply goes there without its
    /// subject being copied back out of a `String` (the reply's subject is
    /// this inbox anyway).
    pub(super) inbox: Option<async_nats::Subject>,
}

impl NatsAcker {
    async fn send_reply(&mut self, reply: Message) -> Result<(), TransportError> {
        // Taken, not cloned: a delivery has one reply (a clone costs
        // atomic operations). Not a request: whoever replies names the
        // subject.
        let to = self.inbox.take().unwrap_or_else(|| reply.subject.into());
        self.transport.publish_to(to, None, &reply.headers, reply.body).await
    }

    /// Core NATS is at-most-once: nothing to ack, and a failed message
    /// cannot be given back, which is said rather than hidden.
    fn conclude(settlement: Settlement) {
        match settlement {
            Settlement::Ack => {}
            Settlement::Release => tracing::warn!(
                "event not handled before shutdown is dropped: core NATS keeps nothing to give it back to"
            ),
            Settlement::Retry(reason) => {
                tracing::warn!(%reason, "core NATS cannot redeliver; the failed event is dropped (use JetStream for at-least-once)")
            }
            Settlement::Reject(reason) => {
                tracing::warn!(%reason, "core NATS has no dead-letter queue; the rejected event is dropped")
            }
        }
    }
}

impl Settle for NatsAcker {
    async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        self.send_reply(reply).await
    }

    async fn settle(self, settlement: Settlement) -> Result<(), TransportError> {
        Self::conclude(settlement);
        Ok(())
    }

    fn waits_for_broker(&self) -> bool {
        false
    }

    /// Nobody keeps a core NATS message: its requester waits for it.
    fn kept_by_broker(&self) -> bool {
        false
    }
}

#[async_trait]
impl Acker for NatsAcker {
    async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        self.send_reply(reply).await
    }

    async fn settle(self: Box<Self>, settlement: Settlement) -> Result<(), TransportError> {
        Self::conclude(settlement);
        Ok(())
    }

    fn kept_by_broker(&self) -> bool {
        false
    }
}
