//! `[keyvalue.<name>]`: a bucket components may open with
//! `wasi:keyvalue/store.open("<name>")` when their `keyvalue` grant names
//! it.

use anyhow::{Result, ensure};
use serde::Deserialize;

use super::Manifest;
use super::bounds::{within, within_opt};

/// Where a bucket's data lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KvBackend {
    /// A file under `DATA_DIR`; no server needed.
    #[default]
    Embedded,
    /// A JetStream KV bucket on `[transports.nats]`.
    Nats,
    /// Keys under a prefix on a Redis server.
    Redis,
}

impl std::fmt::Display for KvBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Embedded => "embedded",
            Self::Nats => "nats",
            Self::Redis => "redis",
        })
    }
}

/// One `[keyvalue.<name>]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueConfig {
    /// Where the data lives.
    #[serde(default)]
    pub backend: KvBackend,
    /// Its name on the backend (NATS KV bucket, Redis key prefix, embedded
    /// table); the table's own name when absent.
    pub bucket: Option<String>,
    /// Redis only: the server; `REDIS_URL` overrides it.
    pub url: Option<String>,
    /// Largest value a component may store, in KiB.
    #[serde(
        default = "default_max_value_kb",
        deserialize_with = "within::<_, _, 1, MAX_VALUE_KB>"
    )]
    pub max_value_kb: u32,
    /// NATS only: revisions kept per key.
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, 64>")]
    pub history: Option<u64>,
    /// NATS only: copies of the bucket in a JetStream cluster.
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, 5>")]
    pub replicas: Option<u64>,
    /// NATS only: how long a key lives after its last write, in seconds.
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, { 10 * 365 * 24 * 3600 }>")]
    pub ttl_s: Option<u64>,
    /// Publish every write through Berth as `<changes>.<key>.<set|delete>`
    /// on the host's transport; no feed when absent.
    pub changes: Option<String>,
}

/// Largest `max_value_kb`: 64 MiB, NATS's own ceiling for a message.
pub const MAX_VALUE_KB: u64 = 64 * 1024;

fn default_max_value_kb() -> u32 {
    1024
}

/// The Redis server a bucket uses when neither `url` nor `REDIS_URL` says.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl KeyValueConfig {
    /// The bucket's name on its backend.
    pub fn bucket_name<'a>(&'a self, table: &'a str) -> &'a str {
        self.bucket.as_deref().unwrap_or(table)
    }
}

impl Manifest {
    /// Names, backend-specific keys and the change subject of every bucket,
    /// and that every component's `keyvalue` grant names one.
    pub(super) fn validate_keyvalue(&self) -> Result<()> {
        for (name, kv) in &self.keyvalue {
            let at = format!("[keyvalue.{name}]");
            ensure!(
                !name.is_empty()
                    && name.len() <= 64
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{at}: a bucket's name is 1 to 64 letters, digits, `-` and `_`"
            );
            if let Some(bucket) = &kv.bucket {
                ensure!(
                    !bucket.is_empty()
                        && bucket.len() <= 64
                        && bucket
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{at} bucket `{}`: 1 to 64 letters, digits, `-` and `_` (a NATS KV bucket's rule)",
                    bucket.escape_debug()
                );
            }
            let nats_only = [("history", kv.history), ("replicas", kv.replicas), ("ttl_s", kv.ttl_s)];
            for (key, value) in nats_only {
                ensure!(
                    value.is_none() || kv.backend == KvBackend::Nats,
                    "{at}: `{key}` is a NATS KV setting; this bucket's backend is `{}`",
                    kv.backend
                );
            }
            ensure!(
                kv.url.is_none() || kv.backend == KvBackend::Redis,
                "{at}: `url` is for redis buckets; a nats bucket uses [transports.nats]"
            );
            if let Some(url) = &kv.url {
                ensure!(
                    url.starts_with("redis://") || url.starts_with("rediss://"),
                    "{at} url `{}`: not a redis:// or rediss:// address",
                    url.escape_debug()
                );
            }
            ensure!(
                kv.backend != KvBackend::Nats || self.transports.nats.is_some(),
                "{at}: backend = \"nats\" needs [transports.nats] (or NATS_URL)"
            );
            if let Some(changes) = &kv.changes {
                crate::core::subject::validate_subject(changes)
                    .map_err(|e| anyhow::anyhow!("{at} changes `{}`: {e}", changes.escape_debug()))?;
            }
        }
        for c in &self.components {
            for bucket in &c.keyvalue {
                ensure!(
                    self.keyvalue.contains_key(bucket),
                    "component `{}`: keyvalue grants `{}`, but there is no [keyvalue.{}] table{}",
                    c.name,
                    bucket.escape_debug(),
                    bucket.escape_debug(),
                    known(self)
                );
            }
        }
        Ok(())
    }
}

/// "; the buckets are: a, b" or nothing.
fn known(manifest: &Manifest) -> String {
    if manifest.keyvalue.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = manifest.keyvalue.keys().map(String::as_str).collect();
        format!("; the buckets are: {}", names.join(", "))
    }
}
