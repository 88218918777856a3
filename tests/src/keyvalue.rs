//! What the key-value tests share: a host running the `keeper` guest
//! with one bucket, and calls into it that say what they answered.

use std::time::Duration;

use berth::core::error::CallError;
use berth::{Host, Message};
use serde_json::Value;

/// A host running `keeper` with one bucket `b` on `backend` (its name on
/// the backend made unique), on the given transport.
pub fn manifest(transport: &str, backend: &str, bucket: &str, extra: &str) -> String {
    let nats = if transport == "nats" || backend == "nats" {
        "[transports.nats]\nurl = \"127.0.0.1:4222\"\n"
    } else {
        ""
    };
    format!(
        "[host]\ntransport = \"{transport}\"\n{nats}\
         [keyvalue.b]\nbackend = \"{backend}\"\nbucket = \"{bucket}\"\n{extra}\n\
         [[components]]\nname = \"keeper\"\nwasm = \"{{keeper}}\"\nsubscribe = [\"kv.>\"]\nkeyvalue = [\"b\"]\n\
         timeout_ms = 30000\nmax_concurrency = 256\n"
    )
}

/// Calls `kv.<op>` with `args` (and `bucket`: "b" unless given) and returns
/// the JSON answer, or the error.
pub async fn kv(host: &Host, op: &str, args: Value) -> Result<Value, CallError> {
    let mut args = args;
    if args.get("bucket").is_none() {
        args["bucket"] = Value::from("b");
    }
    let reply = host
        .transport()
        .request(
            Message::new(format!("kv.{op}"), args.to_string()),
            Duration::from_secs(30),
        )
        .await
        .expect("the transport delivers");
    if let Some(e) = CallError::from_reply(&reply) {
        return Err(e);
    }
    Ok(serde_json::from_slice(&reply.body).expect("JSON answer"))
}

/// [`kv`], which must succeed; panics naming the call otherwise.
pub async fn ok(t: &Host, op: &str, args: Value) -> Value {
    kv(t, op, args.clone())
        .await
        .unwrap_or_else(|e| panic!("kv.{op} {args} failed: {e}"))
}
