//! The AMQP transport against the real RabbitMQ on 127.0.0.1:5672
//! (guest/guest): RPC from a plain lapin client, wildcard bindings,
//! competing hosts, retry then dead-letter, binary bodies and headers,
//! guests' confirmed publishes and requests, and clear start errors.
//!
//! Every test uses an exchange of its own, so tests never see each other's
//! messages, and deletes what it declared at the end.

mod rabbit;

use std::time::Duration;

use berth::transport::TransportError;
use berth::{CallError, ErrorKind};
use berth_tests::{TestHost, start};
use rabbit::{AMQP_URL, Rabbit, header};

fn manifest(rabbit: &Rabbit, service: &str) -> String {
    format!(
        r#"
        {host}

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["echo.>", "star.*.x"]

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["probe.event.*", "probe.flaky.*", "probe.fail.*", "probe.reject.*", "probe.request", "probe.publish", "probe.error"]
        publish = ["probe.seen.>", "out.>"]
        request = ["echo.>", "nobody.>"]
        "#,
        host = rabbit.host_toml(service)
    )
}

async fn host(rabbit: &Rabbit, service: &str) -> TestHost {
    start(&manifest(rabbit, service)).await.expect("host starts on AMQP")
}

#[tokio::test]
async fn rpc_from_a_plain_lapin_client_round_trips_bytes_and_headers() {
    let rabbit = Rabbit::new().await;
    let t = host(&rabbit, &rabbit.service()).await;
    let body: Vec<u8> = (0..=255u8).chain([0xff, 0xfe]).collect();
    let reply = rabbit
        .call("echo.bin", &body, &[("x-trace", "abc"), ("berth-attempt", "7")])
        .await;
    assert_eq!(reply.data, body, "binary body unchanged");
    assert_eq!(header(&reply, "x-trace").as_deref(), Some("abc"));
    // The echo sends back the headers it saw: the host's count of this
    // delivery, not the one its publisher put on it.
    assert_eq!(header(&reply, "berth-attempt").as_deref(), Some("1"));
    assert_eq!(header(&reply, "Berth-Component").as_deref(), Some("echo"));
    // Empty bodies and invalid UTF-8 are bodies like any other.
    assert_eq!(rabbit.call("echo.empty", b"", &[]).await.data, b"");
    assert_eq!(t.host.route("echo").expect("route").stats.snapshot().requests, 2);
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn errors_carry_service_error_headers_and_a_json_body() {
    let rabbit = Rabbit::new().await;
    let _t = host(&rabbit, &rabbit.service()).await;
    // probe.request with a body that is not a subject: the guest's request
    // fails and it says how; a request to an unrouted key meets no queue.
    let reply = rabbit.call("probe.request", b"nobody.there", &[]).await;
    assert_eq!(
        String::from_utf8_lossy(&reply.data),
        "error ErrorKind::NoResponders 503"
    );
    let reply = rabbit.call("probe.request", b"echo.from-guest", &[]).await;
    assert_eq!(reply.data, b"from probe", "a guest's request over AMQP got the echo");
    // A handler error: the Nats-Service-Error headers and the JSON body.
    let reply = rabbit.call("probe.error", b"422", &[]).await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code").as_deref(), Some("422"));
    assert!(header(&reply, "Nats-Service-Error").is_some_and(|m| m.contains("the probe failed")));
    let body: serde_json::Value = serde_json::from_slice(&reply.data).expect("JSON error body");
    assert_eq!(
        (body["code"].as_u64(), body["name"].as_str()),
        (Some(422), Some("Probe Error"))
    );
    assert!(
        body["data"]["base64"].is_string(),
        "binary error data is carried: {body}"
    );
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn wildcard_bindings_route_star_and_hash_forms() {
    let rabbit = Rabbit::new().await;
    let t = host(&rabbit, &rabbit.service()).await;
    assert_eq!(t.ask("echo.a.b.c", "deep").await, "deep", "`echo.>` binds as `echo.#`");
    assert_eq!(t.ask("star.a.x", "one").await, "one", "`star.*.x` takes one word");
    for unrouted in ["star.a.b.x", "star.x", "other.a"] {
        let err = t.request(unrouted, "none").await.expect_err("no queue is bound for it");
        assert!(matches!(err, TransportError::NoResponders(_)), "{unrouted}: {err:?}");
    }
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn two_hosts_on_one_queue_compete_and_handle_each_message_once() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let (a, b) = (host(&rabbit, &service).await, host(&rabbit, &service).await);
    let calls = (0..60).map(|i| {
        let rabbit = &rabbit;
        async move {
            (
                i,
                rabbit.call(&format!("echo.{i}"), i.to_string().as_bytes(), &[]).await,
            )
        }
    });
    for (i, reply) in futures_util::future::join_all(calls).await {
        assert_eq!(reply.data, i.to_string().as_bytes());
    }
    let count = |t: &TestHost| t.host.route("echo").expect("route").stats.snapshot().requests;
    let (na, nb) = (count(&a), count(&b));
    assert_eq!(na + nb, 60, "each request handled exactly once");
    assert!(na > 0 && nb > 0, "both hosts took work: {na} / {nb}");
    rabbit
        .cleanup(&[&format!("{service}.echo"), &format!("{service}.probe")])
        .await;
}

#[tokio::test]
async fn a_failed_event_is_retried_once_and_then_succeeds() {
    let rabbit = Rabbit::new().await;
    let t = host(&rabbit, &rabbit.service()).await;
    let mut seen = rabbit.bind("probe.seen.#").await;
    rabbit.publish("probe.flaky.7", b"second time lucky", &[]).await;
    let d = rabbit.next(&mut seen).await;
    assert_eq!(d.data, b"second time lucky");
    assert_eq!(d.routing_key.as_str(), "probe.seen.7");
    // The guest published before its call ended; wait for the count.
    let stats = &t.host.route("probe").expect("route").stats;
    assert!(
        stats.wait_until(Duration::from_secs(5), |s| s.events == 2).await,
        "{:?}",
        stats.snapshot()
    );
    assert_eq!(stats.snapshot().errors, 1, "one failure, then the redelivery succeeded");
    assert_eq!(rabbit.dead_letters().await, 0);
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn an_event_that_always_fails_is_dead_lettered_with_its_reason() {
    let rabbit = Rabbit::new().await;
    let t = host(&rabbit, &rabbit.service()).await;
    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("probe.fail.1", b"doomed", &[("x-order", "17")]).await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.data, b"doomed");
    assert_eq!(
        d.routing_key.as_str(),
        "probe.fail.1",
        "dead letters keep their routing key"
    );
    assert_eq!(header(&d, "x-order").as_deref(), Some("17"), "and their headers");
    let reason = header(&d, "berth-error").expect("reason header");
    assert!(
        reason.contains("failed on each of 2 deliveries") && reason.contains("probe always fails"),
        "{reason}"
    );
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert_eq!(
        (stats.events, stats.errors),
        (2, 2),
        "tried twice: first delivery and one retry"
    );

    // A rejected event (a 4xx) is dead-lettered at once, without a retry.
    // It says which delivery failed, whatever count its publisher put on it.
    rabbit
        .publish("probe.reject.2", b"bad", &[("berth-attempt", "5")])
        .await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.routing_key.as_str(), "probe.reject.2");
    assert!(header(&d, "berth-error").is_some_and(|r| r.contains("probe rejects this event")));
    assert_eq!(header(&d, "berth-attempt").as_deref(), Some("1"));
    assert_eq!(t.host.route("probe").expect("route").stats.snapshot().events, 3);
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn guest_publishes_are_confirmed_and_reach_a_bound_queue_with_properties() {
    let rabbit = Rabbit::new().await;
    let _t = host(&rabbit, &rabbit.service()).await;
    let mut out = rabbit.bind("out.#").await;
    let reply = rabbit
        .call(
            "probe.publish",
            &[1, 2, 3, 0xff],
            &[("to", "out.bytes"), ("content-type", "application/x-test")],
        )
        .await;
    assert_eq!(
        reply.data, b"published",
        "publish returned only after the broker's confirm"
    );
    let d = rabbit.next(&mut out).await;
    assert_eq!(d.data, [1, 2, 3, 0xff]);
    assert_eq!(d.routing_key.as_str(), "out.bytes");
    assert_eq!(
        d.properties.delivery_mode(),
        &Some(2),
        "events are published persistent"
    );
    // A publish outside the grants never reaches the broker.
    let reply = rabbit.call("probe.publish", b"x", &[("to", "elsewhere.x")]).await;
    assert!(
        header(&reply, "Nats-Service-Error-Code").is_some_and(|c| c == "403"),
        "forbidden"
    );
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn request_through_the_host_transport_gets_typed_errors() {
    let rabbit = Rabbit::new().await;
    let t = host(&rabbit, &rabbit.service()).await;
    let reply = t.request("echo.x", "via host").await.expect("reply");
    assert!(CallError::from_reply(&reply).is_none());
    assert_eq!(reply.body, "via host");
    assert_eq!(reply.header("content-type"), None);
    let long = format!("echo.{}", "k".repeat(300));
    let err = t
        .request(&long, "x")
        .await
        .expect_err("routing keys are at most 255 bytes");
    assert!(matches!(err, TransportError::TooLarge(_)), "{err:?}");
    assert_eq!(CallError::from(err).kind, ErrorKind::TooLarge);
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test]
async fn a_wrong_url_or_bad_credentials_fail_the_start_clearly() {
    let rabbit = Rabbit::new().await;
    for (url, expect) in [
        ("amqp://guest:wrong@127.0.0.1:5672/%2f", "cannot connect to AMQP"),
        ("amqp://guest:guest@127.0.0.1:1/%2f", "cannot connect to AMQP"),
        ("not-a-url", "is not a valid URL"),
    ] {
        let text = manifest(&rabbit, "svc").replace(AMQP_URL, url);
        let err = match start(&text).await {
            Ok(_) => panic!("{url}: the host must not start"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expect), "{url}: {err}");
        assert!(!err.contains("wrong"), "the password is not printed: {err}");
    }
    rabbit.cleanup(&[]).await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_after_max_deliver_while_a_neighbour_serves() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let t = start(&format!(
        r#"
        {host}

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["echo.>"]

        [[components]]
        name = "hostile"
        wasm = "{{hostile}}"
        subscribe = ["hostile.poison.*"]
        link_unused_sockets = true
        max_deliver = 3
        "#,
        host = rabbit.host_toml(&service)
    ))
    .await
    .expect("host starts");
    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("hostile.poison.1", b"poison", &[]).await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.data, b"poison");
    let reason = header(&d, "berth-error").expect("reason");
    assert!(
        reason.contains("failed on each of 3 deliveries") && reason.contains("trap"),
        "{reason}"
    );
    assert_eq!(
        header(&d, "berth-attempt").as_deref(),
        Some("3"),
        "the third delivery was the last"
    );
    let stats = t.host.route("hostile").expect("route").stats.snapshot();
    assert_eq!(
        (stats.events, stats.errors),
        (3, 3),
        "exactly max_deliver tries, not an endless loop"
    );
    // The neighbour never noticed.
    assert_eq!(rabbit.call("echo.still", b"here", &[]).await.data, b"here");
    rabbit
        .cleanup(&[&format!("{service}.echo"), &format!("{service}.hostile")])
        .await;
}

#[tokio::test]
async fn a_broadcast_subscription_reaches_every_host() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let text = format!(
        r#"
        {host}

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.event.*", broadcast = true }}]
        publish = ["probe.seen.>"]
        "#,
        host = rabbit.host_toml(&service)
    );
    let (a, b) = (start(&text).await.expect("host a"), start(&text).await.expect("host b"));
    let mut seen = rabbit.bind("probe.seen.#").await;
    rabbit.publish("probe.event.all", b"to everyone", &[]).await;
    for _ in 0..2 {
        assert_eq!(rabbit.next(&mut seen).await.data, b"to everyone");
    }
    for t in [&a, &b] {
        let stats = &t.host.route("probe").expect("route").stats;
        assert!(
            stats.wait_until(Duration::from_secs(5), |s| s.events == 1).await,
            "each host handled it once"
        );
    }
    // Broadcast queues are exclusive and auto-deleted: nothing to clean up
    // but the exchanges.
    rabbit.cleanup(&[]).await;
}
