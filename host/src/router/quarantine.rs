//! Quarantine: a component that keeps failing stops getting messages.
//!
//! A circuit breaker per component. Only faults of the component count —
//! traps and deadlines — not errors its handlers return on purpose. After
//! `threshold` faults in a row the component is quarantined for a cooldown:
//! the router stops pulling its messages, which stay on the broker. Then it
//! is half-open: one call goes through; success closes the breaker, another
//! fault quarantines it again for twice as long (up to `max_cooldown`). An
//! operator can suspend a component, and resume a quarantined or suspended
//! one at any time.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use crate::core::error::{CallError, ErrorKind};

/// Longest pause between calls of a component that keeps faulting.
pub const MAX_FAULT_BACKOFF: Duration = Duration::from_millis(100);

/// When to quarantine, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Faults in a row that quarantine the component.
    pub threshold: u32,
    /// First quarantine's length.
    pub cooldown: Duration,
    /// Longest quarantine after repeated failed retries.
    pub max_cooldown: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Serving; counts faults in a row.
    Closed { faults: u32 },
    /// Quarantined until `until`.
    Open { until: Instant, cooldown: Duration },
    /// Trying one call; `probing` while it runs.
    HalfOpen { cooldown: Duration, probing: bool },
    /// Stopped by an operator until resumed.
    Suspended,
}

/// What status output shows about a component's health.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// `serving`, `quarantined`, `probing` or `suspended`.
    pub state: &'static str,
    /// Why it is not serving, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds until the next trial call, while quarantined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<f64>,
    /// How many times it has been quarantined since start.
    pub quarantines: u64,
}

/// One component's breaker.
pub struct Breaker {
    inner: Mutex<Inner>,
    /// Whether `inner` is serving with no fault since the last success,
    /// kept in step by [`Guard`]: the router asks for every message, and
    /// a load here is what the lock would cost it.
    clear: AtomicBool,
    /// Wakes router loops waiting for the breaker to let calls through.
    changed: Notify,
}

struct Inner {
    /// Read under the lock on the fault path only; a swap may change it.
    policy: Policy,
    state: State,
    reason: Option<String>,
    quarantines: u64,
}

/// The lock on a breaker's state, which brings [`Breaker::clear`] in
/// step with the state when it is let go.
struct Guard<'a> {
    inner: MutexGuard<'a, Inner>,
    clear: &'a AtomicBool,
}

impl Deref for Guard<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Before the mutex is let go (fields drop after this).
        let clear = matches!(self.inner.state, State::Closed { faults: 0 });
        self.clear.store(clear, Ordering::Release);
    }
}

/// Whether a failed call counts against the component.
pub fn is_fault(error: &CallError) -> bool {
    matches!(error.kind, ErrorKind::Trap | ErrorKind::Timeout)
}

impl Breaker {
    /// Quarantines by `policy` from now on; a quarantine under way keeps
    /// its length.
    pub fn set_policy(&self, policy: Policy) {
        self.lock().inner.policy = policy;
    }

    /// A closed breaker.
    pub fn new(policy: Policy) -> Self {
        Self {
            inner: Mutex::new(Inner {
                policy,
                state: State::Closed { faults: 0 },
                reason: None,
                quarantines: 0,
            }),
            clear: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> Guard<'_> {
        Guard {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            clear: &self.clear,
        }
    }

    /// Waits until a call may start. Returns at once while serving; while
    /// quarantined waits for the cooldown (or a resume), then lets exactly
    /// one trial call through.
    pub async fn admit(&self) {
        loop {
            let notified = self.changed.notified();
            let wait_until = {
                let mut inner = self.lock();
                match inner.state {
                    State::Closed { .. } => return,
                    State::Open { until, cooldown } => {
                        if Instant::now() >= until {
                            inner.state = State::HalfOpen {
                                cooldown,
                                probing: true,
                            };
                            return;
                        }
                        Some(until)
                    }
                    State::HalfOpen { ref mut probing, .. } => {
                        if !*probing {
                            *probing = true;
                            return;
                        }
                        None
                    }
                    State::Suspended => None,
                }
            };
            match wait_until {
                Some(until) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(until.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Whether a call may start now with no wait at all: serving, and the
    /// last call was not a fault. No lock, where [`admit`](Self::admit)
    /// and [`backoff`](Self::backoff) take one each.
    pub fn is_clear(&self) -> bool {
        self.clear.load(Ordering::Acquire)
    }

    /// How long to hold the component's next call after faults in a row:
    /// 1 ms after the first, doubling to [`MAX_FAULT_BACKOFF`]. A component
    /// that traps on every message then costs its neighbours little CPU
    /// even before (or without) quarantine, while one that fails once in a
    /// while barely notices. `None` when the last call was fine.
    pub fn backoff(&self) -> Option<Duration> {
        match self.lock().state {
            State::Closed { faults } if faults > 0 => {
                let ms = 1u64 << (faults - 1).min(16);
                Some(Duration::from_millis(ms).min(MAX_FAULT_BACKOFF))
            }
            _ => None,
        }
    }

    /// Records how a call ended. Returns `true` if this call quarantined
    /// the component.
    pub fn record(&self, outcome: Result<(), &CallError>, component: &str) -> bool {
        let fault = outcome.err().filter(|e| is_fault(e));
        // Nothing to change: serving, no faults, and this was no fault.
        // (A fault recorded meanwhile by a concurrent call is not reset by
        // this success; which of two concurrent calls came last is
        // arbitrary anyway.)
        if fault.is_none() && self.is_clear() {
            return false;
        }
        let mut inner = self.lock();
        let policy = inner.policy;
        let quarantined = match (&mut inner.state, fault) {
            (State::Closed { faults }, None) => {
                *faults = 0;
                false
            }
            (State::Closed { faults }, Some(error)) => {
                *faults += 1;
                if *faults >= policy.threshold {
                    let reason = format!("{} faults in a row; last: {}", faults, error.message);
                    self.open(&mut inner, policy.cooldown, reason);
                    true
                } else {
                    false
                }
            }
            (State::HalfOpen { .. }, None) => {
                inner.state = State::Closed { faults: 0 };
                inner.reason = None;
                tracing::info!(component, "trial call succeeded; component is serving again");
                self.changed.notify_waiters();
                false
            }
            (State::HalfOpen { cooldown, .. }, Some(error)) => {
                let cooldown = (*cooldown * 2).min(policy.max_cooldown);
                let reason = format!("trial call failed: {}", error.message);
                self.open(&mut inner, cooldown, reason);
                true
            }
            // Calls that started before a quarantine or suspension.
            (State::Open { .. } | State::Suspended, _) => false,
        };
        if quarantined {
            tracing::warn!(
                component,
                reason = inner.reason.as_deref().unwrap_or(""),
                "component quarantined; its messages stay on the broker"
            );
        }
        quarantined
    }

    fn open(&self, inner: &mut Inner, cooldown: Duration, reason: String) {
        inner.state = State::Open {
            until: Instant::now() + cooldown,
            cooldown,
        };
        inner.reason = Some(reason);
        inner.quarantines += 1;
    }

    /// Stops the component taking messages until [`Breaker::resume`].
    pub fn suspend(&self, reason: impl Into<String>) {
        let mut inner = self.lock();
        inner.state = State::Suspended;
        inner.reason = Some(reason.into());
    }

    /// Serves again at once, whatever the state.
    pub fn resume(&self) {
        let mut inner = self.lock();
        inner.state = State::Closed { faults: 0 };
        inner.reason = None;
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Why a message that cannot wait is refused now, if the component
    /// takes none: suspended, or quarantined and still cooling down. `None`
    /// once a trial call may go, or while serving.
    pub fn refusal(&self) -> Option<String> {
        let inner = self.lock();
        let why = inner.reason.as_deref().unwrap_or("no reason given");
        match inner.state {
            State::Suspended => Some(format!("suspended ({why})")),
            State::Open { until, .. } if Instant::now() < until => Some(format!("quarantined ({why})")),
            _ => None,
        }
    }

    /// Whether the component takes messages: not quarantined, not
    /// suspended (a probe counts as taking them).
    pub fn is_serving(&self) -> bool {
        !matches!(self.lock().state, State::Open { .. } | State::Suspended)
    }

    /// For status output.
    pub fn status(&self) -> Status {
        let inner = self.lock();
        let (state, retry_in_s) = match inner.state {
            State::Closed { .. } => ("serving", None),
            State::Open { until, .. } => (
                "quarantined",
                Some(until.saturating_duration_since(Instant::now()).as_secs_f64()),
            ),
            State::HalfOpen { .. } => ("probing", None),
            State::Suspended => ("suspended", None),
        };
        Status {
            state,
            reason: inner.reason.clone(),
            retry_in_s,
            quarantines: inner.quarantines,
        }
    }
}

#[cfg(test)]
mod tests;
