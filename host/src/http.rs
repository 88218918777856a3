//! HTTP admin and ingress on `[host] http`.
//!
//! - `GET /health`: service name, uptime, per-component state.
//! - `GET /v1/components`: components with versions and counters.
//! - `POST /v1/request/{subject}`: the body becomes a request on the host's
//!   transport; the reply body comes back. Errors come back with their code
//!   as the HTTP status and the error as JSON.
//! - `POST /v1/publish/{subject}`: the body is published; 202 when sent.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::CallError;
use crate::host::Shared;
use crate::message::Message;

/// Default wait for a reply to `POST /v1/request/...`.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
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
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

/// The API's routes, for embedding or testing without a socket.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/components", get(components))
        .route("/v1/request/{subject}", post(request))
        .route("/v1/publish/{subject}", post(publish))
        .with_state(shared)
}

async fn health(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "name": shared.name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": shared.started.elapsed().as_secs_f64(),
        "components": component_list(&shared),
    }))
}

async fn components(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "components": component_list(&shared) }))
}

fn component_list(shared: &Shared) -> Vec<serde_json::Value> {
    shared
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "version": r.version,
                "state": "serving",
                "instance_mode": r.mode,
                "subscribe": r.subjects,
                "max_concurrency": r.max_concurrency,
                "stats": r.stats.snapshot(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestParams {
    timeout_ms: Option<u64>,
}

async fn request(
    State(shared): State<Arc<Shared>>,
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
                    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
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
    State(shared): State<Arc<Shared>>,
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
