//! The NATS transport against the real nats-server on 127.0.0.1:4222:
//! request/reply with headers and binary bodies, the NATS service error
//! convention, queue groups across hosts, guests' publishes, no responders,
//! and a clear error for a server that is not there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth::transport::TransportError;
use berth::{CallError, ErrorKind};
use berth_tests::{TestHost, start};
use futures_util::StreamExt;

const NATS: &str = "127.0.0.1:4222";

/// Fails (never skips) with how to start NATS when it is not running.
async fn client() -> async_nats::Client {
    match async_nats::connect(NATS).await {
        Ok(c) => c,
        Err(e) => panic!(
            "NATS is not reachable on {NATS} ({e}). Start it with:\n  start-stop-daemon --start --oknodo --background \
             --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        ),
    }
}

/// A subject prefix no other test run uses.
fn prefix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("t{}n{nanos}", std::process::id())
}

async fn host(prefix: &str, service: &str) -> TestHost {
    start(&format!(
        r#"
        [host]
        name = "{service}"
        transport = "nats"
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
    let nats = client().await;
    let p = prefix();
    let _host = host(&p, &format!("{p}svc")).await;
    let body: Vec<u8> = (0..=255u8).chain([0xff, 0xfe]).collect();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-trace", "abc");
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
}

#[tokio::test]
async fn handler_errors_follow_the_nats_service_convention() {
    let nats = client().await;
    let p = prefix();
    let _host = host(&p, &format!("{p}svc")).await;
    let reply = nats.request(format!("greet.{p}.x"), "{not json".into()).await.expect("reply");
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("400"));
    assert!(header(&reply, "Nats-Service-Error").is_some_and(|m| m.contains("invalid JSON")));
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON error body");
    assert_eq!((body["kind"].as_str(), body["code"].as_u64()), (Some("handler"), Some(400)));
}

#[tokio::test]
async fn guest_publishes_go_out_over_nats() {
    let nats = client().await;
    let p = prefix();
    let _host = host(&p, &format!("{p}svc")).await;
    let mut events = nats.subscribe("events.greeted").await.expect("subscribe");
    nats.flush().await.expect("flush");
    let reply = nats
        .request(format!("greet.{p}.x"), format!(r#"{{"name":"{p}"}}"#).into())
        .await
        .expect("reply");
    assert_eq!(reply.payload, format!(r#"{{"message":"Hello, {p}!"}}"#));
    // Other test runs may greet too: wait for ours (bounded).
    let ours = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = events.next().await {
            if m.payload == format!(r#"{{"name":"{p}"}}"#) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ours, Ok(true), "the greeting event arrived over NATS");
}

#[tokio::test]
async fn queue_group_spreads_requests_across_two_hosts() {
    let nats = client().await;
    let p = prefix();
    let service = format!("{p}svc");
    let (a, b) = (host(&p, &service).await, host(&p, &service).await);
    for i in 0..40 {
        let reply = nats.request(format!("{p}.echo.{i}"), format!("{i}").into()).await.expect("reply");
        assert_eq!(reply.payload, format!("{i}"));
    }
    let count = |t: &TestHost| t.host.route("echo").expect("route").stats.snapshot().requests;
    let (na, nb) = (count(&a), count(&b));
    assert_eq!(na + nb, 40, "each request handled exactly once");
    assert!(na > 0 && nb > 0, "both hosts took work: {na} / {nb}");
}

#[tokio::test]
async fn request_to_an_unserved_subject_is_no_responders() {
    let _nats = client().await;
    let p = prefix();
    let t = host(&p, &format!("{p}svc")).await;
    let err = t.request(&format!("{p}.nobody"), "").await.expect_err("nobody serves it");
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
    assert_eq!(kind, ErrorKind::TooLarge, "over the server's max payload or the component's limit");
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
