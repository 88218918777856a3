//! A component written against the WASI messaging proposal alone
//! (`wasi:messaging@0.2.0-draft`, world `messaging-request-reply`; no
//! Berth SDK or WIT) runs unchanged: replies with metadata and content
//! type over HTTP ingress, NATS and AMQP; requests and sends within its
//! grants; a client of a transport it does not have is refused; a failing
//! event is retried, then dead-lettered. (Its conformance run:
//! conformance.rs.)

mod rabbit;

use berth_tests::{NATS, start, unique};
use rabbit::{Rabbit, header};

/// The messaging echo on `P.in.>` with the conformance grants
/// (`P.out.>`, `P.upstream`), and the echo guest as its upstream.
fn components(prefix: &str) -> String {
    format!(
        r#"
        [[components]]
        name = "wm"
        wasm = "{{messaging_echo}}"
        subscribe = ["{prefix}.in.>"]
        request = ["{prefix}.upstream"]
        publish = ["{prefix}.out.>"]

        [[components]]
        name = "upstream"
        wasm = "{{echo}}"
        subscribe = ["{prefix}.upstream"]
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
        .post(format!("{base}/v1/request/wm.in.echo"))
        .header("content-type", "text/plain")
        .header("x-tag", "t1")
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["x-tag"], "t1");
    assert_eq!(r.text().await.expect("body"), "hi");

    let ask = |name: &str| http.post(format!("{base}/v1/request/wm.in.{name}")).body("up").send();
    assert_eq!(ask("call").await.expect("send").text().await.expect("body"), "up");

    // A client of a transport the component does not send on is refused,
    // by name.
    let r = ask("elsewhere").await.expect("send");
    assert_eq!(r.status(), 502);
    let json: serde_json::Value = r.json().await.expect("JSON");
    assert!(
        json["message"].as_str().is_some_and(|m| m.contains("`kafka`")),
        "{json}"
    );

    assert_eq!(ask("fail").await.expect("send").status(), 500);
}

#[tokio::test]
async fn its_sends_outside_its_grants_are_permission_denied() {
    let prefix = unique("wmg");
    let t = start(&format!(
        "[host]\nname = \"{prefix}\"\n{}",
        components(&prefix).replace(&format!(r#"request = ["{prefix}.upstream"]"#), "request = []")
    ))
    .await
    .expect("host starts");
    let refused = t.request(&format!("{prefix}.in.call"), "x").await.expect("an answer");
    let e = berth::CallError::from_reply(&refused).expect("an error reply");
    assert_eq!(e.code, 403, "{e:?}");
    assert!(e.message.contains(&format!("{prefix}.upstream")), "{e:?}");
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
        .request_with_headers(format!("{prefix}.in.echo"), headers, "ping".into())
        .await
        .expect("reply");
    assert_eq!(reply.payload.as_ref(), b"ping");
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
    let reply = rabbit.call("wma.in.echo", b"amqp", &[("x-tag", "a1")]).await;
    assert_eq!(reply.data, b"amqp");
    assert_eq!(header(&reply, "x-tag").as_deref(), Some("a1"));

    let mut dead = rabbit.consume_dead().await;
    rabbit.publish("wma.in.fail", b"doomed", &[]).await;
    let d = rabbit.next(&mut dead).await;
    assert_eq!(d.data, b"doomed");
    assert!(header(&d, "berth-error").is_some_and(|r| r.contains("failing on purpose")));
    let stats = t.host.route("wm").expect("wm").stats.snapshot();
    assert_eq!(
        (stats.events, stats.errors),
        (2, 2),
        "tried twice: the first delivery and one retry"
    );
    rabbit.cleanup_components(&["wm", "upstream"]).await;
}
