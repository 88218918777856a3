//! The broker side of one delivery: how to reply to it and settle it.

use std::future::Future;

use async_trait::async_trait;

use super::TransportError;
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

/// How the router replies to and settles a delivery, whatever the acker's
/// type. The router is generic over it, so an acker held as its own type
/// (core NATS's, see `app`'s start) runs its reply inside the router's own
/// future, with no box and no allocation, while every other transport's
/// comes as a `Box<dyn Acker>`.
pub trait Settle: Send + Sized + 'static {
    /// Sends a reply (addressed to the request's `reply_to`).
    fn reply(&mut self, reply: Message) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Acks, requeues or dead-letters the delivery.
    fn settle(self, settlement: Settlement) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// See [`Acker::waits_for_broker`].
    fn waits_for_broker(&self) -> bool;
    /// See [`Acker::kept_by_broker`].
    fn kept_by_broker(&self) -> bool;
}

impl Settle for Box<dyn Acker> {
    fn reply(&mut self, reply: Message) -> impl Future<Output = Result<(), TransportError>> + Send {
        Acker::reply(self.as_mut(), reply)
    }

    fn settle(self, settlement: Settlement) -> impl Future<Output = Result<(), TransportError>> + Send {
        Acker::settle(self, settlement)
    }

    fn waits_for_broker(&self) -> bool {
        self.as_ref().waits_for_broker()
    }

    fn kept_by_broker(&self) -> bool {
        self.as_ref().kept_by_broker()
    }
}
