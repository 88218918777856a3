//! The NATS transport against the real nats-server on 127.0.0.1:4222:
//! request/reply with headers and binary bodies, the NATS service error
//! convention, queue groups across hosts, guests' publishes, no responders,
//! and a clear error for a server that is not there.

use std::time::Duration;

use berth::transport::TransportError;
use berth::{CallError, ErrorKind};
use berth_tests::{NATS, TestHost, start};
use futures_util::StreamExt;

async fn host(prefix: &str, service: &str) -> TestHost {
    start(&format!(
        r#"
        [host]
        name = "{service}"
        transport = "nats"
        reply_headers = true
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["{prefix}.echo.>"]

        [[components]]
        name = "greeter"
        wasm = "{{greeter}}"
        subscribe = ["greet.{prefix}.>"]
        publish = ["events.>"]
        "#
    ))
    .await
    .expect("host starts on NATS")
}

fn header<'a>(m: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

#[tokio::test]
async fn echo_over_nats_round_trips_binary_bodies_and_headers() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let _host = host(&p, &format!("{p}svc")).await;
    let body: Vec<u8> = (0..=255u8).chain([0xff, 0xfe]).collect();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-trace", "abc");
    // Core NATS delivers once: a publisher's delivery count means nothing.
    headers.insert("berth-attempt", "7");
    let reply = nats
        .send_request(
            format!("{p}.echo.bin"),
            async_nats::Request::new()
                .payload(body.clone().into())
                .headers(headers)
                .timeout(Some(Duration::from_secs(5))),
        )
        .await
        .expect("reply");
    assert_eq!(reply.payload.as_ref(), body.as_slice());
    assert_eq!(header(&reply, "x-trace"), Some("abc"));
    assert_eq!(header(&reply, "Berth-Component"), Some("echo"));
    assert_eq!(header(&reply, "berth-attempt"), None, "the echo saw no delivery count");
}

#[tokio::test]
async fn handler_errors_follow_the_nats_service_convention() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let _host = host(&p, &format!("{p}svc")).await;
    let reply = nats
        .request(format!("greet.{p}.x"), "{not json".into())
        .await
        .expect("reply");
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("400"));
    assert!(header(&reply, "Nats-Service-Error").is_some_and(|m| m.contains("invalid JSON")));
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON error body");
    assert_eq!(
        (body["kind"].as_str(), body["code"].as_u64()),
        (Some("handler"), Some(400))
    );
}

/// Greets `p` over NATS through the greeter and waits (bounded) for the
/// `events.greeted` event its guest publishes; other runs may greet too.
async fn greet_and_see_the_event(nats: &async_nats::Client, p: &str) {
    let mut events = nats.subscribe("events.greeted").await.expect("subscribe");
    nats.flush().await.expect("flush");
    let reply = nats
        .request(format!("greet.{p}.x"), format!(r#"{{"name":"{p}"}}"#).into())
        .await
        .expect("reply over NATS");
    assert_eq!(reply.payload, format!(r#"{{"message":"Hello, {p}!"}}"#));
    let ours = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = events.next().await {
            if m.payload == format!(r#"{{"name":"{p}"}}"#) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ours, Ok(true), "the guest's publish went out on NATS");
}

#[tokio::test]
async fn guest_publishes_go_out_over_nats() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let _host = host(&p, &format!("{p}svc")).await;
    greet_and_see_the_event(&nats, &p).await;
}

#[tokio::test]
async fn queue_group_spreads_requests_across_two_hosts() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let service = format!("{p}svc");
    let (a, b) = (host(&p, &service).await, host(&p, &service).await);
    for i in 0..40 {
        let reply = nats
            .request(format!("{p}.echo.{i}"), format!("{i}").into())
            .await
            .expect("reply");
        assert_eq!(reply.payload, format!("{i}"));
    }
    let count = |t: &TestHost| t.host.route("echo").expect("route").stats.snapshot().requests;
    let (na, nb) = (count(&a), count(&b));
    assert_eq!(na + nb, 40, "each request handled exactly once");
    assert!(na > 0 && nb > 0, "both hosts took work: {na} / {nb}");
}

#[tokio::test]
async fn request_to_an_unserved_subject_is_no_responders() {
    let _nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let t = host(&p, &format!("{p}svc")).await;
    let err = t
        .request(&format!("{p}.nobody"), "")
        .await
        .expect_err("nobody serves it");
    assert!(matches!(err, TransportError::NoResponders(_)), "{err:?}");
    let reply = t.request(&format!("{p}.echo.x"), "via host").await.expect("reply");
    assert!(CallError::from_reply(&reply).is_none());
    assert_eq!(reply.body, "via host");
    let too_big = t.request(&format!("{p}.echo.big"), vec![0u8; 2 << 20]).await;
    let err = too_big.map(|r| CallError::from_reply(&r)).map_err(CallError::from);
    let kind = match err {
        Err(e) | Ok(Some(e)) => e.kind,
        Ok(None) => panic!("a 2 MiB body went through"),
    };
    assert_eq!(
        kind,
        ErrorKind::TooLarge,
        "over the server's max payload or the component's limit"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_the_start_with_a_clear_error() {
    let started = std::time::Instant::now();
    let err = start("[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://127.0.0.1:1\"\n")
        .await
        .err()
        .expect("no server on port 1");
    let text = format!("{err:#}");
    assert!(text.contains("cannot connect to NATS at nats://127.0.0.1:1"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15), "fails fast, no hang");
}

#[tokio::test]
async fn token_auth_connects_and_a_wrong_token_fails_the_start_clearly() {
    let server = berth_tests::nats_server::NatsServer::start(&["--auth", "s3cret"]);
    let manifest = |token: &str| {
        format!(
            "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"{}\"\ntoken = \"{token}\"\n\
             [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n",
            server.url()
        )
    };
    let t = start(&manifest("s3cret")).await.expect("the right token connects");
    assert_eq!(t.ask("echo.auth", "in").await, "in");
    let err = match start(&manifest("wrong")).await {
        Ok(_) => panic!("a wrong token must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("cannot connect to NATS") && err.contains("bad credentials"),
        "{err}"
    );
}

#[tokio::test]
async fn discovery_lists_every_host_and_drops_one_that_stopped() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let manifest = |service: &str| {
        format!(
            "[host]\nname = \"{service}\"\ntransport = \"nats\"\n\
             [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"{p}.{service}.>\"]\nlabel = \"2.0.0\"\n"
        )
    };
    let (a, b) = (
        start(&manifest(&format!("{p}a"))).await.expect("a"),
        start(&manifest(&format!("{p}b"))).await.expect("b"),
    );
    let ours = |hosts: &[berth::cli::discovery::HostSeen]| -> Vec<String> {
        hosts
            .iter()
            .filter(|h| h.service.starts_with(&p))
            .map(|h| h.service.clone())
            .collect()
    };
    let hosts = berth::cli::discovery::services(&nats, Duration::from_millis(1000))
        .await
        .expect("discover");
    assert_eq!(ours(&hosts), [format!("{p}a"), format!("{p}b")]);
    let a_seen = hosts.iter().find(|h| h.service == format!("{p}a")).expect("a");
    assert_eq!(a_seen.components[0].name, "echo");
    assert_eq!(a_seen.components[0].label, "2.0.0");
    assert_eq!(
        a_seen.components[0].version,
        a.host.route("echo").expect("route").versions.active().hash
    );

    assert!(b.host.shutdown(Duration::from_secs(5)).await, "b drained");
    let hosts = berth::cli::discovery::services(&nats, Duration::from_millis(1000))
        .await
        .expect("discover");
    assert_eq!(ours(&hosts), [format!("{p}a")], "a host that stopped drops out");
}

#[tokio::test]
async fn memory_and_nats_side_by_side_outbound_follows_the_subscription() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    // The host's default transport is memory; the greeter subscribes on
    // NATS, so its publishes go out on NATS too.
    let t = start(&format!(
        r#"
        [host]
        name = "{p}mixed"
        [[components]]
        name = "greeter"
        wasm = "{{greeter}}"
        subscribe = [{{ subject = "greet.{p}.>", transport = "nats" }}]
        publish = ["events.>"]

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["echo.>"]
        "#
    ))
    .await
    .expect("start");
    assert_eq!(t.host.transport().kind(), "memory");
    assert_eq!(t.ask("echo.local", "on memory").await, "on memory");
    greet_and_see_the_event(&nats, &p).await;
    assert_eq!(t.host.app().transports.len(), 2, "memory and NATS side by side");
}

#[tokio::test]
async fn an_error_whose_message_spans_lines_reaches_the_nats_caller() {
    use berth::router::{self, Route};
    use berth::transport::{SubscribeOptions, Transport};
    let nats = berth_tests::nats_client().await;
    let subject = format!("{}.multiline", berth_tests::unique("t"));
    let config = berth::manifest::NatsConfig {
        url: format!("nats://{NATS}"),
        ..Default::default()
    };
    let transport = berth::transport::nats::NatsTransport::connect(&config)
        .await
        .expect("connect");
    let subscription = transport
        .subscribe(SubscribeOptions {
            pattern: subject.clone(),
            capacity: 4,
            ..Default::default()
        })
        .await
        .expect("subscribe");
    let failing = berth::NativeHandler(|_: berth::Message| {
        Err(CallError::new(ErrorKind::Handler, "first line\r\nsecond line\nthird"))
    });
    let route = Route::native("multiline", &[subject.as_str()], 4, std::sync::Arc::new(failing));
    let (tasks, stop) = (
        tokio_util::task::TaskTracker::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    router::serve(
        std::sync::Arc::new(route),
        0,
        transport.kind(),
        subscription,
        &tasks,
        stop.clone(),
    );

    let reply = tokio::time::timeout(Duration::from_secs(5), nats.request(subject, "".into()))
        .await
        .expect("answered at once, not left to time out")
        .expect("reply");
    assert_eq!(
        header(&reply, "Nats-Service-Error"),
        Some("first line  second line third")
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(
        body["message"], "first line\r\nsecond line\nthird",
        "the body keeps every line"
    );
    stop.cancel();
}

#[tokio::test]
async fn several_servers_in_the_url_are_tried_in_turn() {
    let p = berth_tests::unique("t");
    let t = start(&format!(
        "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://127.0.0.1:1, nats://{NATS}\"\n\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"{p}.echo.>\"]\n"
    ))
    .await
    .expect("the second server takes the connection");
    assert_eq!(
        t.ask(&format!("{p}.echo.x"), "through the list").await,
        "through the list"
    );
}

#[tokio::test]
async fn a_suspended_component_on_core_nats_answers_503_at_once_and_serves_again_on_resume() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let t = host(&p, &format!("{p}svc")).await;
    let route = t.host.route("echo").expect("echo").clone();
    route.breaker.suspend("for maintenance");
    let started = std::time::Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        nats.request(format!("{p}.echo.x"), "held?".into()),
    )
    .await
    .expect("answered before the caller's timeout")
    .expect("reply");
    assert!(started.elapsed() < Duration::from_secs(1), "answered at once");
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("503"));
    let message = header(&reply, "Nats-Service-Error").unwrap_or_default();
    assert!(
        message.contains("suspended") && message.contains("for maintenance"),
        "{message}"
    );
    route.breaker.resume();
    let reply = nats
        .request(format!("{p}.echo.x"), "served".into())
        .await
        .expect("reply");
    assert_eq!(reply.payload, "served");
}
