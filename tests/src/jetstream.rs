//! JetStream steps the fault tests share: publishing numbered messages
//! that the stream stores once however often a send is retried, and
//! waiting until a durable consumer has acked everything.

use std::time::{Duration, Instant};

use async_nats::jetstream;

/// Publishes messages `0..count` to `subject(i)` with `body`, each stored
/// by the stream before the next: a send that fails (the server going
/// away) is retried, and the message id (`i`) lets the stream drop a
/// re-send whose first ack was lost. `before(i)` runs before message `i`
/// (to strike a fault). Panics past `deadline`; returns the retries.
pub async fn publish_numbered(
    js: &jetstream::Context,
    count: u64,
    subject: impl Fn(u64) -> String,
    body: &'static str,
    mut before: impl FnMut(u64),
    deadline: Instant,
) -> u64 {
    let mut retries = 0;
    for i in 0..count {
        before(i);
        loop {
            assert!(
                Instant::now() < deadline,
                "publishing took past the deadline (message {i})"
            );
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", i.to_string().as_str());
            let stored = async {
                js.publish_with_headers(subject(i), headers, body.into())
                    .await?
                    .await
                    .map_err(Into::into)
            };
            match stored.await {
                Ok(_) => break,
                Err::<_, Box<dyn std::error::Error + Send + Sync>>(_) => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    retries
}

/// Waits until durable `consumer` of `stream` has acked every message the
/// stream holds, with nothing pending; panics past `deadline`. (The server
/// has no event for it: this asks, every 100 ms.)
pub async fn wait_all_acked(js: &jetstream::Context, stream: &str, consumer: &str, deadline: Instant) {
    loop {
        let settled = async {
            let mut stream = js.get_stream(stream).await.ok()?;
            let last = stream.info().await.ok()?.state.last_sequence;
            let consumer: jetstream::consumer::PullConsumer = stream.get_consumer(consumer).await.ok()?;
            let info = consumer.get_info().await.ok()?;
            Some(info.ack_floor.stream_sequence >= last && info.num_pending == 0 && info.num_ack_pending == 0)
        };
        if settled.await == Some(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{consumer}` did not ack everything of `{stream}` in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
