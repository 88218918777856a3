//! The change feed, the loopback way: every write through Berth to a
//! bucket with `changes = "<subject>"` is published as
//! `<subject>.<key>.<set|delete>`, so other services bind to
//! `<subject>.>` (NATS) or `<subject>.#` (AMQP) and see each change.
//!
//! The body is JSON `{"bucket", "key", "type", "revision"}` and, for a set
//! of at most [`MAX_INLINE_VALUE`] bytes, the value: as `value` if it is
//! UTF-8 text, else as `value_base64`. A key becomes subject tokens by
//! percent-encoding every byte outside `A-Z a-z 0-9 - _ = : / @ + , ~`, so
//! `user.42` is the one token `user%2E42`; the JSON carries the key as it is.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use crate::core::error::CallError;
use crate::core::headers::{CONTENT_TYPE, KV_BUCKET};
use crate::core::message::Message;
use crate::core::outbound::Outbound;

/// Largest value carried in a change message; larger ones are announced
/// without it, and a consumer reads the bucket.
pub const MAX_INLINE_VALUE: usize = 16 * 1024;

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key was set.
    Set,
    /// The key was deleted.
    Delete,
}

/// Where one bucket's changes go.
pub struct Feed {
    outbound: Arc<dyn Outbound>,
    bucket: String,
    subject: String,
}

impl Feed {
    /// Changes of `bucket` published under `subject` through `outbound`.
    pub fn new(outbound: Arc<dyn Outbound>, bucket: &str, subject: &str) -> Self {
        Self {
            outbound,
            bucket: bucket.to_owned(),
            subject: subject.to_owned(),
        }
    }

    /// Publishes one change.
    pub async fn publish(
        &self,
        key: &str,
        change: Change,
        revision: u64,
        value: Option<&Bytes>,
    ) -> Result<(), CallError> {
        let kind = match change {
            Change::Set => "set",
            Change::Delete => "delete",
        };
        let mut body = json!({ "bucket": self.bucket, "key": key, "type": kind, "revision": revision });
        if let Some(value) = value.filter(|v| v.len() <= MAX_INLINE_VALUE) {
            match std::str::from_utf8(value) {
                Ok(text) => body["value"] = json!(text),
                Err(_) => body["value_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(value)),
            }
        }
        let message = Message {
            subject: format!("{}.{}.{kind}", self.subject, token(key)),
            body: Bytes::from(body.to_string()),
            headers: vec![
                (CONTENT_TYPE.to_owned(), "application/json".to_owned()),
                (KV_BUCKET.to_owned(), self.bucket.clone()),
            ],
            reply_to: None,
            correlation_id: None,
        };
        // Confirmed: the write reports success only once its change is
        // with the broker, so a feed may carry a change twice, never miss one.
        self.outbound.publish_confirmed(message).await
    }
}

/// `key` as subject tokens; see the module docs.
pub fn token(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_=:/@+,~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_one_safe_token() {
        assert_eq!(token("order-42"), "order-42");
        assert_eq!(token("user.42"), "user%2E42");
        assert_eq!(token("a b*>#"), "a%20b%2A%3E%23");
        assert_eq!(token("é"), "%C3%A9");
    }
}
