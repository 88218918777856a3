//! Middleware in front of subscriptions, on the real nats-server on
//! 127.0.0.1:4222: a NATS request a link refuses is answered with its
//! error and never reaches the handler; JetStream events a link refuses
//! are dead-lettered with its reason, those it passes are handled and
//! acked once.

use std::time::Duration;

use berth_tests::{NATS, TestHost, start, unique};

/// A host on NATS named `service` whose echo subscribes to `subscription`
/// (a subscription table's fields before `middleware`) behind `strict`,
/// a gatekeeper that refuses what has no known token.
fn manifest(service: &str, subscription: &str) -> String {
    format!(
        r#"
        [host]
        name = "{service}"
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = [{{ subject = {subscription}, middleware = ["strict"] }}]

        [[components]]
        name = "strict"
        wasm = "{{gatekeeper}}"
        middleware = true
        [components.config]
        required = true
        users = {{ "t-ann" = "ann" }}
        "#
    )
}

fn echo_requests(t: &TestHost) -> u64 {
    t.host.route("echo").expect("echo").stats.snapshot().requests
}

#[tokio::test]
async fn middleware_sits_in_front_of_a_nats_subscription() {
    let prefix = unique("mw");
    let t = start(&manifest(&prefix, &format!(r#""{prefix}.>""#)))
        .await
        .expect("host starts on NATS");
    let nats = berth_tests::nats_client().await;
    let subject = format!("{prefix}.hello");

    let refused = nats
        .request(subject.clone(), "no token".into())
        .await
        .expect("an answer");
    let headers = refused.headers.clone().unwrap_or_default();
    assert_eq!(headers.get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("401"));
    assert_eq!(echo_requests(&t), 0, "the handler saw a refused message");

    let mut signed = async_nats::HeaderMap::new();
    signed.insert("authorization", "Bearer t-ann");
    let passed = nats
        .request_with_headers(subject.clone(), signed, "hello".into())
        .await
        .expect("an answer");
    let headers = passed.headers.clone().unwrap_or_default();
    assert_eq!(passed.payload.as_ref(), b"hello");
    assert_eq!(headers.get("x-user").map(|v| v.as_str()), Some("ann"));
    assert_eq!(headers.get("berth-guard").map(|v| v.as_str()), Some("session"));
    assert_eq!(echo_requests(&t), 1);
    let strict = t.host.route("strict").expect("strict").stats.snapshot();
    assert_eq!(
        (strict.requests, strict.errors),
        (2, 1),
        "the link counts its own calls"
    );
}

#[tokio::test]
async fn events_a_middleware_refuses_are_dead_lettered_and_those_it_passes_are_handled_and_acked() {
    let u = unique("mwjs");
    let subject = format!("{u}.event");
    let stream = format!(r#""{subject}", stream = "{u}", dead_letter = "dead.{u}""#);
    let t = start(&manifest(&u, &stream))
        .await
        .expect("host starts with a JetStream subscription");
    let nats = berth_tests::nats_client().await;
    let mut dead = nats.subscribe(format!("dead.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let js = async_nats::jetstream::new(nats.clone());
    js.publish(subject.clone(), "unsigned".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let mut signed = async_nats::HeaderMap::new();
    signed.insert("authorization", "Bearer t-ann");
    js.publish_with_headers(subject.clone(), signed, "signed".into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    let refused = tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut dead))
        .await
        .expect("a dead letter within 10 s")
        .expect("subscription open");
    assert_eq!(refused.payload.as_ref(), b"unsigned");
    let reason = refused
        .headers
        .as_ref()
        .and_then(|h| h.get("berth-error"))
        .map(|v| v.to_string());
    assert!(
        reason.is_some_and(|r| r.contains("a bearer token is required")),
        "{refused:?}"
    );
    let echo = &t.host.route("echo").expect("echo").stats;
    assert!(
        echo.wait_until(Duration::from_secs(5), |s| s.events == 1).await,
        "{:?}",
        echo.snapshot()
    );
    let strict = &t.host.route("strict").expect("strict").stats;
    assert!(strict.wait_until(Duration::from_secs(5), |s| s.requests == 2).await);
    // Settled once each: the broker holds neither (its state, polled
    // until the acks land, within 5 s).
    let stream = js.get_stream(&u).await.expect("stream");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&format!("{u}_echo"))
        .await
        .expect("the durable consumer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info = consumer.info().await.expect("consumer info").clone();
        if (info.num_ack_pending, info.num_pending) == (0, 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still unsettled: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(echo.snapshot().events, 1, "redelivered to the handler");
    let _ = js.delete_stream(&u).await;
}
