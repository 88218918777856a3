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

pub mod jetstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use async_nats::{ConnectErrorKind, RequestErrorKind};
use async_trait::async_trait;

use crate::core::message::{Headers, Message};
use crate::core::subject::{Pattern, validate_subject};
use crate::manifest::NatsConfig;
use crate::transport::{AnyAcker, Delivery, Settlement, SubscribeOptions, Subscription, Transport, TransportError};

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
    /// Slow-consumer events the client reported: messages were dropped.
    slow_consumers: Arc<AtomicU64>,
    /// Connections made again after a loss.
    reconnects: Arc<AtomicU64>,
}

impl NatsTransport {
    /// Connects, failing fast with a clear error on a wrong URL, a server
    /// that is not there, or bad credentials.
    pub async fn connect(config: &NatsConfig) -> Result<Self, TransportError> {
        let slow_consumers = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let counter = slow_consumers.clone();
        let (reconnected, lost) = (reconnects.clone(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .name("berth")
            // Every subject is checked by `validate_subject` or `Pattern`
            // (stricter than the client), or came from the server.
            .skip_subject_validation(true)
            .event_callback(move |event| {
                let (counter, reconnected, lost) = (counter.clone(), reconnected.clone(), lost.clone());
                async move {
                    match event {
                        async_nats::Event::SlowConsumer(sid) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                subscription = sid,
                                "NATS slow consumer: the server or client dropped messages"
                            )
                        }
                        async_nats::Event::Disconnected => {
                            lost.store(true, Ordering::Relaxed);
                            tracing::warn!("NATS disconnected; reconnecting")
                        }
                        async_nats::Event::Connected => {
                            // Only a connection after a loss is a reconnect.
                            if lost.swap(false, Ordering::Relaxed) {
                                reconnected.fetch_add(1, Ordering::Relaxed);
                            }
                            tracing::info!("NATS connected")
                        }
                        other => tracing::info!(event = %other, "NATS event"),
                    }
                }
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
        let client = options.connect(config.url.as_str()).await.map_err(|e| {
            let why = match e.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => "bad credentials",
                ConnectErrorKind::ServerParse => "not a valid NATS URL",
                ConnectErrorKind::TimedOut => "timed out",
                _ => "server not reachable",
            };
            TransportError::Broker(anyhow::anyhow!("cannot connect to NATS at {} ({why}): {e}", config.url))
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                slow_consumers,
                reconnects,
            }),
        })
    }

    /// Returns once the server has processed every command this connection
    /// sent before: a message to our own fresh inbox comes back only after
    /// the server read everything ahead of it, in order. (`flush` only
    /// empties the socket buffer.)
    async fn barrier(&self) -> Result<(), TransportError> {
        use futures_util::StreamExt;
        let broker =
            |what: &str, e: &dyn std::fmt::Display| TransportError::Broker(anyhow::anyhow!("NATS {what} failed: {e}"));
        let inbox = self.shared.client.new_inbox();
        let mut echo = self
            .shared
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| broker("subscribe", &e))?;
        self.shared
            .client
            .publish(inbox, bytes::Bytes::new())
            .await
            .map_err(|e| broker("publish", &e))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            _ => Err(TransportError::Broker(anyhow::anyhow!(
                "the NATS server did not confirm a subscription within {CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// The client, for JetStream.
    pub(super) fn client(&self) -> &async_nats::Client {
        &self.shared.client
    }

    /// The most bytes one message may carry on this server.
    pub fn max_payload(&self) -> usize {
        self.shared.client.server_info().max_payload
    }
}

/// NATS headers from ours. A name must be printable ASCII without `:` and
/// a value must not break the line; anything else is refused here with an
/// error naming it (async-nats would panic on it).
pub(super) fn to_nats_headers(headers: &Headers) -> Result<HeaderMap, TransportError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name: HeaderName = name.parse().map_err(|_| {
            TransportError::Unsupported(format!(
                "header name `{}` cannot travel on NATS: use printable ASCII without `:`",
                name.escape_debug()
            ))
        })?;
        let value: HeaderValue = value.parse().map_err(|_| {
            TransportError::Unsupported(format!(
                "the value of header `{name}` cannot travel on NATS: it contains a line break"
            ))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// `text` as a header value: line breaks become spaces (an error message
/// may have several lines; a NATS header has one).
pub(super) fn header_value(text: &str) -> HeaderValue {
    text.replace(['\r', '\n'], " ").parse().unwrap_or_default()
}

pub(crate) fn from_nats(message: async_nats::Message) -> Message {
    // Most messages have no header block: no iterator chain for them
    // (~100 instructions per message, callgrind).
    let headers = match &message.headers {
        None => Vec::new(),
        Some(map) => map
            .iter()
            .flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |v| (name.to_owned(), v.as_str().to_owned()))
            })
            .collect(),
    };
    // (`as_str().to_owned()`, not `to_string()`: no formatter per message.)
    Message {
        subject: message.subject.as_str().to_owned(),
        body: message.payload,
        headers,
        reply_to: message.reply.map(|r| r.as_str().to_owned()),
        correlation_id: None,
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

#[async_trait]
impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn status(&self) -> crate::transport::TransportStatus {
        crate::transport::TransportStatus {
            kind: "nats",
            connected: self.shared.client.connection_state() == async_nats::connection::State::Connected,
            slow_consumer_events: self.shared.slow_consumers.load(Ordering::Relaxed),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
        }
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, TransportError> {
        Pattern::parse(&options.pattern)?;
        if let Some(stream) = &options.stream {
            return jetstream::subscribe(self, &options, stream).await;
        }
        let subscribed = match options.group {
            Some(group) => self.shared.client.queue_subscribe(options.pattern.clone(), group).await,
            None => self.shared.client.subscribe(options.pattern.clone()).await,
        };
        let subscriber = subscribed.map_err(|e| {
            TransportError::Broker(anyhow::anyhow!("NATS subscribe to `{}` failed: {e}", options.pattern))
        })?;
        // The SUB goes out asynchronously; make sure the server has the
        // interest before we say we are subscribed, so a request right
        // after start does not meet "no responders".
        self.barrier().await?;
        // Read straight from the client, which buffers up to its
        // subscription capacity and reports a slow consumer past it (counted
        // above): no forwarding task, so a message costs one wake-up less.
        // Dropping the stream unsubscribes at the server.
        let transport = self.clone();
        Ok(Subscription::from_stream(futures_util::StreamExt::map(
            subscriber,
            move |mut message: async_nats::Message| {
                // Taken, not cloned: cloning the server's inbox allocates
                // (its buffer is promoted to a shared one) and costs two
                // atomic operations more, for every request.
                let inbox = message.reply.take();
                let mut message = from_nats(message);
                message.reply_to = inbox.as_ref().map(|r| r.as_str().to_owned());
                Delivery {
                    message,
                    acker: AnyAcker::Nats(NatsAcker {
                        transport: transport.clone(),
                        inbox,
                    }),
                }
            },
        )))
    }

    async fn publish(&self, message: Message) -> Result<(), TransportError> {
        validate_subject(&message.subject)?;
        self.send(Message {
            reply_to: None,
            ..message
        })
        .await
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

/// Replies go to the request's inbox; core NATS has nothing to settle.
/// Held by the router as itself, not through [`Acker`] (see
/// [`AnyAcker`]).
pub struct NatsAcker {
    transport: NatsTransport,
    /// The inbox as the server sent it: a reply goes there without its
    /// subject being copied back out of a `String` (the reply's subject is
    /// this inbox anyway).
    inbox: Option<async_nats::Subject>,
}

impl NatsAcker {
    pub(super) async fn reply(&mut self, reply: Message) -> Result<(), TransportError> {
        // Taken, not cloned: a delivery has one reply (a clone costs
        // atomic operations). Not a request: whoever replies names the
        // subject.
        let to = self.inbox.take().unwrap_or_else(|| reply.subject.into());
        self.transport.publish_to(to, None, &reply.headers, reply.body).await
    }

    /// Core NATS is at-most-once: nothing to ack, and a failed message
    /// cannot be given back, which is said rather than hidden.
    pub(super) fn settle(self, settlement: Settlement) {
        match settlement {
            Settlement::Ack => {}
            Settlement::Release => tracing::warn!(
                "event not handled before shutdown is dropped: core NATS keeps nothing to give it back to"
            ),
            Settlement::Retry(reason) => {
                tracing::warn!(%reason, "core NATS cannot redeliver; the failed event is dropped (use JetStream for at-least-once)")
            }
            Settlement::Reject(reason) => {
                tracing::warn!(%reason, "core NATS has no dead-letter queue; the rejected event is dropped")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn headers_convert_in_order_with_repeats() {
        let map = to_nats_headers(&headers(&[("a", "1"), ("b", "2"), ("a", "3")])).expect("valid headers");
        let a: Vec<&str> = map.get_all("a").map(|v| v.as_str()).collect();
        assert_eq!(a, ["1", "3"]);
        assert_eq!(map.get("b").map(|v| v.as_str()), Some("2"));
    }

    #[test]
    fn headers_nats_cannot_carry_are_refused_by_name_not_panicked_on() {
        for (name, value, says) in [
            ("bad name", "v", "header name `bad name`"),
            ("a:b", "v", "header name `a:b`"),
            ("ok", "two\nlines", "header `ok`"),
            ("ok", "carriage\rreturn", "header `ok`"),
        ] {
            match to_nats_headers(&headers(&[(name, value)])) {
                Err(TransportError::Unsupported(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{name:?}={value:?}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn multi_line_text_becomes_one_header_line() {
        assert_eq!(header_value("failed:\r\n  at line 3").as_str(), "failed:    at line 3");
    }
}
