//! What the runtime needs of a key-value store: one bucket's operations,
//! whatever holds it (an embedded file, NATS KV, Redis).
//!
//! The runtime turns a guest's `wasi:keyvalue` calls into calls on this
//! trait after checking the component's grants; the keyvalue layer
//! implements it for each backend and wraps it with limits, metrics and
//! the change feed. The runtime and the stores stay side by side, neither
//! importing the other, as the runtime and the transports do.

use async_trait::async_trait;
use bytes::Bytes;

/// Why a key-value call failed. The guest sees `message` in
/// `wasi:keyvalue`'s `error::other`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KvError {
    /// What kind of failure, for callers that branch on it.
    pub kind: KvErrorKind,
    /// What went wrong, naming the bucket and key where it helps.
    pub message: String,
}

/// The kinds of [`KvError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvErrorKind {
    /// The backend cannot be reached now; the call may succeed later.
    Unavailable,
    /// The call itself is wrong: a key too long, a value too large, an
    /// `increment` of a value that is not a number.
    Invalid,
    /// The backend answered with an error.
    Backend,
}

impl KvError {
    /// The backend is not reachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: KvErrorKind::Unavailable,
            message: message.into(),
        }
    }

    /// The call cannot succeed as made.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: KvErrorKind::Invalid,
            message: message.into(),
        }
    }

    /// The backend refused or failed.
    pub fn backend(message: impl Into<String>) -> Self {
        Self {
            kind: KvErrorKind::Backend,
            message: message.into(),
        }
    }
}

/// A value and its revision. A revision changes on every write of the key
/// (on Redis: whenever the value changes; see the keyvalue layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Bytes,
    /// What `set_if` compares against; never 0.
    pub revision: u64,
}

/// One page of `list_keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys of this page.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<u64>,
}

/// Most keys one `list_keys` page holds.
pub const KEYS_PER_PAGE: usize = 1000;

/// One bucket on one backend.
#[async_trait]
pub trait Bucket: Send + Sync + 'static {
    /// The value of `key`, if set.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError>;

    /// The value of `key` and its revision, if set.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, KvError>;

    /// Sets `key`; returns its new revision.
    async fn set_versioned(&self, key: &str, value: Bytes) -> Result<u64, KvError>;

    /// Sets `key`, when no one asks for its revision (`wasi:keyvalue`'s
    /// `set`): a backend that must compute a revision (Redis keeps none)
    /// skips it.
    async fn set(&self, key: &str, value: Bytes) -> Result<(), KvError> {
        self.set_versioned(key, value).await.map(drop)
    }

    /// Sets `key` only if its revision is still `revision` (0: only if it
    /// is not set). Returns the new revision, or `None` if another write
    /// came first.
    async fn set_if(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, KvError>;

    /// Deletes `key`; deleting a key that is not set is not an error.
    async fn delete(&self, key: &str) -> Result<(), KvError>;

    /// Whether `key` is set.
    async fn exists(&self, key: &str) -> Result<bool, KvError>;

    /// A page of keys, from `cursor` (the previous page's) or the start.
    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, KvError>;

    /// Adds `delta` to the decimal number stored at `key` (0 if unset),
    /// atomically, and returns the sum.
    async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError>;

    /// The values of `keys`, in order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, KvError>;

    /// Sets every pair; returns their new revisions, in order.
    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<Vec<u64>, KvError>;

    /// Deletes every key.
    async fn delete_many(&self, keys: &[String]) -> Result<(), KvError>;
}

/// Parses a stored counter for `increment` and adds `delta`: the value is
/// a decimal number, as Redis's `INCRBY` and wasmtime's own in-memory
/// store keep it, so a counter reads the same on every backend.
pub fn add_to_counter(key: &str, current: Option<&[u8]>, delta: u64) -> Result<u64, KvError> {
    let now = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| KvError::invalid(format!("cannot increment `{key}`: its value is not a decimal number")))?,
    };
    now.checked_add(delta)
        .ok_or_else(|| KvError::invalid(format!("cannot increment `{key}`: the sum overflows 64 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_decimal_and_checked() {
        assert_eq!(add_to_counter("k", None, 5), Ok(5));
        assert_eq!(add_to_counter("k", Some(b"41"), 1), Ok(42));
        assert_eq!(
            add_to_counter("k", Some(b"x"), 1).map_err(|e| e.kind),
            Err(KvErrorKind::Invalid)
        );
        let max = u64::MAX.to_string();
        assert_eq!(
            add_to_counter("k", Some(max.as_bytes()), 1).map_err(|e| e.kind),
            Err(KvErrorKind::Invalid)
        );
    }
}
