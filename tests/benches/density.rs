//! Many components on one host: for 1 / 100 / 1,000 / 10,000 echo
//! components (one subscription each, memory transport), the start time
//! with a warm compile cache, resident memory per component, the latency of
//! a component's first request, and the per-message cost of a warm one.
//!
//! Run: `cargo bench -p berth-tests --bench density` (`DENSITY=1,100` picks
//! the sizes). Resident memory is this process's (`/proc/self/statm`)
//! before and after the start, divided by the number of components.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use berth::manifest::Manifest;
use berth_tests::ECHO;

/// Resident bytes of this process.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn manifest_text(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        write!(
            text,
            "[[components]]\nname = \"echo{i}\"\nwasm = \"{ECHO}\"\nsubscribe = [\"d.{i}\"]\n"
        )
        .unwrap();
    }
    text
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run(n: usize, data_dir: &std::path::Path) -> String {
    let mut manifest = Manifest::parse(&manifest_text(n)).unwrap();
    manifest.host.data_dir = data_dir.to_path_buf();
    manifest.validate().unwrap();
    // The first start fills the compile cache; the measured one uses it.
    berth::control::start(&manifest)
        .await
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await;
    let before = resident();
    let started = Instant::now();
    let host = berth::control::start(&manifest).await.unwrap();
    let start = started.elapsed();
    let per_component = resident().saturating_sub(before) / n as u64;
    let transport = host.transport();
    let ask = |i: usize| {
        let transport = transport.clone();
        async move {
            let sent = Instant::now();
            let reply = transport
                .request(berth::Message::new(format!("d.{i}"), "x"), Duration::from_secs(5))
                .await
                .unwrap();
            assert!(berth::CallError::from_reply(&reply).is_none(), "echo{i} failed");
            sent.elapsed()
        }
    };
    // First requests: components spread over the set, none asked before.
    let picks: Vec<usize> = (0..n.min(50)).map(|k| k * n / n.min(50)).collect();
    let mut first = Vec::new();
    for &i in &picks {
        first.push(ask(i).await);
    }
    // Warm: one component, asked again and again.
    let mut warm = Vec::new();
    for _ in 0..5000 {
        warm.push(ask(picks[0]).await);
    }
    host.shutdown(Duration::from_secs(5)).await;
    format!(
        "| {n} | {:.2} s | {:.0} KiB | {:.2} ms | {:.1} µs |",
        start.as_secs_f64(),
        per_component as f64 / 1024.0,
        median(first).as_secs_f64() * 1e3,
        median(warm).as_secs_f64() * 1e6,
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::var("DENSITY")
        .unwrap_or_else(|_| "1,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    println!("| components | cached start | resident per component | first request (median) | warm request (median) |");
    println!("| --- | --- | --- | --- | --- |");
    for n in sizes {
        println!("{}", rt.block_on(run(n, data.path())));
    }
}
