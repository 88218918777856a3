//! Key-value `get` and `set` of 100-byte values through a wasm guest
//! against the same operations from a native Rust client on the same
//! backend, 64 in flight.
//!
//! Run: `cargo bench -p berth-tests --bench keyvalue` (Redis on 6379 and
//! nats-server with JetStream on 4222).
//!
//! Berth: a host in this process runs the `keeper` guest on the in-memory
//! transport; each request asks it for `OPS_PER_CALL` gets (or sets) of one
//! key, and 64 such requests are in flight, so 64 key-value calls are in
//! flight from the guest at any time and the cost of the message that
//! carries them is spread over 10 operations. Native: 64 tasks in the same
//! process, each making the same number of calls in a row with the client
//! Berth itself uses (redis's `ConnectionManager`, async-nats's KV
//! `Store`). Rounds alternate, Berth then native; each figure is the median
//! of `ROUNDS` (`BERTH_BENCH_ROUNDS=N` to change).
//!
//! `BERTH_BENCH_ONLY_BERTH=1` leaves the native rounds out (to profile
//! Berth's side alone); `BERTH_BENCH_ONLY=redis` (or `nats`, `embedded`)
//! runs one backend.
//!
//! Embedded has no native twin: its figures are Berth's ops/s and the p99
//! of single-operation requests at 64 in flight, with `set` durable before
//! it returns (fsync on every commit, commits grouped).

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

// The `berth` binary's allocator (set there), and the process's CPU time.
#[allow(dead_code)]
#[path = "support/rpc.rs"]
mod rpc;

use std::future::Future;
use std::time::{Duration, Instant};

use berth::Message;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

const IN_FLIGHT: usize = 64;
const OPS_PER_CALL: u32 = 10;
/// Calls per round: 64,000 operations.
const CALLS: usize = 6400;
const ROUNDS: usize = 5;
const KEY: &str = "bench-key";

fn rounds() -> usize {
    std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS)
}

fn value() -> String {
    "v".repeat(100)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One round: operations per second, and this process's CPU time per
/// operation in µs (the load, the client and, for Berth, the host).
struct Round {
    ops: f64,
    cpu_us: f64,
}

/// `CALLS` calls of `call`, 64 in flight, each making `OPS_PER_CALL`
/// operations.
async fn ops_per_second<F, Fut>(call: F) -> Round
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let (started, cpu) = (Instant::now(), rpc::cpu_seconds(std::process::id()));
    futures_util::stream::iter(0..CALLS)
        .map(|_| call())
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let ops = CALLS as f64 * f64::from(OPS_PER_CALL);
    Round {
        ops: ops / started.elapsed().as_secs_f64(),
        cpu_us: (rpc::cpu_seconds(std::process::id()) - cpu) * 1e6 / ops,
    }
}

fn manifest(backend: &str, bucket: &str) -> String {
    format!(
        "[transports.nats]\nurl = \"127.0.0.1:4222\"\n\
         [keyvalue.b]\nbackend = \"{backend}\"\nbucket = \"{bucket}\"\n\
         [[components]]\nname = \"keeper\"\nwasm = \"{{keeper}}\"\nsubscribe = [\"kv.>\"]\nkeyvalue = [\"b\"]\n\
         max_concurrency = {IN_FLIGHT}\nmax_batch = 1\ntimeout_ms = 60000\n"
    )
}

/// A Berth call that makes `OPS_PER_CALL` operations `op` in the guest.
async fn guest_call(host: &berth::Host, op: &str) {
    let body = json!({"bucket": "b", "key": KEY, "value": value(), "count": OPS_PER_CALL});
    let reply = host
        .transport()
        .request(
            Message::new(format!("kv.{op}"), body.to_string()),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        berth::CallError::from_reply(&reply).is_none(),
        "{op} failed: {:?}",
        reply.body
    );
}

/// Medians of Berth's guest and of `native`, rounds alternating: ops/s
/// and CPU µs per op of each.
async fn compare<N, NF>(host: &berth::Host, op: &str, native: N) -> [(f64, f64); 2]
where
    N: Fn() -> NF,
    NF: Future<Output = ()>,
{
    let (mut berth, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        berth.push(ops_per_second(|| guest_call(host, op)).await);
        if std::env::var_os("BERTH_BENCH_ONLY_BERTH").is_none() {
            direct.push(ops_per_second(&native).await);
        }
    }
    let medians = |rounds: Vec<Round>| {
        if rounds.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let cpu = median(rounds.iter().map(|r| r.cpu_us).collect());
        (median(rounds.into_iter().map(|r| r.ops).collect()), cpu)
    };
    [medians(berth), medians(direct)]
}

fn row(backend: &str, op: &str, [(berth, berth_cpu), (native, native_cpu)]: [(f64, f64); 2]) {
    println!(
        "| {backend} | {op} | {berth:.0} | {native:.0} | {:.2} | {berth_cpu:.1} | {native_cpu:.1} |",
        berth / native
    );
}

async fn redis() {
    let t = berth_tests::start(&manifest("redis", "berth-bench")).await.unwrap();
    let client = redis::Client::open(berth_tests::REDIS).unwrap();
    let connection = redis::aio::ConnectionManager::new(client).await.unwrap();
    let key = format!("berth-bench:{KEY}");
    let get = || {
        let (mut c, key) = (connection.clone(), key.clone());
        async move {
            for _ in 0..OPS_PER_CALL {
                let _: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut c).await.unwrap();
            }
        }
    };
    let set = || {
        let (mut c, key) = (connection.clone(), key.clone());
        async move {
            for _ in 0..OPS_PER_CALL {
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(value())
                    .query_async(&mut c)
                    .await
                    .unwrap();
            }
        }
    };
    row("redis", "set", compare(&t.host, "bench-set", set).await);
    row("redis", "get", compare(&t.host, "bench-get", get).await);
}

async fn nats() {
    let bucket = berth_tests::unique("bench");
    let t = berth_tests::start(&manifest("nats", &bucket)).await.unwrap();
    let js = async_nats::jetstream::new(berth_tests::nats_client().await);
    let store = js.get_key_value(&bucket).await.unwrap();
    let get = || {
        let store = store.clone();
        async move {
            for _ in 0..OPS_PER_CALL {
                store.get(KEY).await.unwrap();
            }
        }
    };
    let set = || {
        let store = store.clone();
        async move {
            for _ in 0..OPS_PER_CALL {
                store.put(KEY, Bytes::from(value())).await.unwrap();
            }
        }
    };
    row("nats", "set", compare(&t.host, "bench-set", set).await);
    row("nats", "get", compare(&t.host, "bench-get", get).await);
    let _ = js.delete_key_value(&bucket).await;
}

/// Berth's ops/s on the embedded file, and the p99 of one-operation
/// requests at 64 in flight.
async fn embedded() {
    let t = berth_tests::start(&manifest("embedded", "b")).await.unwrap();
    for (op, one) in [("bench-set", "set"), ("bench-get", "get")] {
        let mut ops = Vec::new();
        let mut p99 = Vec::new();
        for _ in 0..rounds() {
            ops.push(ops_per_second(|| guest_call(&t.host, op)).await.ops);
            let body = json!({"bucket": "b", "key": KEY, "value": value()}).to_string();
            let mut latencies: Vec<f64> = futures_util::stream::iter(0..CALLS * 4)
                .map(|_| {
                    let (host, body) = (&t.host, body.clone());
                    async move {
                        let started = Instant::now();
                        let request = Message::new(format!("kv.{one}"), body);
                        host.transport()
                            .request(request, Duration::from_secs(60))
                            .await
                            .unwrap();
                        started.elapsed().as_secs_f64() * 1e6
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            latencies.sort_by(f64::total_cmp);
            p99.push(latencies[latencies.len() * 99 / 100]);
        }
        println!("| embedded | {one} | {:.0} | p99 {:.0} µs |", median(ops), median(p99));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test` runs bench targets without --bench: nothing to check here
    }
    berth_tests::require_redis();
    println!("| backend | op | Berth + wasm ops/s | native ops/s | ratio | Berth CPU µs/op | native CPU µs/op |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    // `BERTH_BENCH_ONLY=redis` (or `nats`, `embedded`, comma-separated)
    // runs those backends alone, to profile one.
    let only = std::env::var("BERTH_BENCH_ONLY").ok();
    let runs = |backend: &str| only.as_deref().is_none_or(|o| o.split(',').any(|b| b == backend));
    if runs("redis") {
        redis().await;
    }
    if runs("nats") {
        nats().await;
    }
    println!();
    println!("| backend | op | Berth + wasm ops/s | latency |");
    println!("| --- | --- | --- | --- |");
    if runs("embedded") {
        embedded().await;
    }
}
