//! A component written against the WASI messaging proposal alone
//! (`wasi:messaging@0.2.0-draft`, world `messaging-request-reply`; no
//! Berth SDK or WIT) runs unchanged: replies with metadata and content
//! type over HTTP ingress, NATS and AMQP; requests and sends within its
//! grants; a client of a transport it does not have is refused; a failing
//! event is retried, then dead-lettered.

mod rabbit;

use berth_tests::{NATS, start, unique};
use rabbit::{Rabbit, header};

/// The messaging echo on `prefix.*`, granted to call the greeter and to
/// send on `<prefix>.out`.
fn components(prefix: &str) -> String {
    format!(
        r#"
        [[components]]
        name = "wm"
        wasm = "{{messaging_echo}}"
        subscribe = ["{prefix}.*"]
        request = ["greet.>"]
        publish = ["{prefix}.out"]

        [[components]]
        name = "greeter"
        wasm = "{{greeter}}"
        subscribe = ["greet.>"]
        publish = ["events.>"]
        "#
    )
}

#[tokio::test]
async fn it_replies_with_metadata_and_content_type_and_keeps_to_its_grants_over_http() {
    let t = start(&format!("[host]\nname = \"wm\"\n{}", components("wm")))
        .await
        .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/request/wm.echo"))
        .header("content-type", "text/plain")
        .header("x-tag", "t1")
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["x-tag"], "t1");
    assert_eq!(r.headers()["x-echo"], "1");
    assert_eq!(r.text().await.expect("body"), "wm: hi");

    let r = http
        .post(format!("{base}/v1/request/wm.call"))
        .body(r#"{"name":"Mo"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("body"), r#"{"message":"Hello, Mo!"}"#);

    let r = http
        .post(format!("{base}/v1/request/wm.publish"))
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("body"), "published");

    // A client of a transport the component does not send on is refused,
    // by name.
    let r = http
        .post(format!("{base}/v1/request/wm.elsewhere"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    let json: serde_json::Value = r.json().await.expect("JSON");
    assert!(
        json["message"].as_str().is_some_and(|m| m.contains("`kafka`")),
        "{json}"
    );

    let r = http
        .post(format!("{base}/v1/request/wm.fail"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 500);
}

#[tokio::test]
async fn its_sends_outside_its_grants_are_permission_denied() {
    let prefix = unique("wmg");
    let t = start(&format!(
        "[host]\nname = \"{prefix}\"\n{}",
        components(&prefix).replace(r#"request = ["greet.>"]"#, "request = []")
    ))
    .await
    .expect("host starts");
    let refused = t.request(&format!("{prefix}.call"), "x").await.expect("an answer");
    let e = berth::CallError::from_reply(&refused).expect("an error reply");
    assert_eq!(e.code, 403, "{e:?}");
    assert!(e.message.contains("greet.wm"), "{e:?}");
}

#[tokio::test]
async fn it_answers_nats_requests() {
    let prefix = unique("wmn");
    let _t = start(&format!(
        "[host]\nname = \"{prefix}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\"\n{}",
        components(&prefix)
    ))
    .await
    .expect("host starts on NATS");
    let nats = berth_tests::nats_client().await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-tag", "n1");
    let reply = nats
        .request_with_headers(format!("{prefix}.echo"), headers, "ping".into())
        .await
        .expect("reply");
    assert_eq!(reply.payload.as_ref(), b"wm: ping");
    let headers = reply.headers.expect("reply headers");
    assert_eq!(headers.get("x-tag").map(|v| v.as_str()), Some("n1"));
}

#[tokio::test]
async fn over_amqp_it_answers_and_a_failing_event_is_retried_then_dead_lettered() {
    let rabbit = Rabbit::new().await;
    let t = start(&format!(
        "{}\n{}",
        rabbit.host_toml(&rabbit.service()),
        components("wma")
    ))
    .await
    .expect("host starts on AMQP");
    let reply = rabbit.call("wma.echo", b"amqp", &[("x-tag", "a1")]).await;
    assert_eq!(reply.data, b"wm: amqp");
    assert_eq!(header(&reply, "x-tag").as_deref(), Some("a1"));

    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("wma.fail", b"doomed", &[]).await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.data, b"doomed");
    assert!(header(&d, "berth-error").is_some_and(|r| r.contains("failing on purpose")));
    let stats = t.host.route("wm").expect("wm").stats.snapshot();
    assert_eq!(
        (stats.events, stats.errors),
        (2, 2),
        "tried twice: the first delivery and one retry"
    );
    rabbit.cleanup_components(&["wm", "greeter"]).await;
}
