//! Per-subscription counters: what the NATS service API reports per
//! endpoint and the metrics per subscription. A component's totals are in
//! its [`Stats`](super::stats::Stats); these split them by the
//! subscription a message came through.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::chain::Chain;
use crate::core::error::CallError;

/// One subscription of a component.
#[derive(Debug)]
pub struct Endpoint {
    /// The subject pattern (or queue) it serves.
    pub subject: String,
    /// A name for it made of the subject: letters, digits, `-` and `_`, as
    /// the NATS service API wants endpoint names.
    pub name: String,
    received: AtomicU64,
    handled: AtomicU64,
    errors: AtomicU64,
    busy_ns: AtomicU64,
    /// Written on failures only, so the lock stays off the good path.
    last_error: Mutex<String>,
    /// The serve loops of this subscription, stopped when it is removed.
    loops: Mutex<Vec<CancellationToken>>,
    /// Whether `chain` has a link: read per message, so a subscription
    /// without middleware pays one load, not a lock.
    chained: AtomicBool,
    /// The middleware in front of its handler (the subscription's
    /// `middleware`).
    chain: Mutex<Chain>,
}

/// A point-in-time copy of an [`Endpoint`]'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSnapshot {
    /// Messages taken from the subscription.
    pub received: u64,
    /// Of those, calls that have ended.
    pub handled: u64,
    /// Of those, calls that failed.
    pub errors: u64,
    /// Wall time of the ended calls, in nanoseconds.
    pub busy_ns: u64,
    /// The last failure's message; empty if none failed.
    pub last_error: String,
}

impl Endpoint {
    /// Counters for the subscription to `subject`, named `name`.
    pub fn new(subject: String, name: String) -> Self {
        Self {
            subject,
            name,
            received: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            loops: Mutex::new(Vec::new()),
            chained: AtomicBool::new(false),
            chain: Mutex::new(Chain::default()),
        }
    }

    /// Puts `chain` in front of the handler for the messages that come
    /// from now on.
    pub fn set_chain(&self, chain: Chain) {
        let empty = chain.is_empty();
        *self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = chain;
        self.chained.store(!empty, Ordering::Release);
    }

    /// Whether middleware sits in front of the handler (one load).
    pub fn is_chained(&self) -> bool {
        self.chained.load(Ordering::Acquire)
    }

    /// The middleware in front of the handler, if any.
    pub fn chain(&self) -> Option<Chain> {
        self.chained.load(Ordering::Acquire).then(|| {
            self.chain
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        })
    }

    /// A serve loop of this subscription runs until `stop`.
    pub(super) fn attach(&self, stop: CancellationToken) {
        self.loops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(stop);
    }

    /// Stops the subscription's serve loops: the subscription ends, and
    /// what it had queued is handed back (see [`super::serve`]).
    pub(super) fn retire(&self) {
        for stop in self
            .loops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
        {
            stop.cancel();
        }
    }

    /// `n` messages were taken from the subscription.
    pub(super) fn receive(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A call for one of its messages ended after `elapsed`.
    pub(super) fn finish(&self, outcome: Result<(), &CallError>, elapsed: Duration) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.busy_ns
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Err(e) = outcome {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let mut last = self.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            last.clear();
            last.push_str(&e.to_string());
        }
    }

    /// Current values.
    pub fn snapshot(&self) -> EndpointSnapshot {
        EndpointSnapshot {
            received: self.received.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

/// Names for a component's subscriptions, made of what they serve:
/// `orders.*.get` is `orders-any-get`, `audit.>` is `audit-all`. Two that
/// come out the same get `-2`, `-3` … after the first.
pub fn names(subjects: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let base = name(subject);
        let mut candidate = base.clone();
        let mut n = 1;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        out.push(candidate);
    }
    out
}

fn name(subject: &str) -> String {
    let words: Vec<String> = subject
        .split(['.', '/'])
        .filter(|t| !t.is_empty())
        .map(|token| match token {
            "*" => "any".to_owned(),
            ">" | "#" => "all".to_owned(),
            t => t
                .chars()
                .map(|c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    true => c,
                    false => '_',
                })
                .collect(),
        })
        .collect();
    match words.is_empty() {
        true => "all".to_owned(),
        false => words.join("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_what_a_subscription_serves() {
        let subjects = ["orders.*.get", "audit.>", "a.b", "a-b", "logs.#", "ünï.x"].map(String::from);
        assert_eq!(
            names(&subjects),
            ["orders-any-get", "audit-all", "a-b", "a-b-2", "logs-all", "_n_-x"]
        );
    }

    #[test]
    fn a_failure_is_counted_and_kept_as_the_last_error() {
        let e = Endpoint::new("x".into(), "x".into());
        e.receive(2);
        e.finish(Ok(()), Duration::from_micros(3));
        let err = CallError::new(crate::core::error::ErrorKind::Trap, "boom");
        e.finish(Err(&err), Duration::from_micros(5));
        let s = e.snapshot();
        assert_eq!((s.received, s.handled, s.errors, s.busy_ns), (2, 2, 1, 8_000));
        assert!(s.last_error.contains("boom"), "{}", s.last_error);
    }
}
