//! Calls that come from no subscription: a middleware link's, a
//! `wasi:http` component's request. Each runs within the component's
//! concurrency limit, is counted, and is judged by its breaker and its
//! versions' probation like a delivery's call, so a middleware that keeps
//! trapping is quarantined and a bad swap of it rolls back.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::Route;
use super::versions::Version;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Verdict;
use crate::core::message::Message;

impl Route {
    /// One call of this component's middleware.
    pub async fn filter(&self, message: Message) -> Result<Verdict, CallError> {
        self.direct("middleware", move |v| async move { v.handler.filter(message).await })
            .await
    }

    /// One HTTP request to this `wasi:http` component.
    pub async fn serve_http(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, CallError> {
        self.direct("component", move |v| async move { v.handler.serve_http(request).await })
            .await
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
        if let Some(why) = self.breaker.refusal() {
            return Err(CallError::new(
                ErrorKind::Overloaded,
                format!("{role} `{}` is {why}", self.name),
            ));
        }
        let Ok(_permit) = self.limit.clone().acquire_owned().await else {
            return Err(CallError::new(
                ErrorKind::Overloaded,
                format!("{role} `{}` is closed", self.name),
            ));
        };
        self.stats.enter();
        let version = self.versions.active();
        let started = Instant::now();
        let outcome = call(version.clone()).await;
        let elapsed = started.elapsed();
        self.weigh(elapsed);
        self.record(&version, None, true, outcome.as_ref().map(drop), elapsed);
        outcome
    }
}
