//! `[[http.routes]]` with real HTTP clients against a running host: path
//! parameters, query and headers reaching the handler, 404/405/413,
//! middleware chains that refuse, answer and enrich, session and admin
//! guards, and a middleware swapped under load without a failed request.
//! (Middleware in front of subscriptions: middleware_messages.rs;
//! wasi:http components: wasi_http.rs.)

use std::time::Duration;

use berth::app::SwapRequest;
use berth_tests::{GATEKEEPER, TestHost, start};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

/// Echo serves every route (it replies with the headers it got, so the
/// client sees what the handler saw); `auth` signs in by token, `stamp`
/// sets a header, `strict` refuses what has no token.
const MANIFEST: &str = r#"
[host]
name = "web"
http = "127.0.0.1:0"

[[http.routes]]
path = "/orders/{id}"
methods = ["GET", "POST"]
subject = "orders.get"

[[http.routes]]
path = "/orders/{id}"
methods = ["DELETE"]
subject = "orders.delete"
middleware = ["auth"]
guard = "admin"

[[http.routes]]
path = "/files/{*rest}"
subject = "files.get"

[[http.routes]]
path = "/me"
subject = "me.get"
middleware = ["auth", "stamp"]
guard = "session"

[[http.routes]]
path = "/strict"
subject = "strict.get"
middleware = ["strict"]

[[http.routes]]
path = "/behind-subscription"
subject = "sub.guarded"

[[components]]
name = "echo"
wasm = "{echo}"
subscribe = ["orders.*", "files.get", "me.get", "strict.get", { subject = "sub.guarded", middleware = ["strict"] }]
max_message_kb = 1

[[components]]
name = "auth"
wasm = "{gatekeeper}"
middleware = true
[components.config]
users = { "t-ann" = "ann", "t-root" = "root" }
admins = ["root"]

[[components]]
name = "stamp"
wasm = "{gatekeeper}"
middleware = true
[components.config]
set = { "x-stamp" = "two-links" }

[[components]]
name = "strict"
wasm = "{gatekeeper}"
middleware = true
[components.config]
required = true
users = { "t-ann" = "ann" }
"#;

async fn host() -> (TestHost, String, tokio_util::sync::DropGuard) {
    let t = start(MANIFEST).await.expect("host starts");
    let (base, stop) = t.serve_http("127.0.0.1:0").await;
    (t, base, stop)
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn json(r: Response) -> Value {
    r.json().await.expect("a JSON body")
}

#[tokio::test]
async fn parameters_query_and_headers_reach_the_handler_and_its_reply_comes_back() {
    let (_t, base, _stop) = host().await;
    let http = Client::new();
    let r = http
        .post(format!("{base}/orders/42?expand=items&x=1"))
        .header("x-client", "c1")
        .header("content-type", "text/plain")
        .body("the body")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "berth-http-method"), Some("POST"));
    assert_eq!(header(&r, "berth-http-path"), Some("/orders/42"));
    assert_eq!(header(&r, "berth-http-param-id"), Some("42"));
    assert_eq!(header(&r, "berth-http-query"), Some("expand=items&x=1"));
    assert_eq!(header(&r, "berth-http-route"), Some("/orders/{id}"));
    assert_eq!(header(&r, "x-client"), Some("c1"));
    assert_eq!(header(&r, "content-type"), Some("text/plain"));
    assert_eq!(r.text().await.expect("body"), "the body");

    let r = http.get(format!("{base}/files/a/b/c.txt")).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "berth-http-param-rest"), Some("a/b/c.txt"));

    // Parameters are decoded; one no header could carry is refused.
    let r = http.get(format!("{base}/orders/a%20b")).send().await.expect("send");
    assert_eq!(header(&r, "berth-http-param-id"), Some("a b"));
    let r = http.get(format!("{base}/orders/a%0Ab")).send().await.expect("send");
    assert_eq!(r.status(), 400);
    assert!(
        json(r).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("path parameter `id`"))
    );
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_large_bodies_get_their_status() {
    let (_t, base, _stop) = host().await;
    let http = Client::new();
    let r = http.get(format!("{base}/nowhere")).send().await.expect("send");
    assert_eq!(r.status(), 404);
    assert!(
        json(r).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("GET /nowhere"))
    );

    let r = http.put(format!("{base}/orders/1")).send().await.expect("send");
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "allow"), Some("DELETE, GET, HEAD, POST"));

    let r = http
        .post(format!("{base}/orders/1"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413);
    assert!(json(r).await["message"].as_str().is_some_and(|m| m.contains("1 KiB")));
}

#[tokio::test]
async fn a_chain_refuses_answers_and_enriches_and_guards_admit_only_whom_it_marked() {
    let (t, base, _stop) = host().await;
    let http = Client::new();
    let me = format!("{base}/me");

    // No token: the chain passes it unmarked, the session guard refuses,
    // and a caller's own mark does not count.
    for forged in [None, Some("admin")] {
        let mut request = http.get(&me);
        if let Some(mark) = forged {
            request = request.header("berth-guard", mark);
        }
        let r = request.send().await.expect("send");
        assert_eq!(r.status(), 401, "forged mark {forged:?}");
        assert!(
            json(r).await["message"]
                .as_str()
                .is_some_and(|m| m.contains("signed-in"))
        );
    }
    // A token the middleware does not know: its own 401.
    let r = http.get(&me).bearer_auth("t-nobody").send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["message"], "unknown token");

    // Signed in: both links' headers and the mark reach the handler.
    let r = http.get(&me).bearer_auth("t-ann").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-user"), Some("ann"));
    assert_eq!(header(&r, "x-role"), Some("user"));
    assert_eq!(header(&r, "x-stamp"), Some("two-links"));
    assert_eq!(header(&r, "berth-guard"), Some("session"));

    // The admin guard: 401 without a session, 403 for a user, 200 for an admin.
    let delete = format!("{base}/orders/7");
    let r = http.delete(&delete).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let r = http.delete(&delete).bearer_auth("t-ann").send().await.expect("send");
    assert_eq!(r.status(), 403);
    let before = echo_requests(&t);
    let r = http.delete(&delete).bearer_auth("t-root").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "berth-guard"), Some("admin"));
    assert_eq!(
        echo_requests(&t),
        before + 1,
        "only the admitted request reached the handler"
    );

    // A link that refuses and a link that answers: the handler never sees either.
    let strict = format!("{base}/strict");
    let before = echo_requests(&t);
    let r = http.get(&strict).send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["message"], "a bearer token is required");
    let r = http.get(&strict).header("x-answer", "hi").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "answered by the middleware: hi");
    assert_eq!(
        echo_requests(&t),
        before,
        "the handler was called behind a stopping link"
    );

    // Counted per route, in /v1/routes and /metrics.
    let routes = json(http.get(format!("{base}/v1/routes")).send().await.expect("send")).await;
    let me_route = routes["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["path"] == "/me"))
        .cloned()
        .expect("/me is listed");
    assert_eq!(me_route["middleware"], serde_json::json!(["auth", "stamp"]));
    assert_eq!(me_route["guard"], "session");
    assert_eq!(me_route["counters"]["requests"], 4);
    assert_eq!(me_route["counters"]["by_class"], serde_json::json!([0, 1, 0, 3, 0]));
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"berth_http_requests_total{service="web",route="/me",methods="",status="4xx"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"berth_http_request_seconds_total{service="web",route="/strict""#));
}

fn echo_requests(t: &TestHost) -> u64 {
    t.host.route("echo").expect("echo").stats.snapshot().requests
}

#[tokio::test]
async fn a_middleware_swapped_under_load_fails_no_request() {
    let (t, base, _stop) = host().await;
    let http = Client::new();
    let me = format!("{base}/me");
    let old = t.host.route("stamp").expect("stamp").versions.active();
    let (started, first_round) = tokio::sync::oneshot::channel();
    let load = tokio::spawn({
        let (http, me) = (http.clone(), me.clone());
        async move {
            let mut started = Some(started);
            let mut stamps = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            for _ in 0..400 {
                let calls = (0..8).map(|_| http.get(&me).bearer_auth("t-ann").send());
                for r in futures_util::future::join_all(calls).await {
                    let r = r.expect("send");
                    assert_eq!(r.status(), StatusCode::OK, "a request failed during the swap");
                    stamps.push(header(&r, "x-stamp").unwrap_or_default().to_owned());
                }
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                if stamps.last().is_some_and(|s| s == "swapped") || tokio::time::Instant::now() > deadline {
                    break;
                }
            }
            stamps
        }
    });
    first_round.await.expect("the load started");
    let mut config = serde_json::Map::new();
    config.insert("set".into(), serde_json::json!({ "x-stamp": "swapped" }));
    let report = t
        .host
        .swap(
            "stamp",
            SwapRequest {
                wasm: std::fs::read(GATEKEEPER).expect("wasm").into(),
                label: None,
                config: Some(config),
                component: None,
            },
        )
        .await
        .expect("swapped");
    assert!(!report.unchanged);
    let stamps = load.await.expect("load finished");
    assert!(stamps.iter().any(|s| s == "two-links"), "no request before the swap");
    assert_eq!(
        stamps.last().map(String::as_str),
        Some("swapped"),
        "the new version never served"
    );
    let new = t.host.route("stamp").expect("stamp").versions.active();
    assert!(!std::sync::Arc::ptr_eq(&new, &old), "the old version still serves");
}
