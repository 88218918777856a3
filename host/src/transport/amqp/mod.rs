//! The AMQP transport (RabbitMQ), through lapin.
//!
//! Topology: one durable topic exchange (`[transports.amqp] exchange`).
//! Each subscription is a queue bound to it with the subject pattern
//! translated to an AMQP binding key (`>` → `#`); the queue is named after
//! the queue group (`<service>.<component>` by default), so hosts of one
//! service are competing consumers, while a broadcast subscription gets an
//! exclusive, auto-deleted queue of its own on every host.
//!
//! Delivery is at least once. Acks are manual and come after the call and
//! after the broker confirmed its reply, coalesced into `multiple` acks
//! where every earlier delivery of the channel is settled (`acks.rs`);
//! the prefetch count is the
//! component's `max_concurrency`, so the broker, not host memory, holds
//! what the component cannot take yet. A failed event is delivered again
//! up to the component's `max_deliver` (2: one retry), then republished to
//! `<exchange>.dlx` with the reason in a `berth-error` header (see
//! [`delivery`]). Publishes use publisher
//! confirms; a nack reaches the guest as an error.
//!
//! RPC follows the AMQP convention (and loopback-amqp-backend's wire): a
//! delivery with `reply_to` is a request, and its reply goes to the default
//! exchange with `reply_to` as routing key and the same `correlation_id`.
//!
//! Broker sockets have `TCP_NODELAY` set (lapin's tokio runtime does it),
//! without which one request in flight waits on Nagle's algorithm.

mod acks;
mod consuming;
mod convert;
mod delivery;
mod link;
mod replies;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Consumer, ExchangeKind};

use self::consuming::Consuming;
use self::convert::{PERSISTENT, short};
use self::link::{Link, broker};
use self::replies::Replies;
use super::{SubscribeOptions, Subscription, Transport, TransportError};
use crate::core::message::Message;
use crate::core::subject::{Pattern, validate_subject};
use crate::manifest::AmqpConfig;

pub use self::convert::REDELIVERED;

/// Longest pause between reconnect attempts of a consumer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection to RabbitMQ. Cheap to clone.
#[derive(Clone)]
pub struct AmqpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    config: AmqpConfig,
    replies: Replies,
}

/// Deliveries of one message a quorum queue makes before it dead-letters
/// it: RabbitMQ 4's default. Returns count too (a host that stopped and
/// handed its messages back), so it is well above any `max_deliver`.
const POISON_LIMIT: i32 = 20;

/// One subscription's queue, as it is declared again after a reconnect.
struct QueueSpec {
    /// `None`: a broadcast queue, named by the broker.
    name: Option<String>,
    binding: String,
    prefetch: u16,
    max_deliver: u32,
    /// A quorum queue, with the broker's own delivery limit.
    quorum: bool,
    /// `[transports.amqp] coalesce_acks`.
    coalesce_acks: bool,
}

impl AmqpTransport {
    /// Connects and declares the exchange, the dead-letter exchange and its
    /// queue. A wrong URL, a broker that is not there or bad credentials
    /// fail here with a clear error.
    pub async fn connect(config: &AmqpConfig) -> Result<Self, TransportError> {
        let link = Link::connect(&config.url, config.tls_ca.as_deref()).await?;
        let transport = Self {
            inner: Arc::new(Inner {
                link,
                config: config.clone(),
                replies: Replies::default(),
            }),
        };
        let live = transport.inner.link.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(broker("open a channel"))?;
        transport.inner.declare_exchanges(&channel).await?;
        Ok(transport)
    }

    /// The exchange this transport publishes to.
    pub fn exchange(&self) -> &str {
        &self.inner.config.exchange
    }
}

impl Inner {
    async fn declare_exchanges(&self, channel: &Channel) -> Result<(), TransportError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let dlx = self.config.dead_letter_exchange();
        for exchange in [&self.config.exchange, &dlx] {
            channel
                .exchange_declare(
                    short(exchange, "exchange name")?,
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| {
                    TransportError::Broker(anyhow::anyhow!(
                        "AMQP: cannot declare topic exchange `{exchange}` (does it exist with another type?): {e}"
                    ))
                })?;
        }
        let dead = self.config.dead_letter_queue();
        channel
            .queue_declare(
                short(&dead, "queue name")?,
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                TransportError::Broker(anyhow::anyhow!("AMQP: cannot declare dead-letter queue `{dead}`: {e}"))
            })?;
        channel
            .queue_bind(
                short(&dead, "queue name")?,
                short(&dlx, "exchange name")?,
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("bind the dead-letter queue"))?;
        Ok(())
    }

    /// A quorum queue's arguments: its type, and the broker's own limit of
    /// deliveries ([`POISON_LIMIT`]), which catches the message no host
    /// survives (Berth's own count, `max_deliver`, advances only when a call
    /// fails), to the dead-letter exchange Berth's own dead letters go to.
    fn queue_arguments(&self, spec: &QueueSpec) -> FieldTable {
        let mut arguments = FieldTable::default();
        if spec.quorum {
            arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
            arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(POISON_LIMIT));
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.config.dead_letter_exchange().into()),
            );
        }
        arguments
    }

    /// Declares and binds the queue of `spec` on a fresh channel and starts
    /// consuming from it.
    async fn open_consumer(&self, spec: &QueueSpec) -> Result<(Channel, Consumer, String), TransportError> {
        let live = self.link.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(broker("open a channel"))?;
        // After a reconnect the broker may have lost transient exchanges.
        self.declare_exchanges(&channel).await?;
        let (name, options) = match &spec.name {
            Some(name) => (short(name, "queue name")?, QueueDeclareOptions::durable()),
            None => (
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
            ),
        };
        let queue = channel
            .queue_declare(name, options, self.queue_arguments(spec))
            .await
            .map_err(|e| {
                TransportError::Broker(anyhow::anyhow!(
                    "AMQP: cannot declare queue `{}`: {e}",
                    spec.name.as_deref().unwrap_or("(broadcast)")
                ))
            })?;
        let queue = queue.name().clone();
        channel
            .queue_bind(
                queue.clone(),
                short(&self.config.exchange, "exchange name")?,
                short(&spec.binding, "binding key")?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("bind a queue"))?;
        channel
            .basic_qos(spec.prefetch, BasicQosOptions::default())
            .await
            .map_err(broker("set the prefetch count"))?;
        let consumer = channel
            .basic_consume(
                queue.clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("start consuming"))?;
        Ok((channel, consumer, queue.to_string()))
    }

    /// Publishes with a confirm and waits for it. Returns the message back
    /// if it was `mandatory` and nothing was bound to take it.
    async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<Option<Box<lapin::message::BasicReturnMessage>>, TransportError> {
        let exchange = short(exchange, "exchange name")?;
        let key = short(routing_key, "routing key")?;
        let channel = self.link.publisher().await?;
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(exchange, key, options, body, properties)
            .await
            .map_err(broker("publish"))?
            .await
            .map_err(broker("get a publish confirmed"))?;
        match confirm {
            Confirmation::Ack(returned) => Ok(returned.map(Box::new)),
            Confirmation::Nack(_) => Err(TransportError::Broker(anyhow::anyhow!(
                "the broker refused (nacked) the message to `{routing_key}`"
            ))),
            Confirmation::NotRequested => Ok(None),
        }
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    fn kind(&self) -> &'static str {
        "amqp"
    }

    fn status(&self) -> super::TransportStatus {
        super::TransportStatus {
            kind: "amqp",
            connected: self.inner.link.is_connected(),
            slow_consumer_events: 0,
            reconnects: self.inner.link.reconnects(),
            malformed: 0,
        }
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, TransportError> {
        if let Some(stream) = &options.stream {
            return Err(TransportError::Unsupported(format!(
                "stream `{}` is a NATS JetStream subscription; the amqp transport has none",
                stream.stream
            )));
        }
        let pattern = Pattern::parse(&options.pattern)?;
        let capacity = options.capacity.max(1);
        let spec = QueueSpec {
            name: options.group,
            binding: pattern.to_amqp(),
            prefetch: self
                .inner
                .config
                .prefetch
                .unwrap_or_else(|| u16::try_from(capacity).unwrap_or(u16::MAX)),
            max_deliver: options.max_deliver.max(1),
            quorum: options.quorum,
            coalesce_acks: self.inner.config.coalesce_acks,
        };
        let opened = self.inner.open_consumer(&spec).await?;
        let consuming = Consuming::new(self.inner.clone(), spec, opened);
        // Dropping the stream drops the consumer and its channel, which
        // hands every unacked delivery back to the broker.
        Ok(Subscription::from_stream(futures_util::stream::unfold(
            consuming,
            |mut consuming| async move { Some((consuming.next().await, consuming)) },
        )))
    }

    async fn publish(&self, message: Message) -> Result<(), TransportError> {
        validate_subject(&message.subject)?;
        let message = Message {
            reply_to: None,
            ..message
        };
        let properties = convert::properties(&message, PERSISTENT)?;
        self.inner
            .send(
                &self.inner.config.exchange,
                &message.subject,
                &message.body,
                properties,
                false,
            )
            .await
            .map(drop)
    }

    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, TransportError> {
        validate_subject(&message.subject)?;
        replies::request(&self.inner, message, timeout).await
    }
}
