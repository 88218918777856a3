//! A component written for wasmCloud (`wasmcloud:messaging@0.2.0`, with
//! the `wasi:logging` and `wasi:config` drafts; no Berth SDK or WIT) runs
//! unchanged: it answers requests by publishing to their reply-to, over
//! HTTP ingress, NATS and AMQP; its publishes and requests keep to its
//! grants; a failing event is retried, then dead-lettered; it swaps under
//! load without a failed request.

mod rabbit;

use berth::app::SwapRequest;
use berth_tests::{NATS, WASMCLOUD_ECHO, start, unique};
use rabbit::{Rabbit, header};

/// The wasmCloud echo on `prefix.*`, granted to call the greeter and to
/// publish on `<prefix>.out`, with the config it reads through wasi:config.
fn components(prefix: &str, call: &str, publish: &str) -> String {
    format!(
        r#"
        [[components]]
        name = "wc"
        wasm = "{{wasmcloud_echo}}"
        subscribe = ["{prefix}.*"]
        request = ["greet.>"]
        publish = ["{prefix}.out"]
        [components.config]
        prefix = "wc: "
        call_subject = "{call}"
        publish_subject = "{publish}"

        [[components]]
        name = "greeter"
        wasm = "{{greeter}}"
        subscribe = ["greet.>"]
        publish = ["events.>"]
        "#
    )
}

#[tokio::test]
async fn requests_over_http_are_answered_by_a_publish_to_reply_to_and_config_comes_through_wasi_config() {
    let t = start(&format!(
        "[host]\nname = \"wc\"\n{}",
        components("wc", "greet.wc", "wc.out")
    ))
    .await
    .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/request/wc.echo"))
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "wc: hi");

    // Its request, inside its grants, to another component.
    let r = http
        .post(format!("{base}/v1/request/wc.call"))
        .body(r#"{"name":"Wa"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("body"), r#"{"message":"Hello, Wa!"}"#);

    // Err(string) is a handler error, 500 with its text.
    let r = http
        .post(format!("{base}/v1/request/wc.fail"))
        .send()
        .await
        .expect("send");
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
        components("wcg", "elsewhere.x", "wcg.not-granted")
    ))
    .await
    .expect("host starts");
    let refused = t.request("wcg.call", "x").await.expect("an answer");
    let e = berth::CallError::from_reply(&refused).expect("an error reply");
    assert!(e.message.contains("elsewhere.x"), "{e:?}");
    let refused = t.request("wcg.publish", "x").await.expect("an answer");
    let e = berth::CallError::from_reply(&refused).expect("an error reply");
    assert!(e.message.contains("wcg.not-granted"), "{e:?}");
    assert_eq!(t.host.route("wc").expect("wc").stats.snapshot().forbidden, 2);
}

#[tokio::test]
async fn it_answers_nats_requests_and_swaps_under_load_without_a_failed_request() {
    let prefix = unique("wcn");
    let t = start(&format!(
        "[host]\nname = \"{prefix}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\"\n{}",
        components(&prefix, "greet.x", &format!("{prefix}.out"))
    ))
    .await
    .expect("host starts on NATS");
    let nats = berth_tests::nats_client().await;
    let subject = format!("{prefix}.echo");
    let reply = nats.request(subject.clone(), "ping".into()).await.expect("reply");
    assert_eq!(reply.payload.as_ref(), b"wc: ping");

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
                if answers.last().is_some_and(|a| a == "v2: x") {
                    break;
                }
            }
            answers
        }
    });
    first_round.await.expect("the load started");
    let mut config = serde_json::Map::new();
    config.insert("prefix".into(), "v2: ".into());
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
    assert_eq!(answers.first().map(String::as_str), Some("wc: x"));
    assert_eq!(
        answers.last().map(String::as_str),
        Some("v2: x"),
        "the new version never answered"
    );
}

#[tokio::test]
async fn over_amqp_it_answers_and_a_failing_event_is_retried_then_dead_lettered() {
    let rabbit = Rabbit::new().await;
    let t = start(&format!(
        "{}\n{}",
        rabbit.host_toml(&rabbit.service()),
        components("wca", "greet.x", "wca.out")
    ))
    .await
    .expect("host starts on AMQP");
    let reply = rabbit.call("wca.echo", b"amqp", &[]).await;
    assert_eq!(reply.data, b"wc: amqp");

    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("wca.fail", b"doomed", &[]).await;
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
    rabbit.cleanup_components(&["wc", "greeter"]).await;
}

#[test]
fn berth_check_names_the_world_each_component_targets() {
    let runtime = berth::runtime::Runtime::new(berth::runtime::CompileCache::disabled(), false).expect("runtime");
    for (wasm, world) in [
        (WASMCLOUD_ECHO, "ok: wasmcloud:messaging@0.2.0 handler"),
        (berth_tests::HTTP_HELLO, "ok: wasi:http/proxy"),
        (berth_tests::ECHO, "ok: berth:backend@0.1.0 backend, with batches"),
        (berth_tests::GATEKEEPER, "with middleware"),
        (berth_tests::WATCHER, "ok: wasi:keyvalue watch-service"),
        (
            berth_tests::MESSAGING_ECHO,
            "ok: wasi:messaging@0.2.0-draft messaging-request-reply",
        ),
    ] {
        let report = runtime.inspect(&std::fs::read(wasm).expect("wasm"), false).to_string();
        assert!(report.contains(world), "{wasm}: {report}");
    }
}
