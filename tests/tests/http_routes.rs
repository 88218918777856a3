//! `[[http.routes]]` with real HTTP clients against a running host: path
//! parameters, query and headers reaching the handler, 404/405/413,
//! middleware chains that refuse, answer and enrich, session and admin
//! guards, middleware in front of a NATS subscription, and a middleware
//! swapped under load without a failed request.

use std::time::Duration;

use berth::app::SwapRequest;
use berth_tests::{GATEKEEPER, NATS, TestHost, start, unique};
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
async fn middleware_sits_in_front_of_a_nats_subscription() {
    let prefix = unique("mw");
    let t = start(&format!(
        r#"
        [host]
        name = "{prefix}"
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = [{{ subject = "{prefix}.>", middleware = ["strict"] }}]

        [[components]]
        name = "strict"
        wasm = "{{gatekeeper}}"
        middleware = true
        [components.config]
        required = true
        users = {{ "t-ann" = "ann" }}
        "#
    ))
    .await
    .expect("host starts on NATS");
    let nats = berth_tests::nats_client().await;
    let subject = format!("{prefix}.hello");

    let refused = nats
        .request(subject.clone(), "no token".into())
        .await
        .expect("an answer");
    let headers = refused.headers.clone().unwrap_or_default();
    assert_eq!(headers.get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("401"));
    assert_eq!(echo_requests(&t), 0, "the handler saw a refused message");

    let mut signed = async_nats::HeaderMap::new();
    signed.insert("authorization", "Bearer t-ann");
    let passed = nats
        .request_with_headers(subject.clone(), signed, "hello".into())
        .await
        .expect("an answer");
    let headers = passed.headers.clone().unwrap_or_default();
    assert_eq!(passed.payload.as_ref(), b"hello");
    assert_eq!(headers.get("x-user").map(|v| v.as_str()), Some("ann"));
    assert_eq!(headers.get("berth-guard").map(|v| v.as_str()), Some("session"));
    assert_eq!(echo_requests(&t), 1);
    let strict = t.host.route("strict").expect("strict").stats.snapshot();
    assert_eq!(
        (strict.requests, strict.errors),
        (2, 1),
        "the link counts its own calls"
    );
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

/// A plain HTTP server on 127.0.0.1 that answers `pong`, for outbound
/// requests; its address.
async fn pong_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "pong" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
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
}

#[tokio::test]
async fn events_a_middleware_refuses_are_dead_lettered_and_those_it_passes_are_handled_and_acked() {
    let u = unique("mwjs");
    let subject = format!("{u}.event");
    let t = start(&format!(
        r#"
        [host]
        name = "{u}"
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = [{{ subject = "{subject}", stream = "{u}", dead_letter = "dead.{u}", middleware = ["strict"] }}]

        [[components]]
        name = "strict"
        wasm = "{{gatekeeper}}"
        middleware = true
        [components.config]
        required = true
        users = {{ "t-ann" = "ann" }}
        "#
    ))
    .await
    .expect("host starts with a JetStream subscription");
    let nats = berth_tests::nats_client().await;
    let mut dead = nats.subscribe(format!("dead.{u}")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let js = async_nats::jetstream::new(nats.clone());
    js.publish(subject.clone(), "unsigned".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let mut signed = async_nats::HeaderMap::new();
    signed.insert("authorization", "Bearer t-ann");
    js.publish_with_headers(subject.clone(), signed, "signed".into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    let refused = tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut dead))
        .await
        .expect("a dead letter within 10 s")
        .expect("subscription open");
    assert_eq!(refused.payload.as_ref(), b"unsigned");
    let reason = refused
        .headers
        .as_ref()
        .and_then(|h| h.get("berth-error"))
        .map(|v| v.to_string());
    assert!(
        reason.is_some_and(|r| r.contains("a bearer token is required")),
        "{refused:?}"
    );
    let echo = &t.host.route("echo").expect("echo").stats;
    assert!(
        echo.wait_until(Duration::from_secs(5), |s| s.events == 1).await,
        "{:?}",
        echo.snapshot()
    );
    let strict = &t.host.route("strict").expect("strict").stats;
    assert!(strict.wait_until(Duration::from_secs(5), |s| s.requests == 2).await);
    // Settled once each: the broker holds neither (its state, polled
    // until the acks land, within 5 s).
    let stream = js.get_stream(&u).await.expect("stream");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&format!("{u}_echo"))
        .await
        .expect("the durable consumer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info = consumer.info().await.expect("consumer info").clone();
        if (info.num_ack_pending, info.num_pending) == (0, 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still unsettled: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(echo.snapshot().events, 1, "redelivered to the handler");
    let _ = js.delete_stream(&u).await;
}
