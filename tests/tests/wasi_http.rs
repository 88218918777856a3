//! A `wasi:http` component (the `http-hello` guest, written against
//! `wasip2` alone) serving `[[http.routes]]`: directly and behind
//! middleware and a guard, its body bound by `max_message_kb`, its
//! outbound HTTP refused without a grant and sent with one, swapped
//! behind its route, and fresh per request unless its manifest pools it.

use berth::app::SwapRequest;
use berth::runtime::InstanceMode;
use berth_tests::{pong_server, start};
use reqwest::{Client, Response};

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_wasi_http_component_serves_routes_behind_middleware_and_reaches_out_only_where_granted() {
    let pong = pong_server().await;
    let t = start(&format!(
        r#"
        [host]
        http = "127.0.0.1:0"

        [[http.routes]]
        path = "/hello/{{*rest}}"
        component = "hello"

        [[http.routes]]
        path = "/granted/{{*rest}}"
        component = "granted"
        middleware = ["auth"]
        guard = "session"

        [[components]]
        name = "hello"
        wasm = "{{http_hello}}"

        [[components]]
        name = "granted"
        wasm = "{{http_hello}}"
        http_outbound = ["{pong}"]
        max_message_kb = 1
        instance_mode = "pooled"

        [[components]]
        name = "auth"
        wasm = "{{gatekeeper}}"
        middleware = true
        [components.config]
        users = {{ "t-ann" = "ann" }}
        "#
    ))
    .await
    .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = Client::new();

    let r = http
        .post(format!("{base}/hello/x?y=1"))
        .body("12345")
        .send()
        .await
        .expect("send");
    if r.status() != 200 {
        panic!("{}", r.text().await.unwrap_or_default());
    }
    assert_eq!(header(&r, "content-type"), Some("text/plain"));
    assert_eq!(header(&r, "x-body-length"), Some("5"));
    assert_eq!(r.text().await.expect("body"), "hello from wasi:http: POST /hello/x?y=1");

    // Outbound HTTP without a grant is refused; with one it goes out.
    let r = http
        .get(format!("{base}/hello/fetch?to={pong}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    assert!(r.text().await.expect("body").contains("HttpRequestDenied"));
    assert_eq!(t.host.route("hello").expect("hello").stats.snapshot().forbidden, 1);

    // Behind middleware and a guard: refused unsigned, its headers passed on.
    let granted = format!("{base}/granted/fetch?to={pong}");
    assert_eq!(http.get(&granted).send().await.expect("send").status(), 401);
    let r = http.get(&granted).bearer_auth("t-ann").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "fetched 200: pong");
    let r = http
        .get(format!("{base}/granted/me"))
        .bearer_auth("t-ann")
        .send()
        .await
        .expect("send");
    assert_eq!(header(&r, "x-seen-user"), Some("ann"));

    // Its max_message_kb bounds the request body.
    let r = http
        .post(format!("{base}/granted/big"))
        .bearer_auth("t-ann")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413);
    let stats = t.host.route("granted").expect("granted").stats.snapshot();
    assert_eq!((stats.requests, stats.errors), (2, 0), "{stats:?}");

    // It swaps like any component, and the route serves the new version.
    let report = t
        .host
        .swap(
            "hello",
            SwapRequest {
                wasm: berth_tests::relabel(berth_tests::HTTP_HELLO, "v2").into(),
                label: Some("v2".into()),
                config: None,
                component: None,
            },
        )
        .await
        .expect("swapped");
    assert!(!report.unchanged && report.label.as_deref() == Some("v2"), "{report:?}");
    let r = http.get(format!("{base}/hello/again")).send().await.expect("send");
    assert_eq!(r.text().await.expect("body"), "hello from wasi:http: GET /hello/again");
    let active = t.host.route("hello").expect("hello").versions.active();
    assert_eq!(active.label.as_deref(), Some("v2"));

    // Without `instance_mode` a new instance serves each request, as on
    // the hosts wasi:http components are written for; the manifest can
    // pool them.
    assert_eq!(active.mode, InstanceMode::Fresh);
    let granted = t.host.route("granted").expect("granted").versions.active();
    assert_eq!(granted.mode, InstanceMode::Pooled);
}
