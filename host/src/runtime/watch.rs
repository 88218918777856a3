//! Calls into a component's `wasi:keyvalue/watcher` export.
//!
//! Changes reach a watcher as messages: the change feed of a bucket
//! (`changes = "<subject>"`) is published on the host's transport, and a
//! component that exports the watcher is subscribed to the feeds of the
//! buckets it is granted (the app layer does that). So a change comes
//! through the router like any event, with its limits, acks and retries,
//! and across hosts on a shared broker; here it becomes `on-set` or
//! `on-delete` with an owned handle to the bucket.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::bindings::OpenBucket;
use super::bindings::wit;
use super::component::{Instance, WasmHandler};
use crate::core::error::{CallError, Disposition, ErrorKind};

/// A change message's body, as the keyvalue layer's feed writes it.
#[derive(Deserialize)]
struct Change {
    bucket: String,
    key: String,
    #[serde(rename = "type")]
    kind: String,
    value: Option<String>,
    value_base64: Option<String>,
}

impl WasmHandler {
    /// Hands one change to the watcher. The value of a set is the one the
    /// message carries, or (when it was too large to carry) the bucket's
    /// current one; a key deleted since is skipped, its delete follows.
    pub(super) async fn call_watcher(
        &self,
        instance: &mut Instance,
        message: &wit::Message,
    ) -> wasmtime::Result<Result<(), CallError>> {
        let change: Change = match serde_json::from_slice(&message.body) {
            Ok(change) => change,
            Err(e) => return Ok(Err(self.bad_change(format!("its body is not a key-value change: {e}")))),
        };
        let Some(bucket) = self.env.keyvalue.get(&change.bucket).cloned() else {
            return Ok(Err(self.bad_change(format!(
                "it is about bucket `{}`, which component `{}` is not granted",
                change.bucket, self.env.name
            ))));
        };
        let Some(watcher) = self.export(&self.exports().watcher, instance, |l| &mut l.watcher)? else {
            return Ok(Err(self.bad_change("the component does not export the watcher".into())));
        };
        let value = match (change.kind.as_str(), change.value, change.value_base64) {
            ("delete", ..) => None,
            ("set", Some(text), _) => Some(Bytes::from(text)),
            ("set", None, Some(encoded)) => match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(bytes) => Some(Bytes::from(bytes)),
                Err(e) => return Ok(Err(self.bad_change(format!("its value_base64 does not decode: {e}")))),
            },
            ("set", None, None) => match bucket.get(&change.key).await {
                Ok(Some(value)) => Some(value),
                Ok(None) => return Ok(Ok(())),
                Err(e) => {
                    return Ok(Err(
                        CallError::new(ErrorKind::Transport, e.message).with_disposition(Disposition::Retry)
                    ));
                }
            },
            (other, ..) => {
                return Ok(Err(
                    self.bad_change(format!("its type `{other}` is neither set nor delete"))
                ));
            }
        };
        let handle = instance.store.data_mut().table.push(OpenBucket(bucket))?;
        let store = &mut instance.store;
        match value {
            Some(value) => watcher.call_on_set(store, handle, &change.key, &value).await?,
            None => watcher.call_on_delete(store, handle, &change.key).await?,
        }
        Ok(Ok(()))
    }

    /// A change message the watcher cannot take; dead-lettered, not retried.
    fn bad_change(&self, why: String) -> CallError {
        CallError::new(
            ErrorKind::Handler,
            format!("component `{}` cannot take a key-value change: {why}", self.env.name),
        )
        .with_disposition(Disposition::Reject)
    }

    /// What a component that only watches buckets answers to a message.
    pub(super) fn watcher_only(&self, subject: &str) -> CallError {
        CallError::new(
            ErrorKind::Unhandled,
            format!(
                "component `{}` only watches key-value buckets (it exports no berth:backend/handler), so it takes no message on `{subject}`",
                self.env.name
            ),
        )
        .with_disposition(Disposition::Reject)
    }

    /// Whether the component exports `wasi:keyvalue/watcher`: the app
    /// layer then subscribes it to its buckets' change feeds.
    pub fn watches(&self) -> bool {
        self.exports().watcher.is_some()
    }
}
