//! The operator actions over HTTP. The authorization rule runs as a layer
//! in front of these routes, before any body is read, so an anonymous
//! caller cannot make the host buffer a component upload.

use axum::Router;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::Value;

use super::{Api, failure};
use crate::app::{OpError, SwapRequest};
use crate::control::auth::{Denied, Reach};
use crate::core::headers::SWAP_CONFIG;

pub(super) fn routes(api: Api, max_component_bytes: usize) -> Router<Api> {
    Router::new()
        .route(
            "/v1/components/{name}",
            put(swap).layer(DefaultBodyLimit::max(max_component_bytes)),
        )
        .route("/v1/components/{name}/suspend", post(suspend))
        .route("/v1/components/{name}/resume", post(resume))
        .route("/v1/components/{name}/concurrency", post(concurrency))
        .route("/v1/drain", post(drain))
        .route("/v1/tail/{pattern}", get(super::tail::tail))
        .route_layer(middleware::from_fn_with_state(api, authorize))
}

/// The authorization rule, before the handler reads anything.
async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "an unknown peer".to_owned(), |c| c.0.to_string());
    let caller = format!("{} {} from {peer}", request.method(), request.uri().path());
    if let Err(why) = same_origin(request.headers(), api.reach) {
        let denied = api.auth.deny(api.reach, &caller, Denied::Forbidden(why));
        return failure(denied.code(), denied.to_string());
    }
    match api
        .auth
        .check(api.reach, given, "`Authorization: Bearer <admin token>`", &caller)
    {
        Ok(()) => next.run(request).await,
        Err(e) => failure(e.code(), e.to_string()),
    }
}

/// A browser page on another site can send a simple POST to a listener on
/// this machine without asking first: such a call carries an `Origin` that
/// is not the listener's own, and is refused. Where the loopback listener
/// trusts callers without a token, its `Host` must name this machine too,
/// or a page could reach it through a name it controls (DNS rebinding).
fn same_origin(headers: &HeaderMap, reach: Reach) -> Result<(), String> {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host.trim_end_matches('/') != host {
            return Err(format!("operator calls from another origin ({origin}) are refused"));
        }
    }
    if reach == Reach::Loopback {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        let local =
            name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !local {
            return Err(format!(
                "operator calls to a loopback listener must name this machine as Host, not `{host}`"
            ));
        }
    }
    Ok(())
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
        component: None,
    };
    answer(
        api.app
            .swap(&name, request)
            .await
            .map(|report| serde_json::json!(report)),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn another_origin_or_a_foreign_host_is_refused() {
        let same = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]);
        assert!(same_origin(&same, Reach::Loopback).is_ok());
        assert!(same_origin(&headers(&[("host", "localhost:8080")]), Reach::Loopback).is_ok());
        assert!(same_origin(&headers(&[("host", "[::1]:8080")]), Reach::Loopback).is_ok());
        let evil = headers(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")]);
        assert!(same_origin(&evil, Reach::Loopback).is_err());
        assert!(same_origin(&evil, Reach::Network).is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(same_origin(&null, Reach::Loopback).is_err());
        let rebound = headers(&[("host", "evil.example:8080")]);
        assert!(same_origin(&rebound, Reach::Loopback).is_err());
        assert!(
            same_origin(&rebound, Reach::Network).is_ok(),
            "a token guards that listener"
        );
    }
}
