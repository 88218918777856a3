//! A store's limits, and how much linear memory its instance holds.
//!
//! Wasmtime's [`StoreLimits`] decides what an instance may grow to; this
//! wrapper also counts what it did grow to, because an idle instance kept
//! warm costs the host its memory, and the warm budget (`[host]
//! max_warm_mb`) is spent in those bytes.

use wasmtime::{ResourceLimiter, StoreLimits};

/// [`StoreLimits`] plus the bytes of linear memory granted so far.
pub(crate) struct Limits {
    inner: StoreLimits,
    memory_bytes: usize,
}

impl Limits {
    pub(crate) fn new(inner: StoreLimits) -> Self {
        Self { inner, memory_bytes: 0 }
    }

    /// Linear memory of every memory of the instance, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allow = self.inner.memory_growing(current, desired, maximum)?;
        if allow {
            // A new memory is a growth from zero, so this counts it too.
            self.memory_bytes += desired.saturating_sub(current);
        }
        Ok(allow)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
