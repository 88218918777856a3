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
