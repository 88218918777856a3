//! Per-component counters: calls, errors, in-flight and its peak, refused
//! outbound calls. Shared between the router (which counts calls) and the
//! runtime (which counts what the grants refused).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// Counters for one component.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    forbidden: AtomicU64,
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
        }
    }

    /// A call started.
    pub fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    /// A call ended.
    pub fn leave(&self, request: bool, failed: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let counter = if request { &self.requests } else { &self.events };
        counter.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An outbound call was refused by the grants.
    pub fn forbade(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }
}
