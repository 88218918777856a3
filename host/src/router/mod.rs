//! The router: from a subscription to calls into one component.
//!
//! A [`Route`] is a component as the router sees it: its versions, its
//! concurrency limit, its breaker and counters. [`serve`] runs one loop per
//! subscription that feeds it. The delivery is settled after the call,
//! never before: acked when it succeeded (and its reply was sent),
//! redelivered or dead-lettered by the error's disposition when it failed.

mod busy;
pub mod chain;
mod direct;
mod dispatch;
pub mod endpoint;
pub mod quarantine;
mod serve;
pub mod stats;
pub mod versions;

pub use self::serve::serve;

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::core::error::CallError;
use crate::core::handler::Handler;
use crate::core::limits::InstanceMode;

use endpoint::Endpoint;
use quarantine::{Breaker, Policy};
use stats::Stats;
use versions::{Probation, Version, Versions};

/// A component whose calls are busy longer than this (a moving average of
/// the time inside their polls; see `busy`) runs each call in a task of
/// its own; below it, calls start on the subscription's loop.
pub const INLINE_BUDGET: Duration = Duration::from_micros(50);

/// One call counts at most this much in the average, so that a cheap call
/// the kernel happened to preempt (measured: ~1% of calls under load, at
/// 0.1-1 ms) does not move a component off its loop alone.
const MAX_COST_SAMPLE: Duration = Duration::from_micros(200);

/// A component as the router sees it: its versions, its concurrency limit
/// and its counters. Subscriptions feed the route, never a version, so a
/// swap does not touch them.
pub struct Route {
    /// The component's name.
    pub name: String,
    /// Its subscriptions, each with its counters; replaced whole when one
    /// is added or removed (rare), read where a loop starts and by status.
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    /// The version that serves, and the one a rollback returns to.
    pub versions: Versions,
    /// `max_concurrency` permits, shared by all its subscriptions.
    pub limit: Arc<Semaphore>,
    /// Most calls in flight at once; an operator may change it.
    max_concurrency: AtomicUsize,
    /// Counters for status and tests; shared with the runtime, which
    /// counts refused outbound calls.
    pub stats: Arc<Stats>,
    /// Quarantines the component when it keeps trapping or timing out.
    pub breaker: Breaker,
    /// Whether successful replies say who answered.
    reply_headers: bool,
    /// Moving average of its calls' wall time in nanoseconds (weight 1/8
    /// per call, samples capped at [`MAX_COST_SAMPLE`]): below
    /// [`INLINE_BUDGET`], calls start on the loop that pulled them.
    call_cost: AtomicU64,
}

/// What describes a component to the router, apart from its versions.
#[derive(Clone, Debug)]
pub struct RouteInfo {
    /// The component's name.
    pub name: String,
    /// Subject patterns it serves.
    pub subjects: Vec<String>,
    /// Most calls in flight at once.
    pub max_concurrency: usize,
    /// When to quarantine it.
    pub policy: Policy,
    /// When to roll a swapped-in version back.
    pub probation: Probation,
    /// Whether successful replies carry [`crate::core::headers::COMPONENT`] and
    /// [`crate::core::headers::VERSION`].
    pub reply_headers: bool,
}

impl Route {
    /// A route serving `first`, with its own semaphore and breaker;
    /// `stats` is shared with whoever else counts for this component.
    pub fn new(info: RouteInfo, first: Version, stats: Arc<Stats>) -> Self {
        Self {
            limit: Arc::new(Semaphore::new(info.max_concurrency)),
            endpoints: ArcSwap::from_pointee(
                info.subjects
                    .iter()
                    .cloned()
                    .zip(endpoint::names(&info.subjects))
                    .map(|(subject, name)| Arc::new(Endpoint::new(subject, name)))
                    .collect(),
            ),
            breaker: Breaker::new(info.policy),
            name: info.name,
            versions: Versions::new(first, info.probation),
            max_concurrency: AtomicUsize::new(info.max_concurrency),
            stats,
            call_cost: AtomicU64::new(0),
            reply_headers: info.reply_headers,
        }
    }

    /// Its subscriptions, in the order they were made.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// The subject patterns it serves.
    pub fn subjects(&self) -> Vec<String> {
        self.endpoints().iter().map(|e| e.subject.clone()).collect()
    }

    /// Adds a subscription to `subject`; returns its index for
    /// [`serve`](serve::serve).
    pub fn add_endpoint(&self, subject: String) -> usize {
        let mut list: Vec<Arc<Endpoint>> = self.endpoints().as_ref().clone();
        let mut subjects: Vec<String> = list.iter().map(|e| e.subject.clone()).collect();
        subjects.push(subject.clone());
        let name = endpoint::names(&subjects).pop().unwrap_or_else(|| subject.clone());
        list.push(Arc::new(Endpoint::new(subject, name)));
        let index = list.len() - 1;
        self.endpoints.store(Arc::new(list));
        index
    }

    /// Ends the subscription to `subject`: its loops stop taking messages
    /// and hand back what they had queued. Returns whether it had one.
    pub fn remove_endpoint(&self, subject: &str) -> bool {
        let list = self.endpoints();
        let Some(gone) = list.iter().find(|e| e.subject == subject) else {
            return false;
        };
        gone.retire();
        let rest: Vec<Arc<Endpoint>> = list.iter().filter(|e| e.subject != subject).cloned().collect();
        self.endpoints.store(Arc::new(rest));
        true
    }

    /// Takes back the last subscription to `subject` (one just added whose
    /// subscribing failed).
    pub fn remove_last_endpoint(&self, subject: &str) {
        let mut list: Vec<Arc<Endpoint>> = self.endpoints().as_ref().clone();
        if let Some(i) = list.iter().rposition(|e| e.subject == subject) {
            list.remove(i).retire();
            self.endpoints.store(Arc::new(list));
        }
    }

    /// Most calls in flight at once.
    pub fn concurrency(&self) -> usize {
        self.max_concurrency.load(Ordering::Relaxed)
    }

    /// Changes the concurrency limit. Raising it adds permits at once;
    /// lowering it takes free permits away at once and the rest as calls
    /// finish, so no call is interrupted. (The broker-side prefetch stays
    /// as subscribed: messages beyond the limit wait in the host's bounded
    /// queue, unacked.)
    pub fn set_concurrency(&self, value: usize) {
        let old = self.max_concurrency.swap(value, Ordering::Relaxed);
        if value > old {
            self.limit.add_permits(value - old);
        } else if value < old {
            let missing = (old - value) - self.limit.forget_permits(old - value);
            if missing > 0 {
                let limit = self.limit.clone();
                tokio::spawn(async move {
                    if let Ok(permits) = limit.acquire_many_owned(missing as u32).await {
                        permits.forget();
                    }
                });
            }
        }
        tracing::info!(component = %self.name, from = old, to = value, "concurrency changed");
    }

    /// Feeds a call's busy time into the average that decides where its
    /// successors start: once per call, a batch's as its per-message share.
    /// Once per message instead, one slow batch (its instance's first call,
    /// or one the kernel preempted) would count as many outliers as it had
    /// messages and move a cheap component off its loop alone.
    /// Concurrent calls may lose an update; the average only needs to be
    /// roughly right.
    fn weigh(&self, elapsed: Duration) {
        let sample = elapsed.min(MAX_COST_SAMPLE).as_nanos() as u64;
        let old = self.call_cost.load(Ordering::Relaxed);
        self.call_cost.store(old - old / 8 + sample / 8, Ordering::Relaxed);
    }

    /// Whether its calls are cheap enough to start on the loop that pulled
    /// them.
    fn runs_inline(&self) -> bool {
        self.call_cost.load(Ordering::Relaxed) < INLINE_BUDGET.as_nanos() as u64
    }

    /// A route for a handler that is not a wasm component (benchmarks,
    /// tests): version `native`, default policies.
    pub fn native(name: &str, subjects: &[&str], max_concurrency: usize, handler: Arc<dyn Handler>) -> Self {
        let info = RouteInfo {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_concurrency,
            policy: Policy::default(),
            probation: Probation::default(),
            reply_headers: true,
        };
        let first = Version::new(handler, "native".to_owned(), None, InstanceMode::Pooled);
        Self::new(info, first, Arc::new(Stats::default()))
    }

    /// The same route with replies left as the handler made them (as the
    /// `berth` default, `[host] reply_headers = false`).
    pub fn without_reply_headers(mut self) -> Self {
        self.reply_headers = false;
        self
    }

    /// Adds who answered to a successful reply's headers, if the host
    /// says so (`[host] reply_headers`).
    fn sign(&self, version: &Version, headers: &mut crate::core::message::Headers) {
        if self.reply_headers {
            headers.push((crate::core::headers::COMPONENT.to_owned(), self.name.clone()));
            headers.push((crate::core::headers::VERSION.to_owned(), version.hash.clone()));
        }
    }

    /// Counts a finished call and feeds the breaker and the version's
    /// probation, before any reply goes out: whoever sees the reply sees
    /// the counters, the quarantine or the rollback that call caused, and
    /// the next message is held or goes to the old version if it must.
    ///
    /// `elapsed` is how long the message waited for its call. Its cost is
    /// weighed by the caller, once per call (see [`Route::weigh`]).
    fn record(
        &self,
        version: &Arc<Version>,
        endpoint: Option<&Endpoint>,
        request: bool,
        outcome: Result<(), &CallError>,
        elapsed: Duration,
    ) {
        if let Some(reason) = self.versions.record(version, outcome) {
            tracing::warn!(component = %self.name, %reason, "rolled back");
            // The breaker judged the failed version; the old one starts clean.
            self.breaker.resume();
        } else if outcome.is_ok() || self.versions.is_active(version) {
            // A failure of a version no longer serving (a call still in
            // flight when it was rolled back or swapped out) says nothing
            // of the one that serves now. Successes are never stale in a
            // way that matters, so they skip the check.
            self.breaker.record(outcome, &self.name);
        }
        self.stats.leave(request, outcome.err().map(|e| e.kind), elapsed);
        if let Some(endpoint) = endpoint {
            endpoint.finish(outcome, elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::handler::{NativeHandler, Reply};
    use crate::core::message::Message;

    fn route(handler: impl Fn(Message) -> Result<Reply, CallError> + Send + Sync + 'static) -> Arc<Route> {
        Arc::new(Route::native("r", &["r.>"], 8, Arc::new(NativeHandler(handler))))
    }

    #[test]
    fn one_preempted_call_keeps_a_cheap_component_inline_but_steady_cost_moves_it() {
        let r = route(|_| Ok(Reply::default()));
        assert!(r.runs_inline());
        for _ in 0..20 {
            r.weigh(Duration::from_micros(3));
        }
        r.weigh(Duration::from_millis(5)); // preempted once
        assert!(r.runs_inline(), "one outlier moved it off the loop");
        let mut calls = 0;
        while r.runs_inline() {
            r.weigh(Duration::from_micros(120));
            calls += 1;
            assert!(calls < 20, "steady 120 µs calls never moved it off the loop");
        }
        for _ in 0..40 {
            r.weigh(Duration::from_micros(3));
        }
        assert!(r.runs_inline(), "cheap again, but not back on the loop");
    }

    #[test]
    fn a_rolled_back_version_s_late_failures_do_not_quarantine_the_restored_one() {
        let r = route(|_| Ok(Reply::default()));
        let endpoint = r.endpoints()[0].clone();
        let good = r.versions.active();
        let failing = Arc::new(NativeHandler(|_: Message| -> Result<Reply, CallError> {
            Ok(Reply::default())
        }));
        r.versions
            .install(Version::new(failing, "bad".to_owned(), None, InstanceMode::Pooled));
        let bad = r.versions.active();
        let trap = CallError::new(crate::core::error::ErrorKind::Trap, "boom");
        // Under load the bad version has many calls in flight: three roll
        // it back, the rest end after the rollback.
        for _ in 0..3 {
            r.record(&bad, Some(&endpoint), true, Err(&trap), Duration::from_micros(5));
        }
        assert!(Arc::ptr_eq(&r.versions.active(), &good), "rolled back");
        for _ in 0..20 {
            r.record(&bad, Some(&endpoint), true, Err(&trap), Duration::from_micros(5));
        }
        assert_eq!(
            r.breaker.status().state,
            "serving",
            "the restored version serves at once"
        );
        // Its own failures still count.
        for _ in 0..5 {
            r.record(&good, Some(&endpoint), true, Err(&trap), Duration::from_micros(5));
        }
        assert_eq!(r.breaker.status().state, "quarantined");
    }
}
