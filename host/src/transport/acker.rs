//! The broker side of one delivery: how to reply to it and settle it.

use async_trait::async_trait;

use super::TransportError;
use super::nats::NatsAcker;
use crate::core::message::Message;

/// What to do with a delivery once its call is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Done: remove it from the broker.
    Ack,
    /// Not handled, through no fault of the message (the host is shutting
    /// down): give it back to the broker as if never delivered.
    Release,
    /// Failed, may succeed later: redeliver, and dead-letter with the reason
    /// once the broker's retries are spent.
    Retry(String),
    /// Failed for good: dead-letter at once, with the reason.
    Reject(String),
}

/// The broker side of one delivery: how to reply to it and settle it.
#[async_trait]
pub trait Acker: Send {
    /// Sends a reply (addressed to the request's `reply_to`).
    async fn reply(&mut self, reply: Message) -> Result<(), TransportError>;
    /// Acks, requeues or dead-letters the delivery.
    async fn settle(self: Box<Self>, settlement: Settlement) -> Result<(), TransportError>;
    /// Whether replying or settling waits for the broker (a publisher
    /// confirm). The router then settles a batch's messages side by side;
    /// otherwise in turn, which costs less per message when nothing waits.
    fn waits_for_broker(&self) -> bool {
        false
    }
    /// Whether the broker keeps the message while it is unsettled (and
    /// gives it to another consumer if this one goes away). Where it does
    /// not (core NATS), a request the component cannot take now is better
    /// answered at once than left to its caller's timeout.
    fn kept_by_broker(&self) -> bool {
        true
    }
}

/// A delivery's [`Acker`], as the router holds it.
///
/// Core NATS's, the transport that carries the most messages per second,
/// is held as itself: its reply, an async-nats publish, then runs inside
/// the router's own future instead of as a boxed future of its own, and
/// the acker itself is not boxed. Under NATS load that was three
/// allocations and a ~1 KB copy per message (callgrind, BENCHMARKS.md
/// "Instructions per message"). Every other transport's goes through the
/// trait.
pub enum AnyAcker {
    /// Core NATS: replies to the request's inbox, settles nothing.
    Nats(NatsAcker),
    /// Any other transport's.
    Boxed(Box<dyn Acker>),
}

impl AnyAcker {
    /// Holds `acker` behind the trait.
    pub fn boxed(acker: impl Acker + 'static) -> Self {
        Self::Boxed(Box::new(acker))
    }

    /// Sends a reply (addressed to the request's `reply_to`).
    pub async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        match self {
            Self::Nats(acker) => acker.reply(reply).await,
            Self::Boxed(acker) => acker.reply(reply).await,
        }
    }

    /// Acks, requeues or dead-letters the delivery.
    pub async fn settle(self, settlement: Settlement) -> Result<(), TransportError> {
        match self {
            Self::Nats(acker) => {
                acker.settle(settlement);
                Ok(())
            }
            Self::Boxed(acker) => acker.settle(settlement).await,
        }
    }

    /// See [`Acker::waits_for_broker`].
    pub fn waits_for_broker(&self) -> bool {
        match self {
            Self::Nats(_) => false,
            Self::Boxed(acker) => acker.waits_for_broker(),
        }
    }

    /// See [`Acker::kept_by_broker`].
    pub fn kept_by_broker(&self) -> bool {
        match self {
            Self::Nats(_) => false,
            Self::Boxed(acker) => acker.kept_by_broker(),
        }
    }
}
