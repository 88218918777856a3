//! HTTP on `[host] http`: reading the host, operator actions, ingress.
//!
//! - `GET /health`: service name, uptime, per-component state; 200 while
//!   every transport is connected and some component serves, else 503.
//! - `GET /v1/components`: components with versions and counters.
//! - `GET /metrics`: the same counters for Prometheus.
//! - Operator actions (`operator`): `PUT /v1/components/{name}` (swap),
//!   `POST /v1/components/{name}/suspend`, `/resume`,
//!   `/concurrency?value=N`, `POST /v1/drain`, and `GET /v1/tail/{pattern}`
//!   (`tail`: the messages passing, as JSON lines).
//! - Ingress (`ingress`): `POST /v1/request/{subject}` and
//!   `POST /v1/publish/{subject}`; any other path is a `[[http.routes]]`
//!   route's ([`crate::ingress::http`]), listed with its counters at
//!   `GET /v1/routes`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::auth::{Auth, Reach};
use crate::app::App;
use crate::ingress::Ingress;
use crate::manifest::HostConfig;

mod ingress;
mod operator;
mod server;
mod tail;

pub use server::Limits;

/// How the HTTP API is served: who may steer the host, and the limits on
/// connections and uploads.
#[derive(Clone, Debug)]
pub struct Options {
    /// The authorization rule for operator calls.
    pub auth: Auth,
    /// Connection cap and header deadline.
    pub limits: Limits,
    /// Largest component a swap may upload.
    pub max_component_bytes: usize,
}

impl Options {
    /// What the manifest's `[host]` asks for, with `auth` (shared with the
    /// broker's admin, so refusals are counted together).
    pub fn new(host: &HostConfig, auth: Auth) -> Self {
        Self {
            auth,
            limits: Limits {
                max_connections: host.http_max_connections,
                header_timeout: Duration::from_millis(host.http_header_timeout_ms),
            },
            max_component_bytes: host.max_component_mb as usize * 1024 * 1024,
        }
    }
}

/// What every handler can see.
#[derive(Clone)]
struct Api {
    app: Arc<App>,
    /// The manifest's `[[http.routes]]` and its gateway.
    ingress: Arc<Ingress>,
    auth: Auth,
    /// How callers reach this listener, which the authorization rule weighs.
    reach: Reach,
}

/// Serves the API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    ingress: Arc<Ingress>,
    options: Options,
    stop: CancellationToken,
) -> Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let limits = options.limits;
    let (_routes, serving) = tokio::sync::watch::channel(router(app, ingress, options, loopback));
    server::serve(listener, serving, limits, stop).await
}

/// The API of a host that is still starting (connecting, compiling its
/// components): `GET /health` answers 503 with state `starting`, so an
/// orchestrator sees it alive but not ready; anything else 503 too.
/// [`Starting::ready`] puts the host's own API in its place.
pub struct Starting {
    routes: tokio::sync::watch::Sender<Router>,
    options: Options,
    loopback: bool,
}

impl Starting {
    /// Serves the starting API on `listener` until `stop`; the returned
    /// task ends when the listener is done.
    pub fn serve(
        listener: TcpListener,
        service: &str,
        options: Options,
        stop: CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<Result<()>>)> {
        let loopback = listener.local_addr()?.ip().is_loopback();
        let body = json!({ "status": "starting", "name": service, "components": [] });
        let starting = Router::new()
            .route(
                "/health",
                get(move || async move { (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response() }),
            )
            .fallback(|| async { failure(503, "the host is starting: its components are loading") });
        let (routes, serving) = tokio::sync::watch::channel(starting);
        let task = tokio::spawn(server::serve(listener, serving, options.limits, stop));
        Ok((
            Self {
                routes,
                options,
                loopback,
            },
            task,
        ))
    }

    /// The host has started: its API and `routes` answer from now on.
    pub fn ready(self, app: Arc<App>, ingress: Arc<Ingress>) {
        let _ = self.routes.send(router(app, ingress, self.options, self.loopback));
    }
}

/// The API's routes; `loopback` says whether the listener is only reachable
/// from this machine, which the authorization rule weighs when no token is
/// set.
pub fn router(app: Arc<App>, ingress: Arc<Ingress>, options: Options, loopback: bool) -> Router {
    let reach = if loopback { Reach::Loopback } else { Reach::Network };
    options.auth.announce(reach);
    let api = Api {
        app,
        ingress,
        auth: options.auth,
        reach,
    };
    Router::new()
        .route("/health", get(health))
        .route("/v1/components", get(components))
        .route("/metrics", get(metrics))
        .merge(operator::routes(api.clone(), options.max_component_bytes))
        .route("/v1/request/{subject}", post(ingress::request))
        .route("/v1/publish/{subject}", post(ingress::publish))
        .route("/v1/routes", get(list_routes))
        .route("/v1/gateway", get(gateway))
        .fallback(|State(api): State<Api>, request: axum::extract::Request| async move {
            api.ingress.routes.handle(request).await
        })
        .with_state(api)
}

async fn health(State(api): State<Api>) -> Response {
    let (healthy, mut body) = api.app.health();
    if let Some(gateway) = &api.ingress.gateway {
        body["gateway"] = gateway.status();
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let text = super::metrics::render(&api.app, &api.ingress, &api.auth);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn list_routes(State(api): State<Api>) -> Json<serde_json::Value> {
    Json(json!({ "routes": api.ingress.routes.status() }))
}

async fn gateway(State(api): State<Api>) -> Response {
    match &api.ingress.gateway {
        Some(gateway) => Json(gateway.status()).into_response(),
        None => failure(404, "this host has no [gateway]"),
    }
}

async fn components(State(api): State<Api>) -> Json<serde_json::Value> {
    Json(json!({
        "name": api.app.name,
        "components": api.app.components(),
        "transports": api.app.transport_status(),
    }))
}

/// A JSON error body `{"message": ...}` with `status`.
fn failure(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "message": message.into() }))).into_response()
}
