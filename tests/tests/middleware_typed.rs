//! A middleware written in Python against world `middleware-backend`
//! alone: it exports the typed `middleware.handle` and not the frames the
//! Rust SDK takes (`batch-middleware`), so these requests go through the
//! host's typed call. The same chain behind a route: refused without a
//! token, answered by the link, passed with its headers and its mark.

use berth_tests::polyglot::{self, Language};
use berth_tests::start;
use reqwest::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_middleware_refuses_answers_and_enriches_through_the_typed_call() {
    let wasm = tokio::task::spawn_blocking(|| {
        polyglot::build_for(Language::Python, "middleware", "wit", "middleware-backend")
    })
    .await
    .expect("build task")
    .unwrap_or_else(|e| panic!("building the Python middleware: {e:#}"));
    let t = start(&format!(
        r#"
        [host]
        name = "typed-middleware"
        http = "127.0.0.1:0"

        [[http.routes]]
        path = "/me"
        subject = "me.get"
        middleware = ["py"]
        guard = "session"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["me.get"]

        [[components]]
        name = "py"
        wasm = "{}"
        middleware = true
        link_unused_sockets = true
        "#,
        wasm.display()
    ))
    .await
    .expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = Client::new();
    let me = format!("{base}/me");
    let echoed = || t.host.route("echo").expect("echo").stats.snapshot().requests;

    let r = http.get(&me).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("a JSON error");
    assert_eq!(body["message"], "a bearer token is required");
    let r = http.get(&me).bearer_auth("t-nobody").send().await.expect("send");
    assert_eq!(r.status(), 401);

    let r = http.get(&me).header("x-answer", "42").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "answered by the python middleware: 42");
    assert_eq!(echoed(), 0, "the handler saw what the link stopped or answered");

    let r = http.get(&me).bearer_auth("t-ann").send().await.expect("send");
    assert_eq!(r.status(), 200);
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("x-user").as_deref(), Some("ann"));
    assert_eq!(header("x-lang").as_deref(), Some("python"));
    assert_eq!(header("berth-guard").as_deref(), Some("session"));
    assert_eq!(echoed(), 1);
    let link = t.host.route("py").expect("py").stats.snapshot();
    assert_eq!((link.requests, link.errors), (4, 2), "the link counts its own calls");
}
