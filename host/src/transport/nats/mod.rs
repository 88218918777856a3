//! The NATS transport, through async-nats.
//!
//! Core NATS: subjects with `*`/`>` wildcards, queue groups (each message to
//! one member, so hosts of one service share the work), request/reply
//! through the client's inboxes with NATS's own "no responders" status,
//! headers carried both ways. Core NATS is at-most-once: settling a
//! delivery is a no-op, and a failed event cannot be redelivered; a
//! subscription that names a stream is at-least-once through JetStream
//! (see [`jetstream`]).
//!
//! Backpressure: each subscription forwards into a bounded queue the router
//! pulls from. When the router does not keep up, async-nats buffers and
//! finally drops messages as a slow consumer; that is logged, never hidden.

mod acker;
mod confirm;
mod convert;
pub mod jetstream;
mod progress;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::{ConnectErrorKind, RequestErrorKind};
use async_trait::async_trait;

use crate::core::headers::ATTEMPT;
use crate::core::message::{Headers, Message};

pub use self::acker::NatsAcker;
use self::confirm::{Confirmations, Waiting};
pub(crate) use self::convert::from_nats;
use self::convert::to_nats_headers;
use crate::core::subject::{Pattern, validate_subject};
use crate::manifest::NatsConfig;
use crate::transport::{Delivery, SubscribeOptions, Subscription, Transport, TransportError};

/// How long connecting may take before the start fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a NATS server. Cheap to clone: one reference count,
/// which every delivery's acker takes (cloning the client itself costs a
/// channel sender and several counts, measurable per message).
#[derive(Clone)]
pub struct NatsTransport {
    shared: Arc<Shared>,
}

struct Shared {
    client: async_nats::Client,
    /// What the connection went through, counted from the client's events.
    events: Arc<Events>,
    confirmations: Confirmations,
}

/// The client's connection events, counted for health and metrics.
#[derive(Default)]
struct Events {
    /// Slow-consumer events: messages were dropped.
    slow_consumers: AtomicU64,
    /// Connections made again after a loss.
    reconnects: AtomicU64,
    /// Messages dropped because they could not be read (a subject or
    /// header that is not UTF-8, a header line without a colon); the
    /// connection stayed up.
    malformed: AtomicU64,
    /// Set between a disconnect and the next connect.
    lost: AtomicBool,
    /// Confirmations on their way, which a disconnect fails.
    waiting: Arc<Waiting>,
}

/// How the (patched) client reports a message it dropped unread.
const MALFORMED: &str = "dropped a malformed message";

impl Events {
    fn observe(&self, event: async_nats::Event) {
        match event {
            async_nats::Event::SlowConsumer(sid) => {
                self.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    subscription = sid,
                    "NATS slow consumer: the server or client dropped messages"
                )
            }
            async_nats::Event::Disconnected => {
                self.lost.store(true, Ordering::Relaxed);
                self.waiting.fail_all();
                tracing::warn!("NATS disconnected; reconnecting")
            }
            async_nats::Event::Connected => {
                // Only a connection after a loss is a reconnect.
                if self.lost.swap(false, Ordering::Relaxed) {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!("NATS connected")
            }
            async_nats::Event::ClientError(async_nats::ClientError::Other(text)) if text.contains(MALFORMED) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(reason = %text, "NATS message from the broker dropped unread")
            }
            other => tracing::info!(event = %other, "NATS event"),
        }
    }
}

impl NatsTransport {
    /// Connects, failing fast with a clear error on a wrong URL, a server
    /// that is not there, or bad credentials.
    pub async fn connect(config: &NatsConfig) -> Result<Self, TransportError> {
        let events = Arc::new(Events::default());
        let observer = events.clone();
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .name("berth")
            // Every subject is checked by `validate_subject` or `Pattern`
            // (stricter than the client), or came from the server.
            .skip_subject_validation(true)
            .event_callback(move |event| {
                observer.observe(event);
                std::future::ready(())
            });
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        if let Some(path) = &config.credentials {
            options = options.credentials_file(path).await.map_err(|e| {
                TransportError::Broker(anyhow::anyhow!(
                    "cannot read NATS credentials file {}: {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        options = options.require_tls(config.requires_tls());
        // Several servers (a cluster) are written comma-separated, as NATS
        // tools take them; the client tries them in turn and reconnects to
        // whichever is up.
        let servers = config
            .url
            .split(',')
            .map(|s| s.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TransportError::Broker(anyhow::anyhow!("`{}` is not a valid NATS URL: {e}", config.url)))?;
        let client = options.connect(servers).await.map_err(|e| {
            let why = match e.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => "bad credentials",
                ConnectErrorKind::ServerParse => "not a valid NATS URL",
                ConnectErrorKind::TimedOut => "timed out",
                ConnectErrorKind::Tls => "TLS failed: check tls_ca, tls_cert and tls_key",
                // A handshake that failed on the certificate reaches us as
                // an I/O error; its text is all that tells it apart.
                _ if e.to_string().contains("certificate") => {
                    "TLS failed: the server's certificate is not signed by tls_ca, or it refused ours"
                }
                _ => "server not reachable",
            };
            TransportError::Broker(anyhow::anyhow!("cannot connect to NATS at {} ({why}): {e}", config.url))
        })?;
        let confirmations = Confirmations::new(client.clone(), events.waiting.clone(), CONNECT_TIMEOUT);
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                events,
                confirmations,
            }),
        })
    }

    /// Returns once the server has read everything this client sent on
    /// its current connection.
    async fn confirm(&self) -> Result<(), TransportError> {
        self.shared.confirmations.confirm(Some(self.connection())).await
    }

    /// The number of the connection the client is on now (see
    /// [`confirm`]): what is sent after reading it goes out on that
    /// connection or a later one.
    fn connection(&self) -> u64 {
        self.shared.confirmations.connection()
    }

    /// The client, for JetStream.
    pub fn client(&self) -> &async_nats::Client {
        &self.shared.client
    }

    /// The most bytes one message may carry on this server.
    pub fn max_payload(&self) -> usize {
        self.shared.client.server_info().max_payload
    }
}

impl NatsTransport {
    /// Sends a message whose subject was checked (or, for a reply, came
    /// from the server).
    async fn send(&self, message: Message) -> Result<(), TransportError> {
        let reply = message.reply_to.map(async_nats::Subject::from);
        self.publish_to(message.subject.into(), reply, &message.headers, message.body)
            .await
    }

    /// Publishes with a header block only when there are headers: an
    /// empty one would still cost a header map per message here and an
    /// `HPUB` for the server and the receiver to parse.
    async fn publish_to(
        &self,
        subject: async_nats::Subject,
        reply: Option<async_nats::Subject>,
        headers: &Headers,
        body: bytes::Bytes,
    ) -> Result<(), TransportError> {
        let client = &self.shared.client;
        // Most replies carry no headers: no header map to build for them.
        let result = match (reply, headers.is_empty()) {
            (None, true) => client.publish(subject, body).await,
            (Some(reply), true) => client.publish_with_reply(subject, reply, body).await,
            (None, false) => {
                client
                    .publish_with_headers(subject, to_nats_headers(headers)?, body)
                    .await
            }
            (Some(reply), false) => {
                client
                    .publish_with_reply_and_headers(subject, reply, to_nats_headers(headers)?, body)
                    .await
            }
        };
        result.map_err(|e| TransportError::Broker(anyhow::anyhow!("NATS publish failed: {e}")))
    }
}

impl NatsTransport {
    /// A core NATS subscription whose deliveries carry [`NatsAcker`] as
    /// itself: the app layer hands it to the router, which then replies
    /// without a box (see [`crate::transport::Settle`]). `options.stream`
    /// is not read here; [`Transport::subscribe`] takes JetStream.
    pub async fn subscribe_core(&self, options: SubscribeOptions) -> Result<Subscription<NatsAcker>, TransportError> {
        Pattern::parse(&options.pattern)?;
        let subscribed = match options.group {
            Some(group) => self.shared.client.queue_subscribe(options.pattern.clone(), group).await,
            None => self.shared.client.subscribe(options.pattern.clone()).await,
        };
        let subscriber = subscribed.map_err(|e| {
            TransportError::Broker(anyhow::anyhow!("NATS subscribe to `{}` failed: {e}", options.pattern))
        })?;
        // The SUB goes out asynchronously; make sure the server has the
        // interest before we say we are subscribed, so a request right
        // after start does not meet "no responders". A reconnect meanwhile
        // subscribes again by itself: any echo will do.
        self.shared.confirmations.confirm(None).await?;
        // Read straight from the client, which buffers up to its
        // subscription capacity and reports a slow consumer past it (counted
        // above): no forwarding task, so a message costs one wake-up less.
        // Dropping the stream unsubscribes at the server.
        Ok(Subscription::drainable(CoreDeliveries {
            subscriber,
            transport: self.clone(),
        }))
    }
}

/// A core subscription's messages as deliveries, read straight from the
/// client. Draining unsubscribes at the server and lets the messages on
/// their way through, as NATS's own drain does.
struct CoreDeliveries {
    subscriber: async_nats::Subscriber,
    transport: NatsTransport,
}

impl futures_util::Stream for CoreDeliveries {
    type Item = Delivery<NatsAcker>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use futures_util::StreamExt;
        self.subscriber.poll_next_unpin(cx).map(|message| {
            message.map(|mut message| {
                // Taken, not cloned: cloning the server's inbox allocates
                // (its buffer is promoted to a shared one) and costs two
                // atomic operations more, for every request.
                let inbox = message.reply.take();
                let mut message = from_nats(message);
                message.reply_to = inbox.as_ref().map(|r| r.as_str().to_owned());
                // Core NATS delivers once and counts nothing: a
                // `berth-attempt` here is one its publisher passed on.
                message.remove_header(ATTEMPT);
                Delivery {
                    message,
                    acker: NatsAcker {
                        transport: self.transport.clone(),
                        inbox,
                    },
                }
            })
        })
    }
}

impl crate::transport::Deliveries<NatsAcker> for CoreDeliveries {
    fn drain(
        mut self: std::pin::Pin<&mut Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.subscriber.drain().await.is_ok() })
    }
}

#[async_trait]
impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "nats"
    }

    /// Acks and replies are plain publishes the client buffers: the
    /// server has them once it echoed a message sent after them.
    async fn flush(&self) -> Result<(), TransportError> {
        self.confirm().await
    }

    fn status(&self) -> crate::transport::TransportStatus {
        crate::transport::TransportStatus {
            kind: "nats",
            connected: self.shared.client.connection_state() == async_nats::connection::State::Connected,
            slow_consumer_events: self.shared.events.slow_consumers.load(Ordering::Relaxed),
            reconnects: self.shared.events.reconnects.load(Ordering::Relaxed),
            malformed: self.shared.events.malformed.load(Ordering::Relaxed),
        }
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, TransportError> {
        if let Some(stream) = &options.stream {
            Pattern::parse(&options.pattern)?;
            return jetstream::subscribe(self, &options, stream).await;
        }
        Ok(self.subscribe_core(options).await?.boxed())
    }

    async fn publish(&self, message: Message) -> Result<(), TransportError> {
        validate_subject(&message.subject)?;
        self.send(Message {
            reply_to: None,
            ..message
        })
        .await
    }

    /// A core publish the server confirmed on the connection it went out
    /// on (see [`confirm`]).
    async fn publish_confirmed(&self, message: Message) -> Result<(), TransportError> {
        let since = self.connection();
        self.publish(message).await?;
        self.shared.confirmations.confirm(Some(since)).await
    }

    async fn request(&self, message: Message, timeout: Duration) -> Result<Message, TransportError> {
        validate_subject(&message.subject)?;
        let subject = message.subject.clone();
        let request = async_nats::Request::new()
            .payload(message.body)
            .headers(to_nats_headers(&message.headers)?)
            .timeout(Some(timeout));
        match self.shared.client.send_request(message.subject, request).await {
            Ok(reply) => Ok(from_nats(reply)),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => TransportError::NoResponders(subject),
                RequestErrorKind::TimedOut => TransportError::Timeout { subject, timeout },
                RequestErrorKind::MaxPayloadExceeded => TransportError::TooLarge(format!(
                    "request to `{subject}` exceeds the server's max payload of {} bytes",
                    self.max_payload()
                )),
                _ => TransportError::Broker(anyhow::anyhow!("NATS request to `{subject}` failed: {e}")),
            }),
        }
    }
}
