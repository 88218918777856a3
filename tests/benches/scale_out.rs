//! One host against two on one queue group, with a CPU-bound component,
//! so that the hosts and not the broker are the limit: each host is a
//! child process pinned to one of the machine's cores (`taskset -c N`),
//! serving the `probe` guest's `probe.work` (ten million rounds of
//! xorshift, ~20 ms of CPU: the broker's CPU per request, which shares the
//! machine's two cores, is then a few percent of it), through the machine's nats-server (a queue
//! group) and a private RabbitMQ node whose schedulers do not spin (a
//! quorum queue both hosts consume; the machine's broker is left as it is).
//!
//! Run: `cargo bench -p berth-tests --bench scale_out` (`BERTH_SCALE=nats`
//! or `amqp` runs one). Each figure is the median of `BERTH_BENCH_ROUNDS`
//! rounds (5 by default) of 300 requests, 32 in flight; the one- and
//! two-host rounds interleaved. The broker's own CPU per request is
//! printed too: it says how far the broker is from being the limit.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[allow(dead_code)] // the RPC benches' support; this bench uses its measuring part
#[path = "support/rpc.rs"]
mod rpc;

#[path = "support/amqp_client.rs"]
mod amqp_client;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const URL: &str = "127.0.0.1:4222";
const EXCHANGE: &str = "berth-scale";
const WORK: &str = "10000000";
const REQUESTS: usize = 300;
const IN_FLIGHT: usize = 32;

/// `--serve-host nats|amqp`: one Berth host with the probe on
/// `probe.work`, in the queue group (NATS) or on the quorum queue (AMQP)
/// every such host shares.
async fn serve_host(transport: &str, amqp_url: &str) {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let (broker, subscribe) = match transport {
        "amqp" => (
            format!("[transports.amqp]\nurl = \"{amqp_url}\"\nexchange = \"{EXCHANGE}\""),
            r#"[{ subject = "probe.work", queue_type = "quorum" }]"#,
        ),
        _ => (
            format!("[transports.nats]\nurl = \"nats://{URL}\""),
            r#"["probe.work"]"#,
        ),
    };
    let t = berth_tests::start(&format!(
        r#"
        [host]
        name = "scale-bench"
        transport = "{transport}"
        {broker}
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = {subscribe}
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

/// A host on `transport` pinned to `core`.
fn spawn_host(transport: &str, amqp_url: &str, core: usize) -> Child {
    let mut child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(std::env::current_exe().unwrap())
        .args(["--serve-host", transport, amqp_url])
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

/// One request to `probe.work`, on either broker.
type Call = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn caller(transport: &str, amqp_url: &str) -> Call {
    match transport {
        "amqp" => {
            let client = amqp_client::AmqpClient::new(amqp_url, EXCHANGE).await;
            Arc::new(move || {
                let client = client.clone();
                Box::pin(async move { client.call("probe.work", WORK.as_bytes()).await })
            })
        }
        _ => {
            let client = async_nats::connect(URL).await.unwrap_or_else(|e| {
                panic!("NATS not reachable at {URL} ({e}); start it with: nats-server -a 127.0.0.1 -p 4222 -js")
            });
            Arc::new(move || {
                let client = client.clone();
                Box::pin(async move {
                    let request = async_nats::Request::new()
                        .payload(WORK.into())
                        .timeout(Some(Duration::from_secs(30)));
                    let reply = client.send_request("probe.work", request).await.expect("reply");
                    assert!(
                        reply.headers.is_none_or(|h| h.get("Nats-Service-Error-Code").is_none()),
                        "the work failed"
                    );
                })
            })
        }
    }
}

async fn round(call: &Call, broker: Option<u32>, pid: u32) -> rpc::Phase {
    let call = call.clone();
    rpc::measure(move || call(), IN_FLIGHT, REQUESTS, pid, broker).await
}

/// One host, then two, on `transport`; prints the table.
async fn compare(transport: &str, rounds: usize) {
    let rabbit = (transport == "amqp").then(berth_tests::rabbit_server::RabbitServer::start);
    let amqp_url = rabbit.as_ref().map(|r| r.url()).unwrap_or_default();
    let broker = match &rabbit {
        Some(rabbit) => rabbit.vm_pid(),
        None => rpc::find_process("nats-server"),
    };
    let mut first = spawn_host(transport, &amqp_url, 0);
    let pid = first.id();
    let call = caller(transport, &amqp_url).await;
    round(&call, broker, pid).await; // warm-up
    let (mut one, mut two, mut broker_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        one.push(round(&call, broker, pid).await.throughput);
        let mut second = spawn_host(transport, &amqp_url, 1);
        round(&call, broker, pid).await; // the second host warms up
        let phase = round(&call, broker, pid).await;
        two.push(phase.throughput);
        broker_us.extend(phase.broker_us_per_msg);
        second.kill().unwrap();
        second.wait().unwrap();
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let ratios: Vec<f64> = two.iter().zip(&one).map(|(t, o)| t / o).collect();
    let (one, two) = (rpc::median(one), rpc::median(two));
    println!("\n{transport}:\n");
    println!("| hosts (one core each) | req/s | vs one host (paired rounds: median, middle half) |");
    println!("| --- | --- | --- |");
    println!("| 1 | {one:.0} | 1.00x |");
    let (low, median, high) = rpc::quartiles(ratios);
    println!("| 2 | {two:.0} | {median:.2}x ({low:.2}-{high:.2}x) |");
    if !broker_us.is_empty() {
        println!(
            "\nbroker CPU per request with two hosts: {:.1} µs (median)",
            rpc::median(broker_us)
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-host") {
        let transport = args.get(i + 1).cloned().unwrap_or_else(|| "nats".into());
        let amqp_url = args.get(i + 2).cloned().unwrap_or_default();
        return rt.block_on(serve_host(&transport, &amqp_url));
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let which = std::env::var("BERTH_SCALE").unwrap_or_default();
    for transport in ["nats", "amqp"] {
        if which.is_empty() || which == transport {
            rt.block_on(compare(transport, rounds));
        }
    }
}
