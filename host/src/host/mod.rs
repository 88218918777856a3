//! A running host: transports connected, components loaded and subscribed.
//!
//! [`Host::start`] does everything that can fail before the first message
//! arrives, so a bad manifest or component stops the start with an error
//! that names it. [`run`] is the `berth run` entry point: start, serve HTTP,
//! wait for the shutdown signal, drain.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::grants::Grants;
use crate::manifest::{ComponentConfig, Manifest, TransportKind};
use crate::quarantine::Policy;
use crate::router::{self, Route, RouteInfo};
use crate::runtime::{CompileCache, Environment, Runtime, Settings};
use crate::stats::Stats;
use crate::transport::amqp::AmqpTransport;
use crate::transport::jetstream::StreamOptions;
use crate::transport::memory::MemoryTransport;
use crate::transport::nats::NatsTransport;
use crate::versions::{Probation, Version};

mod swap;

use crate::transport::{SubscribeOptions, Transport};
pub use swap::{SwapError, SwapReport, SwapRequest};

/// How long shutdown waits for in-flight calls by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Longest timeout a guest may ask for on an outbound request.
const MAX_GUEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the HTTP layer and status commands read. Cheap to share.
pub struct Shared {
    /// Service name.
    pub name: String,
    /// When the host started.
    pub started: Instant,
    /// Components, in manifest order.
    pub routes: Vec<Arc<Route>>,
    /// The transport for ingress and guests' outbound calls.
    pub transport: Arc<dyn Transport>,
    /// Every connected transport, the default first.
    pub transports: Vec<Arc<dyn Transport>>,
    /// Token admin calls must carry; see [`crate::http`] and [`crate::admin`].
    pub admin_token: Option<String>,
    /// This host among the service's hosts: in health, `$SRV` and admin
    /// subjects.
    pub id: String,
    /// Cancelled by an admin `drain`: `berth run` then shuts down as on
    /// SIGTERM.
    pub drain: CancellationToken,
    /// Loads new versions for swaps.
    loader: Loader,
}

/// What loading a component needs, kept so that swaps can load again.
struct Loader {
    runtime: Runtime,
    /// Where each component's publishes and requests go.
    outbound: HashMap<String, Arc<dyn Transport>>,
    default_outbound: Arc<dyn Transport>,
    data_dir: PathBuf,
    configs: Vec<ComponentConfig>,
    /// `[host] reply_headers`.
    reply_headers: bool,
}

impl Shared {
    /// Whether the host is healthy (every transport connected, some
    /// component serving), and the health document that says so: the same
    /// on HTTP and on the broker's health subjects.
    pub fn health(&self) -> (bool, serde_json::Value) {
        let serving = self
            .routes
            .iter()
            .any(|r| !matches!(r.breaker.status().state, "quarantined" | "suspended"));
        let transports: Vec<_> = self.transports.iter().map(|t| t.status()).collect();
        let connected = transports.iter().all(|t| t.connected);
        let healthy = connected && (serving || self.routes.is_empty());
        let body = serde_json::json!({
            "status": if healthy { "ok" } else { "unavailable" },
            "transports": transports,
            "name": self.name,
            "id": self.id,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "components": self.component_list(),
        });
        (healthy, body)
    }

    /// Every component: version, state, counters.
    pub fn component_list(&self) -> Vec<serde_json::Value> {
        self.routes
            .iter()
            .map(|r| {
                let active = r.versions.active();
                let versions = r.versions.status();
                let mut state = r.breaker.status();
                if versions.swapping && state.state == "serving" {
                    // Still serving (on the old version) while the new one loads.
                    state.state = "swapping";
                }
                serde_json::json!({
                    "name": r.name,
                    "version": active.hash,
                    "versions": versions,
                    "state": state,
                    "instance_mode": active.mode,
                    "subscribe": r.subjects,
                    "max_concurrency": r.concurrency(),
                    "stats": r.stats.snapshot(),
                })
            })
            .collect()
    }

    /// Each component's name and wasm file, for watch mode.
    pub fn component_files(&self) -> Vec<(String, PathBuf)> {
        self.loader
            .configs
            .iter()
            .map(|c| (c.name.clone(), c.wasm.clone()))
            .collect()
    }
}

/// A started host.
pub struct Host {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Host {
    /// Connects transports, loads every component (compile, link, `init`)
    /// and subscribes it. Any failure stops the start and names its cause.
    pub async fn start(manifest: &Manifest) -> Result<Self> {
        let kind = manifest.host.transport;
        let transport = connect(kind, manifest).await?;
        let mut transports: HashMap<TransportKind, Arc<dyn Transport>> = HashMap::new();
        transports.insert(kind, transport.clone());

        // Every transport a component subscribes or sends on, connected
        // before anything loads, so a broker that is not there stops the
        // start before any component runs.
        let mut outbound = HashMap::new();
        for config in &manifest.components {
            let first = config.subscribe.first().and_then(|s| s.transport);
            let wanted = config.subscribe.iter().map(|s| s.transport.unwrap_or(kind));
            for k in wanted.chain(config.outbound).chain(first) {
                if let std::collections::hash_map::Entry::Vacant(slot) = transports.entry(k) {
                    slot.insert(connect(k, manifest).await?);
                }
            }
            let out = config.outbound.or(first).unwrap_or(kind);
            outbound.insert(config.name.clone(), transports[&out].clone());
        }

        let fuel = manifest.components.iter().any(|c| c.fuel.is_some());
        let runtime = Runtime::new(CompileCache::new(manifest.host.data_dir.join("cache")), fuel)?;
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut routes = Vec::new();
        let loader = Loader {
            runtime,
            outbound,
            default_outbound: transport.clone(),
            data_dir: manifest.host.data_dir.clone(),
            configs: manifest.components.clone(),
            reply_headers: manifest.host.reply_headers,
        };
        let subscribed = async {
            for config in &manifest.components {
                let route = Arc::new(loader.route(config).await?);
                for (index, sub) in config.subscribe.iter().enumerate() {
                    let kind = sub.transport.unwrap_or(kind);
                    let transport = transports[&kind].clone();
                    let group = match (&sub.group, sub.broadcast) {
                        (_, true) => None,
                        (Some(g), false) => Some(g.clone()),
                        (None, false) => Some(format!("{}.{}", manifest.host.name, config.name)),
                    };
                    let stream = sub.stream.as_ref().map(|stream| {
                        let durable = sub.durable.clone().unwrap_or_else(|| {
                            group
                                .as_deref()
                                .unwrap_or(&config.name)
                                .replace(['.', '*', '>', ' '], "_")
                        });
                        StreamOptions {
                            stream: stream.clone(),
                            dead_letter: sub
                                .dead_letter
                                .clone()
                                .unwrap_or_else(|| format!("berth.dead.{durable}")),
                            durable,
                        }
                    });
                    let subscription = transport
                        .subscribe(SubscribeOptions {
                            pattern: sub.subject.clone(),
                            group,
                            capacity: config.max_concurrency,
                            max_deliver: config.max_deliver,
                            stream,
                        })
                        .await
                        .with_context(|| {
                            format!(
                                "component `{}`: subscribing to `{}` on {kind}",
                                config.name, sub.subject
                            )
                        })?;
                    router::serve(
                        route.clone(),
                        index,
                        transport.kind(),
                        subscription,
                        &tasks,
                        stop.clone(),
                    );
                }
                routes.push(route);
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = subscribed {
            // Components loaded before the failure must not keep serving.
            stop.cancel();
            return Err(e);
        }
        let shared = Arc::new(Shared {
            name: manifest.host.name.clone(),
            started: Instant::now(),
            routes,
            transports: std::iter::once(transport.clone())
                .chain(transports.into_iter().filter(|(k, _)| *k != kind).map(|(_, t)| t))
                .collect(),
            transport,
            admin_token: manifest.host.admin_token.clone(),
            id: crate::service::instance_id(&manifest.host.name),
            drain: CancellationToken::new(),
            loader,
        });
        if let Err(e) = crate::service::start(shared.clone(), manifest.host.telestion, &tasks, stop.clone()).await {
            stop.cancel();
            return Err(e.context("answering health and service requests on the broker"));
        }
        if manifest.host.admin
            && let Err(e) = crate::admin::start(shared.clone(), &tasks, stop.clone()).await
        {
            stop.cancel();
            return Err(e.context("answering admin commands on the broker"));
        }
        tracing::info!(service = %manifest.host.name, components = shared.routes.len(), transport = %kind, "host started");
        Ok(Self { shared, tasks, stop })
    }

    /// What status and HTTP read.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The host's default transport, to send messages into it.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.shared.transport.clone()
    }

    /// A component's route, by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.shared.routes.iter().find(|r| r.name == name)
    }

    /// Swaps a component; see [`Shared::swap`].
    pub async fn swap(&self, name: &str, request: SwapRequest) -> Result<SwapReport, SwapError> {
        self.shared.swap(name, request).await
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
        drained
    }
}

async fn connect(kind: TransportKind, manifest: &Manifest) -> Result<Arc<dyn Transport>> {
    match kind {
        TransportKind::Memory => Ok(Arc::new(MemoryTransport::default())),
        TransportKind::Nats => {
            let config = manifest.transports.nats.clone().unwrap_or_default();
            let nats = NatsTransport::connect(&config).await?;
            tracing::info!(url = %config.url, max_payload = nats.max_payload(), "connected to NATS");
            Ok(Arc::new(nats))
        }
        TransportKind::Amqp => {
            let config = manifest.transports.amqp.clone().unwrap_or_default();
            let amqp = AmqpTransport::connect(&config).await?;
            tracing::info!(exchange = %config.exchange, "connected to AMQP");
            Ok(Arc::new(amqp))
        }
    }
}

impl Loader {
    /// Loads a component's first version and makes its route.
    async fn route(&self, config: &ComponentConfig) -> Result<Route> {
        let at = || format!("component `{}` ({})", config.name, config.wasm.display());
        let bytes = std::fs::read(&config.wasm).with_context(|| format!("{}: cannot read the wasm file", at()))?;
        let stats = Arc::new(Stats::default());
        let (first, _) = self
            .version(config, &bytes, stats.clone(), config.label.clone())
            .await
            .with_context(at)?;
        let info = RouteInfo {
            name: config.name.clone(),
            subjects: config.subscribe.iter().map(|s| s.subject.clone()).collect(),
            max_concurrency: config.max_concurrency,
            policy: Policy {
                threshold: if config.quarantine_after == 0 {
                    u32::MAX
                } else {
                    config.quarantine_after
                },
                cooldown: Duration::from_millis(config.quarantine_ms),
                ..Policy::default()
            },
            probation: Probation {
                window: Duration::from_millis(config.probation_ms),
                max_faults: config.rollback_after,
            },
            reply_headers: self.reply_headers,
        };
        Ok(Route::new(info, first, stats))
    }

    /// Compiles (or takes from the cache), links and initialises one
    /// version of a component: everything that can fail, before it serves.
    async fn version(
        &self,
        config: &ComponentConfig,
        bytes: &[u8],
        stats: Arc<Stats>,
        label: Option<String>,
    ) -> Result<(Version, crate::runtime::Source)> {
        let grants = Grants::parse(&config.publish, &config.request)?;
        let folder = if config.filesystem {
            let dir = self.data_dir.join("components").join(&config.name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating its folder {}", dir.display()))?;
            Some(dir)
        } else {
            None
        };
        let env = Arc::new(Environment {
            name: config.name.as_str().into(),
            grants,
            outbound: self
                .outbound
                .get(&config.name)
                .unwrap_or(&self.default_outbound)
                .clone(),
            env: config.env.clone().into_iter().collect(),
            max_request_timeout: MAX_GUEST_REQUEST_TIMEOUT,
            max_message_bytes: config.max_message_kb as usize * 1024,
            data_dir: folder,
            stats,
        });
        let settings = Settings {
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
        };
        let started = Instant::now();
        let (handler, source) = self.runtime.load(bytes, settings, env).await?;
        tracing::info!(
            component = %config.name,
            version = &handler.version()[..12],
            ?source,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component loaded"
        );
        let (hash, mode) = (handler.version().to_owned(), handler.mode());
        Ok((Version::new(Arc::new(handler), hash, label, mode), source))
    }
}

/// `berth run`: starts the host, serves HTTP if configured, and on
/// `shutdown` stops taking work and drains in-flight calls.
pub async fn run(manifest: Manifest, shutdown: impl Future<Output = ()>) -> Result<()> {
    let host = Host::start(&manifest).await?;
    let http_stop = CancellationToken::new();
    let http = match manifest.host.http {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on [host] http = {addr}"))?;
            tracing::info!(%addr, "HTTP admin and ingress listening");
            Some(tokio::spawn(crate::http::serve(
                listener,
                host.shared(),
                http_stop.clone(),
            )))
        }
        None => None,
    };
    let watching = manifest
        .host
        .watch
        .then(|| crate::watch::spawn(host.shared(), http_stop.clone()));
    let drain = host.shared().drain.clone();
    tokio::select! {
        () = shutdown => tracing::info!("shutting down: finishing in-flight calls"),
        () = drain.cancelled() => tracing::info!("draining (admin command): finishing in-flight calls"),
    }
    if let Some(watching) = watching {
        watching.abort();
    }
    host.shutdown(DEFAULT_GRACE).await;
    http_stop.cancel();
    if let Some(http) = http {
        http.await.context("HTTP server task failed")??;
    }
    Ok(())
}
