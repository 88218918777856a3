//! HTTP admin and ingress on `[host] http`.
//!
//! - `GET /health`: service name, uptime, per-component state.
//! - `GET /v1/components`: components with versions and counters.
//! - `GET /metrics`: the same counters for Prometheus.
//! - `POST /v1/request/{subject}`: the body becomes a request on the host's
//!   transport; the reply body comes back. Errors come back with their code
//!   as the HTTP status and the error as JSON.
//! - `POST /v1/publish/{subject}`: the body is published; 202 when sent.
//! - `POST /v1/components/{name}/suspend` and `/resume`: admin calls.
//! - `PUT /v1/components/{name}`: admin call; the body is a new version's
//!   wasm (`?label=` names it, a `Berth-Config` header with a JSON object
//!   replaces its config); 422 with the reason if it cannot serve.
//!
//! Admin calls change the host, so they are an attack surface: with
//! `[host] admin_token` set they need `Authorization: Bearer <token>`
//! (else 401); without a token they are accepted only when the listener is
//! on a loopback address (else 403).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::CallError;
use crate::host::{Shared, SwapError, SwapRequest};
use crate::message::Message;
use crate::router::Route;

/// Default wait for a reply to `POST /v1/request/...`.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Header of a swap that carries a new `[components.config]` as JSON.
pub const CONFIG_HEADER: &str = "berth-config";
/// Largest component a swap may upload.
const MAX_COMPONENT_BYTES: usize = 256 << 20;
/// Longest wait a caller may ask for.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP headers that describe the HTTP exchange itself, not the message.
const SKIPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "expect",
    "accept",
    "accept-encoding",
    "user-agent",
    "authorization",
];

/// Serves the API on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) -> Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    match (&shared.admin_token, loopback) {
        (Some(_), _) => tracing::info!("admin calls require the admin token"),
        (None, true) => tracing::warn!(
            "no admin token set: admin calls are accepted from anyone who can reach this loopback listener"
        ),
        (None, false) => tracing::warn!("no admin token set and the listener is not loopback: admin calls are refused"),
    }
    axum::serve(listener, router(shared, loopback))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

/// What every handler can see.
#[derive(Clone)]
struct Api {
    shared: Arc<Shared>,
    /// Whether the listener is on a loopback address.
    loopback: bool,
}

/// The API's routes; `loopback` says whether the listener is only reachable
/// from this machine, which decides admin access when no token is set.
pub fn router(shared: Arc<Shared>, loopback: bool) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/components", get(components))
        .route("/metrics", get(metrics))
        .route(
            "/v1/components/{name}",
            put(swap).layer(axum::extract::DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/v1/components/{name}/suspend", post(suspend))
        .route("/v1/components/{name}/resume", post(resume))
        .route("/v1/request/{subject}", post(request))
        .route("/v1/publish/{subject}", post(publish))
        .with_state(Api { shared, loopback })
}

/// 200 while every transport is connected and at least one component
/// serves; 503 when a transport is down or every component is quarantined
/// or suspended.
async fn health(State(api): State<Api>) -> Response {
    let (healthy, body) = api.shared.health();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let text = crate::metrics::render(&api.shared);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn components(State(api): State<Api>) -> Json<serde_json::Value> {
    let transports: Vec<_> = api.shared.transports.iter().map(|t| t.status()).collect();
    Json(json!({ "components": api.shared.component_list(), "transports": transports }))
}

/// `None` if the caller may use admin calls, else the refusal.
fn refusal(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let refuse = |status: StatusCode, message: &str| (status, Json(json!({ "message": message }))).into_response();
    match &api.shared.admin_token {
        Some(token) => {
            let given = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            (given != Some(token.as_str())).then(|| {
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "admin call needs `Authorization: Bearer <admin token>`",
                )
            })
        }
        None if api.loopback => None,
        None => Some(refuse(
            StatusCode::FORBIDDEN,
            "admin calls need [host] admin_token (or BERTH_ADMIN_TOKEN) on a non-loopback listener",
        )),
    }
}

async fn suspend(State(api): State<Api>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    admin_on_component(&api, &name, &headers, |r| r.breaker.suspend("suspended by an operator"))
}

async fn resume(State(api): State<Api>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    admin_on_component(&api, &name, &headers, |r| r.breaker.resume())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapParams {
    label: Option<String>,
}

/// `PUT /v1/components/{name}`: the body is the new version's wasm.
async fn swap(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(params): Query<SwapParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&api, &headers) {
        return refused;
    }
    let config = match headers.get(CONFIG_HEADER).map(|v| serde_json::from_slice(v.as_bytes())) {
        None => None,
        Some(Ok(serde_json::Value::Object(map))) => Some(map),
        Some(_) => {
            let message = format!("the {CONFIG_HEADER} header must be a JSON object");
            return (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response();
        }
    };
    let request = SwapRequest {
        wasm: body,
        label: params.label,
        config,
    };
    match api.shared.swap(&name, request).await {
        Ok(report) => (StatusCode::OK, Json(json!(report))).into_response(),
        Err(e) => {
            let status = match e {
                SwapError::NotFound(_) => StatusCode::NOT_FOUND,
                SwapError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            };
            tracing::warn!(component = %name, error = %e, "swap refused");
            (status, Json(json!({ "message": e.to_string() }))).into_response()
        }
    }
}

fn admin_on_component(api: &Api, name: &str, headers: &HeaderMap, action: impl Fn(&Route)) -> Response {
    if let Some(refused) = refusal(api, headers) {
        return refused;
    }
    match api.shared.routes.iter().find(|r| r.name == name) {
        Some(route) => {
            action(route);
            tracing::info!(component = name, state = route.breaker.status().state, "admin call");
            (
                StatusCode::OK,
                Json(json!({ "name": name, "status": route.breaker.status() })),
            )
                .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": format!("no component named `{name}`") })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestParams {
    timeout_ms: Option<u64>,
}

async fn request(
    State(Api { shared, .. }): State<Api>,
    Path(subject): Path<String>,
    Query(params): Query<RequestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let timeout = params
        .timeout_ms
        .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis)
        .min(MAX_REQUEST_TIMEOUT);
    let message = to_message(subject, &headers, body);
    match shared.transport.request(message, timeout).await {
        Err(e) => error_response(&CallError::from(e)),
        Ok(reply) => match CallError::from_reply(&reply) {
            Some(e) => error_response(&e),
            None => {
                let mut response = (StatusCode::OK, reply.body).into_response();
                let out = response.headers_mut();
                for (name, value) in &reply.headers {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::try_from(name.as_str()),
                        HeaderValue::try_from(value.as_str()),
                    ) {
                        // The reply's content type replaces the default one.
                        if n == CONTENT_TYPE {
                            out.insert(n, v);
                        } else {
                            out.append(n, v);
                        }
                    }
                }
                response
            }
        },
    }
}

async fn publish(
    State(Api { shared, .. }): State<Api>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.transport.publish(to_message(subject, &headers, body)).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&CallError::from(e)),
    }
}

fn to_message(subject: String, headers: &HeaderMap, body: Bytes) -> Message {
    let mut message = Message::new(subject, body);
    for (name, value) in headers {
        if SKIPPED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            message.headers.push((name.as_str().to_owned(), v.to_owned()));
        }
    }
    message
}

fn error_response(error: &CallError) -> Response {
    let status = StatusCode::from_u16(error.code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(error.to_json())).into_response()
}
