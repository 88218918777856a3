//! The running host: transports connected, components loaded and
//! subscribed, and the operator actions that change it while it runs.
//!
//! [`Host::start`] does everything that can fail before the first message
//! arrives, so a bad manifest or component stops the start with an error
//! that names it. The control layer (HTTP, broker admin, health, watch)
//! sits on top of [`App`] and calls its operator actions ([`ops`]); this
//! layer knows nothing of how an operator reaches it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::keyvalue::Buckets;
use crate::router::Route;
use crate::transport::{Transport, TransportStatus};

mod loader;
pub mod ops;
mod routing;
mod start;
mod swap;
mod wiring;

use loader::Loader;
pub use ops::OpError;
pub use swap::{SwapReport, SwapRequest, swappable};

/// A running host as the control layer sees it. Cheap to share.
pub struct App {
    /// Service name.
    pub name: String,
    /// This host among the service's hosts: in health, `$SRV` and admin
    /// subjects.
    pub id: String,
    /// When the host started.
    pub started: Instant,
    /// Components, in manifest order.
    pub routes: Vec<Arc<Route>>,
    /// The default transport: HTTP ingress and outbound calls by default.
    pub transport: Arc<dyn Transport>,
    /// Every connected transport, the default first.
    pub transports: Vec<Arc<dyn Transport>>,
    /// Cancelled by the drain action: `berth run` then shuts down as on
    /// SIGTERM.
    pub drain: CancellationToken,
    /// Components that failed to load or `init`, with the reason: the
    /// others serve without them (unless `[host] strict`).
    pub failed: Vec<Failed>,
    /// Loads new versions for swaps.
    loader: Loader,
    /// Makes subscriptions when a swap changes them.
    wiring: wiring::Wiring,
}

/// A component that did not load, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failed {
    /// The component.
    pub name: String,
    /// What failed: the load error, its causes joined.
    pub reason: String,
}

impl Failed {
    fn new(name: &str, error: &anyhow::Error) -> Self {
        tracing::error!(
            component = name,
            "component failed to load; the others serve without it: {error:#}"
        );
        Self {
            name: name.to_owned(),
            reason: format!("{error:#}"),
        }
    }
}

impl App {
    /// A component's route, by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Each transport's connection state and counters.
    pub fn transport_status(&self) -> Vec<TransportStatus> {
        self.transports.iter().map(|t| t.status()).collect()
    }

    /// Where components granted `gateway = true` reach the gateway; the
    /// gateway connects itself here when it starts.
    pub fn gateway_link(&self) -> &Arc<crate::core::gateway::GatewayLink> {
        &self.loader.gateway
    }

    /// Every key-value bucket, for metrics.
    pub fn buckets(&self) -> &Buckets {
        &self.loader.buckets
    }

    /// The instance pool's slots and the warm budget, for metrics.
    pub fn capacity(&self) -> crate::runtime::Capacity {
        self.loader.runtime.capacity()
    }

    /// What the warm instances of every component hold, for health and
    /// metrics.
    pub fn warm(&self) -> crate::runtime::WarmStats {
        self.loader.runtime.warm()
    }

    /// Each component's name and wasm file, for watch mode.
    pub fn component_files(&self) -> Vec<(String, PathBuf)> {
        self.loader.files()
    }
}

/// A started host: its [`App`], and the tasks that serve it.
pub struct Host {
    app: Arc<App>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Host {
    /// What the control layer reads and steers.
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// The host's default transport, to send messages into it.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.app.transport.clone()
    }

    /// A component's route, by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.app.route(name)
    }

    /// Swaps a component; see [`App::swap`].
    pub async fn swap(&self, name: &str, request: SwapRequest) -> Result<SwapReport, OpError> {
        self.app.swap(name, request).await
    }

    /// The tasks shutdown waits for; the control layer's broker answerers
    /// run here too, so they drain with the components.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Cancelled when the host stops taking work.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops taking messages, lets in-flight calls finish for up to `grace`,
    /// and returns whether they all did.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        let drained = tokio::time::timeout(grace, self.tasks.wait()).await.is_ok();
        if drained {
            tracing::info!("all in-flight calls finished");
        } else {
            tracing::warn!(?grace, "in-flight calls still running after the grace period");
        }
        // The last calls' acks and replies may still be in a client's
        // buffer: a process that exits now would have them redone.
        for transport in &self.app.transports {
            match tokio::time::timeout(FLUSH_TIMEOUT, transport.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(transport = transport.kind(), "could not flush at shutdown: {e}"),
                Err(_) => tracing::warn!(
                    transport = transport.kind(),
                    "flush at shutdown took over {FLUSH_TIMEOUT:?}"
                ),
            }
        }
        drained
    }
}

/// How long a shutdown waits for each broker to take what was sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Unique enough per host start: service, process and start time.
fn instance_id(service: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service
        .bytes()
        .chain(std::process::id().to_le_bytes())
        .chain(nanos.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_ids_are_sixteen_hex_digits() {
        let id = super::instance_id("a");
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
