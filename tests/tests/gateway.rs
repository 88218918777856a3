//! The `[gateway]` with the real npm client `amqp-swarm@0.3.2` on Node 20,
//! one host on the embedded default (memory transport, embedded bucket):
//! client requests with results and all three error kinds, requests from a
//! component to the client, node lifecycle events, the client's reconnect
//! after the host drops it, 1,000 clients at once, and the gateway's
//! health and metrics. (Two hosts: gateway_swarm.rs; hostile frames:
//! gateway_hostile.rs.)

use std::time::Duration;

use berth::control::Running;
use berth_tests::nats_server::free_port;
use berth_tests::swarm::SwarmClient;
use serde_json::{Value, json};

/// The swarm-node guest serves every gateway subject; the gateway gives
/// up on a request after 300 ms, before the client's own 1 s.
fn manifest_text(gateway_port: u16, http_port: u16) -> String {
    format!(
        r#"
[host]
name = "swarm"
http = "127.0.0.1:{http_port}"

[gateway]
listen = "127.0.0.1:{gateway_port}"
request_timeout_ms = 300

[keyvalue.nodes]

[[components]]
name = "node"
wasm = "{{swarm_node}}"
subscribe = ["swarm.client.>", "swarm.server.>", "swarm.remote.>", "swarm.node.*"]
gateway = true
keyvalue = ["nodes"]
timeout_ms = 5000
"#
    )
}

async fn run(text: &str) -> (Running, tempfile::TempDir) {
    let (manifest, dir) = berth_tests::manifest(text).expect("manifest");
    let running = Running::start(&manifest).await.expect("host starts");
    (running, dir)
}

fn url(running: &Running) -> String {
    format!("ws://{}", running.gateway().expect("a gateway").local_addr())
}

fn error_of(outcome: &Value) -> (&str, &Value, &str) {
    let e = &outcome["error"];
    (
        e["type"].as_str().unwrap_or_default(),
        &e["subtype"],
        e["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_client_gets_results_errors_and_requests_of_its_own() {
    let (running, _dir) = run(&manifest_text(0, free_port())).await;
    let mut client = SwarmClient::start("basics", &[url(&running)], &[]);
    let out = tokio::task::spawn_blocking(move || client.next(Duration::from_secs(30)))
        .await
        .expect("client");

    assert_eq!(out["hello"]["result"], "general kenobi", "{out}");
    assert_eq!(out["echo"]["result"], json!([1, { "a": [2] }, "x"]), "{out}");
    // The handler's error: endpoint, with its message and data.
    assert_eq!(
        error_of(&out["endpoint"]),
        ("endpoint", &Value::Null, "take a seat"),
        "{out}"
    );
    assert_eq!(
        out["endpoint"]["error"]["data"],
        json!({ "council": true, "master": false })
    );
    // No handler: protocol / unhandled, naming the request.
    let (kind, subtype, _) = error_of(&out["unhandled"]);
    assert_eq!((kind, subtype), ("protocol", &json!("unhandled")), "{out}");
    assert_eq!(out["unhandled"]["error"]["data"]["requestName"], "kamino");
    // The gateway's deadline (300 ms), well before the client's own 1 s.
    let (kind, subtype, _) = error_of(&out["timeout"]);
    assert_eq!((kind, subtype), ("protocol", &json!("timeout")), "{out}");
    assert!(out["timeout"]["ms"].as_u64().is_some_and(|ms| ms < 900), "{out}");

    // A component asks the client (its `on` handlers answer), and gets
    // the client's own errors with their kinds.
    assert_eq!(out["askBack"]["result"], "i will make it legal", "{out}");
    assert_eq!(error_of(&out["askBackThrows"]).0, "endpoint", "{out}");
    assert_eq!(error_of(&out["askBackThrows"]).2, "clone", "{out}");
    let (kind, subtype, _) = error_of(&out["askBackUnhandled"]);
    assert_eq!((kind, subtype), ("protocol", &json!("unhandled")), "{out}");

    // `swarm.node.open` reached the component, which keeps nodes in a bucket.
    assert!(
        out["peers"]["result"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("alice"))),
        "{out}"
    );
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_client_reconnects_after_the_host_drops_it() {
    let port = free_port();
    let text = manifest_text(port, free_port());
    let (first, _dir) = run(&text).await;
    let mut client = SwarmClient::start("reconnect", &[format!("ws://127.0.0.1:{port}")], &[]);
    let (mut client, ready) = tokio::task::spawn_blocking(move || {
        let ready = client.next(Duration::from_secs(30));
        (client, ready)
    })
    .await
    .expect("client");
    assert_eq!(ready["before"]["result"], "general before", "{ready}");

    // The host goes away (its clients are closed as "going away", not
    // told to stay closed), and another comes up on the same port.
    first.stop().await.expect("stops");
    let text = manifest_text(port, free_port());
    let (second, _dir2) = run(&text).await;
    let out = tokio::task::spawn_blocking(move || {
        client.go();
        client.next(Duration::from_secs(30))
    })
    .await
    .expect("client");
    assert_eq!(out["after"]["result"], "general after", "{out}");
    assert_eq!(
        out["askBack"]["result"], "phoenix",
        "the new host reaches the client: {out}"
    );
    second.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_clients_at_once() {
    let http = free_port();
    let (running, _dir) = run(&manifest_text(0, http)).await;
    let mut client = SwarmClient::start("flood", &[url(&running)], &[("SWARM_CLIENTS", "1000")]);
    let (mut client, connected) = tokio::task::spawn_blocking(move || {
        let connected = client.next(Duration::from_secs(60));
        (client, connected)
    })
    .await
    .expect("client");
    assert_eq!(connected["right"], 1000, "every client got its own answer: {connected}");

    // Each client answers two of the host's pings (one a second) ...
    let waited = std::time::Instant::now();
    while running.gateway().expect("gateway").status()["pongs"].as_u64() < Some(2000) {
        assert!(waited.elapsed() < Duration::from_secs(20), "pings not answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gateway = running.gateway().expect("gateway").status();
    assert_eq!(gateway["connections"], 1000, "{gateway}");
    assert_eq!(gateway["nodes"], 1000, "{gateway}");
    assert!(
        gateway["requests"]["from_client"].as_u64().is_some_and(|n| n >= 1000),
        "{gateway}"
    );
    // Health and metrics say the same.
    let base = format!("http://127.0.0.1:{http}");
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["gateway"]["connections"], 1000, "{health}");
    let metrics = berth_tests::scrape_metrics(&base).await;
    assert!(
        metrics.contains("berth_gateway_connections{service=\"swarm\"} 1000"),
        "{metrics}"
    );
    assert!(metrics.contains("berth_gateway_nodes{service=\"swarm\"} 1000"));

    let out = tokio::task::spawn_blocking(move || {
        client.go();
        client.next(Duration::from_secs(30))
    })
    .await
    .expect("client");
    assert_eq!(out["right"], 1000, "{out}");
    running.stop().await.expect("stops");
}
