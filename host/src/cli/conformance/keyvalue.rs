//! The conformance contract's key-value checks: a guest reaches the bucket
//! `state` through `wasi:keyvalue` (and Berth's compare-and-swap), and is
//! refused the bucket `other`, which the host has but does not grant it.

use serde_json::{Value, json};

use super::{Checks, expect, preview, same_body};
use crate::{ErrorKind, Message};

/// Concurrent increments of one counter in the atomicity check.
const INCREMENTS: usize = 32;

impl Checks {
    fn kv(&self, op: &str, body: impl Into<bytes::Bytes>) -> Message {
        Message::new(self.subject(&format!("kv-{op}")), body)
    }

    async fn kv_json(&self, op: &str, body: Value) -> Result<Value, String> {
        let reply = self.ok(self.kv(op, body.to_string())).await?;
        serde_json::from_slice(&reply.body)
            .map_err(|e| format!("kv-{op}: reply is not JSON ({e}): {:?}", preview(&reply.body)))
    }

    pub(super) async fn kv_round_trip(&self) -> Result<(), String> {
        let value = format!("caf\u{e9} \u{1f6a2} {}", self.prefix);
        self.ok(self.kv("set", json!({"key": "greeting", "value": value}).to_string()))
            .await?;
        let reply = self.ok(self.kv("get", "greeting")).await?;
        same_body(value.as_bytes(), &reply.body)
    }

    pub(super) async fn kv_missing(&self) -> Result<(), String> {
        let e = self.error(self.kv("get", "never-set")).await?;
        expect(&e, ErrorKind::Handler, 404)
    }

    pub(super) async fn kv_delete(&self) -> Result<(), String> {
        self.ok(self.kv("set", json!({"key": "doomed", "value": "x"}).to_string()))
            .await?;
        self.ok(self.kv("delete", "doomed")).await?;
        let e = self.error(self.kv("get", "doomed")).await?;
        expect(&e, ErrorKind::Handler, 404)
    }

    pub(super) async fn kv_increment(&self) -> Result<(), String> {
        let calls = (0..INCREMENTS).map(|_| self.ok(self.kv("increment", "hits")));
        for reply in futures_util::future::join_all(calls).await {
            reply?;
        }
        let reply = self.ok(self.kv("get", "hits")).await?;
        same_body(INCREMENTS.to_string().as_bytes(), &reply.body)
    }

    pub(super) async fn kv_cas(&self) -> Result<(), String> {
        let created = self
            .kv_json("cas", json!({"key": "doc", "value": "v1", "revision": 0}))
            .await?;
        let Some(first) = created["revision"].as_u64() else {
            return Err(format!(
                "kv-cas of a new key: expected {{\"revision\": n}}, got {created}"
            ));
        };
        let now = self.kv_json("revision", json!("doc")).await?;
        if now["revision"].as_u64() != Some(first) {
            return Err(format!("kv-revision: expected {first}, got {now}"));
        }
        let second = self
            .kv_json("cas", json!({"key": "doc", "value": "v2", "revision": first}))
            .await?;
        if second["revision"].as_u64().is_none_or(|r| r == first) {
            return Err(format!(
                "kv-cas with the current revision: expected a new one, got {second}"
            ));
        }
        let stale = self
            .kv_json("cas", json!({"key": "doc", "value": "v3", "revision": first}))
            .await?;
        if !stale["revision"].is_null() {
            return Err(format!(
                "kv-cas with a stale revision: expected {{\"revision\": null}}, got {stale}"
            ));
        }
        let reply = self.ok(self.kv("get", "doc")).await?;
        same_body(b"v2", &reply.body)
    }

    pub(super) async fn kv_keys(&self) -> Result<(), String> {
        for key in ["list-a", "list-b", "list-c"] {
            self.ok(self.kv("set", json!({"key": key, "value": key}).to_string()))
                .await?;
        }
        let keys = self.kv_json("keys", json!(null)).await?;
        let keys: Vec<&str> = keys
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match ["list-a", "list-b", "list-c"].iter().find(|k| !keys.contains(k)) {
            Some(missing) => Err(format!("kv-keys: `{missing}` is missing from {keys:?}")),
            None => Ok(()),
        }
    }

    pub(super) async fn kv_denied(&self) -> Result<(), String> {
        let e = self.error(self.kv("denied", "")).await?;
        expect(&e, ErrorKind::Handler, 403)
    }
}
