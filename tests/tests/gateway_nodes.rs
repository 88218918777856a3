//! Nodes of the `[gateway]`, with raw WebSocket peers: several connections
//! of one node id (all reached, or the old ones closed with `dedupe =
//! "close-old"`), the `<prefix>.node.open` / `close` events a component
//! keeps state from, and the component behind the gateway swapped under
//! load without a failed request.

use std::time::Duration;

use berth::app::SwapRequest;
use berth::control::Running;
use berth_tests::SWARM_NODE;
use berth_tests::swarm::{Socket, closed, connect, next, send};
use serde_json::{Value, json};

fn manifest_text(gateway: &str) -> String {
    format!(
        r#"
[host]
name = "nodes"

[gateway]
listen = "127.0.0.1:0"
ping_interval_ms = 60000
{gateway}

[keyvalue.nodes]

[[components]]
name = "node"
wasm = "{{swarm_node}}"
subscribe = ["swarm.client.>", "swarm.node.*"]
gateway = true
keyvalue = ["nodes"]
config = {{ host = "v1" }}
"#
    )
}

async fn run(gateway: &str) -> (Running, tempfile::TempDir, String) {
    let (manifest, dir) = berth_tests::manifest(&manifest_text(gateway)).expect("manifest");
    let running = Running::start(&manifest).await.expect("host starts");
    let url = format!("ws://{}", running.gateway().expect("gateway").local_addr());
    (running, dir, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connection_of_a_node_is_asked_and_the_first_answer_counts() {
    let (running, _dir, url) = run("").await;
    let mut first = connect(&format!("{url}/twin")).await;
    let mut second = connect(&format!("{url}/twin")).await;
    // The component asks node `twin`'s client: both connections get it.
    send(&mut first, "ask back", json!(["who"]), "a1").await;
    let (asked_first, asked_second) = (next(&mut first).await, next(&mut second).await);
    for asked in [&asked_first, &asked_second] {
        assert_eq!(
            (&asked["type"], &asked["name"]),
            (&json!("request"), &json!("who")),
            "{asked}"
        );
    }
    // Only the second answers; that answer is the result.
    let answer = json!({ "type": "response", "correlationId": asked_second["correlationId"], "result": "the second" });
    futures_util::SinkExt::send(
        &mut second,
        tokio_tungstenite::tungstenite::Message::text(answer.to_string()),
    )
    .await
    .expect("answer");
    assert_eq!(
        next(&mut first).await,
        json!({ "type": "response", "correlationId": "a1", "result": "the second" })
    );
    assert_eq!(running.gateway().expect("gateway").status()["nodes"], 1);
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn close_old_closes_the_earlier_connection_of_a_node() {
    let (running, _dir, url) = run("dedupe = \"close-old\"").await;
    let mut old = connect(&format!("{url}/twin")).await;
    let mut new = connect(&format!("{url}/twin")).await;
    // The old one is told not to reconnect, then closed.
    assert_eq!(next(&mut old).await, json!({ "type": "close" }));
    assert!(closed(&mut old).await.is_some());
    send(&mut new, "echo", json!([1]), "n1").await;
    assert_eq!(next(&mut new).await["result"], json!([1]));
    running.stop().await.expect("stops");
}

/// Asks for the peers the component keeps until they are `expected`.
async fn peers_become(socket: &mut Socket, expected: Value) {
    let waited = std::time::Instant::now();
    loop {
        send(socket, "peers", json!([]), "p").await;
        let now: Value = next(socket).await["result"].clone();
        if now == expected {
            return;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "peers are {now}, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn components_are_told_when_nodes_open_and_close() {
    let (running, _dir, url) = run("").await;
    let mut carol = connect(&format!("{url}/carol")).await;
    let dave = connect(&format!("{url}/dave")).await;
    // The events reach the component on their own time: ask until the
    // bucket holds what they say (bounded).
    peers_become(&mut carol, json!(["carol", "dave"])).await;
    drop(dave);
    peers_become(&mut carol, json!(["carol"])).await;
    running.stop().await.expect("stops");
}

/// A node is open while any connection of it is: closing one of two
/// tells components nothing (the node that opens after it is seen, and the
/// first one still is).
#[tokio::test(flavor = "multi_thread")]
async fn a_node_stays_open_while_any_of_its_connections_is() {
    let (running, _dir, url) = run("").await;
    let mut erin = connect(&format!("{url}/erin")).await;
    let again = connect(&format!("{url}/erin")).await;
    peers_become(&mut erin, json!(["erin"])).await;
    drop(again);
    let _frank = connect(&format!("{url}/frank")).await;
    peers_become(&mut erin, json!(["erin", "frank"])).await;
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_component_behind_the_gateway_swaps_without_a_failed_request() {
    let (running, _dir, url) = run("").await;
    let mut socket = connect(&format!("{url}/steady")).await;
    send(&mut socket, "label", json!([]), "before").await;
    assert_eq!(next(&mut socket).await["result"], "v1");
    let app = running.app();
    let swap = tokio::spawn(async move {
        let mut config = serde_json::Map::new();
        config.insert("host".into(), json!("v2"));
        let request = SwapRequest {
            wasm: std::fs::read(SWARM_NODE).expect("wasm").into(),
            label: None,
            config: Some(config),
            component: None,
        };
        app.swap("node", request).await.expect("swapped")
    });
    // Requests one after another until the new version answers (bounded).
    let mut labels = Vec::new();
    for i in 0..5_000 {
        send(&mut socket, "label", json!([]), &format!("l{i}")).await;
        let answer = next(&mut socket).await;
        assert_eq!(answer["type"], "response", "a request failed during the swap: {answer}");
        labels.push(answer["result"].clone());
        if answer["result"] == "v2" {
            break;
        }
    }
    assert!(!swap.await.expect("swap task").unchanged);
    assert_eq!(labels.last(), Some(&json!("v2")), "the new version never answered");
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_without_the_grant_cannot_reach_nodes() {
    let text = manifest_text("").replace("gateway = true\n", "");
    let (manifest, _dir) = berth_tests::manifest(&text).expect("manifest");
    let running = Running::start(&manifest).await.expect("host starts");
    let url = format!("ws://{}", running.gateway().expect("gateway").local_addr());
    let mut socket = connect(&format!("{url}/nosy")).await;
    send(&mut socket, "ask back", json!(["who"]), "f1").await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("set `gateway = true`")),
        "{refused}"
    );
    let forbidden = running.app().route("node").expect("node").stats.snapshot();
    assert!(forbidden.forbidden >= 1, "counted as forbidden");
    running.stop().await.expect("stops");
}
