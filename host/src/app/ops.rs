//! The operator actions: everything an operator can read from or do to a
//! running host, written once. HTTP, broker admin, the CLI and watch mode
//! all come here; they differ only in how a caller reaches them and proves
//! who it is, which is the control layer's business.
//!
//! Each action that changes a component answers with the host's id and the
//! component as `/v1/components` shows it, so every way in reports the
//! same thing.

use serde_json::{Value, json};

use super::App;
use crate::router::Route;

/// Why an operator action was refused. Each way in maps it the same way,
/// through [`OpError::code`].
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No component has that name.
    #[error("no component named `{0}` on this host")]
    NotFound(String),
    /// The component failed to load at start and is not running.
    #[error("component `{name}` failed to load when the host started ({reason}); fix it and restart the host")]
    NotRunning {
        /// The component.
        name: String,
        /// Why it failed.
        reason: String,
    },
    /// The action's arguments are wrong.
    #[error("{0}")]
    Invalid(String),
    /// The new version could not be compiled, linked or initialised; the
    /// old one keeps serving.
    #[error("swap of `{name}` refused, the running version keeps serving: {reason:#}")]
    Refused {
        /// The component.
        name: String,
        /// What failed.
        reason: anyhow::Error,
    },
}

impl OpError {
    /// The HTTP-style status every way in answers with.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::NotRunning { .. } => 409,
            Self::Invalid(_) => 400,
            Self::Refused { .. } => 422,
        }
    }
}

impl App {
    /// Whether the host is healthy (every transport connected, some
    /// component serving), and the health document that says so: the same
    /// on HTTP, on the broker's health subjects and for `info`.
    pub fn health(&self) -> (bool, Value) {
        let serving = self.routes.iter().any(|r| r.breaker.is_serving());
        let transports = self.transport_status();
        let connected = transports.iter().all(|t| t.connected);
        let healthy = connected && (serving || (self.routes.is_empty() && self.failed.is_empty()));
        // Telestion's health check reads `name` and `errors` at the top.
        let errors: u64 = self.routes.iter().map(|r| r.stats.snapshot().errors).sum();
        let body = json!({
            "status": if healthy { "ok" } else { "unavailable" },
            "transports": transports,
            "name": self.name,
            "errors": errors,
            "id": self.id,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "components": self.components(),
        });
        (healthy, body)
    }

    /// Every component: version, state, counters; a component that
    /// failed to load has state `failed` and the reason.
    pub fn components(&self) -> Vec<Value> {
        let failed = self
            .failed
            .iter()
            .map(|f| json!({ "name": f.name, "state": { "state": "failed", "reason": f.reason } }));
        self.routes.iter().map(|r| describe(r)).chain(failed).collect()
    }

    /// Stops calling a component; its messages wait at the broker.
    pub fn suspend(&self, name: &str) -> Result<Value, OpError> {
        self.on_component(name, |r| r.breaker.suspend("suspended by an operator"))
    }

    /// Calls a suspended or quarantined component again.
    pub fn resume(&self, name: &str) -> Result<Value, OpError> {
        self.on_component(name, |r| r.breaker.resume())
    }

    /// Sets how many calls a component may have in flight (at least 1).
    pub fn set_concurrency(&self, name: &str, value: usize) -> Result<Value, OpError> {
        if value == 0 {
            return Err(OpError::Invalid("concurrency must be at least 1".into()));
        }
        self.on_component(name, |r| r.set_concurrency(value))
    }

    /// Stops taking work; `berth run` then finishes what is in flight and
    /// exits, as on SIGTERM. The answer goes out before the drain starts.
    pub fn drain(&self) -> Value {
        self.drain.cancel();
        json!({ "host": self.id, "draining": true })
    }

    /// A running component, or why there is none of that name.
    pub(super) fn running(&self, name: &str) -> Result<&std::sync::Arc<Route>, OpError> {
        self.route(name)
            .ok_or_else(|| match self.failed.iter().find(|f| f.name == name) {
                Some(f) => OpError::NotRunning {
                    name: f.name.clone(),
                    reason: f.reason.clone(),
                },
                None => OpError::NotFound(name.to_owned()),
            })
    }

    fn on_component(&self, name: &str, action: impl FnOnce(&Route)) -> Result<Value, OpError> {
        let route = self.running(name)?;
        action(route);
        tracing::info!(
            component = name,
            state = route.breaker.status().state,
            "operator action"
        );
        Ok(json!({ "host": self.id, "component": describe(route) }))
    }
}

/// A component as status, health and the operator actions show it.
fn describe(route: &Route) -> Value {
    let active = route.versions.active();
    let versions = route.versions.status();
    let mut state = route.breaker.status();
    if versions.swapping && state.state == "serving" {
        // Still serving (on the old version) while the new one loads.
        state.state = "swapping";
    }
    json!({
        "name": route.name,
        "version": active.hash,
        "versions": versions,
        "state": state,
        "instance_mode": active.mode,
        "subscribe": route.subjects(),
        "max_concurrency": route.concurrency(),
        "stats": route.stats.snapshot(),
    })
}
