//! Does a hostile component slow down its neighbour? Throughput and latency
//! of the `echo` component alone, then while a `hostile` component on the
//! same host loops (until its deadline) or traps on every message it gets.
//!
//! Run: `cargo bench -p berth-tests --bench neighbour`. Bounded: each phase
//! sends a fixed number of requests; the attack stops with the phase.

#![allow(missing_docs, clippy::print_stdout)] // a bench binary: its output is the table

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth::Message;
use berth::transport::Transport;

const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 50_000;
const ATTACKERS: usize = 2;
const ROUNDS: usize = 5;

const MANIFEST: &str = r#"
[[components]]
name = "echo"
wasm = "{echo}"
subscribe = ["echo.>"]

[[components]]
name = "hostile"
wasm = "{hostile}"
subscribe = ["hostile.>"]
link_unused_sockets = true
timeout_ms = 50
max_concurrency = 2
quarantine_after = 0
"#;

struct Phase {
    throughput: f64,
    p50: Duration,
    p99: Duration,
}

/// Drives the echo component from `CLIENTS` tasks and measures it.
async fn measure(transport: Arc<dyn Transport>) -> Phase {
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let transport = transport.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(REQUESTS_PER_CLIENT);
                for _ in 0..REQUESTS_PER_CLIENT {
                    let sent = Instant::now();
                    transport
                        .request(Message::new("echo.bench", vec![b'x'; 100]), Duration::from_secs(5))
                        .await
                        .expect("echo answers");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    let elapsed = started.elapsed();
    all.sort();
    Phase {
        throughput: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

/// Keeps `ATTACKERS` requests to `subject` going until `stop`.
fn attack(
    transport: Arc<dyn Transport>,
    subject: &'static str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..ATTACKERS)
        .map(|_| {
            let (transport, stop) = (transport.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _ = transport
                        .request(Message::new(subject, ""), Duration::from_secs(5))
                        .await;
                    sent += 1;
                }
                sent
            })
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t = berth_tests::start(MANIFEST).await.expect("start");
        let transport = t.host.transport();
        measure(transport.clone()).await; // warm-up
        let scenarios: [(&str, Option<&'static str>); 3] = [
            ("alone", None),
            ("beside an endless loop", Some("hostile.loop")),
            ("beside a trap on every message", Some("hostile.panic")),
        ];
        // Rounds interleave the scenarios, and each ratio is taken against
        // the "alone" phase of its own round: the shared machine's speed
        // drifts more between minutes than between neighbouring phases.
        let mut results: Vec<Vec<(Phase, u64)>> = scenarios.iter().map(|_| Vec::new()).collect();
        for _ in 0..ROUNDS {
            for (i, (_, attack_subject)) in scenarios.iter().enumerate() {
                let stop = Arc::new(AtomicBool::new(false));
                let attackers = attack_subject
                    .map(|s| attack(transport.clone(), s, stop.clone()))
                    .unwrap_or_default();
                let phase = measure(transport.clone()).await;
                stop.store(true, Ordering::Relaxed);
                let mut attacks = 0;
                for a in attackers {
                    attacks += a.await.expect("attacker");
                }
                results[i].push((phase, attacks));
            }
        }
        println!("| echo | throughput (req/s) | vs alone | p50 | p99 | p99 vs alone | hostile calls |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for (i, (name, _)) in scenarios.iter().enumerate() {
            let rounds = &results[i];
            let alone = &results[0];
            let tput = median(rounds.iter().map(|(p, _)| p.throughput).collect());
            let ratio = median(
                rounds
                    .iter()
                    .zip(alone)
                    .map(|((p, _), (a, _))| p.throughput / a.throughput)
                    .collect(),
            );
            let p99_ratio = median(
                rounds
                    .iter()
                    .zip(alone)
                    .map(|((p, _), (a, _))| p.p99.as_secs_f64() / a.p99.as_secs_f64())
                    .collect(),
            );
            let p50 = median(rounds.iter().map(|(p, _)| p.p50.as_secs_f64() * 1e6).collect());
            let p99 = median(rounds.iter().map(|(p, _)| p.p99.as_secs_f64() * 1e6).collect());
            let attacks: u64 = rounds.iter().map(|(_, a)| a).sum();
            println!(
                "| {name} | {tput:.0} | {:.0}% | {p50:.0} µs | {p99:.0} µs | {:+.0}% | {attacks} |",
                100.0 * ratio,
                100.0 * (p99_ratio - 1.0)
            );
        }
    });
}
