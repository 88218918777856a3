//! NATS request/reply echo on the real nats-server: a native async-nats
//! responder vs Berth serving the wasm `echo` guest, under the same load
//! generator.
//!
//! Run: `cargo bench -p berth-tests --bench nats_rpc`.
//!
//! Each responder runs in a child process (this binary, started again with
//! `--serve native|berth|berth-single|berth-headers|host-only`), so its CPU time (user +
//! sys, from `/proc`) divided by the requests it answered is the
//! responder's own cost per message. The load generator keeps 1, 64 or 256 requests in flight on
//! one client; bodies are 100 bytes; each figure is the median of
//! `rpc::ROUNDS` rounds (9; `BERTH_BENCH_ROUNDS=N` to change), the responders' rounds interleaved.
//! The native responder answers inline from its subscription, the fastest
//! way async-nats allows. `host-only` is Berth with a native Rust echo
//! handler instead of the guest: the difference to it is the wasm call,
//! the difference between it and native is the rest of the host.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[path = "support/rpc.rs"]
mod rpc;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

const URL: &str = "127.0.0.1:4222";

async fn connect() -> async_nats::Client {
    async_nats::connect(URL)
        .await
        .unwrap_or_else(|e| panic!("NATS not reachable at {URL} ({e}); start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js"))
}

async fn serve_native() {
    let client = connect().await;
    let mut requests = client.queue_subscribe("bench.native.>", "native".into()).await.unwrap();
    client.flush().await.unwrap();
    println!("ready");
    while let Some(m) = requests.next().await {
        if let Some(reply) = m.reply {
            client.publish(reply, m.payload).await.unwrap();
        }
    }
}

/// Berth with the echo guest on `bench.<kind>.>`, so that several
/// configurations can run side by side.
async fn serve_berth(options: rpc::Berth) {
    let rpc::Berth {
        kind,
        reply_headers,
        max_batch,
        guest,
        mode,
        ..
    } = options;
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let t = berth_tests::start(&format!(
        r#"
        [host]
        name = "berth-bench"
        transport = "nats"
        reply_headers = {reply_headers}
        [transports.nats]
        url = "nats://{URL}"
        [[components]]
        name = "echo"
        wasm = "{guest}"
        subscribe = ["bench.{kind}.>"]
        max_concurrency = 256
        max_batch = {max_batch}
        instance_mode = "{mode}"
        "#
    ))
    .await
    .expect("host starts");
    println!("ready");
    std::future::pending::<()>().await;
    drop(t);
}

/// Berth with a native Rust echo handler on `bench.host-only.>`.
async fn serve_host_only() {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let config = berth::manifest::NatsConfig {
        url: format!("nats://{URL}"),
        ..Default::default()
    };
    let nats = berth::transport::nats::NatsTransport::connect(&config).await.unwrap();
    let (pattern, group) = ("bench.host-only.>", "berth-bench.host-only");
    let subscription = nats
        .subscribe_core(rpc::host_only_options(pattern, group))
        .await
        .unwrap();
    rpc::serve_host_only("nats", subscription, pattern).await;
}

/// One request, as the load generator sends it.
async fn echo(client: async_nats::Client, subject: Arc<str>, body: bytes::Bytes) {
    let request = async_nats::Request::new()
        .payload(body)
        .timeout(Some(Duration::from_secs(10)));
    client.send_request(subject.to_string(), request).await.expect("reply");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if rpc::child_mode(&rt, serve_native, serve_berth, serve_host_only) {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--load") {
        // `--load KIND`: 256 in flight against a responder started
        // separately (`--serve KIND`), e.g. to profile it;
        // `BERTH_BENCH_LOAD=N` requests (300,000 by default).
        let subject = format!("bench.{}.echo", args.get(i + 1).map_or("berth", String::as_str));
        let total = std::env::var("BERTH_BENCH_LOAD")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(300_000);
        rt.block_on(async {
            let client = connect().await;
            let body = bytes::Bytes::from(vec![b'x'; 100]);
            let subject: Arc<str> = subject.into();
            let call = move || echo(client.clone(), subject.clone(), body.clone());
            let phase = rpc::measure(call, 256, total, std::process::id(), None).await;
            println!("{:.0} req/s", phase.throughput);
        });
        return;
    }
    rt.block_on(async {
        let client = connect().await;
        let body = bytes::Bytes::from(vec![b'x'; 100]);
        let responders = [
            ("native async-nats", "native"),
            ("berth + wasm echo", "berth"),
            ("berth + wasm echo, max_batch = 1", "berth-single"),
            ("berth + wasm echo, reply_headers = true", "berth-headers"),
            ("berth + wasmCloud messaging echo", "berth-wasmcloud"),
            ("berth + wasm echo, instance_mode = \"fresh\"", "berth-fresh"),
            ("berth + native Rust echo (no wasm)", "host-only"),
        ];
        // `BERTH_BENCH_ONLY=native,berth-fresh` runs those alone (the first
        // is the baseline the others are measured against).
        let only = std::env::var("BERTH_BENCH_ONLY").ok();
        let responders = responders
            .into_iter()
            .filter(|(_, kind)| only.as_deref().is_none_or(|o| o.split(',').any(|k| k == *kind)))
            .map(|(name, kind)| {
                let subject: Arc<str> = format!("bench.{kind}.echo").into();
                let (client, body) = (client.clone(), body.clone());
                let call = move || echo(client.clone(), subject.clone(), body.clone());
                (name, kind, call)
            })
            .collect();
        let rows = rpc::run_responders(responders, [2_000, 60_000, 150_000], "nats-server").await;
        rpc::print(&rows);
    });
}
