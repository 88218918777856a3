//! The operator actions over HTTP. The authorization rule runs as a layer
//! in front of these routes, before any body is read, so an anonymous
//! caller cannot make the host buffer a component upload.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::Value;

use super::{Api, failure};
use crate::app::{OpError, SwapRequest};
use crate::core::headers::SWAP_CONFIG;

/// Largest component a swap may upload.
const MAX_COMPONENT_BYTES: usize = 256 << 20;

pub(super) fn routes(api: Api) -> Router<Api> {
    Router::new()
        .route(
            "/v1/components/{name}",
            put(swap).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/v1/components/{name}/suspend", post(suspend))
        .route("/v1/components/{name}/resume", post(resume))
        .route("/v1/components/{name}/concurrency", post(concurrency))
        .route("/v1/drain", post(drain))
        .route_layer(middleware::from_fn_with_state(api, authorize))
}

/// The authorization rule, before the handler reads anything.
async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match api
        .auth
        .check(api.reach, given, "`Authorization: Bearer <admin token>`")
    {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::warn!(path = %request.uri().path(), reason = %e, "operator call refused");
            failure(e.code(), e.to_string())
        }
    }
}

fn answer(outcome: Result<Value, OpError>) -> Response {
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "operator call refused");
            failure(e.code(), e.to_string())
        }
    }
}

async fn suspend(State(api): State<Api>, Path(name): Path<String>) -> Response {
    answer(api.app.suspend(&name))
}

async fn resume(State(api): State<Api>, Path(name): Path<String>) -> Response {
    answer(api.app.resume(&name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcurrencyParams {
    value: usize,
}

async fn concurrency(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(params): Query<ConcurrencyParams>,
) -> Response {
    answer(api.app.set_concurrency(&name, params.value))
}

async fn drain(State(api): State<Api>) -> Response {
    answer(Ok(api.app.drain()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapParams {
    label: Option<String>,
}

/// `PUT /v1/components/{name}`: the body is the new version's wasm
/// (`?label=` names it, a `Berth-Config` header with a JSON object replaces
/// its config); 422 with the reason if it cannot serve.
async fn swap(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(params): Query<SwapParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = match headers.get(SWAP_CONFIG).map(|v| serde_json::from_slice(v.as_bytes())) {
        None => None,
        Some(Ok(Value::Object(map))) => Some(map),
        Some(_) => return failure(400, format!("the {SWAP_CONFIG} header must be a JSON object")),
    };
    let request = SwapRequest {
        wasm: body,
        label: params.label,
        config,
    };
    answer(
        api.app
            .swap(&name, request)
            .await
            .map(|report| serde_json::json!(report)),
    )
}
