//! The AMQP benches' load generator: requests over one connection, replies
//! on an exclusive queue, matched by correlation id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::oneshot;

/// The load generator: `in_flight` loops, each waiting for its reply.
pub struct AmqpClient {
    channel: Channel,
    reply_queue: String,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
    next: AtomicU64,
    exchange: String,
    _connection: Connection,
}

impl AmqpClient {
    /// Connects to `url`; requests go to `exchange`.
    pub async fn new(url: &str, exchange: &str) -> Arc<Self> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| {
                panic!("RabbitMQ not reachable at {url} ({e}); start it with: rabbitmq-server -detached")
            });
        let channel = connection.create_channel().await.unwrap();
        let q = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut replies = channel
            .basic_consume(
                q.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>> = Arc::default();
        let waiting = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let id = d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .and_then(|c| c.as_str().parse::<u64>().ok());
                if let Some(tx) = id.and_then(|id| waiting.lock().unwrap().remove(&id)) {
                    let _ = tx.send(());
                }
            }
        });
        Arc::new(Self {
            channel,
            reply_queue: q.name().to_string(),
            pending,
            next: AtomicU64::new(0),
            exchange: exchange.to_owned(),
            _connection: connection,
        })
    }

    /// Sends one request and waits for its reply (10 s at most).
    pub async fn call(&self, key: &str, body: &[u8]) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let props = BasicProperties::default()
            .with_reply_to(self.reply_queue.as_str().into())
            .with_correlation_id(id.to_string().into());
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("reply within 10 s")
            .unwrap();
    }
}
