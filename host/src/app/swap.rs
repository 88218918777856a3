//! The swap action: a running component replaced by a new version (see
//! [`crate::router::versions`] for the switch itself and the rollback).

use std::time::Instant;

use super::{App, OpError};
use crate::runtime::Source;

/// What to swap in.
#[derive(Clone, Debug, Default)]
pub struct SwapRequest {
    /// The new version's wasm.
    pub wasm: bytes::Bytes,
    /// A name for it, reported beside its hash.
    pub label: Option<String>,
    /// A new `[components.config]` for its `init`; the current one if absent.
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A finished swap.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SwapReport {
    /// The component.
    pub name: String,
    /// Hash of the version now serving.
    pub version: String,
    /// Its label.
    pub label: Option<String>,
    /// Hash of the version it replaced.
    pub previous: String,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    /// From the swap request to the new version serving.
    pub elapsed_ms: f64,
}

impl App {
    /// Replaces component `name` with the wasm in the request: compiles,
    /// links and runs `init` of the new version while the old one serves,
    /// then switches atomically. Calls in flight finish on the old
    /// version. Swaps of one component wait for each other; swaps of
    /// different components do not.
    pub async fn swap(&self, name: &str, request: SwapRequest) -> Result<SwapReport, OpError> {
        let started = Instant::now();
        let not_found = || OpError::NotFound(name.to_owned());
        let route = self.route(name).ok_or_else(not_found)?;
        let config = self
            .loader
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(not_found)?;
        let _serial = route.versions.lock().await;
        let refused = |reason| OpError::Refused {
            name: name.to_owned(),
            reason,
        };
        let mut config = config.clone();
        if let Some(new) = request.config {
            config.config = serde_json::from_value(serde_json::Value::Object(new))
                .map_err(|e| refused(anyhow::anyhow!("config is not a TOML-compatible table: {e}")))?;
        }
        let (version, source) = self
            .loader
            .version(&config, &request.wasm, &route.stats, request.label)
            .await
            .map_err(refused)?;
        let hash = version.hash.clone();
        let label = version.label.clone();
        let old = route.versions.install(version);
        // A quarantine judged the old version; the new one starts clean.
        route.breaker.resume();
        let report = SwapReport {
            name: name.to_owned(),
            version: hash,
            label,
            previous: old.hash.clone(),
            cached: matches!(source, Source::Cached),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        tracing::info!(component = name, from = %old.describe(), to = %&report.version[..12], elapsed_ms = report.elapsed_ms, "swapped");
        Ok(report)
    }
}
