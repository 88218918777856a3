//! `[[http.routes]]` under load: a routed GET through the wasm echo guest,
//! the same through a two-link middleware chain, and a `wasi:http`
//! component's route, each against a native axum handler doing the same
//! in one process.
//!
//! Run: `cargo bench -p berth-tests --bench http_routes`.
//!
//! Each server is a child process (this binary again, `--serve
//! KIND:PORT`), so its CPU time (user + sys from `/proc`) divided by the
//! requests it answered is its own cost per request. One load generator
//! (reqwest, keep-alive) keeps 1, 64 or 256 GETs in flight; each figure is
//! the median of `rpc::ROUNDS` rounds (9; `BERTH_BENCH_ROUNDS=N` to
//! change), the servers' rounds interleaved. Berth runs on the in-memory
//! transport, with the `berth` binary's allocator and log subscriber.
//!
//! - **native axum, echo**: a handler that answers what the echo guest
//!   answers to a route: the body, and as headers the request's headers
//!   with the method, path and path parameter;
//! - **berth route → wasm echo**: `GET /orders/{id}` routed to the echo
//!   guest's subject;
//! - **berth route, two middleware links**: the same behind two
//!   `gatekeeper` links that each set a header; its CPU per request less
//!   the plain route's, halved, is what one link costs;
//! - **native axum, hello** and **berth wasi:http component**: a text
//!   answer from an axum handler and from the `http-hello` guest (written
//!   against `wasi:http` alone), each also reading the request's `x-user`
//!   header and its body, as the guest does; the component pooled, and
//!   with a new instance per request, a wasi:http component's default.
//!
//! `BERTH_BENCH_ONLY=routes` or `BERTH_BENCH_ONLY=component` runs one of
//! the two tables alone; `BERTH_BENCH_SLOTS=4` sizes a server's instance
//! pool for valgrind (see BENCHMARKS.md, "Instructions per request").

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[path = "support/rpc.rs"]
#[allow(dead_code)] // the broker benches' child modes
mod rpc;

use std::future::Future;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::routing::get;

/// Requests per round at 1, 64 and 256 in flight.
const REQUESTS: [usize; 3] = [2_000, 20_000, 20_000];

/// The native echo: what the echo guest's reply to a routed request
/// carries, made by hand.
async fn native_echo(
    method: Method,
    uri: Uri,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (HeaderMap, &'static str) {
    let mut out = headers;
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), v);
        }
    };
    set("berth-http-method", method.as_str());
    set("berth-http-path", uri.path());
    set("berth-http-route", "/orders/{id}");
    set("berth-http-param-id", &id);
    out.remove("content-length");
    (out, "")
}

/// What the `http-hello` guest answers: a line naming the method and
/// path, the request's `x-user` as `x-seen-user`, its body's length.
async fn native_hello(method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> (HeaderMap, String) {
    let mut out = HeaderMap::new();
    out.insert("content-type", HeaderValue::from_static("text/plain"));
    if let Some(user) = headers.get("x-user") {
        out.insert("x-seen-user", user.clone());
    }
    out.insert("x-body-length", HeaderValue::from(body.len()));
    (out, format!("hello from wasi:http: {method} {}", uri.path()))
}

async fn serve_native(port: u16) {
    let app = axum::Router::new()
        .route("/orders/{id}", get(native_echo))
        .route("/hello/{*rest}", get(native_hello));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    println!("ready");
    axum::serve(listener, app).await.unwrap();
}

async fn serve_berth(port: u16) {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let text = berth_tests::with_guest_paths(&format!(
        r#"
        [host]
        name = "berth-bench"
        http = "127.0.0.1:{port}"
        http_max_connections = 1024

        [[http.routes]]
        path = "/orders/{{id}}"
        methods = ["GET"]
        subject = "orders.get"

        [[http.routes]]
        path = "/chain/{{id}}"
        methods = ["GET"]
        subject = "orders.get"
        middleware = ["one", "two"]

        [[http.routes]]
        path = "/hello/{{*rest}}"
        component = "hello"

        [[http.routes]]
        path = "/fresh/{{*rest}}"
        component = "hello-fresh"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["orders.get"]
        max_concurrency = 256

        [[components]]
        name = "one"
        wasm = "{{gatekeeper}}"
        middleware = true
        max_concurrency = 256
        [components.config]
        set = {{ "x-one" = "1" }}

        [[components]]
        name = "two"
        wasm = "{{gatekeeper}}"
        middleware = true
        max_concurrency = 256
        [components.config]
        set = {{ "x-two" = "2" }}

        [[components]]
        name = "hello"
        wasm = "{{http_hello}}"
        max_concurrency = 256
        instance_mode = "pooled"

        [[components]]
        name = "hello-fresh"
        wasm = "{{http_hello}}"
        max_concurrency = 256
        "#
    ));
    let data = tempfile::tempdir().unwrap();
    let mut manifest = berth::manifest::Manifest::parse(&text).unwrap();
    manifest.host.data_dir = data.path().to_path_buf();
    // Under valgrind, which cannot reserve a full pool's address space.
    if let Some(slots) = std::env::var("BERTH_BENCH_SLOTS").ok().and_then(|s| s.parse().ok()) {
        manifest.host.instance_slots = Some(slots);
    }
    manifest.validate().unwrap();
    let _running = berth::control::Running::start(&manifest).await.unwrap();
    println!("ready");
    std::future::pending::<()>().await;
}

/// One GET of `url` on the shared client; a failure ends the bench.
fn getter(
    client: reqwest::Client,
    url: String,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone {
    move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            let response = client.get(&url).send().await.unwrap();
            assert!(response.status().is_success(), "{url}: {}", response.status());
            response.bytes().await.unwrap();
        })
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let (kind, port) = args[i + 1].split_once(':').unwrap();
        let port: u16 = port.parse().unwrap();
        match kind {
            "native" => rt.block_on(serve_native(port)),
            _ => rt.block_on(serve_berth(port)),
        }
        return;
    }
    // cargo's `--list` (a bench has no tests to list).
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().unwrap();
    let only = std::env::var("BERTH_BENCH_ONLY").ok();
    let runs = |table: &str| only.as_deref().is_none_or(|o| o == table);
    rt.block_on(async {
        if runs("routes") {
            let rows = [
                ("native axum, echo", "native", "/orders/42"),
                ("berth route → wasm echo", "berth", "/orders/42"),
                ("berth route, two middleware links", "berth", "/chain/42"),
            ];
            table(&client, &rows).await;
            println!();
        }
        if runs("component") {
            let rows = [
                ("native axum, hello", "native", "/hello/x"),
                ("berth wasi:http component", "berth", "/hello/x"),
                ("berth wasi:http component, fresh (default)", "berth", "/fresh/x"),
            ];
            table(&client, &rows).await;
        }
    });
}

/// Runs and prints one table: each row's name, the kind of server that
/// answers it (each its own process and port; a Berth one serves every
/// route) and the path its GETs ask for.
async fn table(client: &reqwest::Client, rows: &[(&'static str, &str, &str)]) {
    let servers: Vec<(String, u16)> = rows
        .iter()
        .map(|(_, kind, _)| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            (format!("{kind}:{port}"), port)
        })
        .collect();
    let responders = rows
        .iter()
        .zip(&servers)
        .map(|((name, _, path), (server, port))| {
            let url = format!("http://127.0.0.1:{port}{path}");
            (*name, server.as_str(), getter(client.clone(), url))
        })
        .collect();
    rpc::print(&rpc::run_responders(responders, REQUESTS, "no broker").await);
}
