//! One entry of a component's `subscribe` list: a bare subject pattern or
//! a table with options (transport, queue group, broadcast, JetStream).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::TransportKind;
use super::bounds::{HOUR_MS, within_opt};

/// One subscription: a bare pattern, or a table with options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeConfig {
    /// Subject pattern with `*` / `>` wildcards.
    pub subject: String,
    /// Transport; `[host] transport` when absent.
    pub transport: Option<TransportKind>,
    /// Queue group; `<service>.<component>` when absent.
    pub group: Option<String>,
    /// Every host gets every message (no queue group).
    pub broadcast: bool,
    /// NATS JetStream stream to read through (at-least-once); core NATS
    /// when absent.
    pub stream: Option<String>,
    /// The JetStream durable consumer; the queue group with `.` → `_`
    /// when absent.
    pub durable: Option<String>,
    /// Where JetStream messages that failed for good are republished;
    /// `berth.dead.<durable>` when absent.
    pub dead_letter: Option<String>,
    /// How long JetStream waits for a message's ack before it delivers the
    /// message again; twice the component's `timeout_ms` and a second when
    /// absent.
    pub ack_wait_ms: Option<u64>,
    /// Middleware components each message passes first, in order.
    pub middleware: Vec<String>,
    /// Copies of the JetStream stream a NATS cluster keeps (1 to 5), when
    /// the stream is created; the server's default (1) when absent.
    pub replicas: Option<usize>,
    /// The RabbitMQ queue's type: `classic` (default) or `quorum`.
    pub queue_type: QueueType,
}

/// A subscription's `queue_type` (AMQP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// One copy, on the node that declared it.
    #[default]
    Classic,
    /// Replicated over the cluster's nodes by Raft, with the broker's own
    /// count of deliveries (`x-delivery-limit`).
    Quorum,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeTable {
    subject: String,
    transport: Option<TransportKind>,
    group: Option<String>,
    #[serde(default)]
    broadcast: bool,
    stream: Option<String>,
    durable: Option<String>,
    dead_letter: Option<String>,
    #[serde(default, deserialize_with = "within_opt::<_, _, 100, HOUR_MS>")]
    ack_wait_ms: Option<u64>,
    #[serde(default)]
    middleware: Vec<String>,
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, 5>")]
    replicas: Option<usize>,
    #[serde(default)]
    queue_type: QueueType,
}

impl<'de> Deserialize<'de> for SubscribeConfig {
    /// Accepts `"echo.>"` or `{ subject = "echo.>", group = "g" }`, keeping
    /// the inner table's own error messages (an untagged enum would not).
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SubscribeConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a subject pattern or a table { subject, transport, group, broadcast, stream, durable, dead_letter, ack_wait_ms, replicas, queue_type, middleware }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(SubscribeConfig {
                    subject: s.to_owned(),
                    transport: None,
                    group: None,
                    broadcast: false,
                    stream: None,
                    durable: None,
                    dead_letter: None,
                    ack_wait_ms: None,
                    middleware: Vec::new(),
                    replicas: None,
                    queue_type: QueueType::Classic,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let t = SubscribeTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SubscribeConfig {
                    subject: t.subject,
                    transport: t.transport,
                    group: t.group,
                    broadcast: t.broadcast,
                    stream: t.stream,
                    durable: t.durable,
                    dead_letter: t.dead_letter,
                    ack_wait_ms: t.ack_wait_ms,
                    middleware: t.middleware,
                    replicas: t.replicas,
                    queue_type: t.queue_type,
                })
            }
        }
        d.deserialize_any(V)
    }
}
