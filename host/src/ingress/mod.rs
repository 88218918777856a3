//! Ways in for clients that are not brokers: HTTP routes with their
//! middleware chains ([`http`]) and the WebSocket gateway for amqp-swarm
//! clients ([`gateway`]), both sending to subjects through [`target`]. Above the app layer, which it sends
//! requests through; below the control layer, whose HTTP listener serves
//! the routes beside the host's own API.

pub mod finish;
pub mod gateway;
pub mod http;
pub mod listen;
pub mod target;

use std::sync::Arc;

/// Every ingress of a running host, as the control layer serves and
/// reports them.
pub struct Ingress {
    /// `[[http.routes]]`, on the host's HTTP listener.
    pub routes: http::Routes,
    /// `[gateway]`, on its own listener, if the manifest has one.
    pub gateway: Option<Arc<gateway::Gateway>>,
}
