//! Answering requests on the broker: the loop that health, the NATS
//! service API and broker admin share. Each subject gets its own
//! subscription (not in a queue group: every host of a service answers)
//! and a task in the host's tracker, so answerers drain with the host.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::core::error::{CallError, ErrorKind};
use crate::core::headers::CONTENT_TYPE;
use crate::core::message::Message;
use crate::transport::{Delivery, Settlement, SubscribeOptions, Transport};

/// How many requests to one of these subjects may wait at once.
const CAPACITY: usize = 16;

/// Subscribes `subject` on `transport` and answers each request with what
/// `answer` makes of it (JSON, or an error reply) until `stop`.
pub(super) async fn answer_on<F, Fut>(
    transport: &Arc<dyn Transport>,
    subject: String,
    tasks: &TaskTracker,
    stop: &CancellationToken,
    answer: F,
) -> Result<()>
where
    F: Fn(Message) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Value, CallError>> + Send,
{
    let mut subscription = transport
        .subscribe(SubscribeOptions {
            pattern: subject.clone(),
            group: None,
            capacity: CAPACITY,
            ..SubscribeOptions::default()
        })
        .await
        .with_context(|| format!("subscribing to `{subject}` on {}", transport.kind()))?;
    let stop = stop.clone();
    tasks.spawn(async move {
        loop {
            let delivery = tokio::select! {
                _ = stop.cancelled() => break,
                d = subscription.next() => match d {
                    Some(d) => d,
                    None => break,
                },
            };
            let Delivery { message, mut acker } = delivery;
            let reply = match answer(message.clone()).await {
                Ok(body) => message.reply(body.to_string(), vec![(CONTENT_TYPE.into(), "application/json".into())]),
                Err(e) => e.to_reply(&message),
            };
            if let Some(reply) = reply
                && let Err(e) = acker.reply(reply).await
            {
                tracing::debug!(error = %e, subject = %message.subject, "could not answer a control request");
            }
            if let Err(e) = acker.settle(Settlement::Ack).await {
                tracing::debug!(error = %e, subject = %message.subject, "could not settle a control request");
            }
        }
    });
    Ok(())
}

/// A refusal in Berth's error shape, with the HTTP-style `code`.
pub(super) fn refuse(code: u16, message: impl Into<String>) -> CallError {
    let mut e = CallError::new(ErrorKind::Handler, message);
    e.code = code;
    e.name = match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Unprocessable Entity",
    }
    .into();
    e
}
