//! Where what a component sends goes: the one thing the runtime needs of a
//! broker.
//!
//! The runtime checks a guest's `publish` and `request` against its grants
//! and then hands the message on through this trait. It does not know
//! transports; the app layer connects the two (see
//! [`crate::transport::Sender`]), so the runtime and the transports stay
//! side by side, neither importing the other.

use std::time::Duration;

use async_trait::async_trait;

use crate::core::error::CallError;
use crate::core::message::Message;

/// Sends a component's outbound messages.
#[async_trait]
pub trait Outbound: Send + Sync + 'static {
    /// Sends a message; nobody listening is not an error.
    async fn publish(&self, message: Message) -> Result<(), CallError>;

    /// Sends a message and returns once the broker has it: for what must
    /// not be lost once its sender was told it went out.
    async fn publish_confirmed(&self, message: Message) -> Result<(), CallError> {
        self.publish(message).await
    }

    /// Sends a request and waits for its reply. The reply may carry an
    /// error (see [`CallError::from_reply`]); the caller interprets it.
    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, CallError>;

    /// The transport's name (`nats`, `amqp`, `memory`), which a
    /// `wasi:messaging` client connects by.
    fn kind(&self) -> &'static str {
        "unknown"
    }
}
