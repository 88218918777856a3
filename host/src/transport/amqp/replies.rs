//! Outbound requests over AMQP: an exclusive reply queue and correlation ids.
//!
//! The host declares one exclusive, auto-deleted, broker-named queue per
//! connection and consumes it without acks (a reply nobody waits for any
//! more is simply dropped). Each request carries that queue as `reply_to`
//! and a fresh `correlation_id`; the reply is matched back by it. Requests
//! are published `mandatory`: if no queue is bound for the subject the
//! broker returns the message, and the caller gets "no responders" at once
//! instead of waiting for the timeout.
//!
//! The queue dies with its connection; after a reconnect the next request
//! declares a new one (the generation tells), and requests waiting on the
//! old one end with an error instead of hanging until their timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio::sync::oneshot;

use super::Inner;
use super::convert::{self, TRANSIENT};
use super::link::broker;
use crate::core::message::Message;
use crate::transport::{AbortOnDrop, TransportError};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Message>>>>;

/// The reply queue of the current connection, made on first use.
#[derive(Default)]
pub(super) struct Replies {
    current: tokio::sync::Mutex<Option<Arc<ReplyQueue>>>,
    next_id: AtomicU64,
}

struct ReplyQueue {
    generation: u64,
    name: String,
    pending: Pending,
    _consumer: AbortOnDrop,
}

/// Removes a request's entry however the wait ends.
struct Forget<'a> {
    pending: &'a Pending,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(&self.id);
        }
    }
}

/// Sends `message` as a request to the exchange and waits for its reply.
pub(super) async fn request(
    inner: &Arc<Inner>,
    mut message: Message,
    timeout: Duration,
) -> Result<Message, TransportError> {
    let queue = queue(inner).await?;
    let id = format!("berth-{}", inner.replies.next_id.fetch_add(1, Ordering::Relaxed));
    let (sender, receiver) = oneshot::channel();
    queue
        .pending
        .lock()
        .map_err(|_| TransportError::Closed)?
        .insert(id.clone(), sender);
    let _forget = Forget {
        pending: &queue.pending,
        id: id.clone(),
    };
    let subject = message.subject.clone();
    message.reply_to = Some(queue.name.clone());
    message.correlation_id = Some(id);
    let properties = convert::properties(&message, TRANSIENT)?;
    let returned = inner
        .send(&inner.config.exchange, &subject, &message.body, properties, true)
        .await?;
    if returned.is_some() {
        return Err(TransportError::NoResponders(subject));
    }
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(_)) => Err(TransportError::Broker(anyhow::anyhow!(
            "the connection to the broker dropped while waiting for the reply from `{subject}`"
        ))),
        Err(_) => Err(TransportError::Timeout { subject, timeout }),
    }
}

/// The reply queue on the live connection, declaring it if needed.
async fn queue(inner: &Arc<Inner>) -> Result<Arc<ReplyQueue>, TransportError> {
    let live = inner.link.live().await?;
    let mut current = inner.replies.current.lock().await;
    if let Some(queue) = current.as_ref()
        && queue.generation == live.generation
        && !queue._consumer.0.is_finished()
    {
        return Ok(queue.clone());
    }
    let channel = live
        .connection
        .create_channel()
        .await
        .map_err(broker("open a channel"))?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .map_err(broker("declare the reply queue"))?;
    let name = declared.name().to_string();
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut consumer = channel
        .basic_consume(declared.name().clone(), "".into(), no_ack, FieldTable::default())
        .await
        .map_err(broker("consume the reply queue"))?;
    let pending: Pending = Pending::default();
    let waiting = pending.clone();
    let task = tokio::spawn(async move {
        let _channel = channel; // the queue lives as long as its channel
        while let Some(Ok(d)) = consumer.next().await {
            let reply = convert::to_message(d.routing_key.as_str(), "", false, &d.properties, d.data);
            let Some(id) = reply.correlation_id.clone() else {
                tracing::debug!("reply without a correlation id dropped");
                continue;
            };
            let sender = waiting.lock().ok().and_then(|mut map| map.remove(&id));
            match sender {
                Some(sender) => drop(sender.send(reply)),
                None => tracing::debug!(correlation_id = %id, "late reply dropped: its request already ended"),
            }
        }
        // Channel gone: wake every waiter with an error.
        if let Ok(mut map) = waiting.lock() {
            map.clear();
        }
    });
    let queue = Arc::new(ReplyQueue {
        generation: live.generation,
        name,
        pending,
        _consumer: AbortOnDrop(task),
    });
    *current = Some(queue.clone());
    Ok(queue)
}
