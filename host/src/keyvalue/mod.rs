//! State for components: the buckets of `[keyvalue.*]`, each on its
//! backend (an embedded file, a JetStream KV bucket, keys on Redis),
//! behind one trait ([`crate::core::keyvalue::Bucket`]) that the runtime
//! calls for a guest's `wasi:keyvalue` imports.
//!
//! Beside the transports and the runtime, importing neither: the app layer
//! hands in the NATS connection and the outbound sender the change feeds
//! publish through.

pub mod changes;
pub mod embedded;
pub mod guarded;
pub mod nats;
pub mod redis;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use self::changes::Feed;
use self::embedded::EmbeddedStore;
use self::guarded::Guarded;
use self::nats::{NatsBucket, NatsBucketOptions};
use self::redis::RedisServer;
use crate::core::outbound::Outbound;
use crate::manifest::{DEFAULT_REDIS_URL, KvBackend, Manifest};

/// The embedded backend's file, under `DATA_DIR`.
pub const EMBEDDED_FILE: &str = "keyvalue.redb";

/// Every bucket of a host, by the name components open it with.
#[derive(Clone, Default)]
pub struct Buckets {
    by_name: BTreeMap<String, Arc<Guarded>>,
}

impl Buckets {
    /// Opens every `[keyvalue.*]` bucket: makes the embedded file, connects
    /// to each Redis server once, makes missing NATS KV buckets. A backend
    /// that is not there stops the start, naming the bucket.
    ///
    /// `nats` is the host's NATS connection if it has one; `outbound` is
    /// where change feeds are published (the host's default transport).
    pub async fn open(
        manifest: &Manifest,
        nats: Option<&async_nats::Client>,
        outbound: Arc<dyn Outbound>,
    ) -> Result<Self> {
        let mut embedded = None;
        let mut redis: HashMap<String, RedisServer> = HashMap::new();
        let mut by_name = BTreeMap::new();
        for (name, config) in &manifest.keyvalue {
            let at = || format!("[keyvalue.{name}] ({} backend)", config.backend);
            let bucket_name = config.bucket_name(name);
            let max_value_bytes = config.max_value_kb as usize * 1024;
            let inner: Arc<dyn crate::core::keyvalue::Bucket> = match config.backend {
                KvBackend::Embedded => {
                    let store = match &embedded {
                        Some(store) => Arc::clone(store),
                        None => {
                            let store =
                                EmbeddedStore::open(&manifest.host.data_dir.join(EMBEDDED_FILE)).with_context(at)?;
                            embedded.insert(store).clone()
                        }
                    };
                    Arc::new(store.bucket(bucket_name))
                }
                KvBackend::Redis => {
                    let url = config.url.as_deref().unwrap_or(DEFAULT_REDIS_URL);
                    let server = match redis.get(url) {
                        Some(server) => server.clone(),
                        None => {
                            let server = RedisServer::connect(url).await.with_context(at)?;
                            tracing::info!(url = server.url(), "connected to Redis");
                            redis.entry(url.to_owned()).or_insert(server).clone()
                        }
                    };
                    Arc::new(server.bucket(bucket_name))
                }
                KvBackend::Nats => {
                    let client = nats.with_context(|| format!("{}: the host has no NATS connection", at()))?;
                    let options = NatsBucketOptions {
                        max_value_bytes,
                        history: config.history,
                        replicas: config.replicas,
                        ttl: config.ttl_s.map(Duration::from_secs),
                    };
                    Arc::new(NatsBucket::open(client, bucket_name, &options).await.with_context(at)?)
                }
            };
            let feed = config
                .changes
                .as_deref()
                .map(|subject| Feed::new(outbound.clone(), name, subject));
            let guarded = Guarded::new(name, config.backend, inner, max_value_bytes, feed);
            by_name.insert(name.clone(), Arc::new(guarded));
        }
        Ok(Self { by_name })
    }

    /// The bucket components open as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Guarded>> {
        self.by_name.get(name)
    }

    /// Every bucket, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Guarded>> {
        self.by_name.values()
    }
}
