#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table
//! The echo route of the conformance guest in each language, side by side
//! with a native Rust handler on the same path: component size, cold load
//! (compile, no cache), instantiate (a fresh instance per message, minus a
//! warm one) and per-message cost (one request at a time through the
//! in-memory transport, router and call, 100-byte body), and the same with
//! 32 requests in flight, where a component that exports `batch-handler`
//! (Rust and Python) takes the queued ones in one call. Medians; on a
//! current-thread runtime, so every figure is CPU cost.
//!
//! Run: `cargo bench -p berth-tests --bench languages` (needs the guest
//! toolchains; `scripts/test` installs them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::Message;
use berth::core::handler::{Handler, NativeHandler, Reply};
use berth::router::{self, Route};
use berth::runtime::{CompileCache, InstanceMode, Runtime};
use berth::transport::memory::MemoryTransport;
use berth::transport::{SubscribeOptions, Transport};
use berth_tests::bench::{environment, settings};
use berth_tests::polyglot::{self, Language};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WARM_REQUESTS: usize = 3_000;
const FRESH_REQUESTS: usize = 300;
const COMPILES: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median microseconds per request of `n` requests, one at a time.
async fn per_message(handler: Arc<dyn Handler>, bus: &MemoryTransport, n: usize) -> f64 {
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let route = Arc::new(Route::native("bench", &["bench.>"], 4, handler));
    let sub = bus
        .subscribe(SubscribeOptions {
            pattern: "bench.>".into(),
            group: None,
            capacity: 4,
            ..SubscribeOptions::default()
        })
        .await
        .unwrap();
    router::serve(route, 0, "memory", sub, &tasks, stop.clone());
    let body = bytes::Bytes::from(vec![b'x'; 100]);
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        let reply = bus
            .request(Message::new("bench.in.echo", body.clone()), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply.body, body);
        if i >= n / 10 {
            times.push(start.elapsed().as_secs_f64() * 1e6); // the first tenth warms up
        }
    }
    stop.cancel();
    median(times)
}

/// Microseconds per request of `n` requests sent `IN_FLIGHT` at a time:
/// the queue fills, and a component with `batch-handler` takes batches.
async fn per_message_in_flight(handler: Arc<dyn Handler>, bus: &MemoryTransport, n: usize) -> f64 {
    const IN_FLIGHT: usize = 32;
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let route = Arc::new(Route::native("bench", &["bench.>"], IN_FLIGHT, handler));
    let sub = bus
        .subscribe(SubscribeOptions {
            pattern: "bench.>".into(),
            group: None,
            capacity: IN_FLIGHT * 2,
            ..SubscribeOptions::default()
        })
        .await
        .unwrap();
    router::serve(route, 0, "memory", sub, &tasks, stop.clone());
    let body = bytes::Bytes::from(vec![b'x'; 100]);
    let wave = || {
        futures_util::future::join_all(
            (0..IN_FLIGHT).map(|_| bus.request(Message::new("bench.in.echo", body.clone()), Duration::from_secs(5))),
        )
    };
    for reply in wave().await {
        assert_eq!(reply.unwrap().body, body); // warm-up
    }
    let mut times = Vec::new();
    for _ in 0..n.div_ceil(IN_FLIGHT) {
        let start = Instant::now();
        for reply in wave().await {
            assert_eq!(reply.unwrap().body, body);
        }
        times.push(start.elapsed().as_secs_f64() * 1e6 / IN_FLIGHT as f64);
    }
    stop.cancel();
    median(times)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(CompileCache::disabled(), false).unwrap();
    let guests = [
        ("Rust", std::path::PathBuf::from(berth_tests::CONFORMANCE)),
        ("Python", polyglot::build(Language::Python, "conformance").unwrap()),
        (
            "JavaScript",
            polyglot::build(Language::JavaScript, "conformance").unwrap(),
        ),
        ("C", polyglot::build(Language::C, "conformance").unwrap()),
    ];

    let native: (f64, f64) = rt.block_on(async {
        let bus = MemoryTransport::default();
        let handler: Arc<dyn Handler> = Arc::new(NativeHandler(|m: Message| {
            Ok(Reply {
                body: m.body,
                headers: m.headers,
            })
        }));
        let alone = per_message(handler.clone(), &bus, WARM_REQUESTS).await;
        (alone, per_message_in_flight(handler, &bus, WARM_REQUESTS).await)
    });
    let (native, native_in_flight) = native;
    println!(
        "| guest | component size | cold load (compile) | instantiate | per message (warm) | vs native Rust handler | per message, 32 in flight | batches |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    println!("| native Rust handler | - | - | - | {native:.1} µs | 1.00x | {native_in_flight:.1} µs | - |");
    for (language, path) in guests {
        let bytes = std::fs::read(&path).unwrap();
        let hash = berth::runtime::cache::content_hash(&bytes);
        let compile = median(
            (0..COMPILES)
                .map(|_| {
                    let start = Instant::now();
                    CompileCache::disabled().load(runtime.engine(), &bytes, &hash).unwrap();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        );
        let (warm, in_flight, batches, fresh) = rt.block_on(async {
            let bus = MemoryTransport::default();
            let (h, _) = runtime
                .load(&bytes, settings(InstanceMode::Pooled, true), environment(&bus))
                .await
                .unwrap();
            let batches = if h.batch_limit() > 1 { "yes" } else { "no" };
            let h: Arc<dyn Handler> = Arc::new(h);
            let warm = per_message(h.clone(), &bus, WARM_REQUESTS).await;
            let in_flight = per_message_in_flight(h, &bus, WARM_REQUESTS).await;
            let bus = MemoryTransport::default();
            let (h, _) = runtime
                .load(&bytes, settings(InstanceMode::Fresh, true), environment(&bus))
                .await
                .unwrap();
            let fresh = per_message(Arc::new(h), &bus, FRESH_REQUESTS).await;
            (warm, in_flight, batches, fresh)
        });
        println!(
            "| {language} | {:.0} KiB | {compile:.0} ms | {:.0} µs | {warm:.1} µs | {:.2}x | {in_flight:.1} µs | {batches} |",
            bytes.len() as f64 / 1024.0,
            fresh - warm,
            warm / native
        );
    }
}
