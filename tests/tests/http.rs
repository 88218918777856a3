//! The HTTP API against a host on the in-memory transport: replies, errors
//! mapped to HTTP status with JSON bodies, publish, and metrics (health:
//! health.rs; operator actions: operator.rs).

use std::time::Duration;

use berth::transport::SubscribeOptions;
use berth_tests::start;
use serde_json::Value;

const MANIFEST: &str = "[host]\nname = \"web\"\n\
    [[components]]\nname = \"greeter\"\nwasm = \"{greeter}\"\nsubscribe = [\"greet.>\"]\npublish = [\"events.>\"]\n\
    [[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\ntimeout_ms = 200\n";

#[tokio::test]
async fn request_errors_and_publish_over_http() {
    let t = start(MANIFEST).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();

    let ok = http
        .post(format!("{base}/v1/request/greet.web"))
        .body(r#"{"name":"Lin"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/json");
    assert_eq!(ok.text().await.expect("body"), r#"{"message":"Hello, Lin!"}"#);

    let cases = [
        ("greet.web", "{oops", 400, "handler"),
        ("probe.error", "404", 404, "handler"),
        ("probe.spin", "", 504, "timeout"),
        ("probe.panic", "", 500, "trap"),
        ("probe.missing", "", 404, "unhandled"),
        ("nobody.there", "", 503, "no-responders"),
    ];
    for (subject, body, status, kind) in cases {
        let response = http
            .post(format!("{base}/v1/request/{subject}"))
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{subject}");
        let json: Value = response.json().await.expect("JSON error body");
        assert_eq!(json["kind"], kind, "{subject}: {json}");
        assert_eq!(json["code"], status, "{subject}: {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    }

    let mut events = t
        .host
        .transport()
        .subscribe(SubscribeOptions {
            pattern: "events.>".into(),
            group: None,
            capacity: 8,
            ..SubscribeOptions::default()
        })
        .await
        .expect("subscribe");
    let published = http
        .post(format!("{base}/v1/publish/events.manual"))
        .body("by hand")
        .send()
        .await
        .expect("send");
    assert_eq!(published.status(), 202);
    let got = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(got.message.body, "by hand");
}

#[tokio::test]
async fn metrics_expose_the_counters_for_prometheus() {
    let t = start(MANIFEST).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    assert_eq!(t.ask("probe.count", "").await, "1");
    let _ = t.request("probe.panic", "").await.expect("reply");
    let response = reqwest::get(format!("{base}/metrics")).await.expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/plain"))
    );
    let text = response.text().await.expect("text");
    assert!(text.contains("# TYPE berth_requests_total counter"), "{text}");
    assert!(
        text.contains(r#"berth_requests_total{service="web",component="probe"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_errors_total{service="web",component="probe"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_transport_connected{service="web",transport="memory"} 1"#),
        "{text}"
    );
    // The panic is a trap; the two calls are in the latency histogram.
    assert!(
        text.contains(r#"berth_errors_by_kind_total{service="web",component="probe",kind="trap"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_errors_by_kind_total{service="web",component="probe",kind="handler"} 0"#),
        "{text}"
    );
    assert!(text.contains("# TYPE berth_call_duration_seconds histogram"), "{text}");
    assert!(
        text.contains(r#"berth_call_duration_seconds_bucket{service="web",component="probe",le="+Inf"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_call_duration_seconds_count{service="web",component="probe"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_quarantines_total{service="web",component="probe"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"berth_transport_reconnects_total{service="web",transport="memory"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_ingress_does_not_reach_the_platforms_subjects() {
    let t = start(&MANIFEST.replace("[host]\n", "[host]\nadmin = true\nadmin_token = \"s3cret\"\n"))
        .await
        .expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let suspend = r#"{"command": "suspend", "component": "greeter"}"#;
    for path in [
        "/v1/request/berth.admin.web",
        "/v1/publish/berth.admin.web",
        "/v1/request/berth.health.web",
        "/v1/publish/$JS.API.STREAM.DELETE.S",
        "/v1/request/$SRV.INFO",
        "/v1/request/_INBOX.someone",
    ] {
        let refused = http
            .post(format!("{base}{path}"))
            .header("berth-admin-token", "s3cret")
            .body(suspend)
            .send()
            .await
            .expect("send");
        assert_eq!(refused.status(), 403, "{path}");
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["kind"], "forbidden", "{path}: {body}");
    }
    assert_eq!(
        t.host.route("greeter").expect("route").breaker.status().state,
        "serving",
        "no operator action got through"
    );
}

/// The process's resident memory, from /proc (Linux).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_two_thousand_clients_send_half_a_request() {
    use tokio::io::AsyncWriteExt;
    let t = start(MANIFEST).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .expect("write");
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    let health = reqwest::get(format!("{base}/health")).await.expect("health answers");
    let took = started.elapsed();
    assert_eq!(health.status(), 200);
    assert!(
        took < Duration::from_millis(500),
        "health took {took:?} beside 2,000 slow clients"
    );
    drop(slow);
}

#[tokio::test]
async fn a_request_whose_headers_never_end_is_closed_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = start(&MANIFEST.replace("[host]\n", "[host]\nhttp_header_timeout_ms = 300\n"))
        .await
        .expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut half = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    half.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let mut silent = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    for stream in [&mut half, &mut silent] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the host closed the connection after its header deadline");
    }
}

#[tokio::test]
async fn a_connection_past_the_cap_is_answered_503_and_closed() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let t = start(&MANIFEST.replace("[host]\n", "[host]\nhttp_max_connections = 3\n"))
        .await
        .expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let addr = base.trim_start_matches("http://").to_owned();
    // Three kept-alive connections, each answered once: the host holds them.
    let mut held = Vec::new();
    for _ in 0..3 {
        let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        let mut status = String::new();
        stream.read_line(&mut status).await.expect("read");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        held.push(stream);
    }
    let mut fourth = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), fourth.read_to_string(&mut answer))
        .await
        .expect("answered and closed")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    drop(held);
    let again = reqwest::get(format!("{base}/health")).await.expect("health");
    assert_eq!(again.status(), 200, "slots are given back when connections close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_upload_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = start(&MANIFEST.replace("[host]\n", "[host]\nadmin_token = \"s3cret\"\n"))
        .await
        .expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let addr = base.trim_start_matches("http://").to_owned();
    let before = resident_bytes();
    let total: usize = 200 << 20;
    let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    // The answer is read as it comes: it comes long before the body ends.
    let answer = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    });
    let head = format!("PUT /v1/components/probe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n\r\n");
    writer.write_all(head.as_bytes()).await.expect("write");
    let chunk = vec![0u8; 64 << 10];
    let mut sent = 0;
    while sent < total {
        match writer.write_all(&chunk).await {
            Ok(()) => sent += chunk.len(),
            Err(_) => break, // the host answered and closed: the rest is never read
        }
    }
    drop(writer);
    let answer = answer.await.expect("reader");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let grew = resident_bytes().saturating_sub(before);
    assert!(grew < 10 << 20, "the host grew by {grew} bytes for a refused upload");
}
