//! The control plane: how operators and tools reach a running host. HTTP
//! (health, status, metrics, operator actions, ingress), the broker's
//! health and admin subjects, the NATS service API, and watch mode. Every
//! way in calls the app layer's operator actions ([`crate::app::ops`]) and
//! passes the one authorization rule ([`auth`]).
//!
//! [`start`] is a host with its broker-side control plane; [`run`] is
//! `berth run`: that, plus HTTP and watch mode, until a shutdown signal or
//! a drain.

use std::future::Future;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::app::Host;
use crate::core::limits::DEFAULT_GRACE;
use crate::manifest::Manifest;

pub mod admin;
mod answer;
pub mod auth;
pub mod health;
pub mod http;
pub mod metrics;
mod service;
pub mod watch;

use auth::Auth;

/// Starts the host and what answers for it on the broker: health on every
/// transport, the NATS service API, and broker admin if the manifest turns
/// it on. A failure of either stops the start.
pub async fn start(manifest: &Manifest) -> Result<Host> {
    start_with(manifest, &Auth::new(manifest.host.admin_token.clone())).await
}

/// As [`start`], with broker admin under `auth`, which HTTP then shares.
async fn start_with(manifest: &Manifest, auth: &Auth) -> Result<Host> {
    let host = Host::start(manifest).await?;
    let app = host.app();
    let (tasks, stop) = (host.tasks(), host.stopping());
    let answering = async {
        health::start(&app, manifest.host.telestion, tasks, &stop)
            .await
            .context("answering health requests on the broker")?;
        service::start(&app, tasks, &stop)
            .await
            .context("answering the NATS service API")?;
        if manifest.host.admin {
            admin::start(&app, auth, tasks, &stop)
                .await
                .context("answering admin commands on the broker")?;
        }
        anyhow::Ok(())
    };
    if let Err(e) = answering.await {
        stop.cancel();
        return Err(e);
    }
    // Only now: whoever waits for this line may ask the host anything,
    // admin commands on the broker included.
    tracing::info!(service = %app.name, components = app.routes.len(), "host started");
    Ok(host)
}

/// `berth run`: starts the host, serves HTTP if configured, watches the
/// component files if asked, and on `shutdown` (or a drain) stops taking
/// work and lets in-flight calls finish.
pub async fn run(manifest: Manifest, shutdown: impl Future<Output = ()>) -> Result<()> {
    tokio::pin!(shutdown);
    // A signal while components load ends the start; polling it from the
    // first moment also installs the handler before anything else runs.
    let running = tokio::select! {
        running = Running::start(&manifest) => running?,
        () = &mut shutdown => {
            tracing::info!("shut down while starting");
            return Ok(());
        }
    };
    let app = running.app();
    tokio::select! {
        () = shutdown => tracing::info!("shutting down: finishing in-flight calls"),
        () = app.drain.cancelled() => tracing::info!("draining (admin command): finishing in-flight calls"),
    }
    running.stop().await
}

/// A host with everything `berth run` serves around it: the broker-side
/// control plane, HTTP and watch mode. `berth dev` stops one and starts
/// another when the manifest changes what a swap cannot.
pub struct Running {
    host: Host,
    ingress: std::sync::Arc<crate::ingress::Ingress>,
    gateway_stop: CancellationToken,
    http: Option<tokio::task::JoinHandle<Result<()>>>,
    watching: Option<tokio::task::JoinHandle<()>>,
    http_stop: CancellationToken,
    /// Where the HTTP listener is bound, as a URL (`http://127.0.0.1:8080`).
    base: Option<String>,
}

impl Running {
    /// Starts the host, its HTTP listener (if the manifest has one) and
    /// watch mode (if it asks).
    pub async fn start(manifest: &Manifest) -> Result<Self> {
        let auth = Auth::new(manifest.host.admin_token.clone());
        let http_stop = CancellationToken::new();
        // HTTP answers first, `starting`, while components compile.
        let mut base = None;
        let early = match manifest.host.http {
            Some(addr) => {
                let listener = crate::ingress::listen::listen(addr, manifest.host.http_max_connections)
                    .with_context(|| format!("cannot listen on [host] http = {addr}"))?;
                // The bound address, not the asked one: `:0` picks a free port.
                let bound = listener.local_addr().unwrap_or(addr);
                tracing::info!(addr = %bound, "HTTP admin and ingress listening");
                base = Some(format!("http://{bound}"));
                let options = http::Options::new(&manifest.host, auth.clone());
                Some(http::Starting::serve(
                    listener,
                    &manifest.host.name,
                    options,
                    http_stop.clone(),
                )?)
            }
            None => None,
        };
        let host = match start_with(manifest, &auth).await {
            Ok(host) => host,
            Err(e) => {
                http_stop.cancel();
                return Err(e);
            }
        };
        let app = host.app();
        let gateway_stop = CancellationToken::new();
        let ingress = async {
            anyhow::Ok(crate::ingress::Ingress {
                routes: crate::ingress::http::Routes::new(manifest, &app)?,
                gateway: crate::ingress::gateway::Gateway::start(manifest, &app, gateway_stop.clone()).await?,
            })
        };
        let ingress = match ingress.await {
            Ok(ingress) => std::sync::Arc::new(ingress),
            Err(e) => {
                http_stop.cancel();
                gateway_stop.cancel();
                host.shutdown(DEFAULT_GRACE).await;
                return Err(e);
            }
        };
        log_routes(manifest, base.as_deref());
        let http = early.map(|(starting, task)| {
            starting.ready(app.clone(), ingress.clone());
            task
        });
        let watching = manifest
            .host
            .watch
            .then(|| watch::spawn(app.clone(), http_stop.clone()));
        Ok(Self {
            host,
            ingress,
            gateway_stop,
            http,
            watching,
            http_stop,
            base,
        })
    }

    /// Serves `manifest`'s `[[http.routes]]` from now on (`berth dev`, when
    /// they change); on an error the old ones keep serving.
    pub fn set_routes(&self, manifest: &Manifest) -> Result<()> {
        self.ingress.routes.replace(manifest, &self.host.app())?;
        log_routes(manifest, self.base.as_deref());
        Ok(())
    }

    /// The gateway, if the manifest has one.
    pub fn gateway(&self) -> Option<&std::sync::Arc<crate::ingress::gateway::Gateway>> {
        self.ingress.gateway.as_ref()
    }

    /// What the host serves and how it is steered.
    pub fn app(&self) -> std::sync::Arc<crate::app::App> {
        self.host.app()
    }

    /// Stops taking work, lets in-flight calls finish (up to the grace
    /// period), then closes HTTP.
    pub async fn stop(self) -> Result<()> {
        if let Some(watching) = self.watching {
            watching.abort();
        }
        self.host.shutdown(DEFAULT_GRACE).await;
        self.gateway_stop.cancel();
        self.http_stop.cancel();
        if let Some(http) = self.http {
            http.await.context("HTTP server task failed")??;
        }
        Ok(())
    }
}

/// Says where each `[[http.routes]]` entry is served, one line each.
fn log_routes(manifest: &Manifest, base: Option<&str>) {
    if let Some(base) = base {
        for line in crate::ingress::http::describe::describe(&manifest.http.routes, base) {
            tracing::info!("route {line}");
        }
    }
}
