//! One routed request: the HTTP request as a message (its method, path,
//! parameters and query as `berth-http-*` headers), through the route's
//! middleware and guard, to its subject; the reply (or error) as the
//! HTTP response.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};

use super::table::{Compiled, Target};
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::{Guard, Reply};
use crate::core::headers::{
    HTTP_METHOD, HTTP_PARAM_PREFIX, HTTP_PATH, HTTP_QUERY, HTTP_ROUTE, HTTP_STATUS, is_reserved,
};
use crate::core::message::Message;
use crate::router::Route;
use crate::router::chain::Stopped;

/// HTTP headers that describe the connection, not the request, and are
/// not passed on in either direction.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

impl Compiled {
    /// Answers one request; counted in the route's counters.
    pub async fn serve(&self, parts: Parts, body: Body, params: Vec<(String, String)>) -> Response {
        let started = Instant::now();
        let answering = self.counters.enter();
        let response = self.answer(parts, body, params).await;
        answering.leave(response.status().as_u16(), started.elapsed());
        response
    }

    async fn answer(&self, parts: Parts, body: Body, params: Vec<(String, String)>) -> Response {
        if let Target::Failed(why) = &self.target {
            return failure(&CallError::new(ErrorKind::Overloaded, why.clone()));
        }
        let too_large = || {
            let message = format!(
                "the request body is larger than this route takes ({} KiB, the `max_message_kb` of the component that serves it)",
                self.max_body / 1024
            );
            failure(&CallError::new(ErrorKind::TooLarge, message))
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return too_large();
        }
        let body = match axum::body::to_bytes(body, self.max_body).await {
            Ok(body) => body,
            Err(e) if format!("{e:#}").contains("length limit") => return too_large(),
            Err(e) => {
                let message = format!("the request body could not be read: {e}");
                return failure(&CallError {
                    code: 400,
                    name: "Bad Request".to_owned(),
                    ..CallError::new(ErrorKind::Handler, message)
                });
            }
        };
        // A wasi:http component with nothing in front of it gets the
        // request as it came, without the trip through a message.
        if let Target::Component(route) = &self.target
            && self.chain.is_empty()
        {
            return self.ask_component(route, request_as_sent(parts, body)).await;
        }
        let message = self.message(&parts, body, params);
        let message = match self.chain.run(message).await {
            Ok((message, mark)) => match self.admits(mark) {
                Ok(()) => message,
                Err(refusal) => return failure(&refusal),
            },
            Err(Stopped::Respond(reply)) => return answer(reply),
            Err(Stopped::Fail(e)) => return failure(&e),
        };
        match &self.target {
            Target::Subject(target) => match target.request(message, self.timeout).await {
                Ok(reply) => answer(reply),
                Err(e) => failure(&e),
            },
            Target::Component(route) => self.ask_component(route, request_of(&parts, message)).await,
            Target::Failed(why) => failure(&CallError::new(ErrorKind::Overloaded, why.clone())),
        }
    }

    /// A `wasi:http` component's answer to `request`, within the route's
    /// deadline.
    async fn ask_component(&self, route: &Route, request: http::Request<Bytes>) -> Response {
        match tokio::time::timeout(self.timeout, route.serve_http(request)).await {
            Ok(Ok(response)) => respond_http(response),
            Ok(Err(e)) => failure(&e),
            Err(_) => failure(&self.late()),
        }
    }

    /// The route's deadline passed.
    fn late(&self) -> CallError {
        CallError::new(
            ErrorKind::Timeout,
            format!(
                "`{}` did not answer within {} ms",
                self.config.path,
                self.timeout.as_millis()
            ),
        )
    }

    /// The request as the handler (and the middleware) sees it. A
    /// `wasi:http` component's request has the path as its subject (its
    /// middleware sees that).
    fn message(&self, parts: &Parts, body: Bytes, params: Vec<(String, String)>) -> Message {
        let subject = match &self.target {
            Target::Subject(target) => target.subject.clone(),
            Target::Component(_) | Target::Failed(_) => parts.uri.path().to_owned(),
        };
        let mut message = Message::new(subject, body);
        let h = &mut message.headers;
        h.push((HTTP_METHOD.to_owned(), parts.method.as_str().to_owned()));
        h.push((HTTP_PATH.to_owned(), parts.uri.path().to_owned()));
        if let Some(query) = parts.uri.query() {
            h.push((HTTP_QUERY.to_owned(), query.to_owned()));
        }
        h.push((HTTP_ROUTE.to_owned(), self.config.path.clone()));
        for (name, value) in params {
            h.push((format!("{HTTP_PARAM_PREFIX}{name}"), value));
        }
        for (name, value) in &parts.headers {
            let name = name.as_str();
            // A caller's own `berth-*` headers are dropped: none may pose
            // as signed in, or as another route's request.
            if HOP_BY_HOP.contains(&name) || is_reserved(name) {
                continue;
            }
            if let Ok(v) = value.to_str() {
                h.push((name.to_owned(), v.to_owned()));
            }
        }
        message
    }

    /// Whether the route's guard admits a caller the chain marked `mark`.
    fn admits(&self, mark: Option<Guard>) -> Result<(), CallError> {
        let refuse = |code: u16, name: &str, why: String| CallError {
            code,
            name: name.to_owned(),
            ..CallError::new(ErrorKind::Forbidden, why)
        };
        match (self.guard, mark) {
            (None, _) => Ok(()),
            (Some(wanted), Some(m)) if m >= wanted => Ok(()),
            (Some(_), None) => Err(refuse(
                401,
                "Unauthorized",
                format!(
                    "`{}` needs a signed-in caller: its middleware did not sign this request in",
                    self.config.path
                ),
            )),
            (Some(_), Some(_)) => Err(refuse(
                403,
                "Forbidden",
                format!("`{}` is for administrators only", self.config.path),
            )),
        }
    }
}

/// The HTTP request a `wasi:http` component gets: the method and URI as
/// sent, `Host`, and the headers of the message its middleware passed
/// (theirs and the guard mark included; the `berth-http-*` description
/// left out, the request says it all).
fn request_of(parts: &Parts, message: Message) -> http::Request<Bytes> {
    let mut request = bare_request(parts, message.body);
    let headers = request.headers_mut();
    for (name, value) in message.headers {
        if name.len() >= 10 && name[..10].eq_ignore_ascii_case("berth-http") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(n, v);
        }
    }
    request
}

/// The request as the client sent it, for a `wasi:http` component with no
/// middleware in front: its connection headers and any `berth-*` header
/// left out (none may pose as marked by middleware), `Host` kept. The
/// client's request is handed on, not rebuilt: mostly nothing is left out,
/// and copying every header into a new map cost more than the rest of
/// Berth's path to the call.
fn request_as_sent(mut parts: Parts, body: Bytes) -> http::Request<Bytes> {
    let left_out = |name: &HeaderName| {
        let name = name.as_str();
        (name != "host" && HOP_BY_HOP.contains(&name)) || is_reserved(name)
    };
    // Mostly empty, and then nothing is allocated.
    let names: Vec<HeaderName> = parts.headers.keys().filter(|n| left_out(n)).cloned().collect();
    for name in names {
        parts.headers.remove(name);
    }
    if !parts.headers.contains_key(axum::http::header::HOST) {
        parts
            .headers
            .insert(axum::http::header::HOST, HeaderValue::from_static("localhost"));
    }
    http::Request::from_parts(parts, body)
}

/// `body` with the request's method and URI, and its `Host` (wasi:http
/// wants the authority; `localhost` if the client sent none).
fn bare_request(parts: &Parts, body: Bytes) -> http::Request<Bytes> {
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    let host = parts.headers.get(axum::http::header::HOST).cloned();
    request.headers_mut().insert(
        axum::http::header::HOST,
        host.unwrap_or(HeaderValue::from_static("localhost")),
    );
    request
}

/// A `wasi:http` component's response, without the headers that describe
/// its connection (the listener sets its own).
fn respond_http(response: http::Response<Bytes>) -> Response {
    let (mut parts, body) = response.into_parts();
    // Mostly none is there; a removal by name parses and hashes it, a
    // look at the few headers a response has does not.
    if parts.headers.keys().any(|name| HOP_BY_HOP.contains(&name.as_str())) {
        for name in HOP_BY_HOP {
            parts.headers.remove(*name);
        }
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A reply as the HTTP response: status from `berth-http-status` (200
/// when absent or not a status), the reply's other headers, its body.
pub fn answer(reply: Reply) -> Response {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for (name, value) in reply.headers {
        if name.eq_ignore_ascii_case(HTTP_STATUS) {
            match value
                .trim()
                .parse::<u16>()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
            {
                Some(s) if s.as_u16() >= 200 => status = s,
                _ => tracing::debug!(%value, "a reply's berth-http-status is no status from 200 to 999; answering 200"),
            }
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            // One content type: the reply's last.
            if n == CONTENT_TYPE {
                headers.insert(n, v);
            } else {
                headers.append(n, v);
            }
        }
    }
    let mut response = (status, reply.body).into_response();
    response.headers_mut().extend(headers);
    response
}

/// An error as the HTTP response: its code as the status (500 unless it
/// is a 4xx or 5xx), its JSON as the body.
pub fn failure(error: &CallError) -> Response {
    let status = StatusCode::from_u16(error.code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(error.to_json())).into_response()
}

/// 404 for a path no route takes.
pub fn not_found(method: &str, path: &str) -> Response {
    let message = format!("no route takes {method} {path}");
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "message": message }))).into_response()
}

/// 405 for a method the path's routes do not take, with `Allow`.
pub fn wrong_method(method: &str, path: &str, allow: &str) -> Response {
    let message = format!("{path} does not take {method}; it takes {allow}");
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({ "message": message })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::try_from(allow) {
        response.headers_mut().insert(ALLOW, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method("POST").uri("/hello/x?y=1");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn a_request_goes_on_as_sent_without_its_connection_and_berth_headers() {
        let sent = parts(&[
            ("host", "example.com"),
            ("x-user", "ann"),
            ("connection", "keep-alive"),
            ("content-length", "2"),
            ("berth-guard", "admin"),
            ("x-user", "bob"),
        ]);
        let request = request_as_sent(sent, Bytes::from_static(b"hi"));
        let headers = request.headers();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "/hello/x?y=1");
        assert_eq!(headers.get("host").map(|v| v.as_bytes()), Some(&b"example.com"[..]));
        let users: Vec<_> = headers.get_all("x-user").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(users, [&b"ann"[..], &b"bob"[..]]);
        for gone in ["connection", "content-length", "berth-guard"] {
            assert!(!headers.contains_key(gone), "{gone} was passed on");
        }
        assert_eq!(request.body().as_ref(), b"hi");
    }

    #[test]
    fn a_request_without_host_gets_localhost() {
        let request = request_as_sent(parts(&[("x-user", "ann")]), Bytes::new());
        assert_eq!(
            request.headers().get("host").map(|v| v.as_bytes()),
            Some(&b"localhost"[..])
        );
        assert_eq!(request.headers().len(), 2);
    }
}
