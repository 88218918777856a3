//! Compiled and linked components, shared by every load of the same bytes.
//!
//! Ten thousand tenants often run a handful of distinct components. Loading
//! each from the compile cache would map and link the same code ten
//! thousand times, and give the instance pool ten thousand "different"
//! modules, so that no recycled memory slot could be reused warm. One
//! [`Linked`] per content hash is shared instead, for as long as some
//! loaded component holds it; the next load after the last one is gone
//! starts again from the compile cache.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use wasmtime::component::{Component, InstancePre};

use super::cache::Source;
use super::link::{Exports, LoadError};
use super::state::CallState;

/// A component compiled and linked against the host.
pub(super) struct Linked {
    pub(super) component: Component,
    pub(super) pre: InstancePre<CallState>,
    pub(super) exports: Exports,
}

/// One [`Linked`] per content hash, while in use.
#[derive(Default)]
pub(super) struct LinkedCache {
    /// Per hash, a lock that makes concurrent loads of the same bytes wait
    /// for the first instead of all compiling.
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Weak<Linked>>>>>,
}

impl LinkedCache {
    /// The linked component for `hash`, made by `make` if no loaded
    /// component holds one; a shared one counts as [`Source::Cached`].
    pub(super) async fn get_or_make<F>(&self, hash: &str, make: F) -> Result<(Arc<Linked>, Source), LoadError>
    where
        F: Future<Output = Result<(Linked, Source), LoadError>>,
    {
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if !entries.contains_key(hash) {
                // Forget hashes nobody holds any more (and nobody is loading).
                entries.retain(|_, e| e.try_lock().map_or(true, |w| w.strong_count() > 0));
            }
            entries.entry(hash.to_owned()).or_default().clone()
        };
        let mut held = entry.lock().await;
        if let Some(linked) = held.upgrade() {
            return Ok((linked, Source::Cached));
        }
        let (linked, source) = make.await?;
        let linked = Arc::new(linked);
        *held = Arc::downgrade(&linked);
        Ok((linked, source))
    }
}
