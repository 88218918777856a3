//! `[transports]`: which brokers, where, and how to log in.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Which broker a subscription or outbound call uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// In-process bus; the embedded default.
    #[default]
    Memory,
    /// NATS through async-nats.
    Nats,
    /// RabbitMQ through lapin.
    Amqp,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Nats => "nats",
            Self::Amqp => "amqp",
        })
    }
}

/// `[transports]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportsConfig {
    /// `[transports.nats]`.
    pub nats: Option<NatsConfig>,
    /// `[transports.amqp]`.
    pub amqp: Option<AmqpConfig>,
}

/// `[transports.nats]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL; `NATS_URL` overrides.
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// User; `NATS_USER` overrides.
    pub user: Option<String>,
    /// Password; `NATS_PASSWORD` overrides.
    pub password: Option<String>,
    /// Token; `NATS_TOKEN` overrides.
    pub token: Option<String>,
    /// Credentials file (JWT and NKey seed); `NATS_CREDS` overrides.
    pub credentials: Option<PathBuf>,
    /// PEM file of the CA that signed the server's certificate: TLS is then
    /// required, and a server it did not sign is refused.
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate this host presents, for servers that verify clients
    /// (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl NatsConfig {
    /// Whether the connection must be encrypted: a `tls://` server or any
    /// TLS file given.
    pub fn requires_tls(&self) -> bool {
        self.url.split(',').any(|u| u.trim().starts_with("tls://")) || self.tls_ca.is_some() || self.tls_cert.is_some()
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: default_nats_url(),
            user: None,
            password: None,
            token: None,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".to_owned()
}

/// `[transports.amqp]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// Broker URL; `AMQP_URL` overrides.
    #[serde(default = "default_amqp_url")]
    pub url: String,
    /// The topic exchange messages are published to; declared (durable)
    /// if missing.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Unacked deliveries the broker may push per subscription; the
    /// component's `max_concurrency` when absent (that is the backpressure).
    pub prefetch: Option<u16>,
    /// Queue bound to `<exchange>.dlx` that keeps dead-lettered messages;
    /// `<exchange>.dead` when absent.
    pub dead_letter_queue: Option<String>,
    /// PEM file of the CA that signed the broker's certificate, for an
    /// `amqps://` url whose broker the system's CAs do not vouch for.
    pub tls_ca: Option<PathBuf>,
    /// Acks of neighbouring deliveries go out as one `multiple` ack (the
    /// default). `false` sends each ack as it is made: a killed host then
    /// leaves no settled delivery unacked behind a slow one, so the broker
    /// redelivers at most the calls that were running, at the throughput
    /// cost BENCHMARKS.md measures.
    #[serde(default = "yes")]
    pub coalesce_acks: bool,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: default_amqp_url(),
            exchange: default_exchange(),
            prefetch: None,
            dead_letter_queue: None,
            tls_ca: None,
            coalesce_acks: true,
        }
    }
}

impl AmqpConfig {
    /// The exchange failed messages are republished to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// The queue that keeps dead-lettered messages.
    pub fn dead_letter_queue(&self) -> String {
        self.dead_letter_queue
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.exchange))
    }
}

fn yes() -> bool {
    true
}

fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
}

fn default_exchange() -> String {
    "berth".to_owned()
}
