//! The in-memory transport: a NATS-like bus inside the process.
//!
//! It is the embedded default, so a Berth host runs with no broker at all,
//! and it is what tests and benchmarks use to measure the host itself.
//! Semantics follow NATS core: `*`/`>` wildcards, queue groups (each message
//! to one member), fan-out to plain subscribers, request/reply through
//! unique inbox subjects, and an immediate "no responders" when nobody
//! listens to a request.
//!
//! Unlike NATS core it never drops a message on a slow consumer: a publish
//! waits for room in a full subscriber queue, up to `send_timeout`, and then
//! fails with [`TransportError::Overloaded`] so the sender knows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{Acker, Delivery, Settlement, SubscribeOptions, Subscription, Transport, TransportError};
use crate::core::message::Message;
use crate::core::subject::{Pattern, validate_subject};
use table::{Entry, Table};

/// Prefix of the subjects replies are sent to.
const INBOX_PREFIX: &str = "_INBOX.";

/// A cheap, cloneable handle to one in-process bus.
#[derive(Clone)]
pub struct MemoryTransport {
    bus: Arc<Bus>,
}

struct Bus {
    subscriptions: RwLock<Table>,
    /// Requests waiting for their reply, by inbox subject.
    inboxes: Mutex<HashMap<String, oneshot::Sender<Message>>>,
    next_id: AtomicU64,
    /// Spreads queue-group deliveries over members.
    rotation: AtomicUsize,
    /// How long a publish waits for room in a full subscriber queue.
    send_timeout: Duration,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

impl MemoryTransport {
    /// A new, empty bus. `send_timeout` bounds how long a publish waits on a
    /// full subscriber before it fails as overloaded.
    pub fn new(send_timeout: Duration) -> Self {
        Self {
            bus: Arc::new(Bus {
                subscriptions: RwLock::new(Table::default()),
                inboxes: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                rotation: AtomicUsize::new(0),
                send_timeout,
            }),
        }
    }
}

impl Bus {
    /// For each delivery the message needs, the senders that may take it:
    /// one per plain subscription, all members per queue group.
    fn targets(&self, subject: &str) -> Vec<Vec<mpsc::Sender<Delivery>>> {
        let subs = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        let mut plain = Vec::new();
        let mut groups: HashMap<&str, Vec<mpsc::Sender<Delivery>>> = HashMap::new();
        for entry in subs.matching(subject) {
            match &entry.group {
                None => plain.push(vec![entry.sender.clone()]),
                Some(g) => groups.entry(g).or_default().push(entry.sender.clone()),
            }
        }
        plain.extend(groups.into_values());
        plain
    }

    async fn publish(self: &Arc<Self>, message: Message) -> Result<(), TransportError> {
        validate_subject(&message.subject)?;
        if message.subject.starts_with(INBOX_PREFIX) {
            let waiting = self
                .inboxes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&message.subject);
            if let Some(reply) = waiting {
                // The requester may have timed out meanwhile; nothing to do then.
                let _ = reply.send(message);
                return Ok(());
            }
        }
        let mut result = Ok(());
        for candidates in self.targets(&message.subject) {
            if let Err(e) = self.deliver(candidates, message.clone()).await {
                result = Err(e);
            }
        }
        result
    }

    /// Hands one delivery to the first candidate with room, starting at a
    /// rotating position; if all are full, waits on one of them.
    async fn deliver(
        self: &Arc<Self>,
        candidates: Vec<mpsc::Sender<Delivery>>,
        message: Message,
    ) -> Result<(), TransportError> {
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % candidates.len();
        let subject = message.subject.clone();
        let mut delivery = self.delivery(message);
        for i in 0..candidates.len() {
            match candidates[(start + i) % candidates.len()].try_send(delivery) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d)) => delivery = d,
            }
        }
        let waited = tokio::time::timeout(self.send_timeout, candidates[start].send(delivery)).await;
        match waited {
            Ok(Ok(())) => Ok(()),
            // Unsubscribed while we waited: like NATS, nobody gets it.
            Ok(Err(_closed)) => Ok(()),
            Err(_elapsed) => Err(TransportError::Overloaded(subject)),
        }
    }

    fn delivery(self: &Arc<Self>, message: Message) -> Delivery {
        Delivery {
            message,
            acker: Box::new(MemoryAcker {
                bus: Arc::downgrade(self),
            }),
        }
    }

    fn has_subscribers(&self, subject: &str) -> bool {
        let subs = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        subs.matching(subject).any(|e| !e.sender.is_closed())
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, TransportError> {
        if let Some(stream) = &options.stream {
            return Err(TransportError::Unsupported(format!(
                "stream `{}` is a NATS JetStream subscription; the memory transport has none",
                stream.stream
            )));
        }
        let pattern = Pattern::parse(&options.pattern)?;
        let (sender, receiver) = mpsc::channel(options.capacity.max(1));
        let id = self.bus.next_id.fetch_add(1, Ordering::Relaxed);
        self.bus
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Entry {
                id,
                pattern,
                group: options.group,
                sender,
            });
        let guard = Unsubscribe {
            bus: Arc::downgrade(&self.bus),
            pattern: options.pattern,
            id,
        };
        Ok(Subscription::new(receiver, guard))
    }

    async fn publish(&self, message: Message) -> Result<(), TransportError> {
        self.bus.publish(message).await
    }

    async fn request(&self, mut message: Message, timeout: Duration) -> Result<Message, TransportError> {
        validate_subject(&message.subject)?;
        if !self.bus.has_subscribers(&message.subject) {
            return Err(TransportError::NoResponders(message.subject));
        }
        let inbox = format!("{INBOX_PREFIX}{}", self.bus.next_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        self.bus
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(inbox.clone(), sender);
        // Removes the inbox however this future ends: reply, timeout, error,
        // or the caller dropping it half-way.
        let _inbox = Inbox {
            bus: &self.bus,
            subject: inbox.clone(),
        };
        message.reply_to = Some(inbox);
        let subject = message.subject.clone();
        self.bus.publish(message).await?;
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(TransportError::Closed),
            Err(_elapsed) => Err(TransportError::Timeout { subject, timeout }),
        }
    }
}

/// A request's reply inbox, registered while the request waits.
struct Inbox<'a> {
    bus: &'a Bus,
    subject: String,
}

impl Drop for Inbox<'_> {
    fn drop(&mut self) {
        self.bus
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.subject);
    }
}

/// Removes a subscription from the bus when its [`Subscription`] is dropped.
struct Unsubscribe {
    bus: Weak<Bus>,
    pattern: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            let mut subs = bus.subscriptions.write().unwrap_or_else(|p| p.into_inner());
            subs.remove(&self.pattern, self.id);
        }
    }
}

struct MemoryAcker {
    bus: Weak<Bus>,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        let bus = self.bus.upgrade().ok_or(TransportError::Closed)?;
        bus.publish(reply).await
    }

    async fn settle(self: Box<Self>, settlement: Settlement) -> Result<(), TransportError> {
        // The in-memory bus keeps nothing to redeliver from; say so rather
        // than pretend, so a lost event is never silent.
        match settlement {
            Settlement::Ack => {}
            Settlement::Release => tracing::warn!(
                "event not handled before shutdown is dropped: the memory transport keeps nothing to give it back to"
            ),
            Settlement::Retry(reason) => {
                tracing::warn!(%reason, "memory transport cannot redeliver; failed event dropped")
            }
            Settlement::Reject(reason) => {
                tracing::warn!(%reason, "memory transport has no dead-letter queue; rejected event dropped")
            }
        }
        Ok(())
    }
}

mod table;
#[cfg(test)]
mod tests;
