//! HTTP on `[host] http`: reading the host, operator actions, ingress.
//!
//! - `GET /health`: service name, uptime, per-component state; 200 while
//!   every transport is connected and some component serves, else 503.
//! - `GET /v1/components`: components with versions and counters.
//! - `GET /metrics`: the same counters for Prometheus.
//! - Operator actions ([`operator`]): `PUT /v1/components/{name}` (swap),
//!   `POST /v1/components/{name}/suspend`, `/resume`,
//!   `/concurrency?value=N`, and `POST /v1/drain`.
//! - Ingress ([`ingress`]): `POST /v1/request/{subject}` and
//!   `POST /v1/publish/{subject}`.

use std::sync::Arc;

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

mod ingress;
mod operator;

/// What every handler can see.
#[derive(Clone)]
struct Api {
    app: Arc<App>,
    auth: Auth,
    /// How callers reach this listener, which the authorization rule weighs.
    reach: Reach,
}

/// Serves the API on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, app: Arc<App>, auth: Auth, stop: CancellationToken) -> Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let router = router(app, auth, loopback);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

/// The API's routes; `loopback` says whether the listener is only reachable
/// from this machine, which the authorization rule weighs when no token is
/// set.
pub fn router(app: Arc<App>, auth: Auth, loopback: bool) -> Router {
    let reach = if loopback { Reach::Loopback } else { Reach::Network };
    auth.announce(reach);
    let api = Api { app, auth, reach };
    Router::new()
        .route("/health", get(health))
        .route("/v1/components", get(components))
        .route("/metrics", get(metrics))
        .merge(operator::routes(api.clone()))
        .route("/v1/request/{subject}", post(ingress::request))
        .route("/v1/publish/{subject}", post(ingress::publish))
        .with_state(api)
}

async fn health(State(api): State<Api>) -> Response {
    let (healthy, body) = api.app.health();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let text = super::metrics::render(&api.app);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn components(State(api): State<Api>) -> Json<serde_json::Value> {
    Json(json!({ "components": api.app.components(), "transports": api.app.transport_status() }))
}

/// A JSON error body `{"message": ...}` with `status`.
fn failure(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "message": message.into() }))).into_response()
}
