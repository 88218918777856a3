//! Many components on one host: for 1 / 100 / 1,000 / 10,000 echo
//! components (one subscription each, memory transport), the start time
//! with a warm compile cache, resident memory per component, the latency of
//! a component's first request, and the per-message cost of a warm one.
//!
//! Run: `cargo bench -p berth-tests --bench density` (`DENSITY=1,100` picks
//! the sizes). Each size runs in two fresh processes: one fills the compile
//! cache, the other measures, so that no memory freed by an earlier start
//! hides what a start costs. Resident memory is the measuring process's
//! (`/proc/self/statm`) before and after the start, divided by the number
//! of components; `[host] max_warm_mb = 64` bounds the warm instances.

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

/// Bytes malloc has handed out and not had back (glibc's `mallinfo2`):
/// the host's own structures, without the instances' memory slots.
fn heap() -> u64 {
    #[repr(C)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    #[allow(unsafe_code)]
    unsafe extern "C" {
        fn mallinfo2() -> MallInfo2;
    }
    // SAFETY: mallinfo2 only reads the allocator's counters.
    #[allow(unsafe_code)]
    let info = unsafe { mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

fn manifest_text(n: usize) -> String {
    let mut text = String::from("[host]\nmax_warm_mb = 64\n");
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

async fn run(n: usize, data_dir: &std::path::Path, fill: bool) -> String {
    let mut manifest = Manifest::parse(&manifest_text(n)).unwrap();
    manifest.host.data_dir = data_dir.to_path_buf();
    manifest.validate().unwrap();
    if fill {
        let host = berth::control::start(&manifest).await.unwrap();
        host.shutdown(Duration::from_secs(5)).await;
        return String::new();
    }
    let (before, heap_before) = (resident(), heap());
    let started = Instant::now();
    let host = berth::control::start(&manifest).await.unwrap();
    let start = started.elapsed();
    let per_component = resident().saturating_sub(before) / n as u64;
    let heap_per_component = heap().saturating_sub(heap_before) / n as u64;
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
    let mut again = Vec::new();
    for _ in 0..5000 {
        again.push(ask(picks[0]).await);
    }
    let warm = host.app().warm();
    host.shutdown(Duration::from_secs(5)).await;
    format!(
        "| {n} | {:.2} s | {:.0} KiB | {:.0} KiB | {} ({:.0} MiB) | {:.2} ms / {:.2} ms | {:.1} µs |",
        start.as_secs_f64(),
        per_component as f64 / 1024.0,
        heap_per_component as f64 / 1024.0,
        warm.instances,
        warm.bytes as f64 / f64::from(1 << 20),
        median(first.clone()).as_secs_f64() * 1e3,
        first.iter().max().unwrap().as_secs_f64() * 1e3,
        median(again).as_secs_f64() * 1e6,
    )
}

/// `DENSITY_CHILD=fill:N:DIR` or `measure:N:DIR`: one step, in this process.
fn child(step: &str) {
    let mut parts = step.splitn(3, ':');
    let (mode, n, dir) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let line = rt.block_on(run(n.parse().unwrap(), std::path::Path::new(dir), mode == "fill"));
    println!("{line}");
}

fn step(mode: &str, n: usize, dir: &std::path::Path) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("DENSITY_CHILD", format!("{mode}:{n}:{}", dir.display()))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "the {mode} step for {n} components failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn main() {
    if let Ok(step) = std::env::var("DENSITY_CHILD") {
        return child(&step);
    }
    let sizes: Vec<usize> = std::env::var("DENSITY")
        .unwrap_or_else(|_| "1,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    println!(
        "| components | cached start | resident per component | of which heap | warm instances | first request (median / slowest) | warm request (median) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let data = tempfile::tempdir().unwrap();
        step("fill", n, data.path());
        println!("{}", step("measure", n, data.path()));
    }
}
