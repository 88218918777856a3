//! What the runtime needs of the WebSocket gateway: a request to a node,
//! wherever in the swarm its client is connected.
//!
//! The runtime sits below the ingress layer that runs the gateway, and
//! components are loaded before the gateway listens, so a component
//! holds a [`GatewayLink`] that the gateway fills in when it starts.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use super::error::{CallError, ErrorKind};

/// Where a request to a node goes (amqp-swarm's three kinds of request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    /// The node's client, whose `on(name)` handler answers.
    Client,
    /// The components of the host holding the node, on
    /// `<prefix>.server.<name>`.
    Server,
    /// The node's `<prefix>.remote.<name>` handlers, which may change the
    /// arguments or answer themselves, then its client.
    RemoteClient,
}

impl NodeTarget {
    /// The name on the wire between hosts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::RemoteClient => "remote",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Client, Self::Server, Self::RemoteClient]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// One request to a node.
#[derive(Clone, Debug)]
pub struct NodeRequest {
    /// Who answers it.
    pub target: NodeTarget,
    /// The node's id.
    pub node: String,
    /// The request's name (amqp-swarm's event name).
    pub name: String,
    /// Its arguments: a JSON array.
    pub args: Bytes,
    /// The node on whose behalf it is sent, if any.
    pub sender: Option<String>,
}

/// The gateway as components reach it.
#[async_trait]
pub trait Nodes: Send + Sync + 'static {
    /// Sends `request` and waits for its result (JSON). A `handler` error
    /// is the answerer's own (amqp-swarm's `endpoint`); `timeout` and
    /// `unhandled` are the protocol's; `no-responders` means no host holds
    /// the node.
    async fn request(&self, request: NodeRequest) -> Result<Bytes, CallError>;
}

/// The gateway of a host, once it runs.
#[derive(Default)]
pub struct GatewayLink(OnceLock<Arc<dyn Nodes>>);

impl GatewayLink {
    /// Called once, by the gateway as it starts.
    pub fn connect(&self, nodes: Arc<dyn Nodes>) {
        if self.0.set(nodes).is_err() {
            tracing::warn!("a second gateway tried to serve this host's components; the first keeps them");
        }
    }

    /// The gateway, or why it cannot be reached yet.
    pub fn nodes(&self) -> Result<&Arc<dyn Nodes>, CallError> {
        self.0.get().ok_or_else(|| {
            CallError::new(
                ErrorKind::Overloaded,
                "the gateway is not listening yet (components are called before it starts only in `init`)",
            )
        })
    }
}
