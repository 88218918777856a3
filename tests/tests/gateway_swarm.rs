//! Two hosts, one swarm: a node on each, on one NATS server and on one
//! RabbitMQ, with the real amqp-swarm npm client. Server requests (node to
//! node) and remote client requests (through the other node's `remote`
//! handlers to its client) go both ways over the broker, and reach the
//! host that holds the node.

use std::time::Duration;

use berth::control::Running;
use berth_tests::swarm::SwarmClient;
use berth_tests::{NATS, unique};
use serde_json::{Value, json};

/// One host: `transport` is the TOML of its broker; `label` is what its
/// component says it is in `whoami`.
fn manifest_text(service: &str, transport: &str, label: &str) -> String {
    format!(
        r#"
[host]
name = "{service}"
{transport}

[gateway]
listen = "127.0.0.1:0"
request_timeout_ms = 2000

[keyvalue.nodes]

[[components]]
name = "node"
wasm = "{{swarm_node}}"
subscribe = ["swarm.client.>", "swarm.server.>", "swarm.remote.>", "swarm.node.*"]
gateway = true
keyvalue = ["nodes"]
config = {{ host = "{label}" }}
"#
    )
}

async fn two_hosts(transport: &str) {
    let service = unique("swarm");
    let mut hosts = Vec::new();
    for label in ["h1", "h2"] {
        let (manifest, dir) = berth_tests::manifest(&manifest_text(&service, transport, label)).expect("manifest");
        hosts.push((Running::start(&manifest).await.expect("host starts"), dir));
    }
    let url = |i: usize| format!("ws://{}", hosts[i].0.gateway().expect("gateway").local_addr());
    let tag = unique("t");
    let mut client = SwarmClient::start("twoHosts", &[url(0), url(1)], &[("SWARM_TAG", &tag)]);
    let out = tokio::task::spawn_blocking(move || client.next(Duration::from_secs(60)))
        .await
        .expect("client");
    let (alice, bob) = (format!("alice{tag}"), format!("bob{tag}"));

    // Server requests reach the components of the host holding the node,
    // with the sender's node.
    assert_eq!(
        out["aliceTellsBob"]["result"],
        json!({ "node": bob, "sender": alice, "host": "h2" }),
        "{out}"
    );
    assert_eq!(
        out["bobTellsAlice"]["result"],
        json!({ "node": alice, "sender": bob, "host": "h1" }),
        "{out}"
    );
    // Remote client requests pass the node's handler, which changed the
    // arguments, then its client answers.
    assert_eq!(out["aliceRelaysBob"]["result"], "bob got relayed:hi", "{out}");
    assert_eq!(out["bobRelaysAlice"]["result"], "alice got relayed:yo", "{out}");
    // ... or the handler answers itself.
    assert_eq!(out["blocked"]["result"], "blocked by the node", "{out}");
    // A node no host holds: the component's request failed at once, and
    // its handler passed that on as its own error.
    let nobody: &Value = &out["nobody"]["error"];
    assert_eq!(nobody["type"], "endpoint", "{out}");
    let says = nobody["message"].as_str().unwrap_or_default();
    assert!(says.starts_with("no host of the swarm holds node `nobody"), "{out}");

    for (i, (running, _)) in hosts.iter().enumerate() {
        let status = running.gateway().expect("gateway").status();
        assert!(
            status["requests"]["server"].as_u64().is_some_and(|n| n >= 1),
            "host {i}: {status}"
        );
        assert!(
            status["requests"]["remote"].as_u64().is_some_and(|n| n >= 1),
            "host {i}: {status}"
        );
    }
    for (running, _dir) in hosts {
        running.stop().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_on_two_hosts_reach_each_other_over_nats() {
    drop(berth_tests::nats_client().await);
    two_hosts(&format!(
        "transport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\""
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_on_two_hosts_reach_each_other_over_rabbitmq() {
    let exchange = unique("berth-swarm-");
    two_hosts(&format!(
        "transport = \"amqp\"\n[transports.amqp]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nexchange = \"{exchange}\""
    ))
    .await;
}
