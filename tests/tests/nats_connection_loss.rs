//! A host's NATS connection killed while something it sent is still on
//! its way, and what the host does about it.
//!
//! - A JetStream message whose call outlives the connection: what the
//!   call published went out after the message arrived, and may have died
//!   with the old connection's buffers, so the host may not ack it on the
//!   new connection, where the ack would reach the server without them. It
//!   is nak'ed and handled again: at least once, never acked on trust.
//! - A confirmed publish (a key-value change) lost with its connection
//!   fails, where a plain publish would have reported it sent.
//!
//! The host talks to the shared nats-server (127.0.0.1:4222) through a
//! proxy the test controls; the test itself talks to the server directly.

use std::time::{Duration, Instant};

use berth::Message;
use berth::transport::Transport;
use berth::transport::nats::NatsTransport;
use berth_tests::proxy::Proxy;
use berth_tests::{NATS, start};
use futures_util::StreamExt;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_call_outlives_the_connection_is_handled_again_not_acked_on_trust() {
    let nats = berth_tests::nats_client().await;
    let js = async_nats::jetstream::new(nats.clone());
    let u = berth_tests::unique("jr");
    let upstream = NATS.parse().expect("NATS is an address");
    let proxy = Proxy::start(upstream).await;
    let t = start(&format!(
        r#"
        [host]
        transport = "nats"
        [transports.nats]
        url = "{url}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.slow.{u}", stream = "{u}", durable = "d{u}", ack_wait_ms = 5000 }}]
        publish = ["probe.seen.>"]
        timeout_ms = 10000
        "#,
        url = proxy.nats_url(),
    ))
    .await
    .expect("host starts behind the proxy");
    let mut seen = nats.subscribe(format!("probe.seen.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    js.publish(format!("probe.slow.{u}"), "700".into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    // The call is running: the message arrived on the first connection.
    let deadline = Instant::now() + DEADLINE;
    let stats = || t.host.route("probe").expect("route").stats.snapshot();
    while stats().in_flight == 0 {
        assert!(Instant::now() < deadline, "the call never started: {:?}", stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(proxy.kill_connections() > 0, "the host was connected through the proxy");

    // Handled twice: the first call's ack would have gone out on the new
    // connection, so it became a nak.
    for call in 1..=2 {
        let record = tokio::time::timeout(DEADLINE, seen.next())
            .await
            .unwrap_or_else(|_| panic!("record {call} within {DEADLINE:?}"))
            .expect("subscription open");
        assert_eq!(record.payload, "700", "record {call}");
    }
    berth_tests::jetstream::wait_all_acked(&js, &u, &format!("d{u}"), deadline).await;
    let stream = js.get_stream(u.as_str()).await.expect("stream");
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&format!("d{u}")).await.expect("consumer");
    let info = consumer.get_info().await.expect("consumer info");
    assert_eq!(info.delivered.consumer_sequence, 2, "delivered twice: {info:?}");
    assert_eq!(stats().events, 2, "two calls: {:?}", stats());
    let status = t.host.transport().status();
    assert!(
        status.connected && status.reconnects >= 1,
        "the host reconnected: {status:?}"
    );
    let _ = js.delete_stream(&u).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_publish_lost_with_its_connection_fails() {
    let nats = berth_tests::nats_client().await;
    let u = berth_tests::unique("cl");
    let mut direct = nats.subscribe(format!("{u}.>")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let proxy = Proxy::start(NATS.parse().expect("NATS is an address")).await;
    let config = berth::manifest::NatsConfig {
        url: proxy.nats_url(),
        ..Default::default()
    };
    let transport = NatsTransport::connect(&config)
        .await
        .expect("connect through the proxy");

    transport
        .publish_confirmed(Message::new(format!("{u}.one"), "1"))
        .await
        .expect("confirmed on a working connection");
    assert_eq!(next(&mut direct).await.subject.as_str(), format!("{u}.one"));

    // The network holds what the client writes; once the client has
    // written the publish, the connection dies with it.
    proxy.cut();
    let written = transport.client().statistics();
    let connections = written.connects.load(std::sync::atomic::Ordering::Relaxed);
    let before = written.out_messages.load(std::sync::atomic::Ordering::Relaxed);
    let lost = tokio::spawn({
        let transport = transport.clone();
        let message = Message::new(format!("{u}.two"), "2");
        async move { transport.publish_confirmed(message).await }
    });
    let deadline = Instant::now() + DEADLINE;
    while written.out_messages.load(std::sync::atomic::Ordering::Relaxed) == before {
        assert!(Instant::now() < deadline, "the client never wrote the publish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        proxy.kill_connections() > 0,
        "the client was connected through the proxy"
    );
    proxy.heal();
    let error = tokio::time::timeout(DEADLINE, lost)
        .await
        .expect("the confirmation ends in time")
        .expect("no panic")
        .expect_err("a publish lost with its connection is not confirmed");
    assert!(error.to_string().contains("NATS"), "{error}");

    // Once the client is on its next connection, the next one arrives,
    // and it is the first the server passed on since the first: the
    // second was lost.
    while written.connects.load(std::sync::atomic::Ordering::Relaxed) == connections {
        assert!(Instant::now() < deadline, "the client never reconnected");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transport
        .publish_confirmed(Message::new(format!("{u}.three"), "3"))
        .await
        .expect("confirmed after the reconnect");
    assert_eq!(next(&mut direct).await.subject.as_str(), format!("{u}.three"));
}

async fn next(direct: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(DEADLINE, direct.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}
