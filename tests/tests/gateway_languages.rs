//! The gateway from the Python, JavaScript and C helper layers
//! (`berth_gateway.py`, `berth-gateway.js`, `berth_gateway_send`): a component asks the client
//! that sent it a request and answers with the client's answer, and a
//! request to a node nobody holds comes back as an error, through a raw
//! WebSocket client.

use std::path::PathBuf;

use berth::control::Running;
use berth_tests::polyglot::{self, Language};
use berth_tests::swarm::{connect, next, send};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Ws;

async fn built(language: Language) -> PathBuf {
    tokio::task::spawn_blocking(move || polyglot::build(language, "gateway"))
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("building the {language:?} gateway guest: {e:#}"))
}

async fn asks_its_client_back(language: Language) {
    let wasm = built(language).await;
    let text = format!(
        r#"
[host]
name = "languages"

[gateway]
listen = "127.0.0.1:0"
ping_interval_ms = 60000
request_timeout_ms = 5000

[[components]]
name = "node"
wasm = "{}"
subscribe = ["swarm.client.>"]
gateway = true
link_unused_sockets = true
"#,
        wasm.display()
    );
    let (manifest, _dir) = berth_tests::manifest(&text).expect("manifest");
    let running = Running::start(&manifest).await.expect("host starts");
    let url = format!("ws://{}/alice", running.gateway().expect("gateway").local_addr());
    let mut alice = connect(&url).await;

    send(&mut alice, "ask_back", json!(["who"]), "a1").await;
    let asked = next(&mut alice).await;
    assert_eq!(
        (&asked["type"], &asked["name"]),
        (&json!("request"), &json!("who")),
        "{asked}"
    );
    let answer = json!({ "type": "response", "correlationId": asked["correlationId"], "result": { "me": "alice" } });
    alice.send(Ws::text(answer.to_string())).await.expect("answer");
    assert_eq!(
        next(&mut alice).await,
        json!({ "type": "response", "correlationId": "a1", "result": { "me": "alice" } })
    );

    // Nobody holds node `nobody`: the component's request fails, and so
    // does the one that asked it, saying why.
    send(&mut alice, "ask_node", json!(["nobody", "who"]), "a2").await;
    let failed = next(&mut alice).await;
    assert_eq!(
        (&failed["type"], &failed["correlationId"], &failed["errorType"]),
        (&json!("error"), &json!("a2"), &json!("endpoint")),
        "{failed}"
    );
    assert_eq!(
        failed["message"], "no host of the swarm holds node `nobody`",
        "{failed}"
    );
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_component_asks_its_client_back() {
    asks_its_client_back(Language::Python).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_component_asks_its_client_back() {
    asks_its_client_back(Language::JavaScript).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_c_component_asks_its_client_back() {
    asks_its_client_back(Language::C).await;
}
