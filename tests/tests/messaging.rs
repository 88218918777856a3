//! Messages end to end on the in-memory transport: request/reply, events,
//! queue groups vs fan-out, wildcard routing, concurrency limits, binary
//! bodies, no responders.

use std::time::Duration;

use berth::transport::{SubscribeOptions, Subscription, Transport, TransportError};
use berth::{CallError, ErrorKind, Message};
use berth_tests::start;

async fn watch(transport: &dyn Transport, pattern: &str) -> Subscription {
    transport
        .subscribe(SubscribeOptions {
            pattern: pattern.into(),
            group: None,
            capacity: 1024,
            ..SubscribeOptions::default()
        })
        .await
        .expect("subscribe")
}

/// Waits for `n` messages on `sub` (bounded: fails after 5 s).
async fn collect(sub: &mut Subscription, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
            Ok(Some(d)) => got.push(d.message),
            _ => panic!("expected {n} messages, got {}", got.len()),
        }
    }
    got
}

/// Asks `echo.hello` with an `x-trace` header.
async fn echo_traced(t: &berth_tests::TestHost, body: &str) -> Message {
    let request = Message::new("echo.hello", body.to_owned()).with_header("x-trace", "abc");
    t.host
        .transport()
        .request(request, Duration::from_secs(5))
        .await
        .expect("reply")
}

#[tokio::test]
async fn echo_returns_body_and_headers() {
    let t = start(
        "[host]\nreply_headers = true\n[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n",
    )
    .await
    .expect("start");
    let reply = echo_traced(&t, "hi there").await;
    assert_eq!(reply.body, "hi there");
    assert_eq!(reply.header("x-trace"), Some("abc"));
    assert_eq!(reply.header("berth-component"), Some("echo"));
    let version = reply.header("berth-version").expect("version header");
    assert_eq!(version, t.host.route("echo").expect("route").versions.active().hash);
}

#[tokio::test]
async fn reply_headers_off_leaves_the_reply_as_the_component_made_it() {
    let t = start(
        "[host]\nreply_headers = false\n[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n",
    )
    .await
    .expect("start");
    let reply = echo_traced(&t, "hi").await;
    assert_eq!(reply.headers, [("x-trace".to_owned(), "abc".to_owned())]);
}

#[tokio::test]
async fn binary_bodies_round_trip_byte_for_byte() {
    let t = start("[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n")
        .await
        .expect("start");
    let body: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00, 0xc3]).collect();
    let reply = t.request("echo.bin", body.clone()).await.expect("reply");
    assert_eq!(reply.body.as_ref(), body.as_slice());
    let empty = t.request("echo.empty", Vec::new()).await.expect("reply");
    assert!(empty.body.is_empty());
}

#[tokio::test]
async fn greeter_uses_config_publishes_and_rejects_bad_json() {
    let t = start(
        r#"
        [[components]]
        name = "greeter"
        wasm = "{greeter}"
        subscribe = ["greet.>"]
        publish = ["events.>"]
        [components.config]
        greeting = "Ahoy"
        "#,
    )
    .await
    .expect("start");
    let mut events = watch(&*t.host.transport(), "events.>").await;
    let reply = t.ask("greet.one", r#"{"name":"Ada"}"#).await;
    assert_eq!(reply, r#"{"message":"Ahoy, Ada!"}"#);
    let event = collect(&mut events, 1).await.remove(0);
    assert_eq!(event.subject, "events.greeted");
    assert_eq!(event.body, r#"{"name":"Ada"}"#);

    let reply = t.request("greet.one", "{not json").await.expect("reply");
    let error = CallError::from_reply(&reply).expect("an error reply");
    assert_eq!((error.kind, error.code), (ErrorKind::Handler, 400));
    assert!(error.message.contains("invalid JSON"), "{}", error.message);
}

#[tokio::test]
async fn events_reach_the_handler_and_its_publishes_go_out() {
    let t = start(
        "[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\npublish = [\"probe.seen.>\"]\n",
    )
    .await
    .expect("start");
    let transport = t.host.transport();
    let mut seen = watch(&*transport, "probe.seen.>").await;
    for i in 0..5 {
        transport
            .publish(Message::new(format!("probe.event.e{i}"), format!("body {i}")))
            .await
            .expect("publish");
    }
    let mut got: Vec<String> = collect(&mut seen, 5).await.into_iter().map(|m| m.subject).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "probe.seen.e0",
            "probe.seen.e1",
            "probe.seen.e2",
            "probe.seen.e3",
            "probe.seen.e4"
        ]
    );
}

fn two_probes(options: &str) -> String {
    ["a", "b"]
        .iter()
        .map(|name| {
            format!(
                "[[components]]\nname = \"{name}\"\nwasm = \"{{probe}}\"\nsubscribe = [{{ subject = \"probe.event.*\", {options} }}]\npublish = [\"probe.seen.>\"]\n"
            )
        })
        .collect()
}

/// Publishes `n` events that the probes re-publish on `probe.seen.*`.
async fn publish_events(transport: &dyn Transport, n: usize) {
    for i in 0..n {
        transport
            .publish(Message::new(format!("probe.event.m{i}"), ""))
            .await
            .expect("publish");
    }
}

/// Each component's event count once they add up to `total`. A handler's
/// own publish goes out before the router counts its call, so this waits
/// (bounded) for the counts to catch up.
async fn settled_events(t: &berth_tests::TestHost, names: &[&str], total: u64) -> Vec<u64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let counts: Vec<u64> = names
            .iter()
            .map(|n| t.host.route(n).expect("route").stats.snapshot().events)
            .collect();
        if counts.iter().sum::<u64>() >= total || std::time::Instant::now() > deadline {
            return counts;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn queue_group_gives_each_message_to_one_member() {
    let t = start(&two_probes("group = \"workers\"")).await.expect("start");
    let transport = t.host.transport();
    let mut seen = watch(&*transport, "probe.seen.>").await;
    publish_events(&*transport, 20).await;
    collect(&mut seen, 20).await;
    let counts = settled_events(&t, &["a", "b"], 20).await;
    assert_eq!(counts.iter().sum::<u64>(), 20, "each message handled once: {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "both members took work: {counts:?}");
    assert!(seen.try_next().is_none(), "no message was handled twice");
}

#[tokio::test]
async fn broadcast_gives_every_message_to_every_subscriber() {
    let t = start(&two_probes("broadcast = true")).await.expect("start");
    let transport = t.host.transport();
    let mut seen = watch(&*transport, "probe.seen.>").await;
    publish_events(&*transport, 10).await;
    collect(&mut seen, 20).await;
    assert_eq!(settled_events(&t, &["a", "b"], 20).await, [10, 10]);
}

#[tokio::test]
async fn wildcard_subscriptions_route_by_subject() {
    let t = start("[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.*.x\", \"tail.>\"]\n")
        .await
        .expect("start");
    assert_eq!(t.ask("echo.a.x", "1").await, "1");
    assert_eq!(t.ask("tail.a.b.c", "2").await, "2");
    for unserved in ["echo.a.y", "echo.a.b.x", "echo.x", "tail"] {
        let err = t.request(unserved, "").await.expect_err("nobody serves it");
        assert!(matches!(err, TransportError::NoResponders(_)), "{unserved}: {err:?}");
    }
}

#[tokio::test]
async fn request_to_an_unserved_subject_is_no_responders_for_guests_too() {
    let t = start(
        "[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\nrequest = [\"nobody.>\"]\n",
    )
    .await
    .expect("start");
    // The guest sees a host-made error, distinct from any handler's error.
    assert_eq!(
        t.ask("probe.request", "nobody.home").await,
        "error ErrorKind::NoResponders 503"
    );
}

#[tokio::test]
async fn guest_requests_reach_other_components() {
    let t = start(
        "[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\nrequest = [\"echo.>\"]\n\
         [[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n",
    )
    .await
    .expect("start");
    assert_eq!(t.ask("probe.request", "echo.back").await, "from probe");
}

#[tokio::test]
async fn concurrency_limit_is_respected() {
    let t =
        start("[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\nmax_concurrency = 2\n")
            .await
            .expect("start");
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let transport = t.host.transport();
            tokio::spawn(async move {
                transport
                    .request(Message::new("probe.sleep", "40"), Duration::from_secs(10))
                    .await
            })
        })
        .collect();
    for call in calls {
        let reply = call.await.expect("task").expect("reply");
        assert_eq!(reply.body, "slept");
    }
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert_eq!(stats.requests, 8);
    assert_eq!(
        stats.peak_in_flight, 2,
        "never more than max_concurrency, and the limit was reached"
    );
}

#[tokio::test]
async fn traceparent_is_carried_onto_the_guests_publishes_and_requests() {
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let t = start(
        "[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\n\
         publish = [\"traced.>\"]\nrequest = [\"traced.>\"]\n",
    )
    .await
    .expect("start");
    let transport = t.host.transport();
    let mut out = watch(&*transport, "traced.>").await;
    let child_of_parent = |m: &Message| {
        let tp = m
            .header("traceparent")
            .unwrap_or_else(|| panic!("no traceparent on {}", m.subject))
            .to_owned();
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "same trace: {tp}"
        );
        assert!(!tp.contains("00f067aa0ba902b7"), "the call is a new span: {tp}");
        assert_eq!(m.header("tracestate"), Some("vendor=x"));
        tp
    };

    // publish: the message the guest sends is in the caller's trace.
    let request = Message::new("probe.publish", "p")
        .with_header("to", "traced.published")
        .with_header("traceparent", PARENT)
        .with_header("tracestate", "vendor=x");
    let reply = transport.request(request, Duration::from_secs(5)).await.expect("reply");
    assert_eq!(reply.body, "published");
    let published = collect(&mut out, 1).await.remove(0);
    let first = child_of_parent(&published);

    // request: so is the guest's request, and each call is its own span.
    let request = Message::new("probe.request", "traced.upstream")
        .with_header("traceparent", PARENT)
        .with_header("tracestate", "vendor=x");
    let asking = tokio::spawn({
        let transport = transport.clone();
        async move { transport.request(request, Duration::from_secs(5)).await }
    });
    let mut upstream = out.next().await.expect("the guest's request");
    let second = child_of_parent(&upstream.message);
    assert_ne!(first, second);
    let answer = upstream.message.reply("up", Vec::new()).expect("a request");
    upstream.acker.reply(answer).await.expect("answer");
    assert_eq!(asking.await.expect("task").expect("reply").body, "up");

    // No traceparent in, none out: Berth does not invent traces.
    let plain = Message::new("probe.publish", "p").with_header("to", "traced.plain");
    transport.request(plain, Duration::from_secs(5)).await.expect("reply");
    let published = collect(&mut out, 1).await.remove(0);
    assert_eq!(published.header("traceparent"), None);
}
