//! The `[gateway]` under load, against amqp-swarm's own server: the same
//! echo handler behind each, 64 WebSocket connections, 1, 64 and 256
//! requests in flight in all.
//!
//! Run: `cargo bench -p berth-tests --bench gateway` (needs Node 20, the
//! npm packages of `tests/swarm` — `npm install --prefix tests/swarm` —
//! and RabbitMQ on 127.0.0.1:5672, which amqp-swarm's server connects to
//! even for client requests).
//!
//! - **amqp-swarm 0.3.2 server (Node)**: `tests/swarm/server.js`,
//!   `createNode` per connection and `node.client.on('echo', (ctx,
//!   ...args) => args)`;
//! - **berth gateway → wasm echo**: `[gateway]` on the in-memory transport,
//!   the `swarm-node` guest's `swarm.client.echo`.
//!
//! Each server is a child process (this binary again as `--serve
//! KIND:PORT`; the Node one replaces itself with `node`), so its CPU time
//! divided by the requests it answered is its own cost per request. The
//! load generator speaks the protocol itself (answering the servers'
//! pings), spreads the requests over its 64 connections, and each figure
//! is the median of `rpc::ROUNDS` rounds, the servers' rounds interleaved.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)] // a bench binary: its output is the table

#[path = "support/rpc.rs"]
#[allow(dead_code)] // the broker benches' child modes
mod rpc;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Ws;

/// Requests per round at 1, 64 and 256 in flight.
const REQUESTS: [usize; 3] = [2_000, 20_000, 20_000];
/// Connections the load spreads over.
const CONNECTIONS: usize = 64;

/// One connection of the load generator.
struct Conn {
    out: mpsc::UnboundedSender<Ws>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

/// The load generator's connections to one server.
#[derive(Clone)]
struct Swarm {
    conns: Arc<Vec<Arc<Conn>>>,
    next: Arc<AtomicUsize>,
    ids: Arc<AtomicU64>,
}

impl Swarm {
    async fn connect(port: u16) -> Self {
        let mut conns = Vec::new();
        for i in 0..CONNECTIONS {
            // (tungstenite zeroes its whole read buffer before each read.)
            let config =
                tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024);
            let (socket, _) = tokio_tungstenite::connect_async_with_config(
                format!("ws://127.0.0.1:{port}/b{i}"),
                Some(config),
                false,
            )
            .await
            .unwrap();
            let (mut sink, mut stream) = socket.split();
            let (out, mut queued) = mpsc::unbounded_channel::<Ws>();
            tokio::spawn(async move {
                while let Some(frame) = queued.recv().await {
                    if sink.send(frame).await.is_err() {
                        break;
                    }
                }
            });
            let conn = Arc::new(Conn {
                out,
                pending: Mutex::default(),
            });
            let (ready, is_ready) = oneshot::channel();
            let reader = conn.clone();
            tokio::spawn(async move {
                let mut ready = Some(ready);
                while let Some(Ok(frame)) = stream.next().await {
                    let text = match frame {
                        Ws::Text(t) => t.to_string(),
                        Ws::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                        _ => continue,
                    };
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    match frame["type"].as_str() {
                        Some("init") => {
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(());
                            }
                        }
                        Some("ping") => {
                            let pong = json!({ "type": "pong", "correlationId": frame["correlationId"] });
                            let _ = reader.out.send(Ws::text(pong.to_string()));
                        }
                        Some("response") | Some("error") => {
                            let id = frame["correlationId"].as_u64().unwrap();
                            let waiting = reader.pending.lock().unwrap().remove(&id);
                            if let Some(waiting) = waiting {
                                let _ = waiting.send(frame);
                            }
                        }
                        _ => {}
                    }
                }
            });
            is_ready.await.unwrap();
            conns.push(conn);
        }
        Self {
            conns: Arc::new(conns),
            next: Arc::default(),
            ids: Arc::default(),
        }
    }

    /// One echo request on the next connection; a failure ends the bench.
    fn caller(self) -> impl Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Clone {
        move || {
            let swarm = self.clone();
            Box::pin(async move {
                let conn = swarm.conns[swarm.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS].clone();
                let id = swarm.ids.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                conn.pending.lock().unwrap().insert(id, tx);
                let request = json!({ "type": "request", "name": "echo", "args": ["x", id], "correlationId": id });
                conn.out.send(Ws::text(request.to_string())).unwrap();
                let answer = rx.await.unwrap();
                assert_eq!(answer["type"], "response", "{answer}");
            })
        }
    }
}

async fn serve_berth(port: u16) {
    berth::cli::install_logging(berth::cli::LogFormat::Text);
    let text = berth_tests::with_guest_paths(&format!(
        r#"
        [host]
        name = "berth-bench"

        [gateway]
        listen = "127.0.0.1:{port}"

        [keyvalue.nodes]

        [[components]]
        name = "node"
        wasm = "{{swarm_node}}"
        subscribe = ["swarm.client.>", "swarm.node.*"]
        keyvalue = ["nodes"]
        max_concurrency = 256
        "#
    ));
    let data = tempfile::tempdir().unwrap();
    let mut manifest = berth::manifest::Manifest::parse(&text).unwrap();
    manifest.host.data_dir = data.path().to_path_buf();
    manifest.validate().unwrap();
    let _running = berth::control::Running::start(&manifest).await.unwrap();
    println!("ready");
    std::future::pending::<()>().await;
}

/// Becomes amqp-swarm's server (so this process's CPU time is Node's).
fn serve_node(port: u16) -> ! {
    use std::os::unix::process::CommandExt;
    let dir = berth_tests::swarm::dir();
    assert!(
        dir.join("node_modules/amqp-swarm").is_dir(),
        "npm install --prefix {} first",
        dir.display()
    );
    let error = std::process::Command::new("node")
        .current_dir(&dir)
        .args(["server.js", &port.to_string()])
        .exec();
    panic!("could not run node: {error}");
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
            "node" => serve_node(port),
            _ => rt.block_on(serve_berth(port)),
        }
        return;
    }
    // cargo's `--list` (a bench has no tests to list).
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (node, berth) = (free(), free());
    let (node_kind, berth_kind) = (format!("node:{node}"), format!("berth:{berth}"));
    rt.block_on(async {
        // The servers start as `run_responders` spawns them; the load
        // connects lazily, on its first call.
        let lazy = |port: u16| {
            let swarm: Arc<tokio::sync::OnceCell<Swarm>> = Arc::default();
            move || {
                let swarm = swarm.clone();
                Box::pin(async move {
                    let swarm = swarm.get_or_init(|| Swarm::connect(port)).await.clone();
                    swarm.caller()().await;
                }) as Pin<Box<dyn Future<Output = ()> + Send>>
            }
        };
        let rows = rpc::run_responders(
            vec![
                ("amqp-swarm 0.3.2 server (Node)", node_kind.as_str(), lazy(node)),
                ("berth gateway → wasm echo", berth_kind.as_str(), lazy(berth)),
            ],
            REQUESTS,
            "beam.smp",
        )
        .await;
        rpc::print(&rows);
    });
}
