//! `[gateway]`: WebSocket clients in the amqp-swarm model. Each
//! connection is a *node* (its id the URL path, or made up); the real npm
//! client `amqp-swarm@0.3.2` works unchanged ([`protocol`]).
//!
//! - A client's request `name` goes to whichever component serves
//!   `<prefix>.client.<name>` ([`serve`]), with the node in `swarm-node`.
//! - A component reaches any node of the swarm ([`swarm`]): the request
//!   travels on the gateway's broker to the node's inbox on the host that
//!   holds it, where the node's client, or the host's components on
//!   `<prefix>.server.<name>` / `<prefix>.remote.<name>`, answer.
//! - `<prefix>.node.open` and `<prefix>.node.close` tell components a node
//!   came or went.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::core::error::{CallError, ErrorKind};
use crate::core::subject::validate_subject;
use crate::ingress::target::Resolver;
use crate::manifest::{GatewayConfig, Manifest};
use crate::transport::Transport;

pub mod conn;
pub mod counters;
pub mod protocol;
pub mod registry;
mod serve;
mod swarm;

use counters::Counters;
use registry::Registry;

/// The gateway of one host.
pub struct Gateway {
    config: GatewayConfig,
    /// Where it listens (`listen` with the port the system chose for 0).
    local: std::net::SocketAddr,
    resolver: Resolver,
    /// Where requests to nodes travel between hosts.
    swarm: Arc<dyn Transport>,
    nodes: Registry,
    counters: Arc<Counters>,
    serials: AtomicU64,
    timeout: Duration,
    stop: CancellationToken,
}

impl Gateway {
    /// Listens on `[gateway] listen` and serves until `stop`; components
    /// granted `gateway = true` reach it from now on.
    pub async fn start(manifest: &Manifest, app: &App, stop: CancellationToken) -> Result<Option<Arc<Self>>> {
        let Some(config) = manifest.gateway.clone() else {
            return Ok(None);
        };
        let kind = config.transport.unwrap_or(manifest.host.transport).to_string();
        let swarm = app
            .transports
            .iter()
            .find(|t| t.kind() == kind)
            .cloned()
            .with_context(|| format!("[gateway] transport: the {kind} transport is not connected"))?;
        let listener = crate::ingress::listen::listen(config.listen, config.max_connections)
            .with_context(|| format!("cannot listen on [gateway] listen = {}", config.listen))?;
        let local = listener.local_addr().context("the gateway's listening address")?;
        tracing::info!(addr = %local, prefix = %config.prefix, swarm = kind, "gateway listening");
        let gateway = Arc::new(Self {
            local,
            resolver: Resolver::new(manifest, app, true)?,
            swarm,
            nodes: Registry::default(),
            counters: Arc::default(),
            serials: AtomicU64::new(1),
            timeout: Duration::from_millis(config.request_timeout_ms),
            stop,
            config,
        });
        app.gateway_link().connect(gateway.clone());
        tokio::spawn(serve::accept(gateway.clone(), listener));
        Ok(Some(gateway))
    }

    /// The subject of a request `name` of `kind` (`client`, `server`,
    /// `remote`): characters a subject cannot carry become `_` (the exact
    /// name travels in `swarm-name`).
    fn subject(&self, kind: &str, name: &str) -> Result<String, CallError> {
        let tail: String = name
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() || c == '*' || c == '>' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let subject = format!("{}.{kind}.{tail}", self.config.prefix);
        validate_subject(&subject).map_err(|_| {
            let mut e = CallError::new(
                ErrorKind::Unhandled,
                format!(
                    "request name `{}` cannot be a subject (an empty part between dots)",
                    name.escape_debug()
                ),
            );
            e.code = 400;
            e
        })?;
        Ok(subject)
    }

    /// The subject a node's inbox listens on, on the swarm's broker.
    fn inbox(&self, node: &str) -> String {
        format!("berth.gateway.{}.{node}", self.config.prefix)
    }

    /// Tells components a node came or went (`<prefix>.node.open|close`).
    async fn lifecycle(&self, what: &str, conn: &conn::Conn) {
        let subject = format!("{}.node.{what}", self.config.prefix);
        let body = json!({ "node": &*conn.node, "remote": conn.remote.to_string() }).to_string();
        let message = crate::core::message::Message::new(subject.clone(), body)
            .with_header(crate::core::headers::SWARM_NODE, &*conn.node)
            .with_header(crate::core::headers::CONTENT_TYPE, "application/json");
        if let Err(e) = self.resolver.target(&subject).publish(message).await {
            tracing::warn!(node = %conn.node, "could not publish {subject}: {}", e.message);
        }
    }

    /// Connections, nodes and counters, for `/v1/gateway` and health.
    pub fn status(&self) -> Value {
        let snapshot = self.counters.snapshot();
        json!({
            "listen": self.local.to_string(),
            "prefix": self.config.prefix,
            "swarm": self.swarm.kind(),
            "nodes": self.nodes.len(),
            "connections": snapshot.connections,
            "connections_total": snapshot.connections_total,
            "pongs": snapshot.pongs,
            "requests": as_object(&snapshot.requests),
            "errors": as_object(&snapshot.errors),
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local
    }

    /// The counters, for metrics.
    pub fn counters(&self) -> (counters::Snapshot, usize) {
        (self.counters.snapshot(), self.nodes.len())
    }
}

fn as_object(counts: &[(&str, u64)]) -> serde_json::Map<String, Value> {
    counts.iter().map(|(k, n)| ((*k).to_owned(), Value::from(*n))).collect()
}
