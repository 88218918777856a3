//! The acker of a core NATS delivery: a reply goes to the request's inbox,
//! and there is nothing to settle.

use super::NatsTransport;
use crate::core::message::Message;
use crate::transport::{Settlement, TransportError};

/// Replies go to the request's inbox; core NATS has nothing to settle.
/// Held by the router as itself, not through [`Acker`](crate::transport::Acker) (see
/// [`AnyAcker`](crate::transport::AnyAcker)).
pub struct NatsAcker {
    pub(super) transport: NatsTransport,
    /// The inbox as the server sent it: a reply goes there without its
    /// subject being copied back out of a `String` (the reply's subject is
    /// this inbox anyway).
    pub(super) inbox: Option<async_nats::Subject>,
}

impl NatsAcker {
    pub(crate) async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        // Taken, not cloned: a delivery has one reply (a clone costs
        // atomic operations). Not a request: whoever replies names the
        // subject.
        let to = self.inbox.take().unwrap_or_else(|| reply.subject.into());
        self.transport.publish_to(to, None, &reply.headers, reply.body).await
    }

    /// Core NATS is at-most-once: nothing to ack, and a failed message
    /// cannot be given back, which is said rather than hidden.
    pub(crate) fn settle(self, settlement: Settlement) {
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
