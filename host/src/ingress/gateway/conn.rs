//! One client connection as the rest of the gateway sees it: frames go
//! out through a bounded queue its writer drains (a client that lets it
//! fill is closed, never waited for), and requests to the client wait for
//! their answers by correlation id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::counters::{Counters, Direction, Failure};
use super::protocol::{self, SwarmError};

/// How a connection ends, as the client is told.
#[derive(Clone, Debug)]
pub struct Ending {
    /// Send amqp-swarm's `close` first: the npm client then stays closed
    /// instead of reconnecting.
    pub final_: bool,
    /// The WebSocket close code.
    pub code: CloseCode,
    /// The reason, in the close frame and the log.
    pub reason: String,
}

type Answer = Result<Value, SwarmError>;

/// One open connection: a node's client.
pub struct Conn {
    /// The node it is.
    pub node: Arc<str>,
    /// The client's address.
    pub remote: SocketAddr,
    /// Tells this connection apart from others of the same node.
    pub serial: u64,
    out: mpsc::Sender<WsMessage>,
    /// The host's requests (and its ping) waiting for the client.
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
    /// The client's requests not answered yet.
    pub in_flight: AtomicUsize,
    /// The last ping the client has not answered, if any.
    pub unanswered_ping: Mutex<Option<String>>,
    /// Cancelled when the connection is to end; `ending` says how.
    pub closed: CancellationToken,
    ending: Mutex<Option<Ending>>,
    counters: Arc<Counters>,
}

impl Conn {
    /// A connection whose frames go to `out`.
    pub fn new(
        node: Arc<str>,
        remote: SocketAddr,
        serial: u64,
        out: mpsc::Sender<WsMessage>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            node,
            remote,
            serial,
            out,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            unanswered_ping: Mutex::default(),
            closed: CancellationToken::new(),
            ending: Mutex::default(),
            counters,
        }
    }

    /// Queues `frame`; a client whose queue is full is too slow to keep
    /// and is closed (its frames are dropped, no one waits on it).
    pub fn send(&self, frame: &Value) {
        self.send_text(frame.to_string());
    }

    /// Queues a frame already written as JSON text, as [`Conn::send`].
    pub fn send_text(&self, frame: String) {
        match self.out.try_send(WsMessage::text(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) if !self.closed.is_cancelled() => {
                self.counters.failed(Failure::SlowClient);
                self.end(Ending {
                    final_: false,
                    code: CloseCode::Policy,
                    reason: "the client does not read its frames fast enough".to_owned(),
                });
            }
            Err(_) => {}
        }
    }

    /// Ends the connection; the first reason given is the one kept.
    pub fn end(&self, ending: Ending) {
        if let Ok(mut slot) = self.ending.lock()
            && slot.is_none()
        {
            *slot = Some(ending);
        }
        self.closed.cancel();
    }

    /// How it ended: the reason given, or the client's own leaving.
    pub fn ending(&self) -> Option<Ending> {
        self.ending.lock().ok().and_then(|e| e.clone())
    }

    /// A fresh correlation id for a frame of the host's.
    pub fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", self.serial, self.next_id.fetch_add(1, Relaxed))
    }

    /// Sends request `name` to the client and waits up to `timeout` for
    /// its answer.
    pub async fn ask(&self, name: &str, args: &Value, timeout: Duration) -> Answer {
        self.counters.request(Direction::ToClient);
        let id = self.next_id("b");
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id.clone(), tx);
        }
        self.send(&protocol::request(name, args, &Value::String(id.clone())));
        // None: the client left before it answered.
        let answer = tokio::select! {
            answer = tokio::time::timeout(timeout, rx) => answer.map(Result::ok),
            () = self.closed.cancelled() => Ok(None),
        };
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
        match answer {
            Ok(Some(answer)) => answer,
            Ok(None) => Err(SwarmError::protocol(
                Some("timeout"),
                format!("node `{}`'s client left before it answered", self.node),
                Value::Null,
            )),
            Err(_) => {
                self.counters.failed(Failure::Timeout);
                Err(SwarmError::protocol(Some("timeout"), "Request timed out", Value::Null))
            }
        }
    }

    /// The client answered one of the host's requests; answers nobody
    /// waits for (late, or made up) are dropped.
    pub fn answered(&self, correlation_id: &Value, answer: Answer) {
        let Some(id) = correlation_id.as_str() else { return };
        let waiting = self.pending.lock().ok().and_then(|mut p| p.remove(id));
        if let Some(waiting) = waiting {
            let _ = waiting.send(answer);
        }
    }
}

/// Writes what the connection queues to the socket until it ends, then
/// tells the client how (amqp-swarm's `close` if final, then the
/// WebSocket close frame). A client that stopped reading cannot hold the
/// writer: every write gives way to the connection's end, and the
/// goodbye has [`GOODBYE`] to get out.
pub async fn write<S>(conn: Arc<Conn>, mut frames: mpsc::Receiver<WsMessage>, mut sink: S)
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    use futures_util::SinkExt;
    loop {
        let frame = tokio::select! {
            biased;
            () = conn.closed.cancelled() => None,
            frame = frames.recv() => frame,
        };
        let Some(frame) = frame else { break };
        // What else is queued goes out with it, in one write.
        let batch = async {
            sink.feed(frame).await?;
            while let Ok(next) = frames.try_recv() {
                sink.feed(next).await?;
            }
            sink.flush().await
        };
        let sent = tokio::select! {
            sent = batch => sent.is_ok(),
            () = conn.closed.cancelled() => true,
        };
        if !sent {
            conn.end(gone());
            break;
        }
    }
    let ending = conn.ending().unwrap_or_else(gone);
    let goodbye = async {
        if ending.final_ {
            sink.feed(WsMessage::text(protocol::close().to_string())).await?;
        }
        let frame = CloseFrame {
            code: ending.code,
            reason: ending.reason.chars().take(100).collect::<String>().into(),
        };
        sink.send(WsMessage::Close(Some(frame))).await?;
        sink.close().await
    };
    let _ = tokio::time::timeout(GOODBYE, goodbye).await;
}

/// How long the goodbye may take before the socket is just dropped.
const GOODBYE: Duration = Duration::from_secs(1);

/// The client went away by itself.
pub fn gone() -> Ending {
    Ending {
        final_: false,
        code: CloseCode::Normal,
        reason: "the connection closed".to_owned(),
    }
}
