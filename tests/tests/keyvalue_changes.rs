//! Changes as messages: a bucket's change feed reaches plain NATS and AMQP
//! clients, and a component exporting `wasi:keyvalue/watcher` sees every
//! change through the router.

#[path = "rabbit/mod.rs"]
mod rabbit;

use std::time::Duration;

use berth::Message;
use berth::core::error::CallError;
use berth_tests::keyvalue::{manifest, ok};
use berth_tests::{nats_client, start, unique};
use serde_json::{Value, json};

/// Changes as messages: a set and a delete through Berth reach a plain
/// NATS client subscribed to `<changes>.>`, as JSON with the value.
#[tokio::test]
async fn changes_reach_a_plain_nats_client() {
    let changes = unique("orders.changes");
    let extra = format!("changes = \"{changes}\"");
    let t = start(&manifest("nats", "embedded", "b", &extra)).await.expect("start");
    let t = &t.host;
    let client = nats_client().await;
    let mut feed = client.subscribe(format!("{changes}.>")).await.expect("subscribe");
    client.flush().await.expect("flush");
    ok(t, "set", json!({"key": "order.1", "value": "{\"qty\":2}"})).await;
    ok(t, "delete", json!({"key": "order.1"})).await;
    let mut next = async || {
        use futures_util::StreamExt;
        tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .expect("a change in time")
            .expect("feed open")
    };
    let set = next().await;
    assert_eq!(set.subject.as_str(), format!("{changes}.order%2E1.set"));
    let body: Value = serde_json::from_slice(&set.payload).expect("JSON");
    assert_eq!(body["key"], "order.1");
    assert_eq!(body["type"], "set");
    assert_eq!(body["value"], "{\"qty\":2}");
    assert!(body["revision"].as_u64().is_some_and(|r| r > 0), "{body}");
    let delete = next().await;
    assert_eq!(delete.subject.as_str(), format!("{changes}.order%2E1.delete"));
    let body: Value = serde_json::from_slice(&delete.payload).expect("JSON");
    assert_eq!(body["type"], "delete");
}

/// The same feed on AMQP: a plain queue bound to `<changes>.#` on the
/// host's exchange gets each change.
#[tokio::test]
async fn changes_reach_an_amqp_queue_bound_to_the_feed() {
    let rabbit = rabbit::Rabbit::new().await;
    let changes = format!("{}.changes", rabbit.exchange);
    let text = format!(
        "{}[keyvalue.b]\nchanges = \"{changes}\"\n\
         [[components]]\nname = \"keeper\"\nwasm = \"{{keeper}}\"\nsubscribe = [\"kv.>\"]\nkeyvalue = [\"b\"]\n",
        rabbit.host_toml(&rabbit.service())
    );
    let mut feed = rabbit.bind(&format!("{changes}.#")).await;
    let t = start(&text).await.expect("start");
    ok(&t.host, "set", json!({"key": "sku-7", "value": "3"})).await;
    ok(&t.host, "increment", json!({"key": "sku-7", "delta": 2})).await;
    let set = rabbit.next(&mut feed).await;
    assert_eq!(set.routing_key.as_str(), format!("{changes}.sku-7.set"));
    let body: Value = serde_json::from_slice(&set.data).expect("JSON");
    assert_eq!(
        (body["key"].as_str(), body["value"].as_str()),
        (Some("sku-7"), Some("3"))
    );
    assert_eq!(rabbit::header(&set, "Berth-KV-Bucket").as_deref(), Some("b"));
    let incremented = rabbit.next(&mut feed).await;
    let body: Value = serde_json::from_slice(&incremented.data).expect("JSON");
    assert_eq!(body["value"], "5", "an increment announces the sum");
    rabbit.cleanup_components(&["keeper"]).await;
}

/// A component written for `wasi:keyvalue/watch-service` alone (no Berth
/// export) is told of every change to the buckets it watches: sets with
/// their value (also one too large to ride in the change message),
/// deletes, and increments.
#[tokio::test]
async fn a_watcher_component_sees_every_change() {
    let changes = unique("orders.changes");
    let text = format!(
        "[keyvalue.orders]\nchanges = \"{changes}\"\n[keyvalue.audit]\n\
         [[components]]\nname = \"keeper\"\nwasm = \"{{keeper}}\"\nsubscribe = [\"kv.>\"]\nkeyvalue = [\"orders\", \"audit\"]\n\
         [[components]]\nname = \"watcher\"\nwasm = \"{{watcher}}\"\nkeyvalue = [\"orders\", \"audit\"]\n"
    );
    let t = start(&text).await.expect("start");
    let t = &t.host;
    let large = "L".repeat(40 * 1024);
    ok(t, "set", json!({"bucket": "orders", "key": "o1", "value": "first"})).await;
    ok(t, "set", json!({"bucket": "orders", "key": "o2", "value": large})).await;
    ok(t, "delete", json!({"bucket": "orders", "key": "o1"})).await;
    ok(t, "increment", json!({"bucket": "orders", "key": "o3", "delta": 4})).await;

    // Changes are handled as events, one by one as they arrive: wait for
    // the watcher's count to reach four (bounded).
    let started = std::time::Instant::now();
    while ok(t, "get", json!({"bucket": "audit", "key": "changes"})).await != json!("4") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watcher saw every change in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audit = async |key: &str| ok(t, "get", json!({"bucket": "audit", "key": key})).await;
    assert_eq!(audit("o1").await, json!("deleted"));
    assert_eq!(audit("o2").await, json!(large), "a large value is read from the bucket");
    assert_eq!(audit("o3").await, json!("4"));
    let watcher = t.route("watcher").expect("route").stats.snapshot();
    assert_eq!((watcher.events, watcher.errors), (4, 0));

    // What is not a change it cannot take: it exports no handler.
    let reply = t
        .transport()
        .request(Message::new(format!("{changes}.x.set"), "{}"), Duration::from_secs(5))
        .await
        .expect("answered");
    let e = CallError::from_reply(&reply).expect("an error");
    assert!(e.message.contains("only watches"), "{e}");
}

/// A watcher whose buckets have no change feed would never be called: the
/// start says so.
#[tokio::test]
async fn a_watcher_with_nothing_to_watch_is_refused() {
    let text = "[host]\nstrict = true\n[keyvalue.audit]\n[[components]]\nname = \"watcher\"\nwasm = \"{watcher}\"\nkeyvalue = [\"audit\"]\n";
    let Err(e) = start(text).await else {
        panic!("a watcher with nothing to watch is refused")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("exports wasi:keyvalue/watcher") && e.contains("changes"),
        "{e}"
    );
}
