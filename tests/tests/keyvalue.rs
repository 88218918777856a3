//! State through `wasi:keyvalue`: every operation on every backend
//! (embedded, NATS KV, Redis: real servers), compare-and-swap, grants,
//! atomic counters across two hosts, state across restarts and swaps, and
//! a backend that goes away.

#[path = "rabbit/mod.rs"]
mod rabbit;

use std::time::Duration;

use berth::app::SwapRequest;
use berth::core::error::CallError;
use berth::{Host, Message};
use berth_tests::nats_server::free_port;
use berth_tests::redis_server::RedisServer;
use berth_tests::{KEEPER, nats_client, relabel, require_redis, start, unique};
use serde_json::{Value, json};

/// A host running `keeper` with one bucket `b` on `backend` (its name on
/// the backend made unique), on the given transport.
fn manifest(transport: &str, backend: &str, bucket: &str, extra: &str) -> String {
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
async fn kv(host: &Host, op: &str, args: Value) -> Result<Value, CallError> {
    let mut args = args;
    if args.get("bucket").is_none() {
        args["bucket"] = json!("b");
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

async fn ok(t: &Host, op: &str, args: Value) -> Value {
    kv(t, op, args.clone())
        .await
        .unwrap_or_else(|e| panic!("kv.{op} {args} failed: {e}"))
}

/// Every operation of `store`, `atomics`, `batch` and `keyvalue-cas`, with
/// the answers a caller relies on.
async fn every_operation(t: &Host) {
    assert_eq!(ok(t, "get", json!({"key": "a"})).await, Value::Null);
    assert_eq!(ok(t, "exists", json!({"key": "a"})).await, json!(false));
    ok(t, "set", json!({"key": "a", "value": "one"})).await;
    assert_eq!(ok(t, "get", json!({"key": "a"})).await, json!("one"));
    assert_eq!(ok(t, "exists", json!({"key": "a"})).await, json!(true));
    ok(t, "delete", json!({"key": "a"})).await;
    assert_eq!(ok(t, "get", json!({"key": "a"})).await, Value::Null);
    ok(t, "delete", json!({"key": "never-set"})).await;

    assert_eq!(ok(t, "increment", json!({"key": "n", "delta": 5})).await, json!(5));
    assert_eq!(ok(t, "increment", json!({"key": "n", "delta": 2})).await, json!(7));
    assert_eq!(ok(t, "get", json!({"key": "n"})).await, json!("7"));
    ok(t, "set", json!({"key": "word", "value": "seven"})).await;
    let e = kv(t, "increment", json!({"key": "word", "delta": 1}))
        .await
        .expect_err("not a number");
    assert!(e.message.contains("not a decimal number"), "{e}");

    // Compare-and-swap: the revision moves on every write; a stale one loses.
    let created = ok(t, "set-if", json!({"key": "c", "value": "v1", "revision": 0})).await;
    assert!(created.is_u64(), "created with a revision: {created}");
    let first = ok(t, "get-versioned", json!({"key": "c"})).await;
    assert_eq!(first["value"], "v1");
    let rev = first["revision"].as_u64().expect("revision");
    assert_eq!(
        ok(t, "set-if", json!({"key": "c", "value": "v1", "revision": 0})).await,
        Value::Null
    );
    let second = ok(t, "set-if", json!({"key": "c", "value": "v2", "revision": rev})).await;
    assert!(second.as_u64().is_some_and(|r| r != rev), "{second}");
    assert_eq!(
        ok(t, "set-if", json!({"key": "c", "value": "v3", "revision": rev})).await,
        Value::Null
    );
    assert_eq!(ok(t, "get", json!({"key": "c"})).await, json!("v2"));
    assert_eq!(
        ok(t, "add", json!({"key": "cas-counter", "delta": 3})).await,
        json!("3")
    );

    // Batches, and keys over more than one page (1,000 a page).
    let many: Vec<String> = (0..1100).map(|i| format!("many-{i:04}")).collect();
    ok(t, "set-many", json!({"keys": many, "value": "x"})).await;
    let got = ok(t, "get-many", json!({"keys": ["many-0000", "absent", "many-1099"]})).await;
    assert_eq!(got, json!(["x", null, "x"]));
    let keys = ok(t, "keys", json!({})).await;
    let keys: Vec<&str> = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("many-")).count(),
        1100,
        "every key, paged"
    );
    for k in ["n", "word", "c", "cas-counter"] {
        assert!(keys.contains(&k), "{k} listed");
    }
    ok(t, "delete-many", json!({"keys": many})).await;
    let keys = ok(t, "keys", json!({})).await;
    assert!(!keys.to_string().contains("many-"), "deleted: {keys}");
}

#[tokio::test]
async fn every_operation_on_the_embedded_backend() {
    let t = start(&manifest("memory", "embedded", "b", "")).await.expect("start");
    every_operation(&t.host).await;

    // Every call is counted per bucket and operation.
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let labels = r#"service="berth",bucket="b",backend="embedded""#;
    for (line, value) in [
        (format!(r#"berth_kv_calls_total{{{labels},op="increment"}}"#), "3"),
        (format!(r#"berth_kv_errors_total{{{labels},op="increment"}}"#), "1"),
        (format!(r#"berth_kv_calls_total{{{labels},op="set_many"}}"#), "1"),
    ] {
        assert!(
            text.contains(&format!("{line} {value}\n")),
            "{line} {value} in:\n{text}"
        );
    }
    assert!(
        text.contains(&format!(r#"berth_kv_seconds_total{{{labels},op="get"}}"#)),
        "{text}"
    );
}

#[tokio::test]
async fn every_operation_on_nats_kv() {
    let t = start(&manifest("memory", "nats", &unique("kv"), ""))
        .await
        .expect("start");
    every_operation(&t.host).await;

    // A call that waits on 200 round trips (10 ms and more) computes for
    // well under the 2 ms grace: it is not slowed down as a long
    // computation is.
    let demotions = || t.host.route("keeper").expect("route").stats.snapshot().demotions;
    let before = demotions();
    let many = ok(&t.host, "bench-get", json!({"key": "c", "count": 200})).await;
    assert_eq!(many, json!(200));
    assert_eq!(demotions(), before, "waiting in the host does not count as computing");
}

#[tokio::test]
async fn every_operation_on_redis() {
    require_redis();
    let t = start(&manifest("memory", "redis", &unique("kv"), ""))
        .await
        .expect("start");
    every_operation(&t.host).await;
}

#[tokio::test]
async fn a_bucket_not_granted_is_refused() {
    let text = "[keyvalue.mine]\n[keyvalue.theirs]\n\
                [[components]]\nname = \"keeper\"\nwasm = \"{keeper}\"\nsubscribe = [\"kv.>\"]\nkeyvalue = [\"mine\"]\n";
    let t = start(text).await.expect("start");
    ok(&t.host, "set", json!({"bucket": "mine", "key": "k", "value": "v"})).await;
    for bucket in ["theirs", "nowhere"] {
        let e = kv(&t.host, "get", json!({"bucket": bucket, "key": "k"}))
            .await
            .expect_err("refused");
        assert_eq!(e.code, 403, "{e}");
        assert!(e.message.contains("not granted"), "{e}");
    }
    let forbidden = t.host.route("keeper").expect("route").stats.snapshot().forbidden;
    assert_eq!(forbidden, 2, "each refusal is counted");

    let unknown = text.replace("keyvalue = [\"mine\"]", "keyvalue = [\"mine\", \"typo\"]");
    let Err(e) = berth_tests::manifest(&unknown) else {
        panic!("a grant of an unknown bucket is refused")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("`typo`") && e.contains("the buckets are: mine, theirs"),
        "{e}"
    );
}

/// Two hosts on one NATS KV bucket see each other's writes, and 1,000
/// increments from both at once (256 in flight on each) sum exactly:
/// `increment` is a revision-checked write, retried on conflict.
#[tokio::test]
async fn two_hosts_on_one_nats_bucket_count_exactly() {
    let bucket = unique("shared");
    let a = start(&manifest("memory", "nats", &bucket, "")).await.expect("host a");
    let b = start(&manifest("memory", "nats", &bucket, "")).await.expect("host b");
    let (a, b) = (&a.host, &b.host);
    ok(a, "set", json!({"key": "greeting", "value": "from a"})).await;
    assert_eq!(ok(b, "get", json!({"key": "greeting"})).await, json!("from a"));

    let hits = async |t: &Host, n: usize, op: &str| {
        let calls = (0..n).map(|_| kv(t, op, json!({"key": "hits", "delta": 1})));
        futures_util::future::join_all(calls).await
    };
    let (ra, rb) = tokio::join!(hits(a, 500, "increment"), hits(b, 500, "increment"));
    let failed: Vec<_> = ra.iter().chain(&rb).filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} increments failed, first: {}",
        failed.len(),
        failed[0]
    );
    assert_eq!(ok(a, "get", json!({"key": "hits"})).await, json!("1000"));

    // The same through the SDK's compare-and-swap loop (`update`).
    let (ra, rb) = tokio::join!(hits(a, 100, "add"), hits(b, 100, "add"));
    let failed: Vec<_> = ra.iter().chain(&rb).filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} updates failed, first: {}",
        failed.len(),
        failed[0]
    );
    assert_eq!(ok(a, "get", json!({"key": "hits"})).await, json!("1200"));
}

/// The same count on Redis (`INCRBY`) and on the embedded file.
#[tokio::test]
async fn concurrent_increments_sum_exactly_on_redis_and_embedded() {
    require_redis();
    for backend in ["redis", "embedded"] {
        let t = start(&manifest("memory", backend, &unique("count"), ""))
            .await
            .expect("start");
        let t = &t.host;
        let calls = (0..1000).map(|_| kv(t, "increment", json!({"key": "hits", "delta": 1})));
        let results = futures_util::future::join_all(calls).await;
        assert!(results.iter().all(Result::is_ok), "{backend}: every increment answered");
        assert_eq!(ok(t, "get", json!({"key": "hits"})).await, json!("1000"), "{backend}");
        let adds = (0..100).map(|_| kv(t, "add", json!({"key": "cas", "delta": 1})));
        let results = futures_util::future::join_all(adds).await;
        assert!(
            results.iter().all(Result::is_ok),
            "{backend}: every CAS update answered"
        );
        assert_eq!(ok(t, "get", json!({"key": "cas"})).await, json!("100"), "{backend}");
    }
}

/// What a host wrote is there after a swap and after a restart on the same
/// data folder; `fresh` instances share the bucket.
#[tokio::test]
async fn state_survives_swap_and_restart() {
    let text = format!("{}instance_mode = \"fresh\"\n", manifest("memory", "embedded", "b", ""));
    let (m, _data) = berth_tests::manifest(&text).expect("manifest");
    let host = berth::control::start(&m).await.expect("start");
    ok(&host, "set", json!({"key": "kept", "value": "yes"})).await;
    let swap = SwapRequest {
        wasm: relabel(KEEPER, "v2").into(),
        label: None,
        config: None,
    };
    host.swap("keeper", swap).await.expect("swap");
    assert_eq!(
        ok(&host, "get", json!({"key": "kept"})).await,
        json!("yes"),
        "after the swap"
    );
    assert!(host.shutdown(Duration::from_secs(5)).await, "drained");

    let host = berth::control::start(&m)
        .await
        .expect("restart on the same data folder");
    assert_eq!(
        ok(&host, "get", json!({"key": "kept"})).await,
        json!("yes"),
        "after the restart"
    );
}

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
    let text = "[keyvalue.audit]\n[[components]]\nname = \"watcher\"\nwasm = \"{watcher}\"\nkeyvalue = [\"audit\"]\n";
    let Err(e) = start(text).await else {
        panic!("a watcher with nothing to watch is refused")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("exports wasi:keyvalue/watcher") && e.contains("changes"),
        "{e}"
    );
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
