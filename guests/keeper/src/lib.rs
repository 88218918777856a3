//! A key-value test guest: each request `<prefix>.<op>` carries JSON
//! `{"bucket", "key", "value", "delta", "revision", "keys"}` and answers
//! JSON, so tests drive every `wasi:keyvalue` call from outside. The event
//! `<prefix>.count` increments `count` in the bucket named by the body.
//! The prefix is the config's `prefix`, `kv` by default, so tests on a
//! shared broker do not answer each other.

use berth_sdk::kv::Bucket;
use berth_sdk::{Config, Error, Message, Reply, Router};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Call {
    bucket: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    delta: u64,
    #[serde(default)]
    revision: u64,
    #[serde(default)]
    keys: Vec<String>,
    /// How many times `bench-get` and `bench-set` repeat their operation.
    #[serde(default)]
    count: u32,
}

fn text(bytes: Option<Vec<u8>>) -> Value {
    bytes.map_or(Value::Null, |b| json!(String::from_utf8_lossy(&b)))
}

fn call(op: &str, call: &Call) -> Result<Value, Error> {
    let bucket = Bucket::open(&call.bucket)?;
    let value = || call.value.clone().unwrap_or_default();
    Ok(match op {
        "get" => text(bucket.get(&call.key)?),
        "set" => {
            bucket.set(&call.key, value())?;
            Value::Null
        }
        "delete" => {
            bucket.delete(&call.key)?;
            Value::Null
        }
        "exists" => json!(bucket.exists(&call.key)?),
        "keys" => json!(bucket.keys()?),
        "increment" => json!(bucket.increment(&call.key, call.delta)?),
        "get-many" => json!(bucket.get_many(&call.keys)?.into_iter().map(text).collect::<Vec<_>>()),
        "set-many" => {
            let pairs: Vec<(String, Vec<u8>)> = call.keys.iter().map(|k| (k.clone(), value().into_bytes())).collect();
            bucket.set_many(&pairs)?;
            Value::Null
        }
        "delete-many" => {
            bucket.delete_many(&call.keys)?;
            Value::Null
        }
        "get-versioned" => match bucket.get_versioned(&call.key)? {
            Some(v) => json!({ "value": String::from_utf8_lossy(&v.value), "revision": v.revision }),
            None => Value::Null,
        },
        "set-if" => json!(bucket.set_if(&call.key, value(), call.revision)?),
        // `count` gets or sets of one key in one call, for the benchmark:
        // the cost measured is the key-value call, not the message's.
        "bench-get" => {
            let mut found = 0;
            for _ in 0..call.count {
                found += usize::from(bucket.get(&call.key)?.is_some());
            }
            json!(found)
        }
        "bench-set" => {
            let value = value().into_bytes();
            for _ in 0..call.count {
                bucket.set(&call.key, &value)?;
            }
            Value::Null
        }
        // A counter kept with compare-and-swap instead of `increment`.
        "add" => {
            let sum = bucket.update(&call.key, |old| {
                let n: u64 = old.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
                Ok((n + call.delta).to_string().into_bytes())
            })?;
            json!(String::from_utf8_lossy(&sum))
        }
        other => return Err(Error::not_found(format!("no operation `{other}`"))),
    })
}

fn routes(config: &Config) -> Router {
    let prefix = config.get_str("prefix").unwrap_or("kv");
    Router::new()
        .event(&format!("{prefix}.count"), |msg: &Message| {
            Bucket::open(msg.text()?)?.increment("count", 1)?;
            Ok(())
        })
        .request(&format!("{prefix}.*"), |msg: &Message| {
            let op = msg.subject.rsplit('.').next().unwrap_or_default();
            Reply::json(&call(op, &msg.json()?)?)
        })
}

berth_sdk::export!(routes);
