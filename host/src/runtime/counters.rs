//! What the runtime counts for a component: outbound calls its grants
//! refused, and the batches it made. The router's stats read these beside
//! their own, so the runtime needs nothing of the router.

use std::sync::atomic::{AtomicU64, Ordering};

/// A component's runtime counters, shared by all its versions.
#[derive(Debug, Default)]
pub struct Counters {
    forbidden: AtomicU64,
    batches: AtomicU64,
    batched: AtomicU64,
    batch_failures: AtomicU64,
    demotions: AtomicU64,
}

/// A point-in-time copy of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Outbound calls refused by the grants.
    pub forbidden: u64,
    /// Calls into the component that carried several messages.
    pub batches: u64,
    /// Messages answered in those calls.
    pub batched: u64,
    /// Batches that failed as a whole and ran one call per message.
    pub batch_failures: u64,
    /// Calls slowed down for computing too long (see `throttle`).
    pub demotions: u64,
}

impl Counters {
    /// An outbound call was refused by the grants.
    pub fn forbade(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }

    /// One call carried `messages` messages; `None` if it failed as a
    /// whole and they were run one by one.
    pub fn batch(&self, messages: Option<usize>) {
        match messages {
            Some(n) => {
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.batched.fetch_add(n as u64, Ordering::Relaxed);
            }
            None => {
                self.batch_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A call computed past its grace and was slowed down.
    pub fn demoted(&self) {
        self.demotions.fetch_add(1, Ordering::Relaxed);
    }

    /// Current values.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            forbidden: self.forbidden.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batched: self.batched.load(Ordering::Relaxed),
            batch_failures: self.batch_failures.load(Ordering::Relaxed),
            demotions: self.demotions.load(Ordering::Relaxed),
        }
    }
}
