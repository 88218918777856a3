//! Key-value backends that are not there or go away: the start names the
//! bucket, calls fail fast with `unavailable`, and an event is redelivered
//! until the store is back.

use std::time::Duration;

use berth_tests::keyvalue::{kv, manifest, ok};
use berth_tests::nats_server::free_port;
use berth_tests::redis_server::RedisServer;
use berth_tests::{nats_client, start, unique};
use serde_json::json;

/// A Redis server that goes away: calls fail fast with `unavailable` (503,
/// retried for an event), and work again when it is back.
#[tokio::test]
async fn a_redis_that_goes_away_is_unavailable_quickly() {
    let port = free_port();
    let server = RedisServer::start(port);
    let extra = format!("url = \"{}\"", server.url());
    let t = start(&manifest("memory", "redis", "down", &extra))
        .await
        .expect("start");
    let t = &t.host;
    ok(t, "set", json!({"key": "k", "value": "v"})).await;
    server.kill();
    let started = std::time::Instant::now();
    let e = kv(t, "get", json!({"key": "k"})).await.expect_err("down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(e.code, 503, "{e}");
    assert!(e.message.contains("unavailable"), "{e}");
    let _server = RedisServer::start(port);
    let mut tries = 0;
    while kv(t, "set", json!({"key": "k", "value": "again"})).await.is_err() {
        tries += 1;
        assert!(tries < 50, "Redis is back but calls still fail");
    }
    assert_eq!(ok(t, "get", json!({"key": "k"})).await, json!("again"));
}

/// Starting with a backend that is not there fails, naming the bucket.
#[tokio::test]
async fn a_missing_backend_stops_the_start() {
    let text = manifest("memory", "redis", "x", "url = \"redis://127.0.0.1:1\"");
    let e = start(&text).await.err().expect("refused");
    let e = format!("{e:#}");
    assert!(e.contains("[keyvalue.b]") && e.contains("127.0.0.1:1"), "{e}");
}

/// An event whose store is down fails with `unavailable` (503, retry) and
/// is redelivered until the store is back: not lost, counted once.
#[tokio::test]
async fn an_event_whose_store_is_down_is_retried_until_it_is_back() {
    let port = free_port();
    let server = RedisServer::start(port);
    let u = unique("kvev");
    let text = format!(
        "[host]\nname = \"{u}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{nats}\"\n\
         [keyvalue.b]\nbackend = \"redis\"\nurl = \"{url}\"\n\
         [[components]]\nname = \"keeper\"\nwasm = \"{{keeper}}\"\n\
         subscribe = [{{ subject = \"{u}.count\", stream = \"{u}\" }}]\nkeyvalue = [\"b\"]\nmax_deliver = 50\n\
         [components.config]\nprefix = \"{u}\"\n",
        nats = berth_tests::NATS,
        url = server.url(),
    );
    let t = start(&text).await.expect("start");
    server.kill();
    let js = async_nats::jetstream::new(nats_client().await);
    js.publish(format!("{u}.count"), "b".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let stats = &t.host.route("keeper").expect("route").stats;
    assert!(
        stats.wait_until(Duration::from_secs(10), |s| s.errors >= 1).await,
        "the event failed while Redis was down: {:?}",
        stats.snapshot()
    );
    let server = RedisServer::start(port);
    assert!(
        stats.wait_until(Duration::from_secs(20), |s| s.events > s.errors).await,
        "redelivered until it succeeded: {:?}",
        stats.snapshot()
    );
    let mut redis = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let count: Option<String> = redis::cmd("GET")
        .arg("b:count")
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert_eq!(count.as_deref(), Some("1"), "counted once, when Redis was back");
    let _ = js.delete_stream(&u).await;
}
