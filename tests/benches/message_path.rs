#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The in-process cost of one request through the memory transport and the
//! router into the echo component, against the same path into a native Rust
//! closure, for 100-byte and 64-KiB bodies and both instance modes; and the
//! time to load a component with and without the compile cache; and the
//! echo component's handler called directly (no transport, no router), one
//! request per call against 32 per `handle-batch` call, per message.
//!
//! Run: `cargo bench -p berth-tests --bench message_path`, then
//! `scripts/bench-report` for medians and ratios.

use std::sync::Arc;
use std::time::Duration;

use berth::Message;
use berth::core::handler::{Handler, NativeHandler, Reply};
use berth::router::{self, Route};
use berth::runtime::{CompileCache, InstanceMode, Runtime};
use berth::transport::memory::MemoryTransport;
use berth::transport::{SubscribeOptions, Transport};
use berth_tests::bench::{environment, settings};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SIZES: [(usize, &str); 2] = [(100, "100B"), (64 * 1024, "64KiB")];

/// Subscribes `handler` on `bench.>` of a fresh bus, through the router.
async fn serve(bus: &MemoryTransport, handler: Arc<dyn Handler>, tasks: &TaskTracker, stop: &CancellationToken) {
    let route = Arc::new(Route::native("bench", &["bench.>"], 4, handler));
    let sub = bus
        .subscribe(SubscribeOptions {
            pattern: "bench.>".into(),
            group: None,
            capacity: 4,
            ..SubscribeOptions::default()
        })
        .await
        .expect("subscribe");
    router::serve(route, 0, "memory", sub, tasks, stop.clone());
}

/// A one-thread runtime, a wasm runtime without a compile cache, and the
/// echo guest's bytes.
///
/// One thread: every hop (transport, router, call, reply) costs its CPU
/// time, not a cross-thread wake-up of a parked worker, which would swamp
/// the few microseconds being measured.
fn setup() -> (tokio::runtime::Runtime, Runtime, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runtime = Runtime::new(CompileCache::disabled(), false).expect("wasm runtime");
    let echo = std::fs::read(berth_tests::ECHO).expect("echo.wasm");
    (rt, runtime, echo)
}

fn message_path(c: &mut Criterion) {
    let (rt, runtime, echo) = setup();
    let mut group = c.benchmark_group("message_path");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let variants: [(&str, Option<InstanceMode>); 3] = [
        ("native", None),
        ("wasm-pooled", Some(InstanceMode::Pooled)),
        ("wasm-fresh", Some(InstanceMode::Fresh)),
    ];
    for (name, mode) in variants {
        let bus = MemoryTransport::default();
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        rt.block_on(async {
            let handler: Arc<dyn Handler> = match mode {
                None => Arc::new(NativeHandler(|m: Message| {
                    Ok(Reply {
                        body: m.body,
                        headers: m.headers,
                    })
                })),
                Some(mode) => {
                    let (h, _) = runtime
                        .load(&echo, settings(mode, false), environment(&bus))
                        .await
                        .expect("load echo");
                    Arc::new(h)
                }
            };
            serve(&bus, handler, &tasks, &stop).await;
        });
        for (size, label) in SIZES {
            let body = bytes::Bytes::from(vec![b'x'; size]);
            group.bench_with_input(BenchmarkId::new(name, label), &body, |b, body| {
                b.to_async(&rt).iter(|| async {
                    let reply = bus
                        .request(Message::new("bench.echo", body.clone()), Duration::from_secs(5))
                        .await
                        .expect("reply");
                    assert_eq!(reply.body.len(), body.len());
                });
            });
        }
        stop.cancel();
    }
    group.finish();
}

/// What one request costs in the call into the guest alone, made one per
/// call and 32 to a call: the figure batches exist to bring down.
fn call(c: &mut Criterion) {
    const BATCH: usize = 32;
    let (rt, runtime, echo) = setup();
    let bus = MemoryTransport::default();
    let (handler, _) = rt
        .block_on(runtime.load(&echo, settings(InstanceMode::Pooled, false), environment(&bus)))
        .expect("load echo");
    let request = || {
        let mut m = Message::new("bench.echo", vec![b'x'; 100]);
        m.reply_to = Some("_INBOX.bench.1".into());
        m
    };
    let mut group = c.benchmark_group("call");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("one-per-call", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..BATCH {
                let reply = handler.handle_request(request()).await.expect("reply");
                assert_eq!(reply.body.len(), 100);
            }
        });
    });
    group.bench_function("batch-of-32", |b| {
        b.to_async(&rt).iter(|| async {
            let batch: Vec<Message> = (0..BATCH).map(|_| request()).collect();
            let outcomes = handler.handle_batch(&batch).await;
            assert!(outcomes.iter().all(|o| matches!(o, Ok(Some(r)) if r.body.len() == 100)));
        });
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let runtime = Runtime::new(CompileCache::disabled(), false).expect("wasm runtime");
    let engine = runtime.engine().clone();
    let bytes = std::fs::read(berth_tests::ECHO).expect("echo.wasm");
    let hash = berth::runtime::cache::content_hash(&bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    let cached = CompileCache::new(dir.path());
    cached.load(&engine, &bytes, &hash).expect("fill the cache");

    let mut group = c.benchmark_group("load");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("compile", |b| {
        b.iter(|| CompileCache::disabled().load(&engine, &bytes, &hash).expect("compile"))
    });
    group.bench_function("cached", |b| {
        b.iter(|| cached.load(&engine, &bytes, &hash).expect("load"))
    });
    group.finish();
}

criterion_group!(benches, message_path, call, load);
criterion_main!(benches);
