//! `wasi:http` components: a component exporting
//! `wasi:http/incoming-handler` (the proxy world Spin and wasmCloud HTTP
//! components target) answers an HTTP route itself, under the same
//! deadline, memory cap and pool as any call. (Its outbound requests:
//! `outbound_http`.)
//!
//! Bodies are whole, both ways, within the component's `max_message_kb`:
//! the same bound every message into or out of it has.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use super::component::WasmHandler;
use crate::core::error::{CallError, ErrorKind};
use crate::core::headers::{TRACEPARENT, TRACESTATE};

impl WasmHandler {
    /// Answers one HTTP request. The instance goes back to the pool only
    /// if the call returned normally.
    pub(super) async fn call_http(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, CallError> {
        if request.body().len() > self.env.max_message_bytes {
            return Err(self.too_large("request body", request.body().len()));
        }
        let limit = self.env.max_message_bytes;
        let work = async {
            let trace = crate::core::trace::Context::child_of(&headers_of(&request));
            let mut instance = self.ready_instance(trace).await?;
            let Some(proxy) = self.export(&self.exports().http, &mut instance, |l| &mut l.http)? else {
                return Err(CallError::new(
                    ErrorKind::Unhandled,
                    format!("component `{}` exports no wasi:http/incoming-handler", self.env.name),
                ));
            };
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let internal = |e: wasmtime::Error| self.wasm_error(&e, None);
            let http = &mut instance.store.data_mut().http();
            let incoming = http
                .new_incoming_request(
                    Scheme::Http,
                    request.map(|b| {
                        Full::new(b).map_err(|never: std::convert::Infallible| -> ErrorCode { match never {} })
                    }),
                )
                .map_err(internal)?;
            let outparam = http.new_response_outparam(sender).map_err(internal)?;
            // The guest writes the body while it runs, so the body is read
            // beside the call, not after it.
            let call = proxy.call_handle(&mut instance.store, incoming, outparam);
            let response = async {
                let response = match receiver.await {
                    Ok(Ok(response)) => response,
                    Ok(Err(code)) => return Err(format!("it answered with error {code:?}")),
                    Err(_) => return Err("it returned without setting a response".to_owned()),
                };
                let (parts, body) = response.into_parts();
                match Limited::new(body, limit).collect().await {
                    Ok(body) => Ok(http::Response::from_parts(parts, body.to_bytes())),
                    Err(e) => Err(format!(
                        "its response body could not be read whole within {limit} bytes: {e}"
                    )),
                }
            };
            let (called, response) = tokio::join!(call, response);
            if let Err(trap) = called {
                return Err(self.trapped(&instance, &trap));
            }
            self.give_back(instance);
            response.map_err(|why| CallError::new(ErrorKind::Handler, format!("component `{}`: {why}", self.env.name)))
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error("HTTP request")))
    }
}

/// A request's trace context headers (none, mostly), as message headers.
/// Its few headers are looked through, not looked up: a lookup by name
/// parses and hashes the name first.
fn headers_of(request: &http::Request<Bytes>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .filter(|(name, _)| *name == TRACEPARENT || *name == TRACESTATE)
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}
