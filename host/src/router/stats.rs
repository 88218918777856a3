//! Per-component counters: calls, errors, in-flight and its peak, latency.
//! The router counts calls here; what the runtime counts (refused outbound
//! calls, batches) lives in its [`Counters`], which a snapshot reads too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::core::error::ErrorKind;
use crate::runtime::counters::Counters;

/// Upper bounds of the call latency histogram's buckets, in seconds:
/// from a warm wasm call (µs) to a call at a typical timeout (s).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters for one component.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    busy_ns: AtomicU64,
    /// What the runtime counts for this component.
    runtime: Arc<Counters>,
    /// Calls per latency bucket (not cumulative); the last slot is +Inf.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Failed calls by [`ErrorKind`].
    errors_by_kind: [AtomicU64; ErrorKind::ALL.len()],
    /// Tasks in [`Stats::wait_until`]; calls only notify when there are any,
    /// so the hot path pays one load.
    waiters: AtomicUsize,
    changed: Notify,
}

/// A point-in-time copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Calls running now.
    pub in_flight: usize,
    /// Most calls that ever ran at once.
    pub peak_in_flight: usize,
    /// Requests handled (successfully or not).
    pub requests: u64,
    /// Events handled (successfully or not).
    pub events: u64,
    /// Calls that ended with an error.
    pub errors: u64,
    /// Outbound calls refused by the grants.
    pub forbidden: u64,
    /// Wall time spent in calls, in nanoseconds.
    pub busy_ns: u64,
    /// Calls into the component that carried several messages.
    pub batches: u64,
    /// Messages answered in those calls.
    pub batched: u64,
    /// Batches that failed as a whole (a trap, the deadline), whose
    /// messages then ran one call each.
    pub batch_failures: u64,
    /// Calls slowed down for computing too long without returning.
    pub demotions: u64,
}

impl Stats {
    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let runtime = self.runtime.snapshot();
        StatsSnapshot {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            forbidden: runtime.forbidden,
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            batches: runtime.batches,
            batched: runtime.batched,
            batch_failures: runtime.batch_failures,
            demotions: runtime.demotions,
        }
    }

    /// A call started.
    pub fn enter(&self) {
        self.enter_many(1);
    }

    /// `calls` calls started at once (a batch's messages, each a call of
    /// its own in the counters).
    pub fn enter_many(&self, calls: usize) {
        let now = self.in_flight.fetch_add(calls, Ordering::Relaxed) + calls;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        self.wake();
    }

    /// A call that started was dropped before it ended (its caller went
    /// away): out of the in-flight count, counted nowhere else.
    pub fn abandon(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.wake();
    }

    /// A call ended after `elapsed`, with an error of this kind if it failed.
    pub fn leave(&self, request: bool, failed: Option<ErrorKind>, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.busy_ns
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let counter = if request { &self.requests } else { &self.events };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.errors_by_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.wake();
    }

    /// Cumulative call counts per [`LATENCY_BUCKETS`] bound, then the
    /// total (+Inf), as a Prometheus histogram wants them.
    pub fn latency_cumulative(&self) -> Vec<u64> {
        self.latency
            .iter()
            .scan(0, |sum, n| {
                *sum += n.load(Ordering::Relaxed);
                Some(*sum)
            })
            .collect()
    }

    /// Failed calls of each kind.
    pub fn errors_by_kind(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .map(|k| (*k, self.errors_by_kind[*k as usize].load(Ordering::Relaxed)))
    }

    /// Wakes [`Stats::wait_until`] callers, if there are any.
    fn wake(&self) {
        // Pairs with the fence in `wait_until`: either the waiter's
        // snapshot sees the new counts or this load sees the waiter.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Waits until a call starting or ending makes `done` true of the counters, for
    /// at most `limit`; returns whether it became true. For tests and
    /// tooling that must see a call's effect on the counters, which lands
    /// after whatever the call itself sent out.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&StatsSnapshot) -> bool) -> bool {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout(limit, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                fence(Ordering::SeqCst);
                if done(&self.snapshot()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        waited.is_ok()
    }

    /// The counters the runtime keeps for this component.
    pub fn runtime(&self) -> Arc<Counters> {
        self.runtime.clone()
    }
}
