//! JetStream events on the real nats-server: a native async-nats pull
//! consumer vs Berth serving the wasm `probe` guest. Each handles a
//! message by publishing a record of it (`probe.seen.<n>`) and then
//! acking it: the at-least-once event path, acks after the work.
//!
//! Run: `cargo bench -p berth-tests --bench jetstream`.
//!
//! Each consumer runs in a child process (this binary again, `--serve
//! native|berth`) on a stream of its own, with a durable consumer that
//! lets 256 messages be unacked at once (Berth: `max_concurrency = 256`).
//! A round publishes `BERTH_BENCH_LOAD` messages (20,000 by default;
//! JetStream publishes, 256 awaiting their acks at a time) and ends when
//! the consumer has acked every one: throughput is messages over that
//! time, CPU is the consumer process's own per message (user + sys, from
//! `/proc`). The consumers' rounds are interleaved; each figure is the
//! median of `BERTH_BENCH_ROUNDS` rounds (9).

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[path = "support/rpc.rs"]
#[allow(dead_code)] // the RPC benches' measuring loop is not used here
mod rpc;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

const URL: &str = "127.0.0.1:4222";
const IN_FLIGHT: usize = 256;

/// A consumer under test: its stream, the subjects published to it, and
/// its durable consumer's name.
struct Kind {
    name: &'static str,
    serve: &'static str,
    stream: &'static str,
    /// The subject prefix: messages go to `<prefix>.<n>`.
    prefix: &'static str,
}

const KINDS: [Kind; 2] = [
    Kind {
        name: "native async-nats",
        serve: "native",
        stream: "BENCH_JS_NATIVE",
        prefix: "jsbench.native",
    },
    // The probe guest republishes what reaches `probe.event.*`.
    Kind {
        name: "berth + wasm probe",
        serve: "berth",
        stream: "BENCH_JS_BERTH",
        prefix: "probe.event",
    },
];

fn kind(serve: &str) -> &'static Kind {
    KINDS.iter().find(|k| k.serve == serve).expect("--serve native|berth")
}

async fn connect() -> async_nats::Client {
    async_nats::connect(URL)
        .await
        .unwrap_or_else(|e| panic!("NATS not reachable at {URL} ({e}); start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js"))
}

/// The native consumer: reads in batches of 256, publishes the record and
/// acks, message by message, in one task.
async fn serve_native() {
    let k = kind("native");
    let client = connect().await;
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(k.stream).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "native",
            pull::Config {
                durable_name: Some("native".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: IN_FLIGHT as i64,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(IN_FLIGHT)
        .messages()
        .await
        .unwrap();
    println!("ready");
    while let Some(Ok(m)) = messages.next().await {
        let last = m.subject.rsplit('.').next().unwrap_or("").to_owned();
        client
            .publish(format!("probe.seen.{last}"), m.payload.clone())
            .await
            .unwrap();
        m.ack().await.unwrap();
    }
}

/// Berth with the probe guest reading its stream through a durable.
async fn serve_berth() {
    let k = kind("berth");
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let t = berth_tests::start(&format!(
        r#"
        [host]
        name = "berth-bench"
        transport = "nats"
        [transports.nats]
        url = "nats://{URL}"
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "{prefix}.*", stream = "{stream}", durable = "berth" }}]
        publish = ["probe.seen.>"]
        max_concurrency = {IN_FLIGHT}
        "#,
        prefix = k.prefix,
        stream = k.stream,
    ))
    .await
    .expect("host starts");
    println!("ready");
    std::future::pending::<()>().await;
    drop(t);
}

/// A fresh stream for each consumer, made before the consumers start.
async fn make_streams(js: &jetstream::Context) {
    for k in &KINDS {
        let _ = js.delete_stream(k.stream).await;
        js.create_stream(jetstream::stream::Config {
            name: k.stream.to_owned(),
            subjects: vec![format!("{}.*", k.prefix)],
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("stream {}: {e} (another stream on {}.*?)", k.stream, k.prefix));
    }
}

/// One round against `k`: messages per second and the consumer's CPU µs
/// per message.
async fn round(js: &jetstream::Context, k: &Kind, pid: u32, count: usize, body: &bytes::Bytes) -> (f64, f64) {
    let cpu_before = rpc::cpu_seconds(pid);
    let started = Instant::now();
    let mut acks = futures_util::stream::FuturesUnordered::new();
    let mut last = 0;
    let stored = |ack: Option<Result<jetstream::publish::PublishAck, _>>| ack.unwrap().unwrap().sequence;
    for i in 0..count {
        if acks.len() >= IN_FLIGHT {
            last = last.max(stored(acks.next().await));
        }
        let ack = js.publish(format!("{}.{i}", k.prefix), body.clone()).await.unwrap();
        acks.push(std::future::IntoFuture::into_future(ack));
    }
    while !acks.is_empty() {
        last = last.max(stored(acks.next().await));
    }
    let stream = js.get_stream(k.stream).await.unwrap();
    loop {
        let consumer = stream.consumer_info(k.serve).await.unwrap();
        if consumer.ack_floor.stream_sequence >= last {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{}: not all acked",
            k.name
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = rpc::cpu_seconds(pid) - cpu_before;
    (count as f64 / elapsed, cpu * 1e6 / count as f64)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        match args.get(i + 1).map(String::as_str) {
            Some("native") => rt.block_on(serve_native()),
            Some("berth") => rt.block_on(serve_berth()),
            other => panic!("--serve native|berth, not {other:?}"),
        }
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let count = std::env::var("BERTH_BENCH_LOAD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    rt.block_on(async {
        let js = jetstream::new(connect().await);
        make_streams(&js).await;
        let mut children: Vec<_> = KINDS.iter().map(|k| rpc::spawn_responder(k.serve)).collect();
        let body = bytes::Bytes::from(vec![b'x'; 100]);
        // Warm-up: instances made, code paged in.
        for (k, child) in KINDS.iter().zip(&children) {
            round(&js, k, child.id(), 2_000, &body).await;
        }
        let mut figures: Vec<Vec<(f64, f64)>> = vec![Vec::new(); KINDS.len()];
        for _ in 0..rpc::rounds() {
            for ((k, child), figures) in KINDS.iter().zip(&children).zip(&mut figures) {
                figures.push(round(&js, k, child.id(), count, &body).await);
            }
        }
        println!("| consumer | msgs/s | vs native (paired rounds: median, middle half) | CPU µs/msg |");
        println!("| --- | --- | --- | --- |");
        for (k, rounds) in KINDS.iter().zip(&figures) {
            let ratios = rounds.iter().zip(&figures[0]).map(|(r, n)| r.0 / n.0).collect();
            let (low, median, high) = rpc::quartiles(ratios);
            println!(
                "| {} | {:.0} | {:.0}% ({:.0}-{:.0}%) | {:.2} |",
                k.name,
                rpc::median(rounds.iter().map(|r| r.0).collect()),
                100.0 * median,
                100.0 * low,
                100.0 * high,
                rpc::median(rounds.iter().map(|r| r.1).collect()),
            );
        }
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        for k in &KINDS {
            let _ = js.delete_stream(k.stream).await;
        }
    });
}
