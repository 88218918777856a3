//! wasi:http components from the toolchains Spin's and wasmCloud's users
//! write them with, built against the standard WIT alone
//! (`guests/wasi-http`): componentize-js's `fetch` event in JavaScript
//! and componentize-py's `proxy` world in Python. Each serves a route
//! unchanged: the method, the path with its query, a header and the body
//! reach it, and its answer's headers come back, request after request:
//! with no `instance_mode`, a wasi:http component gets a new instance per
//! request, as on the hosts it is written for (componentize-js's engine
//! answers only the first request of an instance). JavaScript's `fetch`
//! goes out only where the manifest grants it.

use berth::runtime::InstanceMode;
use berth_tests::polyglot::{self, Language};
use berth_tests::{pong_server, start};
use reqwest::{Client, Response};

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `guests/<language>/<name>` built for `world` of `guests/wasi-http`.
async fn build(language: Language, name: &'static str, world: &'static str) -> std::path::PathBuf {
    tokio::task::spawn_blocking(move || polyglot::build_wasi_http(language, name, world))
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("building {name} in {language:?}: {e:#}"))
}

/// A host serving `language`'s `http-hello` on `/hello/…`, and on
/// `/granted/…` with outbound HTTP granted to `pong`; its HTTP address.
/// Whether Berth sees the component as componentize-js's, which it warns
/// against pooling, is checked on the way.
async fn serve(language: Language, pong: &str) -> (berth_tests::TestHost, String, tokio_util::sync::DropGuard) {
    let wasm = build(language, "http-hello", "proxy").await;
    let bytes = std::fs::read(&wasm).expect("read the component");
    assert_eq!(
        berth::runtime::inspect::built_by_componentize_js(&bytes),
        language == Language::JavaScript,
        "{language:?}"
    );
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

        [[components]]
        name = "hello"
        wasm = "{wasm}"
        link_unused_sockets = true

        [[components]]
        name = "granted"
        wasm = "{wasm}"
        link_unused_sockets = true
        http_outbound = ["{pong}"]
        "#,
        wasm = wasm.display()
    ))
    .await
    .expect("host starts");
    let (base, stop) = t.serve_http("127.0.0.1:0").await;
    (t, base, stop)
}

/// POSTs with a query, a header and a body are answered as the guest saw
/// them, each on an instance of its own.
async fn greets(t: &berth_tests::TestHost, base: &str) {
    let hello = t.host.route("hello").expect("hello");
    assert_eq!(hello.versions.active().mode, InstanceMode::Fresh);
    for _ in 0..3 {
        let r = Client::new()
            .post(format!("{base}/hello/x?y=1"))
            .header("x-user", "ann")
            .body("12345")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{:?}", r.headers());
        assert_eq!(header(&r, "content-type"), Some("text/plain"));
        assert_eq!(header(&r, "x-seen-user"), Some("ann"));
        assert_eq!(header(&r, "x-body-length"), Some("5"));
        assert_eq!(r.text().await.expect("body"), "hello from wasi:http: POST /hello/x?y=1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_wasi_http_component_serves_a_route_and_fetches_only_where_granted() {
    let pong = pong_server().await;
    let (t, base, _stop) = serve(Language::JavaScript, &pong).await;
    greets(&t, &base).await;

    let http = Client::new();
    let r = http
        .get(format!("{base}/hello/fetch?to={pong}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    let text = r.text().await.expect("body");
    assert!(text.starts_with("outbound refused"), "{text}");
    assert_eq!(t.host.route("hello").expect("hello").stats.snapshot().forbidden, 1);

    let r = http
        .get(format!("{base}/granted/fetch?to={pong}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "fetched 200: pong");
    assert_eq!(t.host.route("granted").expect("granted").stats.snapshot().forbidden, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_wasi_http_component_serves_a_route() {
    let pong = pong_server().await;
    let (t, base, _stop) = serve(Language::Python, &pong).await;
    greets(&t, &base).await;
}

/// wasmCloud's HTTP key-value counter in Python: fresh instances, one per
/// request, count in one bucket through `wasi:keyvalue` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_wasi_http_component_counts_in_a_key_value_bucket() {
    let wasm = build(Language::Python, "http-counter", "counter").await;
    let t = start(&format!(
        r#"
        [host]
        http = "127.0.0.1:0"

        [keyvalue.counts]

        [[http.routes]]
        path = "/count/{{*rest}}"
        component = "counter"

        [[components]]
        name = "counter"
        wasm = "{}"
        link_unused_sockets = true
        keyvalue = ["counts"]
        "#,
        wasm.display()
    ))
    .await
    .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move { reqwest::get(url).await.expect("GET").text().await.expect("body") }
    };
    for n in 1..=3 {
        assert_eq!(get("/count/a").await, format!("count: {n}"));
    }
    assert_eq!(get("/count/b").await, "count: 1", "each path counts on its own");
    let counter = t.host.route("counter").expect("counter");
    assert_eq!(counter.versions.active().mode, InstanceMode::Fresh);
}
