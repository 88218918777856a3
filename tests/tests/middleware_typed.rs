//! Middleware that exports the typed `middleware.handle` and not the
//! frames the Rust SDK takes (`batch-middleware`), so these requests go
//! through the host's typed call: one written in Python against world
//! `middleware-backend` alone, one in C on the C helper layer. The same
//! chain behind a route: refused without a token, answered by the link,
//! passed with its headers and its mark.

use std::path::Path;

use berth_tests::polyglot::{self, Language};
use berth_tests::{TestHost, start};
use reqwest::Client;
use tokio_util::sync::DropGuard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_middleware_refuses_answers_and_enriches_through_the_typed_call() {
    refuses_answers_and_enriches(Language::Python, "middleware-backend", "python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_middleware_refuses_answers_and_enriches_through_the_typed_call() {
    refuses_answers_and_enriches(Language::C, "c-backend", "c").await;
}

async fn refuses_answers_and_enriches(language: Language, world: &'static str, lang: &str) {
    let wasm = tokio::task::spawn_blocking(move || polyglot::build_for(language, "middleware", "wit", world))
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("building the {language:?} middleware: {e:#}"));
    let (t, base, _stop) = behind_a_route(&wasm).await;
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
    assert_eq!(
        r.text().await.expect("body"),
        format!("answered by the {lang} middleware: 42")
    );
    assert_eq!(echoed(), 0, "the handler saw what the link stopped or answered");

    let r = http.get(&me).bearer_auth("t-ann").send().await.expect("send");
    assert_eq!(r.status(), 200);
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("x-user").as_deref(), Some("ann"));
    assert_eq!(header("x-lang").as_deref(), Some(lang));
    assert_eq!(header("berth-guard").as_deref(), Some("session"));
    assert_eq!(echoed(), 1);
    let link = t.host.route("link").expect("link").stats.snapshot();
    assert_eq!((link.requests, link.errors), (4, 2), "the link counts its own calls");
}

/// A host with `wasm` as the link in front of `GET /me` (guard
/// `session`), the echo guest behind it, and its HTTP address.
async fn behind_a_route(wasm: &Path) -> (TestHost, String, DropGuard) {
    let t = start(&format!(
        r#"
        [host]
        name = "typed-middleware"
        http = "127.0.0.1:0"

        [[http.routes]]
        path = "/me"
        subject = "me.get"
        middleware = ["link"]
        guard = "session"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["me.get"]

        [[components]]
        name = "link"
        wasm = "{}"
        middleware = true
        link_unused_sockets = true
        "#,
        wasm.display()
    ))
    .await
    .expect("host starts");
    let (base, stop) = t.serve_http("127.0.0.1:0").await;
    (t, base, stop)
}

/// A C component exports the middleware whether or not it registered a
/// link: marked `middleware = true` without one, it refuses every message
/// as `unhandled`, saying what is missing, and the handler sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_component_without_a_link_refuses_as_unhandled() {
    let wasm = tokio::task::spawn_blocking(|| polyglot::build(Language::C, "conformance"))
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("building the C conformance guest: {e:#}"));
    let (t, base, _stop) = behind_a_route(&wasm).await;
    let r = Client::new().get(format!("{base}/me")).send().await.expect("send");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("a JSON error");
    assert_eq!(body["kind"], "unhandled", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("berth_on_link") && message.contains("me.get"),
        "{body}"
    );
    assert_eq!(t.host.route("echo").expect("echo").stats.snapshot().requests, 0);
}
