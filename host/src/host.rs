//! A running host: transports connected, components loaded and subscribed.
//!
//! [`Host::start`] does everything that can fail before the first message
//! arrives, so a bad manifest or component stops the start with an error
//! that names it. [`run`] is the `berth run` entry point: start, serve HTTP,
//! wait for the shutdown signal, drain.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::grants::Grants;
use crate::manifest::{ComponentConfig, Manifest, TransportKind};
use crate::quarantine::Policy;
use crate::router::{self, Route, RouteInfo};
use crate::stats::Stats;
use crate::runtime::{CompileCache, Environment, Runtime, Settings};
use crate::transport::memory::MemoryTransport;
use crate::transport::nats::NatsTransport;
use crate::transport::{SubscribeOptions, Transport};

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
    /// Token admin calls must carry; see [`crate::http`].
    pub admin_token: Option<String>,
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

        let fuel = manifest.components.iter().any(|c| c.fuel.is_some());
        let runtime = Runtime::new(CompileCache::new(manifest.host.data_dir.join("cache")), fuel)?;
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut routes = Vec::new();
        let subscribed = async {
            for config in &manifest.components {
                let route = Arc::new(load(&runtime, config, transport.clone(), &manifest.host.data_dir).await?);
                for sub in &config.subscribe {
                    let kind = sub.transport.unwrap_or(kind);
                    let transport = match transports.get(&kind) {
                        Some(t) => t.clone(),
                        None => {
                            let t = connect(kind, manifest).await?;
                            transports.insert(kind, t.clone());
                            t
                        }
                    };
                    let group = match (&sub.group, sub.broadcast) {
                        (_, true) => None,
                        (Some(g), false) => Some(g.clone()),
                        (None, false) => Some(format!("{}.{}", manifest.host.name, config.name)),
                    };
                    let subscription = transport
                        .subscribe(SubscribeOptions {
                            pattern: sub.subject.clone(),
                            group,
                            capacity: config.max_concurrency,
                        })
                        .await
                        .with_context(|| format!("component `{}`: subscribing to `{}` on {kind}", config.name, sub.subject))?;
                    router::serve(route.clone(), transport.kind(), subscription, &tasks, stop.clone());
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
        tracing::info!(service = %manifest.host.name, components = routes.len(), transport = %kind, "host started");
        Ok(Self {
            shared: Arc::new(Shared {
                name: manifest.host.name.clone(),
                started: Instant::now(),
                routes,
                transport,
                admin_token: manifest.host.admin_token.clone(),
            }),
            tasks,
            stop,
        })
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
        TransportKind::Amqp => bail!("transport `amqp` is not available in this build yet; use `memory` or `nats`"),
    }
}

async fn load(
    runtime: &Runtime,
    config: &ComponentConfig,
    outbound: Arc<dyn Transport>,
    data_dir: &Path,
) -> Result<Route> {
    let at = || format!("component `{}` ({})", config.name, config.wasm.display());
    let bytes = std::fs::read(&config.wasm).with_context(|| format!("{}: cannot read the wasm file", at()))?;
    let grants = Grants::parse(&config.publish, &config.request).with_context(at)?;
    let stats = Arc::new(Stats::default());
    let folder = if config.filesystem {
        let dir = data_dir.join("components").join(&config.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: creating its folder {}", at(), dir.display()))?;
        Some(dir)
    } else {
        None
    };
    let env = Arc::new(Environment {
        name: config.name.as_str().into(),
        grants,
        outbound,
        env: config.env.clone().into_iter().collect(),
        max_request_timeout: MAX_GUEST_REQUEST_TIMEOUT,
        max_message_bytes: config.max_message_kb as usize * 1024,
        data_dir: folder,
        stats: stats.clone(),
    });
    let settings = Settings {
        memory_bytes: config.memory_mb as usize * 1024 * 1024,
        timeout: Duration::from_millis(config.timeout_ms),
        mode: config.instance_mode,
        max_idle: config.max_concurrency,
        config_json: serde_json::to_string(&config.config).with_context(at)?,
        max_hostcall_bytes: config.max_hostcall_kb as usize * 1024,
        link_unused_sockets: config.link_unused_sockets,
        fuel: config.fuel,
    };
    let started = Instant::now();
    let (handler, source) = runtime.load(&bytes, settings, env).await.with_context(at)?;
    tracing::info!(
        component = %config.name,
        version = &handler.version()[..12],
        ?source,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "component loaded"
    );
    let info = RouteInfo {
        name: config.name.clone(),
        version: handler.version().to_owned(),
        mode: handler.mode(),
        subjects: config.subscribe.iter().map(|s| s.subject.clone()).collect(),
        max_concurrency: config.max_concurrency,
        policy: Policy {
            threshold: if config.quarantine_after == 0 { u32::MAX } else { config.quarantine_after },
            cooldown: Duration::from_millis(config.quarantine_ms),
            ..Policy::default()
        },
    };
    Ok(Route::new(info, Arc::new(handler), stats))
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
            Some(tokio::spawn(crate::http::serve(listener, host.shared(), http_stop.clone())))
        }
        None => None,
    };
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight calls");
    host.shutdown(DEFAULT_GRACE).await;
    http_stop.cancel();
    if let Some(http) = http {
        http.await.context("HTTP server task failed")??;
    }
    Ok(())
}
