//! Calls that come from no subscription: a middleware link's, a
//! `wasi:http` component's request, and an HTTP route's request to a
//! component of this host that takes it in process. Each runs within the component's
//! concurrency limit, is counted, and is judged by its breaker and its
//! versions' probation like a delivery's call, so a middleware that keeps
//! trapping is quarantined and a bad swap of it rolls back.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::Route;
use super::chain::Stopped;
use super::endpoint::Endpoint;
use super::versions::Version;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::{Reply, Verdict};
use crate::core::message::Message;

impl Route {
    /// One call of this component's middleware: its verdict, and the
    /// message back.
    pub async fn filter(&self, message: Message) -> Result<(Verdict, Message), CallError> {
        self.direct("middleware", move |v| async move { v.handler.filter(message).await })
            .await
    }

    /// One HTTP request to this `wasi:http` component.
    pub async fn serve_http(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, CallError> {
        self.direct("component", move |v| async move { v.handler.serve_http(request).await })
            .await
    }

    /// A request to this component's subscription to `pattern`, made in
    /// process (an HTTP route's, when the subscription is on the in-memory
    /// transport, where a publish would reach this same component): the
    /// subscription's middleware, then the call, counted as the
    /// subscription's, without the trip through the transport's queue and
    /// the wake-ups of its loop.
    pub async fn request_local(&self, pattern: &str, message: Message) -> Result<Reply, CallError> {
        let endpoint = self.endpoints().iter().find(|e| e.subject == pattern).cloned();
        let message = match endpoint.as_ref().and_then(|e| e.chain()) {
            Some(chain) => match chain.run(message).await {
                Ok((message, _)) => message,
                Err(Stopped::Respond(reply)) => return Ok(reply),
                Err(Stopped::Fail(e)) => return Err(e),
            },
            None => message,
        };
        if let Some(endpoint) = &endpoint {
            endpoint.receive(1);
        }
        let call = move |v: Arc<Version>| async move {
            let mut reply = v.handler.handle_request(message).await?;
            self.sign(&v, &mut reply.headers);
            Ok(reply)
        };
        self.direct_at("component", endpoint.as_deref(), call).await
    }

    /// Whether the serving version answers HTTP itself.
    pub fn serves_http(&self) -> bool {
        self.versions.active().handler.serves_http()
    }

    /// Runs `call` on the active version within a permit, and records it.
    async fn direct<T, F, Fut>(&self, role: &str, call: F) -> Result<T, CallError>
    where
        F: FnOnce(Arc<Version>) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.direct_at(role, None, call).await
    }

    /// As [`Route::direct`], counted for `endpoint` too if given.
    async fn direct_at<T, F, Fut>(&self, role: &str, endpoint: Option<&Endpoint>, call: F) -> Result<T, CallError>
    where
        F: FnOnce(Arc<Version>) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        // The lock-free check first: a serving component takes no lock here.
        if !self.breaker.is_clear()
            && let Some(why) = self.breaker.refusal()
        {
            return Err(CallError::new(
                ErrorKind::Overloaded,
                format!("{role} `{}` is {why}", self.name),
            ));
        }
        let Ok(_permit) = self.limit.acquire().await else {
            return Err(CallError::new(
                ErrorKind::Overloaded,
                format!("{role} `{}` is closed", self.name),
            ));
        };
        self.stats.enter();
        let mut entered = Entered(Some(&self.stats));
        let version = self.versions.active();
        let started = Instant::now();
        let outcome = call(version.clone()).await;
        entered.0 = None;
        // Not weighed: where a subscription's calls start is decided by
        // their busy time, and this is wall time, waits included.
        let elapsed = started.elapsed();
        self.record(&version, endpoint, true, outcome.as_ref().map(drop), elapsed);
        outcome
    }
}

/// A direct call in flight. Its caller may drop it mid-way (an HTTP
/// client that hangs up), and then it leaves the in-flight count here,
/// where it would otherwise stay.
struct Entered<'a>(Option<&'a super::stats::Stats>);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(stats) = self.0 {
            stats.abandon();
        }
    }
}
