//! wasmCloud's messaging world (`wasmcloud:messaging@0.2.0`), with the
//! `wasi:logging` and `wasi:config` drafts its components import, so a
//! component written for wasmCloud runs unchanged.
//!
//! Such a component answers a request by *publishing* to the message's
//! reply address, as wasmCloud's own examples do. The host keeps the
//! reply address of the message being handled; a publish to it is taken
//! as the request's reply (once, and without a grant, as the host's own
//! reply would be), and the router sends it like any reply, with the
//! acks and the deadline that go with it. Every other publish and request
//! goes through the component's grants and limits.

use super::bindings::berth::backend::host::Host as BerthHost;
use super::bindings::{wasi_config, wasi_logging, wasmcloud_consumer, wasmcloud_types, wit};
use super::component::{Instance, WasmHandler};
use super::reply_slot::{self, ReplySlot};
use super::state::CallState;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Reply;

impl WasmHandler {
    /// Hands one message to `handle-message`. A request's reply is what
    /// the component published to its reply address; none is an error.
    pub(super) async fn call_wasmcloud(
        &self,
        instance: &mut Instance,
        message: wit::Message,
        request: bool,
    ) -> wasmtime::Result<Result<Option<wit::Reply>, CallError>> {
        let Some(guest) = self.export(&self.exports().wasmcloud, instance, |l| &mut l.wasmcloud)? else {
            return Ok(Err(self.watcher_only(&message.subject)));
        };
        instance.store.data_mut().reply = ReplySlot::expecting(message.reply_to.clone().filter(|_| request));
        let broker_message = wasmcloud_types::BrokerMessage {
            subject: message.subject,
            body: message.body,
            reply_to: message.reply_to,
        };
        let outcome = guest.call_handle_message(&mut instance.store, &broker_message).await?;
        let replied = instance.store.data_mut().reply.take();
        let handled = outcome.map_err(|text| CallError::new(ErrorKind::Handler, text));
        let about = (
            &*self.env.name,
            broker_message.subject.as_str(),
            "publishing a reply to its reply-to",
        );
        Ok(reply_slot::outcome(handled, request, replied, about))
    }

    /// Whether it exports `wasmcloud:messaging/handler`.
    pub fn is_wasmcloud(&self) -> bool {
        self.exports().wasmcloud.is_some()
    }
}

impl wasmcloud_types::Host for CallState {}

impl wasmcloud_consumer::Host for CallState {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<wasmcloud_types::BrokerMessage, String>> {
        let message = wit::Message {
            subject,
            body,
            headers: Vec::new(),
            reply_to: None,
            correlation_id: None,
        };
        Ok(match BerthHost::request(self, message, timeout_ms).await? {
            Ok(reply) => Ok(wasmcloud_types::BrokerMessage {
                subject: reply.subject,
                body: reply.body,
                reply_to: None,
            }),
            Err(e) => Err(e.message),
        })
    }

    async fn publish(&mut self, msg: wasmcloud_types::BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        if self.reply.awaits(&msg.subject) {
            self.reply.fill(Reply {
                body: msg.body.into(),
                headers: Vec::new(),
            });
            return Ok(Ok(()));
        }
        let message = wit::Message {
            subject: msg.subject,
            body: msg.body,
            headers: Vec::new(),
            reply_to: None,
            correlation_id: None,
        };
        Ok(BerthHost::publish(self, message).await?.map_err(|e| e.message))
    }
}

impl wasi_logging::Host for CallState {
    async fn log(&mut self, level: wasi_logging::Level, context: String, message: String) -> wasmtime::Result<()> {
        let text = match context.is_empty() {
            true => message,
            false => format!("{context}: {message}"),
        };
        let level = match level {
            wasi_logging::Level::Trace => wit::Level::Trace,
            wasi_logging::Level::Debug => wit::Level::Debug,
            wasi_logging::Level::Info => wit::Level::Info,
            wasi_logging::Level::Warn => wit::Level::Warn,
            wasi_logging::Level::Error | wasi_logging::Level::Critical => wit::Level::Error,
        };
        BerthHost::log(self, level, text)
    }
}

impl wasi_config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        Ok(Ok(self
            .env
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        Ok(Ok(self.env.config.clone()))
    }
}

/// A config table as string pairs: nested tables as dotted keys, strings
/// as they are, anything else as its JSON.
pub fn flatten(table: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, table: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<(String, String)>) {
        for (key, value) in table {
            let key = match prefix.is_empty() {
                true => key.clone(),
                false => format!("{prefix}.{key}"),
            };
            match value {
                serde_json::Value::Object(inner) => walk(&key, inner, out),
                serde_json::Value::String(text) => out.push((key, text.clone())),
                other => out.push((key, other.to_string())),
            }
        }
    }
    walk("", table, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_flattens_to_dotted_string_keys() {
        let json = serde_json::json!({ "greeting": "hi", "n": 3, "db": { "url": "x", "pool": [1, 2] } });
        let pairs = super::flatten(json.as_object().expect("object"));
        let want = [("db.pool", "[1,2]"), ("db.url", "x"), ("greeting", "hi"), ("n", "3")];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec());
    }
}
