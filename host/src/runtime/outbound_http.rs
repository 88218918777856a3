//! The outbound requests of a component that imports
//! `wasi:http/outgoing-handler`: refused unless its manifest entry grants
//! their `host:port` (`http_outbound`), then sent by wasmtime-wasi-http's
//! own client.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::environment::Environment;

/// The `wasi:http` hooks of one component's stores: its outbound requests
/// go out only to the `host:port`s it is granted.
pub(super) struct OutboundHttp {
    env: Arc<Environment>,
}

impl OutboundHttp {
    pub(super) fn new(env: Arc<Environment>) -> Self {
        Self { env }
    }
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    /// wasmtime-wasi-http's own set, looked through in place: the default
    /// method makes its filter (a closure in a new `Arc`) again for every
    /// header it checks, a dozen times for a plain request and response.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sent {
        drop(fut);
        let uri = request.uri();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let target = format!("{}:{port}", uri.host().unwrap_or_default());
        if !self
            .env
            .http_outbound
            .iter()
            .any(|granted| granted.eq_ignore_ascii_case(&target))
        {
            self.env.counters.forbade();
            tracing::warn!(
                component = %self.env.name,
                %target,
                "outbound HTTP refused: not in the component's `http_outbound` grants"
            );
            return Box::new(async { Err(ErrorCode::HttpRequestDenied.into()) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
