//! The on-disk cache of compiled components.
//!
//! Compiling a component takes milliseconds for Rust and seconds for Python
//! or JavaScript; loading a precompiled one takes far less. Entries are keyed
//! by the SHA-256 of the wasm bytes and by the engine's compatibility hash,
//! so a new wasmtime or different engine settings never load a stale entry.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled components live, or no cache at all.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// The SHA-256 of a component's bytes as lowercase hex: its version.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a component came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Loaded precompiled from disk.
    Cached,
    /// Compiled now.
    Compiled,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: Some(dir.into()) }
    }

    /// No caching: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Loads `bytes` as a component, from the cache when it holds it,
    /// else compiling and storing it. A cache that cannot be written only
    /// costs speed, so that is a warning, not an error.
    pub fn load(&self, engine: &Engine, bytes: &[u8], hash: &str) -> Result<(Component, Source)> {
        let Some(path) = self.entry(engine, hash) else {
            return Ok((Component::new(engine, bytes)?, Source::Compiled));
        };
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(c) => return Ok((c, Source::Cached)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable compile cache entry"),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "could not write compile cache");
        }
        // Safety of the bytes is the same as for `deserialize`: we made them.
        let component = deserialize_bytes(engine, &compiled)?;
        Ok((component, Source::Compiled))
    }

    fn entry(&self, engine: &Engine, hash: &str) -> Option<PathBuf> {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Some(self.dir.as_ref()?.join(format!("{hash}-{:016x}.cwasm", h.finish())))
    }
}

fn store(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache entry has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Write then rename, so a reader never sees half a file. The temporary
    // name is unique per write: two hosts in one process (or two loads of
    // one component) may store the same entry at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: the cache folder holds only files this host wrote with
    // `Engine::precompile_component`, renamed into place whole; the file
    // name carries the engine's compatibility hash, and wasmtime checks the
    // header again before use.
    unsafe { Ok(Component::deserialize_file(engine, path)?) }
}

#[allow(unsafe_code)]
fn deserialize_bytes(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    // SAFETY: the bytes come from `Engine::precompile_component` on this
    // very engine a moment ago.
    unsafe { Ok(Component::deserialize(engine, bytes)?) }
}
