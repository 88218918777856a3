//! The conformance contract (docs/conformance.md) in Rust: the reference
//! the Python, JavaScript and C guests are held to. Run it with
//! `berth conformance conformance.wasm`.

use std::time::Duration;

use berth_sdk::kv::Bucket;
use berth_sdk::{Config, Error, Message, Reply, Router, publish, publish_message, request};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Sum {
    a: i64,
    b: i64,
}

#[derive(Serialize)]
struct Total {
    sum: i64,
}

/// The body of `kv-set` and `kv-cas`.
#[derive(Deserialize)]
struct Entry {
    key: String,
    value: String,
    #[serde(default)]
    revision: u64,
}

/// The bucket the key-value checks use.
fn state() -> Result<Bucket, Error> {
    Bucket::open("state")
}

/// `P` of a `P.in.<name>` subject: every subject the guest sends to is
/// under it.
fn prefix(msg: &Message) -> &str {
    msg.subject.split('.').next().unwrap_or_default()
}

fn routes(config: &Config) -> Router {
    let greeting = config.get_str("greeting").unwrap_or_default().to_owned();
    Router::new()
        .request("*.in.echo", |msg| Ok(Reply::new(msg.body.clone()).with_headers(msg.headers.clone())))
        .request("*.in.json", |msg| {
            let Sum { a, b } = msg.json()?;
            Reply::json(&Total { sum: a + b })
        })
        .request("*.in.fail", |_| {
            Err(Error::new(418, "I'm a teapot", "short and stout").with_json_data(&serde_json::json!({"spout": true})))
        })
        .request("*.in.config", move |_| Ok(Reply::new(greeting.clone())))
        .request("*.in.publish", |msg| {
            let out = Message::new(format!("{}.out.published", prefix(msg)), msg.body.clone())
                .with_header("conformance", "published");
            publish_message(&out)?;
            Ok(Reply::new(Vec::new()))
        })
        .request("*.in.call", |msg| {
            let upstream = request(&format!("{}.upstream", prefix(msg)), msg.body.clone(), Duration::from_secs(5))?;
            Ok(Reply::new(upstream.body))
        })
        .request("*.in.forbidden", |msg| {
            publish(&format!("{}.secret", prefix(msg)), "leak")?;
            Ok(Reply::new(Vec::new()))
        })
        .event("*.in.event", |msg| publish(&format!("{}.out.event", prefix(msg)), msg.body.clone()))
        .request("*.in.header", |msg| match msg.header(msg.text()?) {
            Some(value) => Ok(Reply::new(value.to_owned())),
            None => Err(Error::not_found(format!("no header `{}`", msg.text()?))),
        })
        .request("*.in.param", |msg| match msg.param(msg.text()?) {
            Some(value) => Ok(Reply::new(value.to_owned())),
            None => Err(Error::not_found(format!("no parameter `{}`", msg.text()?))),
        })
        .request("*.in.kv-set", |msg| {
            let Entry { key, value, .. } = msg.json()?;
            state()?.set(&key, value)?;
            Ok(Reply::new(Vec::new()))
        })
        .request("*.in.kv-get", |msg| match state()?.get(msg.text()?)? {
            Some(value) => Ok(Reply::new(value)),
            None => Err(Error::not_found(format!("no key `{}`", msg.text()?))),
        })
        .request("*.in.kv-delete", |msg| {
            state()?.delete(msg.text()?)?;
            Ok(Reply::new(Vec::new()))
        })
        .request("*.in.kv-increment", |msg| {
            Ok(Reply::new(state()?.increment(msg.text()?, 1)?.to_string()))
        })
        .request("*.in.kv-cas", |msg| {
            let Entry { key, value, revision } = msg.json()?;
            Reply::json(&serde_json::json!({ "revision": state()?.set_if(&key, value, revision)? }))
        })
        .request("*.in.kv-revision", |msg| {
            let key: String = msg.json()?;
            let revision = state()?.get_versioned(&key)?.map(|v| v.revision);
            Reply::json(&serde_json::json!({ "revision": revision }))
        })
        .request("*.in.kv-keys", |_| Reply::json(&state()?.keys()?))
        .request("*.in.kv-denied", |_| Bucket::open("other").map(|_| Reply::new(Vec::new())))
}

berth_sdk::export!(routes);
