//! Hot-swap costs: how long from a swap request to the new version serving
//! (compiled now vs taken from the compile cache), and request latency
//! under load with a swap every second vs without swaps.
//!
//! Run: `cargo bench -p berth-tests --bench swap`. In-memory transport, the
//! echo guest, 4 client loops; bounded by time (each load phase 5 s).

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth::app::SwapRequest;
use berth::transport::Transport;
use berth::{CallError, Message};
use berth_tests::{ECHO, relabel, start};

const PHASE: Duration = Duration::from_secs(5);
const CLIENTS: usize = 4;

const MANIFEST: &str = r#"
[[components]]
name = "echo"
wasm = "{echo}"
subscribe = ["echo.>"]
"#;

fn request(wasm: &[u8]) -> SwapRequest {
    SwapRequest {
        wasm: wasm.to_vec().into(),
        label: None,
        config: None,
        component: None,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Latencies of `CLIENTS` loops for `PHASE`, and how many requests failed.
async fn load(transport: Arc<dyn Transport>) -> (Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (transport, stop, failed) = (transport.clone(), stop.clone(), failed.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    match transport
                        .request(Message::new("echo.bench", vec![b'x'; 100]), Duration::from_secs(5))
                        .await
                    {
                        Ok(reply) if CallError::from_reply(&reply).is_none() => latencies.push(sent.elapsed()),
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    all.sort();
    (all, failed.load(Ordering::Relaxed))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = start(MANIFEST).await.unwrap();
        let (v1, v2) = (std::fs::read(ECHO).unwrap(), relabel(ECHO, "v2"));

        // Time to serve: a never-seen version compiles; a known one loads
        // from the compile cache.
        let mut compiled = Vec::new();
        for i in 0..5 {
            let report = t
                .host
                .swap("echo", request(&relabel(ECHO, &format!("fresh-{i}"))))
                .await
                .unwrap();
            assert!(!report.cached);
            compiled.push(report.elapsed_ms);
        }
        t.host.swap("echo", request(&v2)).await.unwrap();
        let mut cached = Vec::new();
        for i in 0..10 {
            let report = t
                .host
                .swap("echo", request(if i % 2 == 0 { &v1 } else { &v2 }))
                .await
                .unwrap();
            assert!(report.cached);
            cached.push(report.elapsed_ms);
        }
        println!("| swap to serving | median | min | max |");
        println!("| --- | --- | --- | --- |");
        for (name, v) in [("compiled now", compiled), ("from the compile cache", cached)] {
            let (min, max) = (
                v.iter().copied().fold(f64::MAX, f64::min),
                v.iter().copied().fold(0.0, f64::max),
            );
            println!("| {name} | {:.1} ms | {min:.1} ms | {max:.1} ms |", median(v));
        }

        // Latency without swaps, then with a swap every second.
        let transport = t.host.transport();
        load(transport.clone()).await; // warm-up
        let (steady, steady_failed) = load(transport.clone()).await;
        let swapping = Arc::new(AtomicBool::new(true));
        let swapper = {
            let (shared, swapping) = (t.host.app(), swapping.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while swapping.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    shared
                        .swap("echo", request(if n % 2 == 0 { &v1 } else { &v2 }))
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        };
        let (during, during_failed) = load(transport).await;
        swapping.store(false, Ordering::Relaxed);
        let swaps = swapper.await.unwrap();
        let pct = |v: &[Duration], p: usize| v[v.len() * p / 100].as_secs_f64() * 1e6;
        println!();
        println!("| load ({CLIENTS} clients, {PHASE:?}) | requests | failed | p50 | p99 | p99 vs steady |");
        println!("| --- | --- | --- | --- | --- | --- |");
        println!(
            "| steady | {} | {steady_failed} | {:.0} µs | {:.0} µs | 1.00x |",
            steady.len(),
            pct(&steady, 50),
            pct(&steady, 99)
        );
        println!(
            "| swap every second ({swaps} swaps) | {} | {during_failed} | {:.0} µs | {:.0} µs | {:.2}x |",
            during.len(),
            pct(&during, 50),
            pct(&during, 99),
            pct(&during, 99) / pct(&steady, 99)
        );
    });
}
