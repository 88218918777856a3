//! Transports: where messages come from and go to.
//!
//! One trait, one implementation per broker. A transport turns broker
//! deliveries into [`Delivery`] values and sends messages out; nothing above
//! it knows which broker it is. [`memory`] is the embedded default; [`nats`]
//! speaks to a NATS server, [`amqp`] to RabbitMQ.
//!
//! Backpressure is built into the shape: a [`Subscription`] is a bounded
//! queue, and the router only pulls the next delivery once it has capacity
//! to run it.

mod acker;
pub mod amqp;
pub mod memory;
pub mod nats;
pub mod retry;
mod subscription;

use std::time::Duration;

use async_trait::async_trait;

pub use acker::{Acker, Settle, Settlement};
pub use subscription::{Deliveries, Subscription};

use crate::core::error::{CallError, ErrorKind};
use crate::core::limits::DEFAULT_MAX_DELIVER;
use crate::core::message::Message;
use crate::core::outbound::Outbound;
use crate::core::subject::SubjectError;

/// Why a transport operation failed. Callers branch on it: a request with no
/// responders is answered at once, a timeout after waiting, a closed
/// transport means shutting down.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nobody subscribes to the subject of a request.
    #[error("no responders for `{0}`")]
    NoResponders(String),
    /// No reply within the timeout.
    #[error("no reply from `{subject}` within {timeout:?}")]
    Timeout {
        /// The request's subject.
        subject: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Subscribers are full and did not make room in time.
    #[error("subscribers of `{0}` are at capacity")]
    Overloaded(String),
    /// The message is larger than the broker accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The transport cannot do what is asked (a subscription it has no
    /// means for, a header it cannot carry).
    #[error("{0}")]
    Unsupported(String),
    /// The subject or pattern is malformed.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// The transport has shut down.
    #[error("transport is closed")]
    Closed,
    /// The broker failed in a way not listed above.
    #[error("broker error: {0:#}")]
    Broker(anyhow::Error),
}

impl From<TransportError> for CallError {
    fn from(e: TransportError) -> Self {
        let kind = match &e {
            TransportError::NoResponders(_) => ErrorKind::NoResponders,
            TransportError::Timeout { .. } => ErrorKind::Timeout,
            TransportError::Overloaded(_) | TransportError::Closed => ErrorKind::Overloaded,
            TransportError::TooLarge(_) => ErrorKind::TooLarge,
            TransportError::Subject(_) | TransportError::Unsupported(_) => {
                let mut e = CallError::new(ErrorKind::Handler, e.to_string());
                e.code = 400;
                e.name = "Bad Request".into();
                return e;
            }
            TransportError::Broker(_) => ErrorKind::Transport,
        };
        CallError::new(kind, e.to_string())
    }
}

/// How a subscription shares messages with other subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Pattern with `*` / `>` wildcards.
    pub pattern: String,
    /// Queue group: each message goes to exactly one member of the group.
    /// `None` means every subscription gets every message (fan-out).
    pub group: Option<String>,
    /// How many deliveries may wait in the subscription's queue.
    pub capacity: usize,
    /// Deliveries of a failing message before it is dead-lettered, on
    /// brokers that redeliver.
    pub max_deliver: u32,
    /// Read through a JetStream durable consumer (NATS only).
    pub stream: Option<StreamOptions>,
    /// A replicated queue (RabbitMQ's quorum queue) instead of a classic
    /// one (AMQP only).
    pub quorum: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            pattern: String::new(),
            group: None,
            capacity: 1,
            max_deliver: DEFAULT_MAX_DELIVER,
            stream: None,
            quorum: false,
        }
    }
}

/// A subscription read through a durable stream: at-least-once, with
/// dead-lettering (JetStream on NATS; refused by transports without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// The stream (created with the subscription's subject if missing).
    pub stream: String,
    /// The durable consumer's name.
    pub durable: String,
    /// Where messages that failed for good are republished.
    pub dead_letter: String,
    /// How long the broker waits for an ack before it delivers a message
    /// again: after a host dies or a connection drops, its messages wait
    /// this long.
    pub ack_wait: Duration,
    /// Copies a cluster keeps of the stream, if it is created here.
    pub replicas: Option<usize>,
}

/// One incoming message and its handle at the broker.
pub struct Delivery<A = Box<dyn Acker>> {
    /// The message itself.
    pub message: Message,
    /// Replies to and settles this delivery.
    pub acker: A,
}

/// What health and status output say about a transport.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TransportStatus {
    /// `memory`, `nats`, `amqp`.
    pub kind: &'static str,
    /// Whether the broker connection is up now.
    pub connected: bool,
    /// Times the broker or client reported dropping messages for a
    /// consumer that did not keep up (NATS slow consumers).
    pub slow_consumer_events: u64,
    /// Times the connection was lost and made again.
    pub reconnects: u64,
    /// Messages from the broker dropped because they could not be read
    /// (NATS: a subject or header that is not UTF-8); the connection
    /// stays up.
    pub malformed: u64,
}

/// A message broker, seen from the host.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Short name for logs and metrics: `memory`, `nats`, `amqp`.
    fn kind(&self) -> &'static str;

    /// Connection state and counters, for health and status.
    fn status(&self) -> TransportStatus {
        TransportStatus {
            kind: self.kind(),
            connected: true,
            slow_consumer_events: 0,
            reconnects: 0,
            malformed: 0,
        }
    }

    /// Starts receiving messages that match `options.pattern`.
    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, TransportError>;

    /// Sends a message; nobody listening is not an error.
    async fn publish(&self, message: Message) -> Result<(), TransportError>;

    /// Sends a message and returns once the broker has it, or fails: for
    /// what must not be lost after the caller was told it was sent (a
    /// key-value change). Transports whose `publish` already waits for
    /// the broker have nothing more to do.
    async fn publish_confirmed(&self, message: Message) -> Result<(), TransportError> {
        self.publish(message).await
    }

    /// Sends a request and waits for its reply. The reply may carry an error
    /// (see [`CallError::from_reply`]); that is the caller's to interpret.
    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, TransportError>;

    /// Returns once the broker has what this host sent so far (replies,
    /// acks, publishes), for a shutdown that must not leave them in a
    /// buffer. Transports that wait for the broker on every send have
    /// nothing to do.
    async fn flush(&self) -> Result<(), TransportError> {
        Ok(())
    }
}

/// Stops a subscription's forwarding task (and so the subscription at the
/// broker) when the [`Subscription`] holding it is dropped.
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A transport as the runtime sees it: where a component's publishes and
/// requests go, with the transport's errors in the shape a guest gets.
pub struct Sender(pub std::sync::Arc<dyn Transport>);

#[async_trait]
impl Outbound for Sender {
    async fn publish(&self, message: Message) -> Result<(), CallError> {
        self.0.publish(message).await.map_err(CallError::from)
    }

    async fn publish_confirmed(&self, message: Message) -> Result<(), CallError> {
        self.0.publish_confirmed(message).await.map_err(CallError::from)
    }

    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, CallError> {
        self.0.request(message, timeout).await.map_err(CallError::from)
    }

    fn kind(&self) -> &'static str {
        self.0.kind()
    }
}
