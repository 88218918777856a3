//! The versions of one component: which one serves, switching to a new one,
//! and switching back when the new one fails its probation.
//!
//! The switch is one atomic pointer store ([`ArcSwap`]). Each call loads
//! the active version once and keeps it to the end, so every message is
//! handled by exactly one version, calls in flight finish on the version
//! they started on, and an old version is dropped when its last call ends.
//! (No call outlives `timeout_ms`, so that is also how long an old version
//! can linger.) Subscriptions belong to the route, not to a version: a
//! swap never touches the broker.
//!
//! A swapped-in version is on probation for a while: if enough of its
//! calls fail (traps, timeouts, 5xx handler errors; not 4xx, which are the
//! caller's) within the window, the previous version is switched back in
//! and the reason kept for status output.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Handler;
use crate::core::limits::InstanceMode;

/// One loaded version of a component.
pub struct Version {
    /// Serves the calls.
    pub handler: Arc<dyn Handler>,
    /// SHA-256 of the wasm bytes.
    pub hash: String,
    /// The operator's name for it (`label` in the manifest or the swap).
    pub label: Option<String>,
    /// How its instances are used.
    pub mode: InstanceMode,
    /// When it started serving.
    since: Instant,
    /// Failed calls while on probation.
    faults: AtomicU32,
}

impl Version {
    /// A version that starts serving now.
    pub fn new(handler: Arc<dyn Handler>, hash: String, label: Option<String>, mode: InstanceMode) -> Self {
        Self {
            handler,
            hash,
            label,
            mode,
            since: Instant::now(),
            faults: AtomicU32::new(0),
        }
    }

    /// The hash's first 12 digits, and the label if any: for logs.
    pub fn describe(&self) -> String {
        let short = &self.hash[..self.hash.len().min(12)];
        match &self.label {
            Some(label) => format!("{label} ({short})"),
            None => short.to_owned(),
        }
    }
}

/// When a swapped-in version is switched back out.
#[derive(Clone, Copy, Debug)]
pub struct Probation {
    /// How long after the swap failures count.
    pub window: Duration,
    /// Failures within the window that cause a rollback; 0 never does.
    pub max_faults: u32,
}

impl Default for Probation {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            max_faults: 3,
        }
    }
}

/// What status output says about a component's versions.
#[derive(Clone, Debug, Serialize)]
pub struct VersionStatus {
    /// Active version's hash.
    pub version: String,
    /// Active version's label.
    pub label: Option<String>,
    /// The version a rollback would return to, while on probation.
    pub previous: Option<String>,
    /// Swaps and rollbacks so far.
    pub swaps: u64,
    /// Why the last rollback happened.
    pub last_rollback: Option<String>,
    /// A new version is being compiled and initialised right now.
    pub swapping: bool,
}

/// The active version of a component and the one before it.
pub struct Versions {
    active: ArcSwap<Version>,
    previous: Mutex<Option<Arc<Version>>>,
    last_rollback: Mutex<Option<String>>,
    /// Read on the fault path and by status only; a swap may change it.
    probation: Mutex<Probation>,
    /// Serializes swaps of this component (not of others).
    swapping: tokio::sync::Mutex<()>,
    /// Counts switches, so callers can wait for one.
    switches: watch::Sender<u64>,
}

impl Versions {
    /// Starts with `first` active and nothing to roll back to.
    pub fn new(first: Version, probation: Probation) -> Self {
        Self {
            active: ArcSwap::from_pointee(first),
            previous: Mutex::new(None),
            last_rollback: Mutex::new(None),
            probation: Mutex::new(probation),
            swapping: tokio::sync::Mutex::new(()),
            switches: watch::Sender::new(0),
        }
    }

    /// The version that takes the next call.
    pub fn active(&self) -> Arc<Version> {
        self.active.load_full()
    }

    /// Held for the whole of a swap, from loading to switching.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.swapping.lock().await
    }

    /// Switches to `next`; the old version becomes the rollback target and
    /// is returned. The caller holds [`Versions::lock`].
    pub fn install(&self, next: Version) -> Arc<Version> {
        let old = self.active.swap(Arc::new(next));
        *lock(&self.previous) = Some(old.clone());
        self.switches.send_modify(|n| *n += 1);
        old
    }

    /// Puts versions swapped in from now on, and the one on probation, on
    /// this probation.
    pub fn set_probation(&self, probation: Probation) {
        *lock(&self.probation) = probation;
    }

    /// Feeds a finished call's outcome to `version`'s probation; returns
    /// why, if this call made the component roll back.
    pub fn record(&self, version: &Arc<Version>, outcome: Result<(), &CallError>) -> Option<String> {
        let Err(error) = outcome else { return None };
        let fault = match error.kind {
            ErrorKind::Trap | ErrorKind::Timeout => true,
            ErrorKind::Handler => error.code >= 500,
            _ => false,
        };
        if !fault {
            return None;
        }
        let probation = *lock(&self.probation);
        if probation.max_faults == 0 || version.since.elapsed() > probation.window {
            return None;
        }
        let mut previous = lock(&self.previous);
        let back = previous.as_ref()?;
        if !Arc::ptr_eq(&self.active.load(), version) {
            return None; // already replaced
        }
        let faults = version.faults.fetch_add(1, Ordering::Relaxed) + 1;
        if faults < probation.max_faults {
            return None;
        }
        let reason = format!(
            "version {} failed {faults} calls within {:?} of being swapped in (last: {error}); rolled back to {}",
            version.describe(),
            probation.window,
            back.describe()
        );
        self.active.store(back.clone());
        *previous = None;
        *lock(&self.last_rollback) = Some(reason.clone());
        self.switches.send_modify(|n| *n += 1);
        Some(reason)
    }

    /// Whether `version` is the one serving now.
    pub fn is_active(&self, version: &Arc<Version>) -> bool {
        Arc::ptr_eq(&self.active.load(), version)
    }

    /// Waits for switches (swaps and rollbacks) past `seen`.
    pub fn switches(&self) -> watch::Receiver<u64> {
        self.switches.subscribe()
    }

    /// For `/v1/components` and `berth status`.
    pub fn status(&self) -> VersionStatus {
        let active = self.active();
        let probation_over = active.since.elapsed() > lock(&self.probation).window;
        VersionStatus {
            version: active.hash.clone(),
            label: active.label.clone(),
            previous: lock(&self.previous)
                .as_ref()
                .filter(|_| !probation_over)
                .map(|v| v.hash.clone()),
            swaps: *self.switches.borrow(),
            last_rollback: lock(&self.last_rollback).clone(),
            swapping: self.swapping.try_lock().is_err(),
        }
    }
}

/// These mutexes guard plain values; a panic elsewhere cannot leave them
/// half-written, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::handler::NativeHandler;

    fn version(hash: &str) -> Version {
        let handler: Arc<dyn Handler> = Arc::new(NativeHandler(|m: crate::Message| {
            Ok(crate::core::handler::Reply {
                body: m.body,
                headers: Vec::new(),
            })
        }));
        Version::new(
            handler,
            hash.repeat(64 / hash.len()),
            Some(hash.into()),
            InstanceMode::Pooled,
        )
    }

    fn trap() -> CallError {
        CallError::new(ErrorKind::Trap, "unreachable")
    }

    #[test]
    fn failing_new_version_rolls_back_after_max_faults() {
        let v = Versions::new(version("a"), Probation::default());
        v.install(version("b"));
        let b = v.active();
        assert_eq!(b.label.as_deref(), Some("b"));
        assert!(v.record(&b, Err(&trap())).is_none());
        let client = {
            let mut e = CallError::new(ErrorKind::Handler, "bad input");
            e.code = 400;
            e
        };
        assert!(v.record(&b, Err(&client)).is_none(), "4xx errors are the caller's");
        assert!(v.record(&b, Err(&trap())).is_none());
        let reason = v.record(&b, Err(&trap())).expect("third fault rolls back");
        assert!(reason.contains("rolled back to a"), "{reason}");
        assert_eq!(v.active().label.as_deref(), Some("a"));
        assert!(
            v.record(&v.active(), Err(&trap())).is_none(),
            "nothing to roll back to any more"
        );
        assert_eq!(v.status().swaps, 2);
        assert!(v.status().last_rollback.is_some());
    }

    #[test]
    fn the_first_version_and_old_calls_never_roll_back() {
        let v = Versions::new(version("a"), Probation::default());
        let a = v.active();
        for _ in 0..10 {
            assert!(v.record(&a, Err(&trap())).is_none());
        }
        v.install(version("b"));
        for _ in 0..10 {
            assert!(
                v.record(&a, Err(&trap())).is_none(),
                "a late failure of the old version"
            );
        }
        assert_eq!(v.active().label.as_deref(), Some("b"));
    }
}
