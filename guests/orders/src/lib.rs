//! The example of docs/keyvalue.md, built so the docs stay true (tests/tests/docs.rs
//! checks the two are the same).

use berth_sdk::kv::Bucket;
use berth_sdk::{Config, Message, Reply, Router};

fn routes(_: &Config) -> Router {
    Router::new().request("orders.add", |msg: &Message| {
        let orders = Bucket::open("orders")?;            // 403 if not granted
        let id = orders.increment("next-id", 1)?;        // atomic on every backend
        orders.set(&format!("order-{id}"), msg.body.as_slice())?;
        // Read, change, write only if unchanged; retried on conflict.
        orders.update("count", |old| {
            let n: u64 = old.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
            Ok((n + 1).to_string().into_bytes())
        })?;
        Reply::json(&serde_json::json!({ "id": id }))
    })
}

berth_sdk::export!(routes);
