//! The listener and each connection's life: the handshake (which names
//! the node), `init`, the reader that takes the client's frames, the
//! pings, and the goodbye. Bad input ends in an `error` frame or a close
//! with a reason, for that connection alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::Gateway;
use super::conn::{self, Conn, Ending};
use super::counters::{Direction, Failure};
use super::protocol::{self, Incoming, SwarmError};
use super::registry::valid_node_id;
use crate::manifest::Dedupe;

/// Bytes read from a client's socket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// How long a client has to finish the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the gateway waits for a client's first frame before it sends
/// `init` again, and how many times it does. amqp-swarm's npm client
/// starts listening for messages only once its socket's `open` event has
/// resolved a promise; an `init` that arrives in the same read as the
/// handshake's response is emitted before that and lost, and the client
/// waits a second, gives up and reconnects, as often as it happens again.
/// Its first frame (it pings as soon as it has `init`) says it has one;
/// a client that gets `init` twice takes the second as nothing.
const INIT_AGAIN_AFTER: Duration = Duration::from_millis(200);
const INIT_REPEATS: u32 = 4;

/// Takes connections until the gateway stops.
pub(super) async fn accept(gateway: Arc<Gateway>, listener: TcpListener) {
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!("gateway accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = gateway.stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(gateway.clone(), stream, remote));
    }
    for conn in gateway.nodes.all() {
        conn.end(Ending {
            final_: false,
            code: CloseCode::Away,
            reason: "the host is shutting down".to_owned(),
        });
    }
}

/// One connection, from handshake to goodbye.
async fn connection(gateway: Arc<Gateway>, stream: TcpStream, remote: SocketAddr) {
    let Some((socket, node)) = handshake(&gateway, stream, remote).await else {
        return;
    };
    let (sink, mut frames) = socket.split();
    let (out, queued) = mpsc::channel(gateway.config.send_buffer);
    let serial = gateway.serials.fetch_add(1, Relaxed);
    let conn = Arc::new(Conn::new(node.into(), remote, serial, out, gateway.counters.clone()));
    gateway.counters.opened();
    let writer = tokio::spawn(conn::write(conn.clone(), queued, sink));
    let (first, displaced) = gateway
        .nodes
        .join(conn.clone(), gateway.config.dedupe == Dedupe::CloseOld);
    for old in displaced {
        old.end(Ending {
            final_: true,
            code: CloseCode::Normal,
            reason: "the same node connected again".to_owned(),
        });
    }
    // The node opens with its first connection on this host and closes
    // with its last: a client that reconnects before its old socket is
    // gone (amqp-swarm's does after a second without `init`) must not
    // leave components believing it closed.
    if first {
        super::swarm::open_inbox(&gateway, &conn.node).await;
        gateway.lifecycle("open", &conn).await;
    }
    conn.send(&protocol::init());
    tracing::debug!(node = %conn.node, %remote, "gateway node open");

    let mut pings = tokio::time::interval(Duration::from_millis(gateway.config.ping_interval_ms));
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pings.tick().await;
    let mut calls = Calls::new();
    let init_again = tokio::time::sleep(INIT_AGAIN_AFTER);
    tokio::pin!(init_again);
    // `init`s sent again so far; none once the client has sent a frame.
    let mut repeats = Some(0);
    loop {
        tokio::select! {
            () = conn.closed.cancelled() => break,
            () = &mut init_again, if repeats.is_some_and(|n| n < INIT_REPEATS) => {
                conn.send(&protocol::init());
                repeats = repeats.map(|n| n + 1);
                init_again.as_mut().reset(tokio::time::Instant::now() + INIT_AGAIN_AFTER);
            }
            () = gateway.stop.cancelled() => {
                conn.end(Ending { final_: false, code: CloseCode::Away, reason: "the host is shutting down".to_owned() });
                break;
            }
            Some(()) = calls.next(), if !calls.is_empty() => {}
            _ = pings.tick() => ping(&gateway, &conn),
            frame = frames.next() => {
                // A client that speaks is listening (the npm client sends
                // nothing before it has `init`).
                repeats = None;
                match frame {
                    Some(Ok(WsMessage::Text(text))) => take(&gateway, &conn, text.as_bytes(), &mut calls),
                    Some(Ok(WsMessage::Binary(bytes))) => take(&gateway, &conn, &bytes, &mut calls),
                    Some(Ok(WsMessage::Close(_))) | None => {
                        conn.end(conn::gone());
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        conn.end(read_failed(&gateway, &e));
                        break;
                    }
                }
            }
        }
    }
    // Requests the client made before it went still finish (their side
    // effects are not cut short), without holding up its goodbye.
    if !calls.is_empty() {
        tokio::spawn(async move { while calls.next().await.is_some() {} });
    }
    let last = gateway.nodes.leave(&conn);
    let _ = writer.await;
    gateway.counters.closed();
    let ending = conn.ending().unwrap_or_else(conn::gone);
    tracing::debug!(node = %conn.node, %remote, reason = %ending.reason, "gateway node closed");
    if last {
        gateway.lifecycle("close", &conn).await;
    }
}

/// The WebSocket handshake: the path names the node (made up when
/// empty); a full gateway or a bad id is refused with the reason.
async fn handshake(
    gateway: &Gateway,
    stream: TcpStream,
    remote: SocketAddr,
) -> Option<(tokio_tungstenite::WebSocketStream<TcpStream>, String)> {
    let mut node = None;
    let full = gateway.counters.open() >= gateway.config.max_connections as u64;
    // tungstenite's callback type: its refusal is an HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let refuse = |status: StatusCode, why: String| {
            let mut response = ErrorResponse::new(Some(why));
            *response.status_mut() = status;
            response
        };
        if full {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the gateway holds its most connections ({})",
                    gateway.config.max_connections
                ),
            ));
        }
        let path = request.uri().path().trim_start_matches('/');
        let id = match percent_encoding::percent_decode_str(path).decode_utf8() {
            Ok(id) if id.is_empty() => made_up_id(),
            Ok(id) => id.into_owned(),
            Err(_) => return Err(refuse(StatusCode::BAD_REQUEST, "the node id is not UTF-8".to_owned())),
        };
        valid_node_id(&id).map_err(|why| refuse(StatusCode::BAD_REQUEST, why))?;
        node = Some(id);
        Ok(response)
    };
    let max = gateway.config.max_frame_kb * 1024;
    // tungstenite zeroes its read buffer's free room before every read:
    // at its default 128 KiB that was the gateway's largest cost per
    // request; frames of the protocol are small.
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER);
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
    )
    .await;
    match accepted {
        Ok(Ok(socket)) => Some((socket, node?)),
        Ok(Err(e)) => {
            if gateway.counters.open() >= gateway.config.max_connections as u64 {
                gateway.counters.failed(Failure::Refused);
            }
            tracing::debug!(%remote, "gateway handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "gateway handshake took longer than {HANDSHAKE_TIMEOUT:?}");
            None
        }
    }
}

/// A node id for a client that did not bring one: 16 random bytes as
/// URL-safe base64 (as amqp-swarm makes them, without its `/` and `+`).
fn made_up_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    let seed = std::collections::hash_map::RandomState::new();
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        use std::hash::BuildHasher;
        let n = seed.hash_one((i, std::time::SystemTime::now()));
        chunk.copy_from_slice(&n.to_le_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Pings the client, or closes it if it did not answer the last ping.
fn ping(gateway: &Gateway, conn: &Conn) {
    let Ok(mut unanswered) = conn.unanswered_ping.lock() else {
        return;
    };
    if unanswered.is_some() {
        gateway.counters.failed(Failure::NoPong);
        conn.end(Ending {
            final_: true,
            code: CloseCode::Away,
            reason: format!("no pong within {} ms", gateway.config.ping_interval_ms),
        });
        return;
    }
    let id = conn.next_id("p");
    conn.send(&protocol::ping(false, &Value::String(id.clone())));
    *unanswered = Some(id);
}

/// Why reading ended: a frame too large, or the connection failing.
fn read_failed(gateway: &Gateway, e: &WsError) -> Ending {
    match e {
        WsError::Capacity(_) => {
            gateway.counters.failed(Failure::TooLarge);
            Ending {
                final_: false,
                code: CloseCode::Size,
                reason: format!("a frame over max_frame_kb ({} KiB)", gateway.config.max_frame_kb),
            }
        }
        WsError::Protocol(p) => {
            gateway.counters.failed(Failure::BadFrame);
            Ending {
                final_: false,
                code: CloseCode::Protocol,
                reason: format!("a WebSocket protocol error: {p}"),
            }
        }
        WsError::Utf8(_) => {
            gateway.counters.failed(Failure::BadFrame);
            Ending {
                final_: false,
                code: CloseCode::Invalid,
                reason: "a text frame that is not UTF-8".to_owned(),
            }
        }
        _ => conn::gone(),
    }
}

/// A connection's client requests under way. They run on the
/// connection's own task rather than a task each: a request answered in
/// process (a component of this host on the in-memory transport) then
/// costs no task to spawn, schedule and wake, and most finish in the poll
/// that starts them.
type Calls = FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// One frame from the client.
fn take(gateway: &Arc<Gateway>, conn: &Arc<Conn>, bytes: &[u8], calls: &mut Calls) {
    let frame = match protocol::parse(bytes) {
        Ok(frame) => frame,
        Err(bad) => {
            gateway.counters.failed(Failure::BadFrame);
            let error = SwarmError::protocol(None, bad.why, Value::Null);
            conn.send(&protocol::error(bad.correlation_id.as_ref(), &error));
            return;
        }
    };
    match frame {
        Incoming::Request {
            name,
            args,
            correlation_id,
        } => {
            let limit = gateway.config.max_in_flight_per_client;
            if conn.in_flight.fetch_add(1, Relaxed) >= limit {
                conn.in_flight.fetch_sub(1, Relaxed);
                gateway.counters.failed(Failure::TooMany);
                let error = SwarmError::protocol(
                    None,
                    format!("more than max_in_flight_per_client ({limit}) requests unanswered"),
                    json!({ "requestName": name }),
                );
                conn.send(&protocol::error(Some(&correlation_id), &error));
                return;
            }
            gateway.counters.request(Direction::FromClient);
            let (gateway, conn) = (gateway.clone(), conn.clone());
            let mut call: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                let frame = match gateway.client_request(&conn.node, &name, &args).await {
                    Ok(body) => protocol::response(&correlation_id, &body),
                    Err(e) => protocol::error(Some(&correlation_id), &e).to_string(),
                };
                conn.in_flight.fetch_sub(1, Relaxed);
                conn.send_text(frame);
            });
            // Started here; kept only if it has to wait.
            let waker = futures_util::task::noop_waker_ref();
            if call.as_mut().poll(&mut Context::from_waker(waker)).is_pending() {
                calls.push(call);
            }
        }
        Incoming::Response { correlation_id, result } => conn.answered(&correlation_id, Ok(result)),
        Incoming::Error { correlation_id, error } => conn.answered(&correlation_id, Err(error)),
        Incoming::Ping(id) => conn.send(&protocol::ping(true, &id)),
        Incoming::Pong(id) => {
            if let Ok(mut unanswered) = conn.unanswered_ping.lock()
                && unanswered.as_deref() == id.as_str()
            {
                *unanswered = None;
                gateway.counters.pong();
            }
        }
    }
}
