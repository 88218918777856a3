//! A component written for wasmCloud (`wasmcloud:messaging@0.2.0`, with
//! the `wasi:logging` and `wasi:config` drafts; no Berth SDK or WIT) runs
//! unchanged: it answers requests by publishing to their reply-to, over
//! HTTP ingress, NATS and AMQP; its publishes and requests keep to its
//! grants; a failing event is retried, then dead-lettered; it swaps under
//! load without a failed request. (Its conformance run: conformance.rs.)

mod rabbit;

use berth::app::SwapRequest;
use berth_tests::{NATS, WASMCLOUD_ECHO, start, unique};
use rabbit::{Rabbit, header};

/// The wasmCloud echo on `P.in.>` with the conformance grants
/// (`P.out.>`, `P.upstream`), and the echo guest as its upstream.
fn components(prefix: &str, greeting: &str) -> String {
    format!(
        r#"
        [[components]]
        name = "wc"
        wasm = "{{wasmcloud_echo}}"
        subscribe = ["{prefix}.in.>"]
        request = ["{prefix}.upstream"]
        publish = ["{prefix}.out.>"]
        [components.config]
        greeting = "{greeting}"

        [[components]]
        name = "upstream"
        wasm = "{{echo}}"
        subscribe = ["{prefix}.upstream"]
        "#
    )
}

#[tokio::test]
async fn requests_over_http_are_answered_by_a_publish_to_reply_to_and_config_comes_through_wasi_config() {
    let t = start(&format!("[host]\nname = \"wc\"\n{}", components("wc", "hello")))
        .await
        .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let ask = |name: &str, body: &'static str| http.post(format!("{base}/v1/request/wc.in.{name}")).body(body).send();
    let r = ask("echo", "hi").await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "hi");
    assert_eq!(
        ask("config", "").await.expect("send").text().await.expect("body"),
        "hello"
    );
    // Its request, inside its grants, to another component.
    assert_eq!(ask("call", "up").await.expect("send").text().await.expect("body"), "up");

    // Err(string) is a handler error, 500 with its text.
    let r = ask("fail", "").await.expect("send");
    assert_eq!(r.status(), 500);
    let json: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(json["kind"], "handler");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("failing on purpose")),
        "{json}"
    );
}

#[tokio::test]
async fn its_publishes_and_requests_keep_to_its_grants() {
    let t = start(&format!(
        "[host]\nname = \"wcg\"\n{}",
        components("wcg", "g")
            .replace(r#"request = ["wcg.upstream"]"#, "request = []")
            .replace(r#"publish = ["wcg.out.>"]"#, "publish = []")
    ))
    .await
    .expect("host starts");
    for (name, refused) in [
        ("call", "wcg.upstream"),
        ("publish", "wcg.out.published"),
        ("forbidden", "wcg.secret"),
    ] {
        let answer = t.request(&format!("wcg.in.{name}"), "x").await.expect("an answer");
        let e = berth::CallError::from_reply(&answer).expect("an error reply");
        assert!(e.message.contains(refused), "{name}: {e:?}");
    }
    assert_eq!(t.host.route("wc").expect("wc").stats.snapshot().forbidden, 3);
}

#[tokio::test]
async fn it_answers_nats_requests_and_swaps_under_load_without_a_failed_request() {
    let prefix = unique("wcn");
    let t = start(&format!(
        "[host]\nname = \"{prefix}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\"\n{}",
        components(&prefix, "v1")
    ))
    .await
    .expect("host starts on NATS");
    let nats = berth_tests::nats_client().await;
    let reply = nats
        .request(format!("{prefix}.in.echo"), "ping".into())
        .await
        .expect("reply");
    assert_eq!(reply.payload.as_ref(), b"ping");

    let subject = format!("{prefix}.in.config");
    let (started, first_round) = tokio::sync::oneshot::channel();
    let load = tokio::spawn({
        let (nats, subject) = (nats.clone(), subject.clone());
        async move {
            let mut started = Some(started);
            let mut answers = Vec::new();
            for _ in 0..300 {
                let calls = (0..8).map(|_| nats.request(subject.clone(), "x".into()));
                for r in futures_util::future::join_all(calls).await {
                    answers.push(String::from_utf8_lossy(&r.expect("no failed request").payload).into_owned());
                }
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                if answers.last().is_some_and(|a| a == "v2") {
                    break;
                }
            }
            answers
        }
    });
    first_round.await.expect("the load started");
    let mut config = serde_json::Map::new();
    config.insert("greeting".into(), "v2".into());
    t.host
        .swap(
            "wc",
            SwapRequest {
                wasm: std::fs::read(WASMCLOUD_ECHO).expect("wasm").into(),
                label: None,
                config: Some(config),
                component: None,
            },
        )
        .await
        .expect("swapped");
    let answers = load.await.expect("load finished");
    assert_eq!(answers.first().map(String::as_str), Some("v1"));
    assert_eq!(
        answers.last().map(String::as_str),
        Some("v2"),
        "the new version never answered"
    );
}

#[tokio::test]
async fn over_amqp_it_answers_and_a_failing_event_is_retried_then_dead_lettered() {
    let rabbit = Rabbit::new().await;
    let t = start(&format!(
        "{}\n{}",
        rabbit.host_toml(&rabbit.service()),
        components("wca", "g")
    ))
    .await
    .expect("host starts on AMQP");
    let reply = rabbit.call("wca.in.echo", b"amqp", &[]).await;
    assert_eq!(reply.data, b"amqp");

    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("wca.in.fail", b"doomed", &[]).await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.data, b"doomed");
    let reason = header(&d, "berth-error").expect("reason header");
    assert!(reason.contains("failing on purpose"), "{reason}");
    let stats = t.host.route("wc").expect("wc").stats.snapshot();
    assert_eq!(
        (stats.events, stats.errors),
        (2, 2),
        "tried twice: the first delivery and one retry"
    );
    rabbit.cleanup_components(&["wc", "upstream"]).await;
}

#[test]
fn berth_check_names_the_world_each_component_targets() {
    let runtime = berth::runtime::Runtime::new(berth::runtime::CompileCache::disabled(), false).expect("runtime");
    for (wasm, world) in [
        (WASMCLOUD_ECHO, "ok: wasmcloud:messaging@0.2.0 handler"),
        (
            berth_tests::MESSAGING_ECHO,
            "ok: wasi:messaging@0.2.0-draft messaging-request-reply",
        ),
        (berth_tests::HTTP_HELLO, "ok: wasi:http/proxy"),
        (berth_tests::ECHO, "ok: berth:backend@0.1.0 backend, with batches"),
        (
            berth_tests::KEEPER,
            "ok: berth:backend@0.1.0 backend, with batches and state",
        ),
        (berth_tests::WATCHER, "ok: wasi:keyvalue watch-service"),
    ] {
        let report = runtime.inspect(&std::fs::read(wasm).expect("wasm"), false).to_string();
        assert!(report.contains(world), "{wasm}: {report}");
    }
}
