//! The WASI messaging proposal (`wasi:messaging@0.2.0-draft`, worlds
//! `messaging-core` and `messaging-request-reply`), so a component written
//! against it runs unchanged.
//!
//! A message's metadata are its headers and its content type the
//! `content-type` header; `client.connect` opens the component's own
//! outbound transport (by its name, or `default`); `send` and `request` go
//! through the component's grants and limits like any publish or request;
//! `reply` to the message being handled is that request's reply (see
//! `reply_slot`).

use wasmtime::component::Resource;

use super::bindings::berth::backend::host::Host as BerthHost;
use super::bindings::{messaging_producer, messaging_request_reply, messaging_types, wit};
use super::component::{Instance, WasmHandler};
use super::reply_slot::{self, ReplySlot};
use super::state::CallState;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Reply;
use crate::core::headers::CONTENT_TYPE;

use messaging_types::Error;

use super::messaging_resources::{Client, HostMessage, RequestOptions};

impl HostMessage {
    /// A received message: its headers as metadata, `content-type` apart.
    fn received(message: wit::Message, request: bool) -> Self {
        let (content_type, metadata): (Vec<_>, Vec<_>) = message
            .headers
            .into_iter()
            .partition(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE));
        Self {
            topic: Some(message.subject),
            data: message.body,
            content_type: content_type.into_iter().next().map(|(_, v)| v),
            metadata,
            reply_to: message.reply_to.filter(|_| request),
        }
    }

    /// Its metadata, with its content type as `content-type`.
    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = self.metadata.clone();
        if let Some(ct) = &self.content_type {
            headers.push((CONTENT_TYPE.to_owned(), ct.clone()));
        }
        headers
    }

    fn outgoing(&self, topic: String) -> wit::Message {
        wit::Message {
            subject: topic,
            body: self.data.clone(),
            headers: self.headers(),
            reply_to: None,
            correlation_id: None,
        }
    }
}

impl WasmHandler {
    /// Hands one message to `incoming-handler.handle`. A request's reply
    /// is what the component sent with `reply`; none is an error.
    pub(super) async fn call_wasi_messaging(
        &self,
        instance: &mut Instance,
        message: wit::Message,
        request: bool,
    ) -> wasmtime::Result<Result<Option<wit::Reply>, CallError>> {
        let Some(guest) = self.export(&self.exports().messaging, instance, |l| &mut l.messaging)? else {
            return Ok(Err(self.watcher_only(&message.subject)));
        };
        let state = instance.store.data_mut();
        state.reply = ReplySlot::expecting(message.reply_to.clone().filter(|_| request));
        let subject = message.subject.clone();
        let handle = state.table.push(HostMessage::received(message, request))?;
        let outcome = guest.call_handle(&mut instance.store, handle).await?;
        let replied = instance.store.data_mut().reply.take();
        let handled = outcome.map_err(guest_error);
        let about = (&*self.env.name, subject.as_str(), "a reply");
        Ok(reply_slot::outcome(handled, request, replied, about))
    }
}

/// A handler's error as a call's: its kind says the status.
fn guest_error(e: Error) -> CallError {
    let (code, name, message) = match e {
        Error::Timeout => (504, "Gateway Timeout", "the handler timed out".to_owned()),
        Error::Connection(m) => (502, "Bad Gateway", m),
        Error::PermissionDenied(m) => (403, "Forbidden", m),
        Error::Other(m) => (500, "Internal Server Error", m),
    };
    CallError {
        code,
        name: name.to_owned(),
        ..CallError::new(ErrorKind::Handler, message)
    }
}

/// A host error as the interface's.
fn to_error(e: wit::Error) -> Error {
    match e.kind {
        wit::ErrorKind::Timeout => Error::Timeout,
        wit::ErrorKind::Forbidden => Error::PermissionDenied(e.message),
        wit::ErrorKind::Transport | wit::ErrorKind::NoResponders => Error::Connection(e.message),
        _ => Error::Other(e.message),
    }
}

impl messaging_types::Host for CallState {}

impl messaging_types::HostClient for CallState {
    async fn connect(&mut self, name: String) -> wasmtime::Result<Result<Resource<Client>, Error>> {
        let own = self.env.outbound.kind();
        if !(name.is_empty() || name == "default" || name == own) {
            return Ok(Err(Error::Connection(format!(
                "component `{}` sends on its `{own}` transport (connect to \"{own}\" or \"default\"), not `{name}`",
                self.env.name
            ))));
        }
        Ok(Ok(self.table.push(Client)?))
    }

    async fn disconnect(&mut self, _: Resource<Client>) -> wasmtime::Result<Result<(), Error>> {
        Ok(Ok(()))
    }

    async fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl messaging_types::HostMessage for CallState {
    async fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<HostMessage>> {
        Ok(self.table.push(HostMessage {
            data,
            ..HostMessage::default()
        })?)
    }

    async fn topic(&mut self, m: Resource<HostMessage>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&m)?.topic.clone())
    }

    async fn content_type(&mut self, m: Resource<HostMessage>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&m)?.content_type.clone())
    }

    async fn set_content_type(&mut self, m: Resource<HostMessage>, content_type: String) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.content_type = Some(content_type);
        Ok(())
    }

    async fn data(&mut self, m: Resource<HostMessage>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&m)?.data.clone())
    }

    async fn set_data(&mut self, m: Resource<HostMessage>, data: Vec<u8>) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.data = data;
        Ok(())
    }

    async fn metadata(&mut self, m: Resource<HostMessage>) -> wasmtime::Result<Option<Vec<(String, String)>>> {
        let metadata = &self.table.get(&m)?.metadata;
        Ok((!metadata.is_empty()).then(|| metadata.clone()))
    }

    async fn add_metadata(&mut self, m: Resource<HostMessage>, key: String, value: String) -> wasmtime::Result<()> {
        let metadata = &mut self.table.get_mut(&m)?.metadata;
        metadata.retain(|(k, _)| *k != key);
        metadata.push((key, value));
        Ok(())
    }

    async fn set_metadata(&mut self, m: Resource<HostMessage>, meta: Vec<(String, String)>) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.metadata = meta;
        Ok(())
    }

    async fn remove_metadata(&mut self, m: Resource<HostMessage>, key: String) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.metadata.retain(|(k, _)| *k != key);
        Ok(())
    }

    async fn drop(&mut self, m: Resource<HostMessage>) -> wasmtime::Result<()> {
        self.table.delete(m)?;
        Ok(())
    }
}

impl messaging_producer::Host for CallState {
    async fn send(
        &mut self,
        _: Resource<Client>,
        topic: String,
        message: Resource<HostMessage>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let message = self.table.delete(message)?;
        Ok(BerthHost::publish(self, message.outgoing(topic))
            .await?
            .map_err(to_error))
    }
}

impl messaging_request_reply::Host for CallState {
    async fn request(
        &mut self,
        _: Resource<Client>,
        topic: String,
        message: Resource<HostMessage>,
        options: Option<Resource<RequestOptions>>,
    ) -> wasmtime::Result<Result<Vec<Resource<HostMessage>>, Error>> {
        let outgoing = self.table.get(&message)?.outgoing(topic);
        let timeout = match options {
            Some(options) => self.table.delete(options)?.timeout_ms,
            None => None,
        };
        // Without a timeout the proposal waits for ever; a call has a
        // deadline, so the longest a guest's request may wait.
        let timeout_ms =
            timeout.unwrap_or_else(|| u32::try_from(self.env.max_request_timeout.as_millis()).unwrap_or(u32::MAX));
        match BerthHost::request(self, outgoing, timeout_ms).await? {
            Ok(reply) => {
                let reply = HostMessage::received(reply, false);
                Ok(Ok(vec![self.table.push(reply)?]))
            }
            Err(e) => Ok(Err(to_error(e))),
        }
    }

    async fn reply(
        &mut self,
        reply_to: Resource<HostMessage>,
        message: Resource<HostMessage>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let to = self.table.get(&reply_to)?.reply_to.clone();
        let message = self.table.delete(message)?;
        let Some(to) = to else {
            return Ok(Err(Error::Other(
                "the message has no reply address: it is no request".to_owned(),
            )));
        };
        if !self.reply.awaits(&to) {
            return Ok(Err(Error::Other(
                "this request has its reply already: one reply per request reaches its caller on Berth".to_owned(),
            )));
        }
        if message.data.len() > self.env.max_message_bytes {
            return Ok(Err(Error::Other(format!(
                "the reply is {} bytes; the limit is {}",
                message.data.len(),
                self.env.max_message_bytes
            ))));
        }
        self.reply.fill(Reply {
            headers: message.headers(),
            body: message.data.into(),
        });
        Ok(Ok(()))
    }
}

impl messaging_request_reply::HostRequestOptions for CallState {
    async fn new(&mut self) -> wasmtime::Result<Resource<RequestOptions>> {
        Ok(self.table.push(RequestOptions::default())?)
    }

    async fn set_timeout_ms(&mut self, options: Resource<RequestOptions>, timeout_ms: u32) -> wasmtime::Result<()> {
        self.table.get_mut(&options)?.timeout_ms = Some(timeout_ms);
        Ok(())
    }

    async fn set_expected_replies(&mut self, _: Resource<RequestOptions>, _: u32) -> wasmtime::Result<()> {
        // One reply reaches a request on every transport Berth has.
        Ok(())
    }

    async fn drop(&mut self, options: Resource<RequestOptions>) -> wasmtime::Result<()> {
        self.table.delete(options)?;
        Ok(())
    }
}
