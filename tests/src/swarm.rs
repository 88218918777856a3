//! Clients of a gateway: the real amqp-swarm npm client, run by Node
//! (`tests/swarm/client.js`, one scenario per run: it prints JSON lines,
//! and some scenarios wait for a line on stdin before going on), and raw
//! WebSocket peers for what no well-behaved client sends.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// One run of the client script.
pub struct SwarmClient {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

/// Where the script and its `node_modules` are.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("swarm")
}

impl SwarmClient {
    /// Starts `scenario` against `urls` (`ws://127.0.0.1:PORT`), with
    /// `env` set for it.
    pub fn start(scenario: &str, urls: &[String], env: &[(&str, &str)]) -> Self {
        let dir = dir();
        assert!(
            dir.join("node_modules/amqp-swarm").is_dir(),
            "the amqp-swarm npm client is not installed: run `npm install --prefix {}` (scripts/test does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("client.js")
            .arg(scenario)
            .args(urls)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("could not run `node` (Node 20 runs the amqp-swarm client)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stdin, lines }
    }

    /// The script's next JSON line, waiting up to `within` (it fails the
    /// test, with what the script said, if none comes or it crashed).
    pub fn next(&mut self, within: Duration) -> Value {
        let line = self
            .lines
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("the amqp-swarm client said nothing within {within:?}"));
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON from the client ({e}): {line}"));
        assert!(value.get("crashed").is_none(), "the amqp-swarm client crashed: {value}");
        value
    }

    /// Lets a scenario waiting on stdin go on.
    pub fn go(&mut self) {
        writeln!(self.stdin, "go").expect("the client's stdin");
    }
}

impl Drop for SwarmClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw WebSocket connection to a gateway.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url` (`ws://host:port/NODE`) and reads the `init` frame.
pub async fn connect(url: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
    assert_eq!(frame(&mut socket).await, serde_json::json!({ "type": "init" }));
    socket
}

/// The next protocol frame (pings are answered, and an `init` sent again
/// to a client that was slow to speak is skipped, on the way), within
/// 10 s.
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let value = frame(socket).await;
        if value["type"] != "init" {
            return value;
        }
    }
}

/// The next protocol frame, pings answered on the way, within 10 s.
pub async fn frame(socket: &mut Socket) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Ws;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the connection is open")
            .expect("a frame");
        let Ws::Text(text) = frame else { continue };
        let value: Value = serde_json::from_str(&text).expect("JSON from the host");
        if value["type"] == "ping" {
            let pong = serde_json::json!({ "type": "pong", "correlationId": value["correlationId"] });
            socket.send(Ws::text(pong.to_string())).await.expect("pong");
            continue;
        }
        return value;
    }
}

/// Sends request `name` with `args` and correlation id `id`.
pub async fn send(socket: &mut Socket, name: &str, args: Value, id: &str) {
    use futures_util::SinkExt;
    let request = serde_json::json!({ "type": "request", "name": name, "args": args, "correlationId": id });
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(request.to_string()))
        .await
        .expect("send");
}

/// How the host closed the connection: the close frame's code, within 10 s.
pub async fn closed(socket: &mut Socket) -> Option<tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    let ends = async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Ws::Close(frame)) => return frame.map(|f| f.code),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), ends)
        .await
        .expect("closed within 10 s")
}
