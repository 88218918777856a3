//! One host against two on one queue group, with a CPU-bound component,
//! so that the hosts and not the broker are the limit: each host is a
//! child process pinned to one of the machine's cores (`taskset -c N`),
//! serving the `probe` guest's `probe.work` (a million rounds of xorshift,
//! a few milliseconds of CPU) through the machine's nats-server.
//!
//! Run: `cargo bench -p berth-tests --bench scale_out`. Each figure is the
//! median of `BERTH_BENCH_ROUNDS` rounds (5 by default) of 600 requests,
//! 32 in flight; the one- and two-host rounds interleaved. The broker's
//! own CPU per message is printed too: it says how far the broker is from
//! being the limit.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[allow(dead_code)] // the RPC benches' support; this bench uses its measuring part
#[path = "support/rpc.rs"]
mod rpc;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const URL: &str = "127.0.0.1:4222";
const WORK: &str = "1000000";
const REQUESTS: usize = 600;
const IN_FLIGHT: usize = 32;

/// `--serve-host`: one Berth host with the probe on `probe.work`, in the
/// queue group every such host shares.
async fn serve_host() {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let t = berth_tests::start(&format!(
        r#"
        [host]
        name = "scale-bench"
        transport = "nats"
        [transports.nats]
        url = "nats://{URL}"
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["probe.work"]
        max_concurrency = 8
        timeout_ms = 10000
        "#
    ))
    .await
    .expect("host starts");
    println!("ready");
    std::future::pending::<()>().await;
    drop(t);
}

/// A host pinned to `core`.
fn spawn_host(core: usize) -> Child {
    let mut child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(std::env::current_exe().unwrap())
        .arg("--serve-host")
        .stdout(Stdio::piped())
        .spawn()
        .expect("taskset (util-linux) runs the host");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "host on core {core} started");
    child
}

async fn round(client: &async_nats::Client, broker: Option<u32>, pid: u32) -> rpc::Phase {
    let client = client.clone();
    let call = move || {
        let client = client.clone();
        async move {
            let request = async_nats::Request::new()
                .payload(WORK.into())
                .timeout(Some(Duration::from_secs(30)));
            let reply = client.send_request("probe.work", request).await.expect("reply");
            assert!(
                reply.headers.is_none_or(|h| h.get("Nats-Service-Error-Code").is_none()),
                "the work failed"
            );
        }
    };
    rpc::measure(call, IN_FLIGHT, REQUESTS, pid, broker).await
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--serve-host") {
        return rt.block_on(serve_host());
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    rt.block_on(async {
        let client = async_nats::connect(URL).await.unwrap_or_else(|e| {
            panic!("NATS not reachable at {URL} ({e}); start it with: nats-server -a 127.0.0.1 -p 4222 -js")
        });
        let broker = rpc::find_process("nats-server");
        let mut first = spawn_host(0);
        let pid = first.id();
        round(&client, broker, pid).await; // warm-up
        let (mut one, mut two, mut broker_us) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            one.push(round(&client, broker, pid).await.throughput);
            let mut second = spawn_host(1);
            round(&client, broker, pid).await; // the second host warms up
            let phase = round(&client, broker, pid).await;
            two.push(phase.throughput);
            broker_us.extend(phase.broker_us_per_msg);
            second.kill().unwrap();
            second.wait().unwrap();
        }
        first.kill().unwrap();
        first.wait().unwrap();
        let ratios: Vec<f64> = two.iter().zip(&one).map(|(t, o)| t / o).collect();
        let (one, two) = (rpc::median(one), rpc::median(two));
        println!("| hosts (one core each) | req/s | vs one host (paired rounds: median, middle half) |");
        println!("| --- | --- | --- |");
        println!("| 1 | {one:.0} | 1.00x |");
        let (low, median, high) = rpc::quartiles(ratios);
        println!("| 2 | {two:.0} | {median:.2}x ({low:.2}-{high:.2}x) |");
        println!(
            "\nnats-server CPU per request with two hosts: {:.1} µs (median)",
            rpc::median(broker_us)
        );
    });
}
