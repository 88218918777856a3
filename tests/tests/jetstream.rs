//! JetStream subscriptions against the real nats-server (with JetStream)
//! on 127.0.0.1:4222: explicit acks after the call, naks with backoff, and
//! dead-lettering after `max_deliver`. Each test has its own stream and
//! subjects, and deletes the stream at the end.

use std::time::Duration;

use berth_tests::{NATS, TestHost, start};
use futures_util::StreamExt;

async fn host(u: &str, subject: &str, max_deliver: u32) -> TestHost {
    start(&format!(
        r#"
        [host]
        name = "{u}"
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "{subject}", stream = "{u}", dead_letter = "dead.{u}" }}]
        publish = ["probe.seen.>"]
        max_deliver = {max_deliver}
        "#
    ))
    .await
    .expect("host starts with a JetStream subscription")
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message within 10 s")
        .expect("subscription open")
}

async fn delete_stream(nats: &async_nats::Client, name: &str) {
    let _ = async_nats::jetstream::new(nats.clone()).delete_stream(name).await;
}

#[tokio::test]
async fn a_message_that_fails_twice_succeeds_on_its_third_delivery() {
    let nats = berth_tests::nats_client().await;
    let u = berth_tests::unique("t");
    let subject = format!("probe.flaky3.{u}");
    let t = host(&u, &subject, 5).await;
    let mut seen = nats.subscribe(format!("probe.seen.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let js = async_nats::jetstream::new(nats.clone());
    // A publisher's own `berth-attempt` (one passed on from a delivery it
    // handled) does not count: trusted, the probe would take this for a
    // third delivery and succeed at once.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("berth-attempt", "3");
    js.publish_with_headers(subject, headers, "third time".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let m = next(&mut seen).await;
    assert_eq!(m.payload, "third time");
    let stats = &t.host.route("probe").expect("route").stats;
    assert!(
        stats.wait_until(Duration::from_secs(5), |s| s.events == 3).await,
        "{:?}",
        stats.snapshot()
    );
    assert_eq!(stats.snapshot().errors, 2, "two failed deliveries, then success");
    delete_stream(&nats, &u).await;
}

#[tokio::test]
async fn a_message_that_always_fails_lands_in_the_dead_letter_subject_after_max_deliver() {
    let nats = berth_tests::nats_client().await;
    let u = berth_tests::unique("t");
    let subject = format!("probe.fail.{u}");
    let t = host(&u, &subject, 3).await;
    let mut dead = nats.subscribe(format!("dead.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let js = async_nats::jetstream::new(nats.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-order", "17");
    js.publish_with_headers(subject.clone(), headers, "doomed".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let m = next(&mut dead).await;
    assert_eq!(m.payload, "doomed");
    let header = |name: &str| m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.to_string());
    assert_eq!(
        header("x-order").as_deref(),
        Some("17"),
        "dead letters keep their headers"
    );
    assert_eq!(header("berth-subject").as_deref(), Some(subject.as_str()));
    let reason = header("berth-error").expect("reason");
    assert!(
        reason.contains("failed on each of 3 deliveries") && reason.contains("probe always fails"),
        "{reason}"
    );
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert_eq!((stats.events, stats.errors), (3, 3), "exactly max_deliver tries");

    // A rejected event (4xx) is dead-lettered on its first delivery.
    drop(t);
    let reject = format!("probe.reject.{u}");
    let u2 = berth_tests::unique("t");
    let t = start(&format!(
        r#"
        [host]
        name = "{u2}"
        transport = "nats"
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "{reject}", stream = "{u2}", dead_letter = "dead.{u}" }}]
        "#
    ))
    .await
    .expect("start");
    js.publish(reject, "bad".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let m = next(&mut dead).await;
    assert!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("berth-error"))
            .is_some_and(|r| r.as_str().contains("rejects"))
    );
    assert_eq!(t.host.route("probe").expect("route").stats.snapshot().events, 1);
    delete_stream(&nats, &u).await;
    delete_stream(&nats, &u2).await;
}

#[tokio::test]
async fn a_stream_on_a_transport_without_jetstream_is_refused_by_name() {
    let err = match start(
        r#"
        [[components]]
        name = "probe"
        wasm = "{probe}"
        subscribe = [{ subject = "probe.event.*", stream = "EVENTS" }]
        "#,
    )
    .await
    {
        Ok(_) => panic!("must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("stream `EVENTS`") && err.contains("memory transport"),
        "{err}"
    );
}

#[tokio::test]
async fn the_ack_wait_follows_the_call_timeout_or_the_manifest_and_the_server_never_drops_a_message() {
    let nats = berth_tests::nats_client().await;
    let js = async_nats::jetstream::new(nats.clone());
    let (u1, u2) = (berth_tests::unique("t"), berth_tests::unique("u"));
    let component = |u: &str, options: &str, extra: &str| {
        format!(
            "[[components]]\nname = \"p{u}\"\nwasm = \"{{probe}}\"\n\
             subscribe = [{{ subject = \"probe.event.{u}\", stream = \"{u}\", durable = \"d{u}\"{options} }}]\n{extra}\n"
        )
    };
    let _t = start(&format!(
        "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\"\n{}{}",
        component(&u1, "", "timeout_ms = 2000"),
        component(&u2, ", ack_wait_ms = 750", "")
    ))
    .await
    .expect("start");
    for (u, ack_wait) in [(&u1, Duration::from_secs(5)), (&u2, Duration::from_millis(750))] {
        let mut stream = js.get_stream(u.as_str()).await.expect("stream");
        let consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&format!("d{u}")).await.expect("consumer");
        let config = &consumer.cached_info().config;
        assert_eq!(config.ack_wait, ack_wait, "{u}");
        assert_eq!(
            config.max_deliver, -1,
            "Berth dead-letters; the server gives nothing up"
        );
        let _ = stream.info().await;
        delete_stream(&nats, u).await;
    }
}

#[tokio::test]
async fn a_call_longer_than_the_ack_wait_is_reported_in_progress_and_delivered_once() {
    let nats = berth_tests::nats_client().await;
    let js = async_nats::jetstream::new(nats.clone());
    let u = berth_tests::unique("t");
    let t = start(&format!(
        r#"
        [host]
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.slow.{u}", stream = "{u}", durable = "d{u}", ack_wait_ms = 600 }}]
        publish = ["probe.seen.>"]
        timeout_ms = 10000
        "#
    ))
    .await
    .expect("host starts");
    let mut seen = nats.subscribe(format!("probe.seen.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    // Three ack waits long: without in-progress reports the server would
    // deliver it again (to this host, which has room) twice meanwhile.
    js.publish(format!("probe.slow.{u}"), "1800".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    assert_eq!(next(&mut seen).await.payload, "1800");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    berth_tests::jetstream::wait_all_acked(&js, &u, &format!("d{u}"), deadline).await;
    let stream = js.get_stream(u.as_str()).await.expect("stream");
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&format!("d{u}")).await.expect("consumer");
    let info = consumer.get_info().await.expect("consumer info");
    assert_eq!(info.delivered.consumer_sequence, 1, "delivered once: {info:?}");
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert_eq!(stats.events, 1, "one call: {stats:?}");
    delete_stream(&nats, &u).await;
}
