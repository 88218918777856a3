//! `GET /v1/tail/{pattern}`: every message on the host's default
//! transport whose subject matches, as it passes, one JSON object per line
//! (`berth tail` reads it). An operator call: it shows traffic.
//!
//! The stream never slows the bus: a subscription that waits for a slow
//! reader would hold up publishers on the in-memory transport and make a
//! broker drop the connection as a slow consumer. Messages are taken off
//! the subscription at once; those a lagging reader has no room for are
//! dropped and counted in a `{"dropped": n}` line before the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Api, failure};
use crate::core::message::Message;
use crate::core::subject::{Pattern, is_platform};
use crate::transport::SubscribeOptions;

/// Messages waiting for a slow reader before they are dropped.
const BUFFER: usize = 1024;
/// Bodies longer than this are cut (the line says how long they were).
const MAX_BODY: usize = 64 * 1024;

pub(super) async fn tail(State(api): State<Api>, Path(pattern): Path<String>) -> Response {
    if let Err(e) = Pattern::parse(&pattern) {
        return failure(400, format!("`{pattern}` is not a subject pattern: {e}"));
    }
    let options = SubscribeOptions {
        pattern: pattern.clone(),
        capacity: BUFFER,
        ..SubscribeOptions::default()
    };
    let mut subscription = match api.app.transport.subscribe(options).await {
        Ok(s) => s,
        Err(e) => return failure(503, format!("cannot subscribe to `{pattern}`: {e}")),
    };
    tracing::info!(%pattern, "tail started");
    let (lines, out) = mpsc::channel::<Bytes>(BUFFER);
    let dropped = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                // The reader went away: stop, which unsubscribes.
                () = lines.closed() => break,
                next = subscription.next() => {
                    let Some(delivery) = next else { break };
                    // Berth's own traffic (health, admin, replies) is not the
                    // application's.
                    if is_platform(&delivery.message.subject) {
                        continue;
                    }
                    let lost = dropped.swap(0, Ordering::Relaxed);
                    if lost > 0 && lines.try_send(Bytes::from(format!("{}\n", json!({ "dropped": lost })))).is_err() {
                        dropped.fetch_add(lost, Ordering::Relaxed);
                    }
                    if lines.try_send(line(&delivery.message)).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        tracing::info!(%pattern, "tail ended");
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        let line = out.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(line), out))
    });
    ([(CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
}

/// One message as a JSON line: its body as text if it is UTF-8, else in
/// base64, cut at [`MAX_BODY`].
fn line(message: &Message) -> Bytes {
    let body = &message.body[..message.body.len().min(MAX_BODY)];
    let mut v = json!({
        "subject": message.subject,
        "headers": message.headers,
        "size": message.body.len(),
    });
    if let Some(reply_to) = &message.reply_to {
        v["reply_to"] = json!(reply_to);
    }
    match std::str::from_utf8(body) {
        Ok(text) => v["body"] = json!(text),
        Err(_) => v["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(body)),
    }
    Bytes::from(format!("{v}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_bytes_go_in_base64() {
        let text: serde_json::Value =
            serde_json::from_slice(&line(&Message::new("a.b", "hi").with_header("k", "v"))).expect("JSON");
        assert_eq!(text["body"], "hi");
        assert_eq!(text["headers"][0][0], "k");
        let bytes: serde_json::Value =
            serde_json::from_slice(&line(&Message::new("a.b", vec![0xff, 0]))).expect("JSON");
        assert_eq!(bytes["body_base64"], "/wA=");
        assert_eq!(bytes["size"], 2);
    }
}
