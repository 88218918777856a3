//! Calls into the host: `publish`, `request`, `log`. Each is checked
//! against the component's grants in the manifest; a call outside them
//! returns an [`Error`] of kind `Forbidden`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::berth::backend::host;
use crate::{Error, Message};

pub use crate::__private::bindings::berth::backend::types::Level;

/// Publishes `body` to `subject`, fire-and-forget.
///
/// ```no_run
/// berth_sdk::publish("events.greeted", "alice")?;
/// # Ok::<(), berth_sdk::Error>(())
/// ```
pub fn publish(subject: &str, body: impl Into<Vec<u8>>) -> Result<(), Error> {
    host::publish(&Message::new(subject, body))
}

/// Publishes `value` as JSON to `subject`.
pub fn publish_json<T: Serialize + ?Sized>(subject: &str, value: &T) -> Result<(), Error> {
    let body = serde_json::to_vec(value).map_err(|e| Error::internal(format!("cannot encode event: {e}")))?;
    host::publish(&Message::new(subject, body).with_header("content-type", "application/json"))
}

/// Publishes a full message (headers included).
pub fn publish_message(msg: &Message) -> Result<(), Error> {
    host::publish(msg)
}

/// Sends `body` to `subject` and waits up to `timeout` for the reply.
///
/// ```no_run
/// use std::time::Duration;
/// let reply = berth_sdk::request("prices.get", "ACME", Duration::from_secs(1))?;
/// # Ok::<(), berth_sdk::Error>(())
/// ```
pub fn request(subject: &str, body: impl Into<Vec<u8>>, timeout: Duration) -> Result<Message, Error> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    host::request(&Message::new(subject, body), ms)
}

/// Sends `value` as JSON and parses the JSON reply.
pub fn request_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
    subject: &str,
    value: &Req,
    timeout: Duration,
) -> Result<Resp, Error> {
    let body = serde_json::to_vec(value).map_err(|e| Error::internal(format!("cannot encode request: {e}")))?;
    let reply = request(subject, body, timeout)?;
    reply.json()
}

/// Writes a log line through the host, tagged with the component's name.
pub fn log(level: Level, text: &str) {
    host::log(level, text);
}
