//! The swap action: a running component replaced by a new version (see
//! [`crate::router::versions`] for the switch itself and the rollback).

use std::time::Instant;

use super::{App, OpError};
use crate::manifest::ComponentConfig;
use crate::runtime::Source;
use crate::runtime::cache::content_hash;

/// What to swap in.
#[derive(Clone, Debug, Default)]
pub struct SwapRequest {
    /// The new version's wasm.
    pub wasm: bytes::Bytes,
    /// A name for it, reported beside its hash; the serving version's
    /// label if absent.
    pub label: Option<String>,
    /// A new `[components.config]` for its `init`; the current one if absent.
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// A new manifest entry for it (grants, limits, environment, config,
    /// subscriptions), as `berth dev` sends when the manifest changes; the
    /// current one if absent. Its outbound transport must be the current
    /// one.
    pub component: Option<ComponentConfig>,
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
    /// The same code with the same settings as the serving version, so
    /// nothing was swapped.
    pub unchanged: bool,
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
        let route = self.running(name)?;
        let _serial = route.versions.lock().await;
        let current = self.loader.config(name).ok_or_else(not_found)?;
        let refused = |reason| OpError::Refused {
            name: name.to_owned(),
            reason,
        };
        let mut config = match request.component {
            Some(entry) => {
                if let Err(what) = swappable(&current, &entry) {
                    return Err(refused(anyhow::anyhow!(
                        "its {what} changed: a swap keeps those (restart the host to change them)"
                    )));
                }
                entry
            }
            None => current.clone(),
        };
        if let Some(new) = request.config {
            config.config = serde_json::from_value(serde_json::Value::Object(new))
                .map_err(|e| refused(anyhow::anyhow!("config is not a TOML-compatible table: {e}")))?;
        }
        let active = route.versions.active();
        // The same code with the same settings is no new version: a
        // rebuild that changed nothing, a file saved twice.
        if config == current && content_hash(&request.wasm) == active.hash {
            return Ok(SwapReport {
                name: name.to_owned(),
                version: active.hash.clone(),
                label: active.label.clone(),
                previous: active.hash.clone(),
                cached: true,
                elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
                unchanged: true,
            });
        }
        let label = request.label.or_else(|| active.label.clone());
        let (version, source) = self
            .loader
            .version(&config, &request.wasm, &route.stats, label)
            .await
            .map_err(refused)?;
        if config.subscribe != current.subscribe {
            // Subscribed before the switch: a failure leaves all as it was.
            self.wiring
                .resubscribe(route, &current, &config, &self.routes)
                .await
                .map_err(|e| refused(e.context("its new subscriptions")))?;
        }
        if config.max_concurrency != current.max_concurrency {
            route.set_concurrency(config.max_concurrency);
        }
        // The new version is judged by the new entry's probation.
        route.versions.set_probation(super::loader::probation(&config));
        route.breaker.set_policy(super::loader::policy(&config));
        self.loader.set_config(config);
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
            unchanged: false,
        };
        tracing::info!(component = name, from = %old.describe(), to = %&report.version[..12], elapsed_ms = report.elapsed_ms, "swapped");
        Ok(report)
    }
}

/// Whether a swap of `current` to `new` is one a running host can make;
/// if not, the setting that stops it: the name, or the transport its
/// outbound calls were connected to.
pub fn swappable(current: &ComponentConfig, new: &ComponentConfig) -> Result<(), &'static str> {
    if current.name != new.name {
        Err("name")
    } else if current.outbound != new.outbound {
        Err("outbound transport")
    } else {
        Ok(())
    }
}
