//! AMQP RPC echo on the real RabbitMQ: a native lapin responder vs Berth
//! serving the wasm `echo` guest, under the same load generator.
//!
//! Run: `cargo bench -p berth-tests --bench amqp_rpc`.
//!
//! Each responder runs in a child process (this binary, started again with
//! `--serve native|berth|pipelined|host-only`), so the CPU time it used
//! (user + sys, from `/proc/<pid>/stat`) divided by the requests it
//! answered is the host's own cost per message, apart from the load
//! generator's. The load generator keeps 1, 64 or 256 requests in flight
//! over one connection with an exclusive reply queue; bodies are 100
//! bytes. Each figure is the median of `rpc::ROUNDS` rounds (9; `BERTH_BENCH_ROUNDS=N` to change), the
//! responders' rounds interleaved.
//!
//! The native responder does what Berth does per delivery: one task per
//! delivery, the reply published with a publisher confirm awaited, then the
//! ack. Prefetch is 256 for all. A third responder, `pipelined`, is the
//! least lapin can cost (see `serve_pipelined`). A fourth, `host-only`, is
//! Berth with a native Rust echo handler instead of the guest: the
//! difference to it is the wasm call.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[path = "support/rpc.rs"]
mod rpc;

#[path = "support/amqp_client.rs"]
mod amqp_client;

use amqp_client::AmqpClient;

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "berth-bench";

async fn connect() -> Connection {
    Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ not reachable at 127.0.0.1:5672 ({e}); start it with: rabbitmq-server -detached")
        })
}

/// A consumer on a fresh queue `berth-bench.<kind>` bound to `<kind>.#`
/// (prefetch 256), and a publisher channel with confirms.
struct Native {
    _connection: Connection,
    channel: Channel,
    publisher: Channel,
    consumer: lapin::Consumer,
}

async fn native(kind: &str) -> Native {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = format!("berth-bench.{kind}");
    let queue = queue.as_str();
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel.queue_purge(queue.into(), Default::default()).await.unwrap();
    channel
        .queue_bind(
            queue.into(),
            EXCHANGE.into(),
            format!("{kind}.#").as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel.basic_qos(256, BasicQosOptions::default()).await.unwrap();
    let publisher = connection.create_channel().await.unwrap();
    publisher.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    Native {
        _connection: connection,
        channel,
        publisher,
        consumer,
    }
}

/// The native responder the issue describes: task per delivery, the reply
/// confirmed, then the delivery acked.
async fn serve_native() {
    let Native {
        publisher,
        mut consumer,
        ..
    } = native("native").await;
    println!("ready");
    while let Some(Ok(d)) = consumer.next().await {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let (Some(reply_to), Some(id)) = (d.properties.reply_to().clone(), d.properties.correlation_id().clone())
            else {
                return;
            };
            let props = BasicProperties::default().with_correlation_id(id);
            let confirm = publisher
                .basic_publish("".into(), reply_to, BasicPublishOptions::default(), &d.data, props)
                .await
                .unwrap();
            confirm.await.unwrap();
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
        });
    }
}

/// The least a lapin responder can cost, as a floor for both others: one
/// task for everything (deliveries read, replies and their confirms
/// awaited together, so lapin's I/O thread wakes that one task for a batch
/// of completions) and one `multiple` ack for every run of settled
/// deliveries, sent without waiting for it to be written.
async fn serve_pipelined() {
    use futures_util::FutureExt;
    let Native {
        channel,
        publisher,
        mut consumer,
        ..
    } = native("pipelined").await;
    println!("ready");
    let mut replying = futures_util::stream::FuturesUnordered::new();
    let mut unsettled = std::collections::BTreeSet::new();
    let (mut acked, mut newest) = (0, 0);
    loop {
        tokio::select! {
            d = consumer.next() => {
                let Some(Ok(d)) = d else { break };
                unsettled.insert(d.delivery_tag);
                newest = d.delivery_tag;
                let publisher = publisher.clone();
                replying.push(async move {
                    let props = BasicProperties::default()
                        .with_correlation_id(d.properties.correlation_id().clone().unwrap());
                    let reply_to = d.properties.reply_to().clone().unwrap();
                    let confirm = publisher
                        .basic_publish("".into(), reply_to, BasicPublishOptions::default(), &d.data, props)
                        .await
                        .unwrap();
                    confirm.await.unwrap();
                    d.delivery_tag
                });
            }
            Some(tag) = replying.next(), if !replying.is_empty() => {
                unsettled.remove(&tag);
                while let Some(Some(tag)) = replying.next().now_or_never() {
                    unsettled.remove(&tag);
                }
                let below = unsettled.first().map_or(newest, |oldest| oldest - 1);
                if below > acked {
                    // The frame is queued on the first poll; the write is
                    // not waited for.
                    let multiple = BasicAckOptions { multiple: true };
                    let _ = channel.basic_ack(below, multiple).now_or_never();
                    acked = below;
                }
            }
        }
    }
}

/// Berth with the echo guest on `<kind>.#`, queue `berth-bench.<kind>`.
async fn serve_berth(options: rpc::Berth) {
    let rpc::Berth {
        kind,
        reply_headers,
        max_batch,
        guest,
        mode,
        coalesce_acks,
    } = options;
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let t = berth_tests::start(&format!(
        r#"
        [host]
        name = "berth-bench"
        transport = "amqp"
        reply_headers = {reply_headers}
        [transports.amqp]
        url = "{URL}"
        exchange = "{EXCHANGE}"
        coalesce_acks = {coalesce_acks}
        [[components]]
        name = "{kind}"
        wasm = "{guest}"
        subscribe = ["{kind}.>"]
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

/// Berth with a native Rust echo handler on `host-only.#`, queue
/// `berth-bench.host-only`.
async fn serve_host_only() {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let config = berth::manifest::AmqpConfig {
        url: URL.to_owned(),
        exchange: EXCHANGE.to_owned(),
        ..Default::default()
    };
    let amqp = berth::transport::amqp::AmqpTransport::connect(&config).await.unwrap();
    let (pattern, group) = ("host-only.>", "berth-bench.host-only");
    let subscription = berth::transport::Transport::subscribe(&amqp, rpc::host_only_options(pattern, group))
        .await
        .unwrap();
    rpc::serve_host_only("amqp", subscription, pattern).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args().collect();
    if args.windows(2).any(|w| w[0] == "--serve" && w[1] == "pipelined") {
        rt.block_on(serve_pipelined());
        return;
    }
    if rpc::child_mode(&rt, serve_native, serve_berth, serve_host_only) {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--load") {
        // `--load KIND`: 256 in flight against a responder started
        // separately (`--serve KIND`), e.g. to profile it.
        let key = format!("{}.echo", args.get(i + 1).map_or("berth", String::as_str));
        rt.block_on(async {
            let client = AmqpClient::new(URL, EXCHANGE).await;
            let body: Arc<[u8]> = vec![b'x'; 100].into();
            let call = move || {
                let (client, body, key) = (client.clone(), body.clone(), key.clone());
                async move { client.call(&key, &body).await }
            };
            let phase = rpc::measure(call, 256, 60_000, std::process::id(), None).await;
            println!("{:.0} req/s", phase.throughput);
        });
        return;
    }
    rt.block_on(async {
        let client = AmqpClient::new(URL, EXCHANGE).await;
        let body: Arc<[u8]> = vec![b'x'; 100].into();
        let responders = [
            ("native lapin", "native", "native.echo"),
            ("berth + wasm echo", "berth", "berth.echo"),
            ("berth + wasm echo, max_batch = 1", "berth-single", "berth-single.echo"),
            (
                "berth + wasm echo, coalesce_acks = false",
                "berth-each-ack",
                "berth-each-ack.echo",
            ),
            ("native lapin, one task, batched acks", "pipelined", "pipelined.echo"),
            ("berth + native Rust echo (no wasm)", "host-only", "host-only.echo"),
        ];
        // `BERTH_BENCH_ONLY=pipelined,berth,berth-each-ack` runs those alone
        // (the first is the baseline the others are measured against).
        let only = std::env::var("BERTH_BENCH_ONLY").ok();
        let responders = responders
            .into_iter()
            .filter(|(_, kind, _)| only.as_deref().is_none_or(|o| o.split(',').any(|k| k == *kind)))
            .map(|(name, kind, key)| {
                let (client, body) = (client.clone(), body.clone());
                let call = move || {
                    let (client, body) = (client.clone(), body.clone());
                    async move { client.call(key, &body).await }
                };
                (name, kind, call)
            })
            .collect();
        let rows = rpc::run_responders(responders, [2_000, 15_000, 20_000], "beam.smp").await;
        let cleanup_connection = connect().await;
        let cleanup = cleanup_connection.create_channel().await.unwrap();
        for q in [
            "berth-bench.native",
            "berth-bench.pipelined",
            "berth-bench.berth",
            "berth-bench.berth-single",
            "berth-bench.berth-each-ack",
            "berth-bench.host-only",
        ] {
            let _ = cleanup.queue_delete(q.into(), QueueDeleteOptions::default()).await;
        }
        rpc::print(&rows);
    });
}
