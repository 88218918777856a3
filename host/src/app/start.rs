//! Starting a host: connect every transport a component needs, load each
//! component, subscribe it. A failure stops the start and names its cause;
//! components loaded before it stop serving.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::wiring::{Connected, Transports, Wiring};
use super::{App, Failed, Host, Loader, instance_id};
use crate::core::outbound::Outbound;
use crate::keyvalue::Buckets;
use crate::manifest::{KvBackend, Manifest, TransportKind};
use crate::router::Route;
use crate::runtime::{Capacity, CompileCache, Runtime};
use crate::transport::amqp::AmqpTransport;
use crate::transport::memory::MemoryTransport;
use crate::transport::nats::NatsTransport;
use crate::transport::{Sender, Transport};

impl Host {
    /// Connects transports, loads every component (compile, link, `init`)
    /// and subscribes it. A component that fails is reported as failed and
    /// the others serve, unless `[host] strict`; any other failure stops
    /// the start and names its cause.
    pub async fn start(manifest: &Manifest) -> Result<Self> {
        let kind = manifest.host.transport;
        let (transports, outbound) = connect_all(manifest).await?;
        let cache = writable(&manifest.host.data_dir.join("cache"))?;
        let nats = transports.get(&TransportKind::Nats).and_then(|t| t.nats.as_ref());
        let feeds: Arc<dyn Outbound> = Arc::new(Sender(transports[&kind].any.clone()));
        let buckets = Buckets::open(manifest, nats.map(NatsTransport::client), feeds).await?;
        let fuel = manifest.components.iter().any(|c| c.fuel.is_some());
        let capacity = Capacity {
            warm_bytes: manifest.host.max_warm_mb as usize * (1 << 20),
            slots: manifest.instance_slots(),
        };
        let runtime = Runtime::with_capacity(CompileCache::new(cache), fuel, capacity)?;
        tracing::debug!(
            slots = capacity.slots,
            warm_bytes = capacity.warm_bytes,
            "instance pool sized"
        );
        let loader = Loader::new(runtime, outbound, buckets, manifest);
        let wiring = Wiring::new(transports, &manifest.host);
        // Components compile, link and run `init` side by side, a few at a
        // time (all at once, ten thousand would each hold their wasm bytes
        // until the first of them compiled); then each subscribes, in
        // manifest order.
        let total = manifest.components.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let loaded: Vec<_> = futures_util::stream::iter(manifest.components.iter().map(|c| async {
            let outcome = loader.route(c).await;
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            outcome
        }))
        .buffered(load_parallelism())
        .collect()
        .await;
        let mut failed = Vec::new();
        let mut served = Vec::new();
        for (config, outcome) in manifest.components.iter().zip(loaded) {
            match outcome {
                Ok((route, watched)) => served.push((config, Arc::new(route), watched)),
                Err(e) if manifest.host.strict => {
                    return Err(e.context("[host] strict: every component must load"));
                }
                Err(e) => failed.push(Failed::new(&config.name, &e)),
            }
        }
        let links: Vec<Arc<Route>> = served.iter().map(|(_, route, _)| route.clone()).collect();
        let mut routes = Vec::new();
        for (config, route, watched) in served {
            // A subscription behind middleware that failed cannot be served
            // as the manifest says; the component waits out with it.
            let missing = config
                .subscribe
                .iter()
                .flat_map(|s| &s.middleware)
                .find(|m| failed.iter().any(|f: &Failed| &f.name == *m));
            if let Some(missing) = missing {
                let why = anyhow::anyhow!("its middleware `{missing}` failed to load");
                failed.push(Failed::new(&config.name, &why));
                continue;
            }
            if let Err(e) = wiring.serve(config, &route, watched, &links).await {
                // Components subscribed before the failure must not keep serving.
                wiring.stop.cancel();
                return Err(e);
            }
            routes.push(route);
        }
        tracing::info!(
            loaded = routes.len(),
            failed = failed.len(),
            of = manifest.components.len(),
            "components loaded"
        );
        let transports = &wiring.transports;
        let default = transports[&kind].any.clone();
        let (tasks, stop) = (wiring.tasks.clone(), wiring.stop.clone());
        let app = Arc::new(App {
            name: manifest.host.name.clone(),
            id: instance_id(&manifest.host.name),
            started: Instant::now(),
            routes,
            transports: std::iter::once(default.clone())
                .chain(
                    transports
                        .iter()
                        .filter(|(k, _)| **k != kind)
                        .map(|(_, t)| t.any.clone()),
                )
                .collect(),
            transport: default,
            drain: CancellationToken::new(),
            failed,
            loader,
            wiring,
        });
        // "host started" is the control layer's to say, once the host also
        // answers health, the service API and admin on the broker.
        tracing::debug!(service = %app.name, components = app.routes.len(), transport = %kind, "components serving");
        Ok(Self { app, tasks, stop })
    }
}

/// Logs every tenth of the components loaded (of many), so a start of
/// thousands shows how far it is.
/// How many components load at once: enough to keep every core compiling.
fn load_parallelism() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2).max(4)
}

fn progress(done: usize, total: usize) {
    if total >= 20 && done.is_multiple_of(total.div_ceil(10)) {
        tracing::info!("loading components: {done} of {total}");
    }
}

/// `dir`, made if missing, once a file could be written in it: a data
/// folder the host cannot write would lose the compile cache and every
/// component's files, so it stops the start instead.
fn writable(dir: &Path) -> Result<PathBuf> {
    let fail = || format!("DATA_DIR: {} is not a folder this host can write to", dir.display());
    std::fs::create_dir_all(dir).with_context(fail)?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(fail)?;
    std::fs::remove_file(&probe).with_context(fail)?;
    Ok(dir.to_path_buf())
}

/// Every transport a component subscribes or sends on, connected before
/// anything loads, so a broker that is not there stops the start before
/// any component runs; and where each component's outbound calls go.
async fn connect_all(manifest: &Manifest) -> Result<(Transports, HashMap<String, Arc<dyn Outbound>>)> {
    let kind = manifest.host.transport;
    let mut transports = Transports::new();
    transports.insert(kind, connect(kind, manifest).await?);
    let kv_on_nats = manifest.keyvalue.values().any(|kv| kv.backend == KvBackend::Nats);
    if kv_on_nats && !transports.contains_key(&TransportKind::Nats) {
        transports.insert(TransportKind::Nats, connect(TransportKind::Nats, manifest).await?);
    }
    let mut outbound: HashMap<String, Arc<dyn Outbound>> = HashMap::new();
    for config in &manifest.components {
        let first = config.subscribe.first().and_then(|s| s.transport);
        let wanted = config.subscribe.iter().map(|s| s.transport.unwrap_or(kind));
        for k in wanted.chain(config.outbound).chain(first) {
            if let Entry::Vacant(slot) = transports.entry(k) {
                slot.insert(connect(k, manifest).await?);
            }
        }
        let out = config.outbound.or(first).unwrap_or(kind);
        outbound.insert(config.name.clone(), Arc::new(Sender(transports[&out].any.clone())));
    }
    Ok((transports, outbound))
}

async fn connect(kind: TransportKind, manifest: &Manifest) -> Result<Connected> {
    let other = |any: Arc<dyn Transport>| Connected { any, nats: None };
    match kind {
        TransportKind::Memory => Ok(other(Arc::new(MemoryTransport::default()))),
        TransportKind::Nats => {
            let config = manifest.transports.nats.clone().unwrap_or_default();
            let nats = NatsTransport::connect(&config).await?;
            tracing::info!(url = %config.url, max_payload = nats.max_payload(), "connected to NATS");
            Ok(Connected {
                any: Arc::new(nats.clone()),
                nats: Some(nats),
            })
        }
        TransportKind::Amqp => {
            let config = manifest.transports.amqp.clone().unwrap_or_default();
            let amqp = AmqpTransport::connect(&config).await?;
            tracing::info!(exchange = %config.exchange, "connected to AMQP");
            Ok(other(Arc::new(amqp)))
        }
    }
}
