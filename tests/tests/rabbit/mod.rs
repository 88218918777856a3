//! A plain lapin client for the AMQP tests: what an outside service on the
//! same RabbitMQ would do (RPC with `reply_to` and `correlation_id`,
//! publishing events, reading bound queues), on an exchange of its own.

#![allow(dead_code)] // each test binary uses part of it

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

/// The broker every AMQP test talks to.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How long a test waits for one message before it fails.
const WAIT: Duration = Duration::from_secs(10);

/// Fails (never skips) with how to start RabbitMQ when it is not running.
pub async fn connect() -> Connection {
    match Connection::connect(AMQP_URL, ConnectionProperties::default()).await {
        Ok(c) => c,
        Err(e) => panic!(
            "RabbitMQ is not reachable on 127.0.0.1:5672 as guest/guest ({e}). Start it with:\n  rabbitmq-server -detached"
        ),
    }
}

/// A name no other test run uses.
pub fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{what}{}n{nanos}", std::process::id())
}

/// A client with its own exchange.
pub struct Rabbit {
    pub connection: Connection,
    pub channel: Channel,
    pub exchange: String,
}

/// A header of a delivery as text.
pub fn header(d: &Delivery, name: &str) -> Option<String> {
    let value = d.properties.headers().as_ref()?.inner().get(name)?.clone();
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        other => format!("{other:?}"),
    })
}

fn table(headers: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in headers {
        t.insert((*k).into(), AMQPValue::LongString(LongString::from(v.as_bytes())));
    }
    t
}

impl Rabbit {
    /// Connects and declares a fresh topic exchange (the host would too).
    pub async fn new() -> Self {
        let connection = connect().await;
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let exchange = unique("berth-test-");
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare exchange");
        Self {
            connection,
            channel,
            exchange,
        }
    }

    /// A service name for hosts of this test.
    pub fn service(&self) -> String {
        format!("{}-svc", self.exchange)
    }

    /// The `[host]` and `[transports.amqp]` tables of a manifest for a host
    /// named `service` on this client's exchange.
    pub fn host_toml(&self, service: &str) -> String {
        format!(
            "[host]\nname = \"{service}\"\ntransport = \"amqp\"\nreply_headers = true\n\
             [transports.amqp]\nurl = \"{AMQP_URL}\"\nexchange = \"{}\"\n",
            self.exchange
        )
    }

    /// Publishes an event to the exchange and waits for the broker's confirm.
    pub async fn publish(&self, key: &str, body: &[u8], headers: &[(&str, &str)]) {
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_headers(table(headers)),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "broker confirmed the publish");
    }

    /// A broker-named queue that lives as long as this client's connection.
    async fn exclusive_queue(&self) -> String {
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = self
            .channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .expect("declare an exclusive queue");
        queue.name().to_string()
    }

    /// An exclusive queue bound to the exchange with `binding`.
    pub async fn bind(&self, binding: &str) -> Consumer {
        let queue = self.exclusive_queue().await;
        self.channel
            .queue_bind(
                queue.as_str().into(),
                self.exchange.as_str().into(),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        self.consume(&queue).await
    }

    /// Consumes a queue without acks.
    pub async fn consume(&self, queue: &str) -> Consumer {
        self.channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume")
    }

    /// Consumes the dead-letter queue the host declared.
    pub async fn consume_dead(&self) -> Consumer {
        self.consume(&format!("{}.dead", self.exchange)).await
    }

    /// How many messages wait in the dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        self.channel
            .queue_declare(
                format!("{}.dead", self.exchange).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0)
    }

    /// The next delivery of `consumer`, or a test failure after a while.
    pub async fn next(&self, consumer: &mut Consumer) -> Delivery {
        match tokio::time::timeout(WAIT, consumer.next()).await {
            Ok(Some(Ok(d))) => d,
            other => panic!("no message within {WAIT:?}: {other:?}"),
        }
    }

    /// An RPC the classic AMQP way: an exclusive reply queue, `reply_to`
    /// and a `correlation_id` that the reply must carry back.
    pub async fn call(&self, key: &str, body: &[u8], headers: &[(&str, &str)]) -> Delivery {
        let mut replies = self.bind_reply_queue().await;
        let id = unique("corr-");
        let properties = BasicProperties::default()
            .with_reply_to(replies.0.as_str().into())
            .with_correlation_id(id.as_str().into())
            .with_headers(table(headers));
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish request")
            .await
            .expect("confirm request");
        let reply = self.next(&mut replies.1).await;
        assert_eq!(
            reply.properties.correlation_id().as_ref().map(|c| c.as_str()),
            Some(id.as_str()),
            "the reply carries the request's correlation id"
        );
        reply
    }

    async fn bind_reply_queue(&self) -> (String, Consumer) {
        let name = self.exclusive_queue().await;
        let consumer = self.consume(&name).await;
        (name, consumer)
    }

    /// [`Rabbit::cleanup`] for hosts of [`Rabbit::service`] with these
    /// components, whose queues are `<service>.<component>`.
    pub async fn cleanup_components(&self, components: &[&str]) {
        let queues: Vec<String> = components.iter().map(|c| format!("{}.{c}", self.service())).collect();
        self.cleanup(&queues.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
    }

    /// Deletes the exchanges and queues the test and its hosts declared.
    pub async fn cleanup(&self, queues: &[&str]) {
        let dead = format!("{}.dead", self.exchange);
        for q in queues.iter().copied().chain([dead.as_str()]) {
            let _ = self.channel.queue_delete(q.into(), QueueDeleteOptions::default()).await;
        }
        for ex in [self.exchange.clone(), format!("{}.dlx", self.exchange)] {
            let _ = self
                .channel
                .exchange_delete(ex.into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}
