//! A JetStream message whose call outlives the host's connection: what the
//! call published went out after the message arrived, and may have died
//! with the old connection's buffers, so the host may not ack it on the
//! new connection, where the ack would reach the server without them. It
//! is nak'ed and handled again: at least once, never acked on trust.
//!
//! The host talks to the shared nats-server (127.0.0.1:4222) through a
//! proxy the test controls, which kills the connection mid-call; the test
//! itself talks to the server directly.

use std::time::{Duration, Instant};

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
