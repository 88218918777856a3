//! 1,000 events across a forced close of every RabbitMQ connection
//! (`rabbitmqctl close_all_connections`): the host reconnects, declares its
//! queues again and resumes consuming; deliveries in flight at the close
//! are redelivered; every event is handled at least once and none is lost.
//!
//! Its own test binary, because closing every connection would break the
//! other AMQP tests if they ran beside it (cargo runs test binaries one at a
//! time).

mod rabbit;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_tests::start;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use rabbit::{Rabbit, connect};
use tokio::sync::Notify;

const EVENTS: usize = 1000;
/// Bounds the whole run; a healthy one takes a few seconds.
const DEADLINE: Duration = Duration::from_secs(90);

async fn publisher_channel() -> (Connection, Channel) {
    let connection = connect().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    (connection, channel)
}

async fn close_all_connections() {
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new("rabbitmqctl")
            .args(["close_all_connections", "berth reconnect test"])
            .output()
    })
    .await
    .expect("join")
    .expect("rabbitmqctl runs (it is installed with RabbitMQ)");
    assert!(
        out.status.success(),
        "rabbitmqctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_thousand_events_survive_a_forced_connection_close() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let t = start(&format!(
        r#"
        {host}

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["probe.event.*"]
        publish = ["probe.seen.>"]
        max_concurrency = 8
        "#,
        host = rabbit.host_toml(&service)
    ))
    .await
    .expect("host starts");

    // A durable results queue: it must outlive the close as the host's does.
    let results = format!("{}.results", rabbit.exchange);
    rabbit
        .channel
        .queue_declare(
            results.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .expect("results queue");
    rabbit
        .channel
        .queue_bind(
            results.as_str().into(),
            rabbit.exchange.as_str().into(),
            "probe.seen.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind results");

    // Publish at a steady pace, re-sending whatever was not confirmed when
    // the connection went; close every connection a fifth of the way in.
    let halfway = Arc::new(Notify::new());
    let closer = tokio::spawn({
        let halfway = halfway.clone();
        async move {
            halfway.notified().await;
            close_all_connections().await;
        }
    });
    let started = Instant::now();
    let (mut _connection, mut channel) = publisher_channel().await;
    let mut reconnects = 0;
    for i in 0..EVENTS {
        if i == EVENTS / 5 {
            halfway.notify_one();
        }
        loop {
            assert!(started.elapsed() < DEADLINE, "publishing took longer than {DEADLINE:?}");
            let sent = async {
                channel
                    .basic_publish(
                        rabbit.exchange.as_str().into(),
                        format!("probe.event.{i}").into(),
                        BasicPublishOptions::default(),
                        i.to_string().as_bytes(),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?
                    .await
            };
            match sent.await {
                Ok(c) if c.is_ack() => break,
                _ => {
                    reconnects += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    (_connection, channel) = publisher_channel().await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    closer.await.expect("closer ran");
    assert!(
        reconnects > 0,
        "the close happened while events were still being published"
    );

    // Every event's result arrives (duplicates are allowed: at least once).
    let reader_connection = connect().await;
    let reader = reader_connection.create_channel().await.expect("channel");
    let mut consumer = reader
        .basic_consume(
            results.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume results");
    let mut seen = HashSet::new();
    while seen.len() < EVENTS {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, consumer.next()).await {
            Ok(Some(Ok(d))) => {
                seen.insert(String::from_utf8_lossy(&d.data).into_owned());
            }
            other => panic!(
                "{} of {EVENTS} events handled when results stopped: {other:?}",
                seen.len()
            ),
        }
    }
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert!(stats.events >= EVENTS as u64, "handled {} events", stats.events);
    assert_eq!(rabbit_after_close(&rabbit).await, 0, "nothing was dead-lettered");
    let status = t.host.transport().status();
    assert!(
        status.connected && status.reconnects >= 1,
        "the host counted its reconnect: {status:?}"
    );
    eprintln!(
        "publisher reconnected {reconnects} time(s); the host handled {} deliveries for {EVENTS} events",
        stats.events
    );
}

/// The dead-letter count, on a fresh connection (the test's own first one
/// was closed too).
async fn rabbit_after_close(rabbit: &Rabbit) -> u32 {
    let connection = connect().await;
    let channel = connection.create_channel().await.expect("channel");
    let fresh = Rabbit {
        connection,
        channel,
        exchange: rabbit.exchange.clone(),
    };
    let dead = fresh.dead_letters().await;
    fresh
        .cleanup(&[
            &format!("{}.probe", rabbit.service()),
            &format!("{}.results", rabbit.exchange),
        ])
        .await;
    dead
}
