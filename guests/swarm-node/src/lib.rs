//! The server side of an amqp-swarm app, as a component behind Berth's
//! gateway: what the gateway tests and the benchmark talk to with the
//! real npm client.
//!
//! Client requests (`swarm.client.<name>`, arguments a JSON array):
//! - `hello there` `[who]`: `"general <who>"`; `anakin` gets the error
//!   "take a seat" with data `{council: true, master: false}`.
//! - `echo` `[...]`: the arguments back.
//! - `ask back` `[name, ...args]`: sends request `name` to this node's own
//!   client and answers with its answer.
//! - `tell` `[node, name, ...args]`: a server request to `node`.
//! - `relay` `[node, name, ...args]`: a remote client request to `node`.
//! - `spin` `[ms]`: computes for `ms` milliseconds, then answers.
//! - `peers`: the nodes that opened and have not closed (kept in bucket
//!   `nodes` from `swarm.node.open` / `swarm.node.close`).
//! - `label`: the config's `host`, which tells versions apart in a swap.
//!
//! Server requests (`swarm.server.whoami`): `{node, sender, host}`, where
//! `host` is the config's `host`. Remote client requests: `greet` passes
//! with its first argument prefixed `relayed:`, `blocked` answers itself.

use std::time::{Duration, Instant};

use berth_sdk::kv::Bucket;
use berth_sdk::{Config, Error, Message, Reply, Router, gateway};
use serde_json::{Value, json};

fn routes(config: &Config) -> Router {
    let host = config.get_str("host").unwrap_or("berth").to_owned();
    let label = host.clone();
    Router::new()
        .request("swarm.client.label", move |_: &Message| Reply::json(&label))
        .request("swarm.client.hello_there", hello)
        .request("swarm.client.echo", |msg: &Message| Ok(Reply::new(msg.body.clone())))
        .request("swarm.client.ask_back", ask_back)
        .request("swarm.client.tell", |msg: &Message| forward(msg, false))
        .request("swarm.client.relay", |msg: &Message| forward(msg, true))
        .request("swarm.client.spin", spin)
        .request("swarm.client.peers", peers)
        .request("swarm.server.whoami", move |msg: &Message| {
            Reply::json(&json!({
                "node": msg.header("swarm-node"),
                "sender": msg.header("swarm-sender"),
                "host": host,
            }))
        })
        .request("swarm.remote.greet", |msg: &Message| {
            let mut args = arguments(msg)?;
            if let Some(Value::String(first)) = args.first_mut() {
                *first = format!("relayed:{first}");
            }
            Reply::json(&args)
        })
        .request("swarm.remote.blocked", |_: &Message| {
            Ok(Reply::json(&"blocked by the node")?.with_header("swarm-pass", "false"))
        })
        .event("swarm.node.open", |msg: &Message| {
            let opened: Value = msg.json()?;
            let node = opened["node"].as_str().unwrap_or_default();
            Bucket::open("nodes")?.set(node, opened["remote"].as_str().unwrap_or_default())
        })
        .event("swarm.node.close", |msg: &Message| {
            let closed: Value = msg.json()?;
            Bucket::open("nodes")?.delete(closed["node"].as_str().unwrap_or_default())
        })
}

fn arguments(msg: &Message) -> Result<Vec<Value>, Error> {
    msg.json()
}

fn hello(msg: &Message) -> Result<Reply, Error> {
    let args = arguments(msg)?;
    let who = args.first().and_then(Value::as_str).unwrap_or("kenobi");
    if who == "anakin" {
        return Err(Error::new(500, "Internal Server Error", "take a seat")
            .with_json_data(&json!({ "council": true, "master": false })));
    }
    Reply::json(&format!("general {who}"))
}

fn node_of(msg: &Message) -> Result<String, Error> {
    msg.header("swarm-node")
        .map(str::to_owned)
        .ok_or_else(|| Error::bad_request("no swarm-node header"))
}

fn ask_back(msg: &Message) -> Result<Reply, Error> {
    let mut args = arguments(msg)?;
    if args.is_empty() {
        return Err(Error::bad_request("ask back needs a request name"));
    }
    let name = args.remove(0);
    let answer: Value = gateway::send_client(&node_of(msg)?, name.as_str().unwrap_or_default(), &args)?;
    Reply::json(&answer)
}

fn forward(msg: &Message, remote: bool) -> Result<Reply, Error> {
    let mut args = arguments(msg)?;
    if args.len() < 2 {
        return Err(Error::bad_request("needs a node and a request name"));
    }
    let rest = args.split_off(2);
    let (node, name) = (args[0].as_str().unwrap_or_default(), args[1].as_str().unwrap_or_default());
    let me = node_of(msg)?;
    let answer: Value = if remote {
        gateway::send_remote_client(node, name, &rest, Some(&me))?
    } else {
        gateway::send_node(node, name, &rest, Some(&me))?
    };
    Reply::json(&answer)
}

fn spin(msg: &Message) -> Result<Reply, Error> {
    let ms = arguments(msg)?.first().and_then(Value::as_u64).unwrap_or(0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
    Reply::json(&ms)
}

fn peers(_: &Message) -> Result<Reply, Error> {
    let mut nodes = Bucket::open("nodes")?.keys()?;
    nodes.sort();
    Reply::json(&nodes)
}

berth_sdk::export!(routes);
