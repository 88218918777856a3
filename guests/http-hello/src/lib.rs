//! An HTTP component written only against `wasi:http` (the proxy world
//! Spin and wasmCloud HTTP components target), with no Berth SDK: Berth
//! must run it unchanged.
//!
//! - `GET …/fetch?to=HOST:PORT` fetches `http://HOST:PORT/` and answers with
//!   what came back (502 and the error code if the host refused it);
//! - anything else answers `hello from wasi:http: METHOD PATH`, with the
//!   request's `x-user` header (if any) as `x-seen-user` and its body's
//!   length as `x-body-length`.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body, headers) = match path.split_once("/fetch?to=") {
            Some((_, target)) => fetch(target),
            None => greet(&request, &path),
        };
        respond(out, status, &headers, body.as_bytes());
    }
}

fn greet(request: &IncomingRequest, path: &str) -> (u16, String, Vec<(String, Vec<u8>)>) {
    let method = match request.method() {
        Method::Get => "GET".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        other => format!("{other:?}"),
    };
    let mut headers = vec![("content-type".to_owned(), b"text/plain".to_vec())];
    if let Some(user) = request.headers().get("x-user").into_iter().next() {
        headers.push(("x-seen-user".to_owned(), user));
    }
    let length = read_body(request).len();
    headers.push(("x-body-length".to_owned(), length.to_string().into_bytes()));
    (200, format!("hello from wasi:http: {method} {path}"), headers)
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let Ok(body) = request.consume() else { return Vec::new() };
    let Ok(stream) = body.stream() else { return Vec::new() };
    let mut all = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        all.extend(chunk);
    }
    all
}

fn fetch(target: &str) -> (u16, String, Vec<(String, Vec<u8>)>) {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(target));
    let _ = request.set_path_with_query(Some("/"));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return (502, format!("outbound refused: {code:?}"), Vec::new()),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => {
            let status = response.status();
            let mut text = Vec::new();
            if let Ok(body) = response.consume()
                && let Ok(stream) = body.stream()
            {
                while let Ok(chunk) = stream.blocking_read(64 * 1024) {
                    text.extend(chunk);
                }
            }
            (200, format!("fetched {status}: {}", String::from_utf8_lossy(&text)), Vec::new())
        }
        Some(Ok(Err(code))) => (502, format!("outbound refused: {code:?}"), Vec::new()),
        _ => (502, "outbound failed".to_owned(), Vec::new()),
    }
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    let fields = Fields::from_list(headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        let _ = stream.blocking_write_and_flush(body);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

wasip2::http::proxy::export!(Hello);
