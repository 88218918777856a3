//! Operator actions, the ways operators reach them, and the one
//! authorization rule: over NATS (`[host] admin = true`) token checks, info,
//! suspend and resume, concurrency, swap, addressing one host, and a host
//! without admin not answering; over HTTP suspend and resume, the token, and
//! a non-loopback listener without one. Swaps over HTTP are in swap.rs,
//! `drain` on the `berth` process in host/tests/cli.rs.

use std::time::Duration;

use berth::Message;
use berth::cli::admin_client::ask;
use berth_tests::{NATS, start};
use serde_json::{Value, json};

fn hostile(extra: &str) -> String {
    format!(
        "[[components]]\nname = \"hostile\"\nwasm = \"{{hostile}}\"\nsubscribe = [\"hostile.>\"]\nlink_unused_sockets = true\nmax_concurrency = 1\n{extra}\n"
    )
}
const TOKEN: &str = "s3cret";
const QUIET: Duration = Duration::from_millis(300);

fn manifest(service: &str, prefix: &str, admin: bool) -> String {
    format!(
        r#"
        [host]
        name = "{service}"
        transport = "nats"
        reply_headers = true
        admin = {admin}
        admin_token = "{TOKEN}"
        [transports.nats]
        url = "nats://{NATS}"
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["{prefix}.>"]
        max_concurrency = 8
        "#
    )
}

/// The one answer of the one host; panics on a refusal.
async fn one(client: &async_nats::Client, service: &str, command: Value) -> Value {
    let mut answers = ask(client, service, None, &command, Some(TOKEN), QUIET)
        .await
        .expect("ask");
    assert_eq!(answers.len(), 1, "one host answers {command}");
    answers
        .pop()
        .expect("one")
        .unwrap_or_else(|e| panic!("{command} refused: {e}"))
}

async fn refusal(client: &async_nats::Client, service: &str, command: Value, token: Option<&str>) -> u16 {
    let mut answers = ask(client, service, None, &command, token, QUIET).await.expect("ask");
    assert_eq!(answers.len(), 1, "one host answers {command}");
    answers.pop().expect("one").expect_err("refused").code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_over_nats_change_the_host() {
    let client = berth_tests::nats_client().await;
    let service = berth_tests::unique("admin");
    // The probe guest routes `probe.*`, so it subscribes `probe.>`, in a
    // queue group of its own service.
    let t = start(&manifest(&service, "probe", true)).await.expect("start");
    let route = t.host.route("probe").expect("probe").clone();
    let request = |subject: &'static str, body: &'static str, timeout: Duration| {
        let client = client.clone();
        async move { tokio::time::timeout(timeout, client.request(subject, body.into())).await }
    };

    // Tokens: none or a wrong one is 401, as on HTTP (one rule for every
    // way in); bad commands 400, unknown components 404.
    assert_eq!(refusal(&client, &service, json!({"command": "info"}), None).await, 401);
    assert_eq!(
        refusal(&client, &service, json!({"command": "info"}), Some("nope")).await,
        401
    );

    assert_eq!(
        refusal(&client, &service, json!({"command": "reboot"}), Some(TOKEN)).await,
        400
    );
    assert_eq!(
        refusal(
            &client,
            &service,
            json!({"command": "suspend", "component": "ghost"}),
            Some(TOKEN)
        )
        .await,
        404
    );

    // info: the host's id, and its component with version and state.
    let info = one(&client, &service, json!({"command": "info"})).await;
    let id = info["id"].as_str().expect("id").to_owned();
    assert_eq!(info["components"][0]["name"], "probe");
    assert_eq!(info["components"][0]["version"], route.versions.active().hash.as_str());

    // suspend: not called (on core NATS a request is refused with 503 at
    // once, not left to time out); resume: served again.
    let suspended = one(&client, &service, json!({"command": "suspend", "component": "probe"})).await;
    assert_eq!(suspended["component"]["state"]["state"], "suspended");
    let refused = request("probe.count", "", Duration::from_secs(5))
        .await
        .expect("answered before its timeout")
        .expect("reply");
    let code = refused
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(code.as_deref(), Some("503"), "a suspended component is not called");
    let resumed = one(&client, &service, json!({"command": "resume", "component": "probe"})).await;
    assert_eq!(resumed["component"]["state"]["state"], "serving");
    let reply = request("probe.count", "", Duration::from_secs(5))
        .await
        .expect("in time")
        .expect("reply");
    assert!(!reply.payload.is_empty());

    // concurrency 1: four slow calls run one at a time; 4: they overlap.
    let set = one(
        &client,
        &service,
        json!({"command": "concurrency", "component": "probe", "value": 1}),
    )
    .await;
    assert_eq!(set["component"]["max_concurrency"], 1);
    let before = route.stats.snapshot().peak_in_flight;
    let slow =
        || futures_util::future::join_all((0..4).map(|_| request("probe.sleep", "100", Duration::from_secs(10))));
    for r in slow().await {
        r.expect("in time").expect("reply");
    }
    assert_eq!(
        route.stats.snapshot().peak_in_flight,
        before.max(1),
        "never more than one call at a time"
    );
    one(
        &client,
        &service,
        json!({"command": "concurrency", "component": "probe", "value": 4}),
    )
    .await;
    for r in slow().await {
        r.expect("in time").expect("reply");
    }
    assert!(
        route.stats.snapshot().peak_in_flight >= 2,
        "with 4 permits the slow calls overlap"
    );
    assert_eq!(
        refusal(
            &client,
            &service,
            json!({"command": "concurrency", "component": "probe", "value": 0}),
            Some(TOKEN)
        )
        .await,
        400
    );

    // swap from a path on the host: the new version serves; a bad file is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let v2 = dir.path().join("probe-v2.wasm");
    std::fs::write(&v2, berth_tests::relabel(berth_tests::PROBE, "admin-v2")).expect("write");
    let swapped = one(
        &client,
        &service,
        json!({"command": "swap", "component": "probe", "path": v2, "label": "2.0.0"}),
    )
    .await;
    let hash = swapped["swap"]["version"].as_str().expect("version").to_owned();
    assert_eq!(route.versions.active().hash, hash);
    assert_eq!(route.versions.active().label.as_deref(), Some("2.0.0"));
    let reply = request("probe.count", "", Duration::from_secs(5))
        .await
        .expect("in time")
        .expect("reply");
    assert_eq!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Berth-Version"))
            .map(|v| v.to_string()),
        Some(hash)
    );
    let missing = json!({"command": "swap", "component": "probe", "path": dir.path().join("missing.wasm")});
    assert_eq!(refusal(&client, &service, missing, Some(TOKEN)).await, 400);

    // One host by id; an id nobody has gets no answer.
    let by_id = ask(
        &client,
        &service,
        Some(&id),
        &json!({"command": "info"}),
        Some(TOKEN),
        QUIET,
    )
    .await
    .expect("ask");
    assert_eq!(by_id.len(), 1);
    let nobody = ask(
        &client,
        &service,
        Some("0000"),
        &json!({"command": "info"}),
        Some(TOKEN),
        QUIET,
    )
    .await
    .expect("ask");
    assert!(nobody.is_empty());
}

#[tokio::test]
async fn a_host_without_admin_does_not_answer() {
    let client = berth_tests::nats_client().await;
    let (service, prefix) = (berth_tests::unique("quiet"), berth_tests::unique("q"));
    let _t = start(&manifest(&service, &prefix, false)).await.expect("start");
    let answers = ask(&client, &service, None, &json!({"command": "info"}), Some(TOKEN), QUIET)
        .await
        .expect("ask");
    assert!(answers.is_empty(), "admin is off by default");
}

#[tokio::test]
async fn suspend_stops_and_resume_restarts_a_component() {
    let t = start(&hostile("")).await.expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let suspended = http
        .post(format!("{base}/v1/components/hostile/suspend"))
        .send()
        .await
        .expect("send");
    assert_eq!(suspended.status(), 200);
    let err = t
        .host
        .transport()
        .request(Message::new("hostile.ok", ""), Duration::from_millis(200))
        .await
        .expect_err("suspended: nobody handles it in time");
    assert!(
        matches!(err, berth::transport::TransportError::Timeout { .. }),
        "{err:?}"
    );
    let missing = http
        .post(format!("{base}/v1/components/nope/resume"))
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), 404);
    http.post(format!("{base}/v1/components/hostile/resume"))
        .send()
        .await
        .expect("send");
    assert_eq!(t.ask("hostile.ok", "").await, "fine");
}

#[tokio::test]
async fn admin_calls_need_the_token_when_one_is_set() {
    let t = start(&format!("[host]\nadmin_token = \"s3cret\"\n{}", hostile("")))
        .await
        .expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/components/hostile/suspend");
    assert_eq!(http.post(&url).send().await.expect("send").status(), 401);
    assert_eq!(
        http.post(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        http.post(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
}

#[tokio::test]
async fn without_a_token_admin_calls_are_refused_off_loopback() {
    let t = start(&hostile("")).await.expect("start");
    // Listening on every interface makes the listener non-loopback; the
    // test still only connects through 127.0.0.1.
    let (base, _guard) = t.serve_http("0.0.0.0:0").await;
    let refused = reqwest::Client::new()
        .post(format!("{base}/v1/components/hostile/suspend"))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 403);
    assert_eq!(
        t.host.route("hostile").expect("route").breaker.status().state,
        "serving"
    );
}

#[tokio::test]
async fn concurrency_and_drain_over_http_answer_as_over_the_broker() {
    let t = start(&hostile("")).await.expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let post = |path: &str| http.post(format!("{base}{path}")).send();
    let set: Value = post("/v1/components/hostile/concurrency?value=3")
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    assert_eq!(set["component"]["max_concurrency"], 3, "{set}");
    assert_eq!(set["host"], t.host.app().id.as_str());
    assert_eq!(t.host.route("hostile").expect("route").concurrency(), 3);
    let zero = post("/v1/components/hostile/concurrency?value=0").await.expect("send");
    assert_eq!(zero.status(), 400);
    let ghost = post("/v1/components/ghost/concurrency?value=2").await.expect("send");
    assert_eq!(ghost.status(), 404);
    let body: Value = ghost.json().await.expect("JSON");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("ghost")), "{body}");

    assert!(!t.host.app().drain.is_cancelled());
    let drained: Value = post("/v1/drain").await.expect("send").json().await.expect("JSON");
    assert_eq!(drained["draining"], true);
    assert!(
        t.host.app().drain.is_cancelled(),
        "berth run now shuts down as on SIGTERM"
    );
}

#[tokio::test]
async fn refused_operator_calls_are_counted_in_the_metrics() {
    let t = start(&format!(
        "[host]\nname = \"counted\"\nadmin_token = \"s3cret\"\n{}",
        hostile("")
    ))
    .await
    .expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    for token in [None, Some("wrong")] {
        let mut call = http.post(format!("{base}/v1/components/hostile/suspend"));
        if let Some(token) = token {
            call = call.bearer_auth(token);
        }
        assert_eq!(call.send().await.expect("send").status(), 401);
    }
    let metrics = berth_tests::scrape_metrics(&base).await;
    assert!(
        metrics.contains("berth_operator_refusals_total{service=\"counted\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_page_on_another_site_cannot_steer_the_host() {
    let t = start(&hostile("")).await.expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/components/hostile/suspend");
    // What a browser sends for a form or fetch() with text/plain: no
    // preflight, but an Origin.
    let cross = http
        .post(&url)
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(cross.status(), 403);
    // A name that resolves to this machine but is not its own (DNS rebinding).
    let rebound = http
        .post(&url)
        .header("host", "evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(rebound.status(), 403);
    assert_eq!(
        t.host.route("hostile").expect("route").breaker.status().state,
        "serving",
        "neither got through"
    );
    let own = http
        .post(&url)
        .header("origin", base.as_str())
        .send()
        .await
        .expect("send");
    assert_eq!(own.status(), 200, "the listener's own origin may");
}
