//! State: the buckets of the manifest's `[keyvalue.<name>]` tables, through
//! the standard `wasi:keyvalue` imports and Berth's compare-and-swap.
//!
//! A bucket must be granted in the component's manifest entry
//! (`keyvalue = ["orders"]`); opening any other fails with 403.
//!
//! ```no_run
//! use berth_sdk::kv::Bucket;
//!
//! let orders = Bucket::open("orders")?;
//! orders.set_json("order-1", &serde_json::json!({ "qty": 2 }))?;
//! let seen = orders.increment("orders-seen", 1)?;
//! // Optimistic concurrency: re-read and retry when another write came first.
//! orders.update("order-1", |old| {
//!     let mut order: serde_json::Value = serde_json::from_slice(old.unwrap_or(b"{}"))?;
//!     order["qty"] = (order["qty"].as_u64().unwrap_or(0) + 1).into();
//!     Ok(serde_json::to_vec(&order)?)
//! })?;
//! # Ok::<(), berth_sdk::Error>(())
//! ```
//!
//! Every error is an [`Error`]: 403 for a bucket not granted, 503 when
//! the backend cannot be reached (an event is then retried), 500 for
//! anything else, 409 when [`Bucket::update`] gives up.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::berth::backend::keyvalue_cas;
use crate::__private::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::Error;

/// Most tries of [`Bucket::update`] before it gives up with 409.
pub const UPDATE_TRIES: u32 = 1000;

/// An open bucket.
pub struct Bucket {
    name: String,
    inner: store::Bucket,
}

/// A value and the revision [`Bucket::set_if`] compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Changes with every write of the key.
    pub revision: u64,
}

impl Bucket {
    /// Opens the bucket the manifest calls `name`.
    pub fn open(name: &str) -> Result<Self, Error> {
        let inner = store::open(name).map_err(|e| error(name, e))?;
        Ok(Self {
            name: name.to_owned(),
            inner,
        })
    }

    /// The value of `key`, if it is set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(key).map_err(|e| self.error(e))
    }

    /// The value of `key` parsed as JSON, if it is set.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    Error::internal(format!(
                        "`{key}` in bucket `{}` is not the JSON expected: {e}",
                        self.name
                    ))
                })
            })
            .transpose()
    }

    /// Sets `key`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.inner.set(key, value.as_ref()).map_err(|e| self.error(e))
    }

    /// Sets `key` to `value` as JSON.
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::internal(format!("cannot encode `{key}`: {e}")))?;
        self.set(key, bytes)
    }

    /// Deletes `key`; a key that is not set is not an error.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.inner.delete(key).map_err(|e| self.error(e))
    }

    /// Whether `key` is set.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        self.inner.exists(key).map_err(|e| self.error(e))
    }

    /// Every key, page after page.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.inner.list_keys(cursor).map_err(|e| self.error(e))?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the decimal counter at `key` (0 if unset),
    /// atomically, and returns the sum.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        atomics::increment(&self.inner, key, delta).map_err(|e| self.error(e))
    }

    /// The values of `keys`, in order, in one call.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let found = batch::get_many(&self.inner, keys).map_err(|e| self.error(e))?;
        Ok(found.into_iter().map(|pair| pair.map(|(_, v)| v)).collect())
    }

    /// Sets every pair in one call.
    pub fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        batch::set_many(&self.inner, pairs).map_err(|e| self.error(e))
    }

    /// Deletes every key in one call.
    pub fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        batch::delete_many(&self.inner, keys).map_err(|e| self.error(e))
    }

    /// The value of `key` and its revision.
    pub fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, Error> {
        let found = keyvalue_cas::get(&self.inner, key).map_err(|e| self.error(e))?;
        Ok(found.map(|v| Versioned {
            value: v.value,
            revision: v.revision,
        }))
    }

    /// Sets `key` only if its revision is still `revision` (0: only if it
    /// is not set): the new revision, or `None` if another write came first.
    pub fn set_if(&self, key: &str, value: impl AsRef<[u8]>, revision: u64) -> Result<Option<u64>, Error> {
        keyvalue_cas::set_if(&self.inner, key, value.as_ref(), revision).map_err(|e| self.error(e))
    }

    /// Read, change, write-if-unchanged, until no other write comes
    /// between (at most [`UPDATE_TRIES`] times; then 409). `change` gets
    /// the current value (`None` if unset) and returns the new one; it
    /// may run more than once.
    pub fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<&[u8]>) -> Result<Vec<u8>, Error>,
    ) -> Result<Vec<u8>, Error> {
        for _ in 0..UPDATE_TRIES {
            let current = self.get_versioned(key)?;
            let new = change(current.as_ref().map(|v| v.value.as_slice()))?;
            if self.set_if(key, &new, current.map_or(0, |v| v.revision))?.is_some() {
                return Ok(new);
            }
        }
        Err(Error::conflict(format!(
            "`{key}` in bucket `{}` changed under {UPDATE_TRIES} updates in a row",
            self.name
        )))
    }

    fn error(&self, e: store::Error) -> Error {
        error(&self.name, e)
    }
}

fn error(bucket: &str, e: store::Error) -> Error {
    match e {
        store::Error::AccessDenied => Error::forbidden(format!(
            "bucket `{bucket}` is not granted: add it to this component's `keyvalue` in the manifest"
        )),
        store::Error::NoSuchStore => Error::not_found(format!("there is no bucket `{bucket}`")),
        store::Error::Other(message) if message.contains("unavailable") => Error::unavailable(message),
        store::Error::Other(message) => Error::internal(message),
    }
}
