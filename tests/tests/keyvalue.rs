//! State through `wasi:keyvalue`: every operation on every backend
//! (embedded, NATS KV, Redis: real servers), compare-and-swap, grants,
//! atomic counters across two hosts, and state across restarts and swaps.
//! Change feeds and watchers: keyvalue_changes.rs; backends that go away:
//! keyvalue_outages.rs.

use std::time::Duration;

use berth::Host;
use berth::app::SwapRequest;
use berth_tests::keyvalue::{kv, manifest, ok};
use berth_tests::{KEEPER, relabel, require_redis, start, unique};
use serde_json::{Value, json};

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
    let text = berth_tests::scrape_metrics(&base).await;
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

    // A call that waits on 100 round trips takes longer than the 2 ms
    // grace but computes for well under it: it is not slowed down as a
    // long computation is. (The test build's host computes 4-10 µs per
    // round trip: 400 pass, 1,000 are demoted.)
    let demotions = || t.host.route("keeper").expect("route").stats.snapshot().demotions;
    let before = demotions();
    let started = std::time::Instant::now();
    let many = ok(&t.host, "bench-get", json!({"key": "c", "count": 100})).await;
    let took = started.elapsed();
    assert_eq!(many, json!(100));
    assert!(
        took > std::time::Duration::from_millis(2),
        "the call outlasted the grace: {took:?}"
    );
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
        component: None,
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
