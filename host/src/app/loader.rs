//! Loading a component's version: read, compile (or take from the cache),
//! link, `init`. Kept for the life of the host, so that a swap loads the
//! next version exactly as the start loaded the first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::core::gateway::GatewayLink;
use crate::core::handler::Handler as _;
use crate::core::keyvalue::Bucket;
use crate::core::limits::{InstanceMode, MAX_GUEST_REQUEST_TIMEOUT};
use crate::core::outbound::Outbound;
use crate::keyvalue::Buckets;
use crate::manifest::{ComponentConfig, Manifest};
use crate::router::quarantine::Policy;
use crate::router::stats::Stats;
use crate::router::versions::{Probation, Version};
use crate::router::{Route, RouteInfo};
use crate::runtime::grants::Grants;
use crate::runtime::{Environment, Runtime, Settings, Source, WasmHandler};

/// What loading a component needs.
pub(super) struct Loader {
    pub(super) runtime: Runtime,
    /// Where each component's publishes and requests go.
    outbound: HashMap<String, Arc<dyn Outbound>>,
    data_dir: PathBuf,
    /// Each component's manifest entry: a swap keeps all but the code
    /// (and, if given, the config or a new entry).
    configs: std::sync::RwLock<Vec<ComponentConfig>>,
    /// `[host] reply_headers`.
    reply_headers: bool,
    /// Every `[keyvalue.*]` bucket; each component gets those it is granted.
    pub(super) buckets: Buckets,
    /// Each bucket's change subject, for those that have one.
    changes: HashMap<String, String>,
    /// The gateway components granted `gateway = true` reach, once it runs.
    pub(super) gateway: Arc<GatewayLink>,
}

impl Loader {
    pub(super) fn new(
        runtime: Runtime,
        outbound: HashMap<String, Arc<dyn Outbound>>,
        buckets: Buckets,
        manifest: &Manifest,
    ) -> Self {
        Self {
            runtime,
            outbound,
            buckets,
            changes: manifest
                .keyvalue
                .iter()
                .filter_map(|(name, kv)| Some((name.clone(), kv.changes.clone()?)))
                .collect(),
            data_dir: manifest.host.data_dir.clone(),
            configs: std::sync::RwLock::new(manifest.components.clone()),
            reply_headers: manifest.host.reply_headers,
            gateway: Arc::default(),
        }
    }

    /// Each component's name and wasm file.
    pub(super) fn files(&self) -> Vec<(String, PathBuf)> {
        self.configs()
            .iter()
            .map(|c| (c.name.clone(), c.wasm.clone()))
            .collect()
    }

    fn configs(&self) -> std::sync::RwLockReadGuard<'_, Vec<ComponentConfig>> {
        self.configs.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A component's manifest entry as it serves now.
    pub(super) fn config(&self, name: &str) -> Option<ComponentConfig> {
        self.configs().iter().find(|c| c.name == name).cloned()
    }

    /// Replaces a component's manifest entry, after a swap to it.
    pub(super) fn set_config(&self, config: ComponentConfig) {
        let mut configs = self.configs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = configs.iter_mut().find(|c| c.name == config.name) {
            *slot = config;
        }
    }

    /// Loads a component's first version and makes its route. Returns
    /// too the change feeds it watches (see [`Loader::watched`]), whose
    /// subscriptions follow the manifest's in the route's subjects.
    pub(super) async fn route(&self, config: &ComponentConfig) -> Result<(Route, Vec<String>)> {
        let at = || format!("component `{}` ({})", config.name, config.wasm.display());
        let bytes = std::fs::read(&config.wasm).with_context(|| format!("{}: cannot read the wasm file", at()))?;
        // A large component takes seconds to compile the first time: say
        // what is happening.
        let lang = config
            .lang
            .or_else(|| config.source.as_deref().and_then(crate::manifest::Lang::infer))
            .map_or_else(String::new, |l| format!("{l}, "));
        tracing::info!(
            component = %config.name,
            "loading {} ({lang}{:.1} MB)…",
            config.name,
            bytes.len() as f64 / 1e6
        );
        let stats = Arc::new(Stats::default());
        let (handler, _) = self.load(config, &bytes, &stats).await.with_context(at)?;
        for mistake in super::routing::mistakes(config, handler.routes()) {
            tracing::warn!(component = %config.name, "{mistake}");
        }
        let watched = match handler.watches() {
            true => self.watched(config)?,
            false => Vec::new(),
        };
        let first = wrap(handler, config.label.clone());
        let subscribed = config.subscribe.iter().map(|s| s.subject.clone());
        let info = RouteInfo {
            name: config.name.clone(),
            subjects: subscribed.chain(watched.iter().cloned()).collect(),
            max_concurrency: config.max_concurrency,
            policy: policy(config),
            probation: probation(config),
            reply_headers: self.reply_headers,
        };
        Ok((Route::new(info, first, stats), watched))
    }

    /// The change feeds a component that exports `wasi:keyvalue/watcher`
    /// is subscribed to: `<changes>.>` of each bucket it is granted that
    /// has one. One that watches nothing is refused: its watcher would
    /// never be called.
    fn watched(&self, config: &ComponentConfig) -> Result<Vec<String>> {
        let feeds: Vec<String> = config
            .keyvalue
            .iter()
            .filter_map(|bucket| Some(format!("{}.>", self.changes.get(bucket)?)))
            .collect();
        anyhow::ensure!(
            !feeds.is_empty(),
            "component `{}` exports wasi:keyvalue/watcher, but none of the buckets it is granted ({}) has a \
             `changes` subject, so no change would reach it: set `changes = \"<subject>\"` on the [keyvalue] \
             tables it watches",
            config.name,
            match config.keyvalue.is_empty() {
                true => "none".to_owned(),
                false => config.keyvalue.join(", "),
            }
        );
        Ok(feeds)
    }

    /// Compiles (or takes from the cache), links and initialises one
    /// version of a component: everything that can fail, before it serves.
    pub(super) async fn version(
        &self,
        config: &ComponentConfig,
        bytes: &[u8],
        stats: &Stats,
        label: Option<String>,
    ) -> Result<(Version, Source)> {
        let (handler, source) = self.load(config, bytes, stats).await?;
        Ok((wrap(handler, label), source))
    }

    async fn load(&self, config: &ComponentConfig, bytes: &[u8], stats: &Stats) -> Result<(WasmHandler, Source)> {
        let env = Arc::new(self.environment(config, stats)?);
        let started = Instant::now();
        let (handler, source) = self.runtime.load(bytes, settings(config)?, env).await?;
        anyhow::ensure!(
            !config.middleware || handler.is_middleware(),
            "it is marked `middleware = true` but exports no berth:backend/middleware \
             (the Rust SDK exports it for a router with `.middleware(...)`; other languages target world `middleware-backend`)"
        );
        if handler.mode() == InstanceMode::Pooled
            && handler.serves_http()
            && crate::runtime::inspect::built_by_componentize_js(bytes)
        {
            tracing::warn!(
                component = %config.name,
                "`instance_mode = \"pooled\"`, but it is {}",
                crate::runtime::inspect::ONE_REQUEST_PER_INSTANCE
            );
        }
        tracing::info!(
            component = %config.name,
            version = &handler.version()[..12],
            ?source,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component loaded"
        );
        Ok((handler, source))
    }

    /// Who the component is to its host imports: grants, outbound
    /// transport, environment, folder.
    fn environment(&self, config: &ComponentConfig, stats: &Stats) -> Result<Environment> {
        let grants = Grants::parse(&config.publish, &config.request)?;
        let data_dir = if config.filesystem {
            let dir = self.data_dir.join("components").join(&config.name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating its folder {}", dir.display()))?;
            Some(dir)
        } else {
            None
        };
        let outbound = self
            .outbound
            .get(&config.name)
            .with_context(|| format!("no outbound transport for component `{}`", config.name))?
            .clone();
        Ok(Environment {
            name: config.name.as_str().into(),
            grants,
            outbound,
            env: config.env.clone().into_iter().collect(),
            max_request_timeout: MAX_GUEST_REQUEST_TIMEOUT,
            max_message_bytes: config.max_message_kb as usize * 1024,
            data_dir,
            counters: stats.runtime(),
            keyvalue: self.granted_buckets(config)?,
            http_outbound: config.http_outbound.clone(),
            config: match serde_json::to_value(&config.config)? {
                serde_json::Value::Object(table) => crate::runtime::flatten_config(&table),
                _ => Vec::new(),
            },
            gateway: config.gateway.then(|| self.gateway.clone()),
        })
    }

    /// The buckets `config` grants, by name.
    fn granted_buckets(&self, config: &ComponentConfig) -> Result<HashMap<String, Arc<dyn Bucket>>> {
        config
            .keyvalue
            .iter()
            .map(|name| {
                let bucket = self.buckets.get(name).with_context(|| {
                    format!(
                        "component `{}`: keyvalue grants `{name}`, which is not a [keyvalue] table",
                        config.name
                    )
                })?;
                Ok((name.clone(), bucket.clone() as Arc<dyn Bucket>))
            })
            .collect()
    }
}

/// A loaded component as the router serves it.
fn wrap(handler: WasmHandler, label: Option<String>) -> Version {
    let (hash, mode) = (handler.version().to_owned(), handler.mode());
    Version::new(Arc::new(handler), hash, label, mode)
}

/// When its manifest entry says to quarantine a component.
pub(super) fn policy(config: &ComponentConfig) -> Policy {
    Policy {
        threshold: if config.quarantine_after == 0 {
            u32::MAX
        } else {
            config.quarantine_after
        },
        cooldown: Duration::from_millis(config.quarantine_ms),
        ..Policy::default()
    }
}

/// When its manifest entry says to roll a swapped-in version back.
pub(super) fn probation(config: &ComponentConfig) -> Probation {
    Probation {
        window: Duration::from_millis(config.probation_ms),
        max_faults: config.rollback_after,
    }
}

/// The runtime's limits for a component, from its manifest entry.
fn settings(config: &ComponentConfig) -> Result<Settings> {
    Ok(Settings {
        memory_bytes: config.memory_mb as usize * 1024 * 1024,
        timeout: Duration::from_millis(config.timeout_ms),
        mode: config.instance_mode,
        max_idle: config.max_concurrency,
        config_json: serde_json::to_string(&config.config)?,
        max_hostcall_bytes: config.max_hostcall_kb as usize * 1024,
        link_unused_sockets: config.link_unused_sockets,
        fuel: config.fuel,
        max_instances: config.max_instances,
        max_tables: config.max_tables,
        max_batch: config.max_batch,
    })
}
