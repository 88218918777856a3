//! Per-component counters: calls, errors, in-flight and its peak, refused
//! outbound calls. Shared between the router (which counts calls) and the
//! runtime (which counts what the grants refused).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

/// Counters for one component.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    forbidden: AtomicU64,
    busy_ns: AtomicU64,
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
}

impl Stats {
    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            forbidden: self.forbidden.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
        }
    }

    /// A call started.
    pub fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        self.wake();
    }

    /// A call ended after `elapsed`.
    pub fn leave(&self, request: bool, failed: bool, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.busy_ns.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let counter = if request { &self.requests } else { &self.events };
        counter.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.wake();
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

    /// An outbound call was refused by the grants.
    pub fn forbade(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }
}
