//! Swapping a running component for a new version (see
//! [`crate::versions`] for the switch itself and the rollback).

use std::time::Instant;

use super::Shared;

/// Why a swap did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// No component has that name.
    #[error("no component named `{0}`")]
    NotFound(String),
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

impl Shared {
    /// Replaces component `name` with the wasm in `bytes`: compiles,
    /// links and runs `init` of the new version while the old one serves,
    /// then switches atomically. Calls in flight finish on the old
    /// version. Swaps of one component wait for each other; swaps of
    /// different components do not.
    pub async fn swap(&self, name: &str, request: SwapRequest) -> Result<SwapReport, SwapError> {
        let started = Instant::now();
        let route = self
            .routes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| SwapError::NotFound(name.to_owned()))?;
        let config = self
            .loader
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| SwapError::NotFound(name.to_owned()))?;
        let _serial = route.versions.lock().await;
        let refused = |reason| SwapError::Refused {
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
            .version(&config, &request.wasm, route.stats.clone(), request.label)
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
            cached: matches!(source, crate::runtime::Source::Cached),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        tracing::info!(component = name, from = %old.describe(), to = %&report.version[..12], elapsed_ms = report.elapsed_ms, "swapped");
        Ok(report)
    }
}
