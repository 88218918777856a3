//! A bucket as components see it: the backend's, behind the manifest's
//! limits, counted per operation for `/metrics`, and with its change feed.
//!
//! A write whose change cannot be published returns an error although it
//! is stored: the guest's call fails, its event is retried by its
//! disposition, and the write (idempotent for `set` and `delete`) is made
//! and announced again. A feed then may carry a change twice, never miss
//! one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::changes::{Change, Feed};
use crate::core::keyvalue::{Bucket, KeyPage, KvError, Versioned};
use crate::manifest::KvBackend;

/// Longest key, in bytes, on every backend.
pub const MAX_KEY_BYTES: usize = 1024;

/// The operations counted in `/metrics`, in the order of [`Op::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `store.bucket.get`.
    Get,
    /// `store.bucket.set`.
    Set,
    /// `store.bucket.delete`.
    Delete,
    /// `store.bucket.exists`.
    Exists,
    /// `store.bucket.list-keys`.
    ListKeys,
    /// `atomics.increment`.
    Increment,
    /// `batch.get-many`.
    GetMany,
    /// `batch.set-many`.
    SetMany,
    /// `batch.delete-many`.
    DeleteMany,
    /// `keyvalue-cas.get`.
    GetVersioned,
    /// `keyvalue-cas.set-if`.
    SetIf,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 11] = [
        Op::Get,
        Op::Set,
        Op::Delete,
        Op::Exists,
        Op::ListKeys,
        Op::Increment,
        Op::GetMany,
        Op::SetMany,
        Op::DeleteMany,
        Op::GetVersioned,
        Op::SetIf,
    ];

    /// The `op` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
            Op::Exists => "exists",
            Op::ListKeys => "list_keys",
            Op::Increment => "increment",
            Op::GetMany => "get_many",
            Op::SetMany => "set_many",
            Op::DeleteMany => "delete_many",
            Op::GetVersioned => "get_versioned",
            Op::SetIf => "set_if",
        }
    }
}

/// One operation's counts.
#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
}

/// A point-in-time copy of one operation's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Time spent in them, in seconds.
    pub seconds: f64,
}

/// A bucket with its limits, counts and feed.
pub struct Guarded {
    /// The name components open it by.
    pub name: String,
    /// Where its data lives.
    pub backend: KvBackend,
    inner: Arc<dyn Bucket>,
    max_value_bytes: usize,
    feed: Option<Feed>,
    counts: [Counts; Op::ALL.len()],
}

impl Guarded {
    /// `inner` as components see it.
    pub fn new(
        name: &str,
        backend: KvBackend,
        inner: Arc<dyn Bucket>,
        max_value_bytes: usize,
        feed: Option<Feed>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            backend,
            inner,
            max_value_bytes,
            feed,
            counts: Default::default(),
        }
    }

    /// Each operation's counts so far.
    pub fn stats(&self) -> impl Iterator<Item = (Op, OpStats)> + '_ {
        Op::ALL.iter().zip(&self.counts).map(|(op, c)| {
            let stats = OpStats {
                calls: c.calls.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
                seconds: c.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            };
            (*op, stats)
        })
    }

    /// Runs one operation and counts it.
    async fn counted<T>(&self, op: Op, call: impl Future<Output = Result<T, KvError>>) -> Result<T, KvError> {
        let started = Instant::now();
        let result = call.await;
        let counts = &self.counts[op as usize];
        counts.calls.fetch_add(1, Ordering::Relaxed);
        counts
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Err(e) = &result {
            counts.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(bucket = %self.name, op = op.name(), "{e}");
        }
        result
    }

    fn key(&self, key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(KvError::invalid(format!(
                "bucket `{}`: a key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
                self.name,
                key.len()
            )));
        }
        Ok(())
    }

    fn value(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(KvError::invalid(format!(
                "bucket `{}`: the value of `{key}` is {} bytes; its max_value_kb allows {}",
                self.name,
                value.len(),
                self.max_value_bytes
            )));
        }
        Ok(())
    }

    async fn announce(&self, key: &str, change: Change, revision: u64, value: Option<&Bytes>) -> Result<(), KvError> {
        let Some(feed) = &self.feed else { return Ok(()) };
        feed.publish(key, change, revision, value).await.map_err(|e| {
            KvError::unavailable(format!(
                "bucket `{}`: `{key}` is written, but its change could not be published: {}",
                self.name, e.message
            ))
        })
    }
}

#[async_trait]
impl Bucket for Guarded {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        self.counted(Op::Get, async {
            self.key(key)?;
            self.inner.get(key).await
        })
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, KvError> {
        self.counted(Op::GetVersioned, async {
            self.key(key)?;
            self.inner.get_versioned(key).await
        })
        .await
    }

    async fn set_versioned(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        self.counted(Op::Set, async {
            self.value(key, &value)?;
            let revision = self.inner.set_versioned(key, value.clone()).await?;
            self.announce(key, Change::Set, revision, Some(&value)).await?;
            Ok(revision)
        })
        .await
    }

    /// A change feed says the revision; without one, none is asked for.
    async fn set(&self, key: &str, value: Bytes) -> Result<(), KvError> {
        if self.feed.is_some() {
            return self.set_versioned(key, value).await.map(drop);
        }
        self.counted(Op::Set, async {
            self.value(key, &value)?;
            self.inner.set(key, value).await
        })
        .await
    }

    async fn set_if(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, KvError> {
        self.counted(Op::SetIf, async {
            self.value(key, &value)?;
            let new = self.inner.set_if(key, value.clone(), revision).await?;
            if let Some(new) = new {
                self.announce(key, Change::Set, new, Some(&value)).await?;
            }
            Ok(new)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.counted(Op::Delete, async {
            self.key(key)?;
            self.inner.delete(key).await?;
            self.announce(key, Change::Delete, 0, None).await
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.counted(Op::Exists, async {
            self.key(key)?;
            self.inner.exists(key).await
        })
        .await
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        self.counted(Op::ListKeys, self.inner.list_keys(cursor)).await
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        self.counted(Op::Increment, async {
            self.key(key)?;
            let sum = self.inner.increment(key, delta).await?;
            let text = Bytes::from(sum.to_string());
            self.announce(key, Change::Set, 0, Some(&text)).await?;
            Ok(sum)
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, KvError> {
        self.counted(Op::GetMany, async {
            keys.iter().try_for_each(|k| self.key(k))?;
            self.inner.get_many(keys).await
        })
        .await
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<Vec<u64>, KvError> {
        self.counted(Op::SetMany, async {
            pairs.iter().try_for_each(|(k, v)| self.value(k, v))?;
            let announce = self.feed.is_some().then(|| pairs.clone());
            let revisions = self.inner.set_many(pairs).await?;
            for ((key, value), revision) in announce.iter().flatten().zip(&revisions) {
                self.announce(key, Change::Set, *revision, Some(value)).await?;
            }
            Ok(revisions)
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.counted(Op::DeleteMany, async {
            keys.iter().try_for_each(|k| self.key(k))?;
            self.inner.delete_many(keys).await?;
            for key in keys {
                self.announce(key, Change::Delete, 0, None).await?;
            }
            Ok(())
        })
        .await
    }
}
