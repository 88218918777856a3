//! The NATS backend: a JetStream KV bucket on the host's NATS connection,
//! made at start if it is not there. Every host on the bucket sees every
//! other's writes; a revision is the bucket stream's sequence number.
//!
//! `increment` has no server-side counterpart in JetStream KV, so it reads
//! the value and its revision and writes the sum only if the revision is
//! unchanged, retrying on conflict with a short random pause: atomic
//! across hosts, as long as every writer of a counter goes through a
//! revision check.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store, UpdateErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::core::keyvalue::{Bucket, KEYS_PER_PAGE, KeyPage, KvError, Versioned, add_to_counter};

/// Most tries of one `increment` before it gives up.
const MAX_TRIES: u32 = 10_000;

/// What a bucket is made with when it is not there.
#[derive(Clone, Debug, Default)]
pub struct NatsBucketOptions {
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Revisions kept per key (1 when absent).
    pub history: Option<u64>,
    /// Copies in a JetStream cluster (1 when absent).
    pub replicas: Option<u64>,
    /// How long a key lives after its last write (forever when absent).
    pub ttl: Option<Duration>,
}

/// One JetStream KV bucket.
pub struct NatsBucket {
    store: Store,
}

impl NatsBucket {
    /// Opens `bucket`, making it with `options` if it does not exist.
    pub async fn open(client: &async_nats::Client, bucket: &str, options: &NatsBucketOptions) -> anyhow::Result<Self> {
        let js = async_nats::jetstream::new(client.clone());
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => {
                let config = kv::Config {
                    bucket: bucket.to_owned(),
                    history: options.history.map_or(1, |h| h as i64),
                    num_replicas: options.replicas.map_or(1, |r| r as usize),
                    max_age: options.ttl.unwrap_or_default(),
                    max_value_size: i32::try_from(options.max_value_bytes).unwrap_or(i32::MAX),
                    ..Default::default()
                };
                js.create_key_value(config).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot make the NATS KV bucket `{bucket}` (is JetStream on? `nats-server -js`): {e}"
                    )
                })?
            }
        };
        Ok(Self { store })
    }
}

fn failed(e: impl std::fmt::Display) -> KvError {
    let text = e.to_string();
    if text.contains("timed out") || text.contains("no responders") || text.contains("disconnected") {
        KvError::unavailable(format!("NATS KV is unavailable: {text}"))
    } else {
        KvError::backend(format!("NATS KV: {text}"))
    }
}

/// A pause of up to `tries` × 50 µs (at most 5 ms), so writers that
/// collided do not collide again in lockstep.
async fn back_off(tries: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let span = (u64::from(tries) * 50_000).min(5_000_000);
    tokio::time::sleep(Duration::from_nanos(u64::from(nanos) % span.max(1))).await;
}

#[async_trait]
impl Bucket for NatsBucket {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        self.store.get(key).await.map_err(failed)
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, KvError> {
        let entry = self.store.entry(key).await.map_err(failed)?;
        Ok(entry.filter(|e| e.operation == Operation::Put).map(|e| Versioned {
            value: e.value,
            revision: e.revision,
        }))
    }

    async fn set_versioned(&self, key: &str, value: Bytes) -> Result<u64, KvError> {
        self.store.put(key, value).await.map_err(failed)
    }

    async fn set_if(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, KvError> {
        if revision == 0 {
            return match self.store.create(key, value).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(failed(e)),
            };
        }
        match self.store.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store.delete(key).await.map_err(failed)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get_versioned(key).await?.is_some())
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let mut all = self.store.keys().await.map_err(failed)?.skip(skip);
        let mut keys = Vec::new();
        while let Some(key) = all.next().await {
            if keys.len() == KEYS_PER_PAGE {
                return Ok(KeyPage {
                    cursor: Some((skip + keys.len()) as u64),
                    keys,
                });
            }
            keys.push(key.map_err(failed)?);
        }
        Ok(KeyPage { keys, cursor: None })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        for tries in 1..=MAX_TRIES {
            let current = self.get_versioned(key).await?;
            let sum = add_to_counter(key, current.as_ref().map(|v| &v.value[..]), delta)?;
            let revision = current.map_or(0, |v| v.revision);
            if self
                .set_if(key, Bytes::from(sum.to_string()), revision)
                .await?
                .is_some()
            {
                return Ok(sum);
            }
            back_off(tries).await;
        }
        Err(KvError::unavailable(format!(
            "cannot increment `{key}`: {MAX_TRIES} tries in a row collided with other writers"
        )))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, KvError> {
        let reads = keys.iter().map(|k| self.store.get(k.as_str()));
        futures_util::future::join_all(reads)
            .await
            .into_iter()
            .map(|r| r.map_err(failed))
            .collect()
    }

    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<Vec<u64>, KvError> {
        let writes = pairs
            .into_iter()
            .map(|(k, v)| async move { self.store.put(k, v).await });
        futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.map_err(failed))
            .collect()
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let deletes = keys.iter().map(|k| self.store.delete(k.as_str()));
        for result in futures_util::future::join_all(deletes).await {
            result.map_err(failed)?;
        }
        Ok(())
    }
}
