//! Per-route counters: requests by status class, time, in flight. Kept
//! by path and methods across a manifest change, so a route that stays
//! keeps its counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One route's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Answers by status class: 1xx … 5xx.
    by_class: [AtomicU64; 5],
    /// Wall time of the answered requests, in nanoseconds.
    busy_ns: AtomicU64,
    in_flight: AtomicU64,
}

/// A point-in-time copy of a route's [`Counters`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// Requests answered.
    pub requests: u64,
    /// Of those, by status class, in [`CLASSES`] order.
    pub by_class: [u64; 5],
    /// Seconds spent answering, summed.
    pub seconds: f64,
    /// Requests being answered now.
    pub in_flight: u64,
}

/// The names of the status classes, in [`Snapshot::by_class`] order.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A request being answered: in flight until it is dropped, answered
/// ([`Answering::leave`]) or not. A client that hangs up makes the server
/// drop its request's future mid-way, and an unanswered request must not
/// stay in the count.
#[must_use = "the request is in flight until this is dropped"]
pub struct Answering<'a>(&'a Counters);

impl Answering<'_> {
    /// Answered with `status` after `elapsed`.
    pub fn leave(self, status: u16, elapsed: Duration) {
        self.0.answered(status, elapsed);
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// A request came in.
    pub fn enter(&self) -> Answering<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Answering(self)
    }

    fn answered(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.busy_ns
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let by_class = std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed));
        Snapshot {
            requests: by_class.iter().sum(),
            by_class,
            seconds: self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_by_class_and_odd_statuses_land_at_the_ends() {
        let c = Counters::default();
        for status in [200, 201, 404, 503, 99, 700] {
            c.enter().leave(status, Duration::from_millis(1));
        }
        let s = c.snapshot();
        assert_eq!(s.by_class, [1, 2, 0, 1, 2]);
        assert_eq!(s.requests, 6);
        assert_eq!(s.in_flight, 0);
        assert!((s.seconds - 0.006).abs() < 1e-9);
    }

    #[test]
    fn a_request_dropped_unanswered_leaves_the_count_without_a_status() {
        let c = Counters::default();
        let answering = c.enter();
        assert_eq!(c.snapshot().in_flight, 1);
        drop(answering);
        let s = c.snapshot();
        assert_eq!((s.in_flight, s.requests), (0, 0));
    }
}
