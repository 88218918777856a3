//! A RabbitMQ node restart with 200 events in flight, on a private node
//! (its own ports and data folder; the machine's broker is never touched):
//! the node is killed and started again on the same data; the host
//! reconnects, resubscribes and finishes, and no event is lost. Events are
//! published persistent to the host's durable queue; the records of
//! handled events go to a durable queue of the test's.

mod process;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_tests::rabbit_server::RabbitServer;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use process::Host;

const EVENTS: usize = 200;
const EXCHANGE: &str = "chaos";
const DEADLINE: Duration = Duration::from_secs(120);

/// Connects, retrying while the node comes up.
async fn connect(url: &str) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("the private node never took a connection: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The records queue, bound before anything is published; a consumer on it.
async fn records(connection: &Connection) -> lapin::Consumer {
    let channel = connection.create_channel().await.expect("channel");
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
        .expect("exchange");
    channel
        .queue_declare("seen".into(), QueueDeclareOptions::durable(), FieldTable::default())
        .await
        .expect("records queue");
    channel
        .queue_bind(
            "seen".into(),
            EXCHANGE.into(),
            "probe.seen.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    channel
        .basic_consume(
            "seen".into(),
            "checker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume")
}

/// Reads records until `n` distinct events were seen, acking each.
async fn see(seen: &mut lapin::Consumer, count: &mut HashMap<String, usize>, n: usize, started: Instant) {
    while count.len() < n {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let delivery = tokio::time::timeout(left, seen.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events seen in time", count.len()))
            .expect("the records go on")
            .expect("a record");
        *count.entry(delivery.routing_key.as_str().to_owned()).or_default() += 1;
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restart_loses_nothing() {
    let started = Instant::now();
    let mut node = RabbitServer::start();
    let url = node.url();
    let checker = connect(&url).await;
    let mut seen = records(&checker).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("berth.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\nname = \"chaos\"\ntransport = \"amqp\"\ndata_dir = \"{data}\"\n\
             [transports.amqp]\nurl = \"{url}\"\nexchange = \"{EXCHANGE}\"\n\
             [[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.slow.*\"]\n\
             publish = [\"probe.seen.>\"]\nmax_concurrency = 8\n",
            data = dir.path().display(),
            probe = berth_tests::PROBE,
        ),
    )
    .expect("manifest");
    let host = Host::run(&manifest);
    host.wait_for("host started");

    let channel = checker.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for i in 0..EVENTS {
        let confirm = channel
            .basic_publish(
                EXCHANGE.into(),
                format!("probe.slow.e{i}").as_str().into(),
                BasicPublishOptions::default(),
                b"20",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the node took event {i}");
    }
    let mut count = HashMap::new();
    see(&mut seen, &mut count, 40, started).await;

    drop((seen, channel, checker));
    node = node.restart();
    let checker = connect(&url).await;
    let mut seen = records(&checker).await;
    see(&mut seen, &mut count, EVENTS, started).await;
    let repeated = count.values().filter(|n| **n > 1).count();
    eprintln!(
        "amqp node restart: {} of {EVENTS} events handled, {repeated} twice, in {:?}",
        count.len(),
        started.elapsed()
    );
    assert!(
        count.keys().all(|k| k.starts_with("probe.seen.e")),
        "unexpected records: {count:?}"
    );
    drop(host);
    drop(node);
}
