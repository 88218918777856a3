//! HTTP ingress: `POST /v1/request/{subject}` sends the body as a request
//! on the host's default transport and answers with the reply (an error
//! reply's code becomes the HTTP status, the error its JSON body);
//! `POST /v1/publish/{subject}` publishes the body and answers 202.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Api;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Reply;
use crate::core::message::Message;
use crate::core::subject::is_platform;
use crate::ingress::http::forward::failure as error_response;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestParams {
    timeout_ms: Option<u64>,
}

pub(super) async fn request(
    State(api): State<Api>,
    Path(subject): Path<String>,
    Query(params): Query<RequestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = platform(&subject) {
        return refused;
    }
    let timeout = params
        .timeout_ms
        .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis)
        .min(MAX_REQUEST_TIMEOUT);
    let message = to_message(subject, &headers, body);
    let reply = match api.app.transport.request(message, timeout).await {
        Ok(reply) => reply,
        Err(e) => return error_response(&CallError::from(e)),
    };
    if let Some(e) = CallError::from_reply(&reply) {
        return error_response(&e);
    }
    crate::ingress::http::forward::answer(Reply {
        body: reply.body,
        headers: reply.headers,
    })
}

pub(super) async fn publish(
    State(api): State<Api>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = platform(&subject) {
        return refused;
    }
    match api.app.transport.publish(to_message(subject, &headers, body)).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&CallError::from(e)),
    }
}

/// The ingress is for the components' subjects: the platform's own (admin,
/// health, the broker's APIs, others' inboxes) have their own ways in, and
/// the operator actions their authorization rule.
fn platform(subject: &str) -> Option<Response> {
    is_platform(subject).then(|| {
        tracing::warn!(subject, "HTTP ingress to a platform subject refused");
        let message = format!("`{subject}` is one of the platform's subjects, which the HTTP ingress does not reach");
        error_response(&CallError::new(ErrorKind::Forbidden, message))
    })
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
