//! The `wasi:keyvalue` imports (`store`, `atomics`, `batch` of the
//! 0.2.0-draft) and Berth's `keyvalue-cas`, on the buckets a component's
//! manifest entry grants.
//!
//! Bound here rather than through `wasmtime-wasi-keyvalue`: that crate
//! implements the same WIT on an in-memory map only, with no way to plug
//! in a store, and its calls are synchronous where every real backend
//! here is a network or disk round trip.
//!
//! `open` of a bucket the component is not granted is `access-denied`,
//! whether or not the host has it, so a component cannot probe which
//! buckets exist. Sizes are bounded by the bucket's `max_value_kb` (in
//! the keyvalue layer) and by the component's `max_hostcall_kb`, which
//! wasmtime applies to every byte a guest hands the host.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Resource;

use super::bindings::wasi_keyvalue::{atomics, batch, store};
use super::bindings::{OpenBucket, keyvalue_cas};
use super::state::CallState;
use crate::core::keyvalue::{Bucket, KvError};

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

fn other(e: KvError) -> store::Error {
    store::Error::Other(e.message)
}

impl CallState {
    /// The bucket behind a guest's handle.
    fn bucket(&self, handle: &Resource<OpenBucket>) -> wasmtime::Result<Arc<dyn Bucket>> {
        Ok(self.table.get(handle)?.0.clone())
    }
}

impl store::Host for CallState {
    async fn open(&mut self, identifier: String) -> Answer<Resource<OpenBucket>> {
        let Some(bucket) = self.env.keyvalue.get(&identifier) else {
            tracing::warn!(
                component = %self.env.name,
                bucket = %identifier.escape_debug(),
                "opening a key-value bucket its manifest entry does not grant"
            );
            self.env.counters.forbade();
            return Ok(Err(store::Error::AccessDenied));
        };
        let bucket = bucket.clone();
        Ok(Ok(self.table.push(OpenBucket(bucket))?))
    }
}

impl store::HostBucket for CallState {
    async fn get(&mut self, handle: Resource<OpenBucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.get(&key))
            .await
            .map(|v| v.map(Vec::from))
            .map_err(other))
    }

    async fn set(&mut self, handle: Resource<OpenBucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.set(&key, Bytes::from(value)))
            .await
            .map_err(other))
    }

    async fn delete(&mut self, handle: Resource<OpenBucket>, key: String) -> Answer<()> {
        let bucket = self.bucket(&handle)?;
        Ok(self.clock.wait(bucket.delete(&key)).await.map_err(other))
    }

    async fn exists(&mut self, handle: Resource<OpenBucket>, key: String) -> Answer<bool> {
        let bucket = self.bucket(&handle)?;
        Ok(self.clock.wait(bucket.exists(&key)).await.map_err(other))
    }

    async fn list_keys(&mut self, handle: Resource<OpenBucket>, cursor: Option<u64>) -> Answer<store::KeyResponse> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.list_keys(cursor))
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(other))
    }

    async fn drop(&mut self, handle: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl atomics::Host for CallState {
    async fn increment(&mut self, handle: Resource<OpenBucket>, key: String, delta: u64) -> Answer<u64> {
        let bucket = self.bucket(&handle)?;
        Ok(self.clock.wait(bucket.increment(&key, delta)).await.map_err(other))
    }
}

impl batch::Host for CallState {
    async fn get_many(
        &mut self,
        handle: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.get_many(&keys))
            .await
            .map(|values| {
                keys.into_iter()
                    .zip(values)
                    .map(|(key, value)| value.map(|v| (key, Vec::from(v))))
                    .collect()
            })
            .map_err(other))
    }

    async fn set_many(&mut self, handle: Resource<OpenBucket>, pairs: Vec<(String, Vec<u8>)>) -> Answer<()> {
        let bucket = self.bucket(&handle)?;
        let pairs = pairs.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect();
        Ok(self.clock.wait(bucket.set_many(pairs)).await.map(drop).map_err(other))
    }

    async fn delete_many(&mut self, handle: Resource<OpenBucket>, keys: Vec<String>) -> Answer<()> {
        let bucket = self.bucket(&handle)?;
        Ok(self.clock.wait(bucket.delete_many(&keys)).await.map_err(other))
    }
}

impl keyvalue_cas::Host for CallState {
    async fn get(&mut self, handle: Resource<OpenBucket>, key: String) -> Answer<Option<keyvalue_cas::Versioned>> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.get_versioned(&key))
            .await
            .map(|v| {
                v.map(|v| keyvalue_cas::Versioned {
                    value: Vec::from(v.value),
                    revision: v.revision,
                })
            })
            .map_err(other))
    }

    async fn set_if(
        &mut self,
        handle: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
        revision: u64,
    ) -> Answer<Option<u64>> {
        let bucket = self.bucket(&handle)?;
        Ok(self
            .clock
            .wait(bucket.set_if(&key, Bytes::from(value), revision))
            .await
            .map_err(other))
    }
}
