//! Requests that reach nodes: a client's to the components, and the
//! components' (of any host) to a node, which travel on the swarm's
//! broker to the node's inbox on the host that holds it.
//!
//! Between hosts a request is a message to `berth.gateway.<prefix>.<node>`
//! with `swarm-kind` (`client`, `server`, `remote`), `swarm-name` and
//! `swarm-sender`, its body the JSON arguments; the answer is the reply
//! body (JSON), or an error reply. Every host holding the node answers
//! (amqp-swarm's duplicate nodes); the first answer counts.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;

use super::Gateway;
use super::counters::{Direction, Failure};
use super::protocol::SwarmError;
use super::registry::valid_node_id;
use crate::core::error::{CallError, ErrorKind};
use crate::core::gateway::{NodeRequest, NodeTarget, Nodes};
use crate::core::headers::{CONTENT_TYPE, SWARM_KIND, SWARM_NAME, SWARM_NODE, SWARM_PASS, SWARM_SENDER};
use crate::core::message::Message;
use crate::transport::{Delivery, Settlement, SubscribeOptions, TransportError};

/// Deliveries a node's inbox holds before the broker waits.
const INBOX_CAPACITY: usize = 64;

impl Gateway {
    /// A client's request `name`, to whichever component serves
    /// `<prefix>.client.<name>`.
    /// Its answer is the handler's reply body, for [`super::protocol::response`].
    pub(super) async fn client_request(&self, node: &str, name: &str, args: &Value) -> Result<Bytes, SwarmError> {
        let answer = self.call("client", node, name, args_bytes(args), None).await;
        answer.map_err(|e| self.failed(&e, name))
    }

    /// Sends `args` to the component serving `<prefix>.<kind>.<name>`.
    async fn call(
        &self,
        kind: &str,
        node: &str,
        name: &str,
        args: Bytes,
        sender: Option<&str>,
    ) -> Result<Bytes, CallError> {
        let (target, message) = self.addressed(kind, node, name, args, sender)?;
        if message.body.len() > target.max_body {
            let why = format!(
                "the arguments of `{name}` are larger than its handler takes ({} KiB)",
                target.max_body / 1024
            );
            return Err(CallError::new(ErrorKind::TooLarge, why));
        }
        target.request(message, self.timeout).await.map(|reply| reply.body)
    }

    /// The request `name` of `kind` for `node`, as its handler on
    /// `<prefix>.<kind>.<name>` gets it, and where that handler is.
    fn addressed(
        &self,
        kind: &str,
        node: &str,
        name: &str,
        args: Bytes,
        sender: Option<&str>,
    ) -> Result<(crate::ingress::target::SubjectTarget, Message), CallError> {
        let subject = self.subject(kind, name)?;
        let target = self.resolver.target(&subject);
        let mut message = Message::new(subject, args)
            .with_header(SWARM_NODE, node)
            .with_header(SWARM_NAME, name)
            .with_header(CONTENT_TYPE, "application/json");
        if let Some(sender) = sender {
            message = message.with_header(SWARM_SENDER, sender);
        }
        Ok((target, message))
    }

    /// Counts a failed request and says it the protocol's way.
    fn failed(&self, e: &CallError, name: &str) -> SwarmError {
        let error = SwarmError::from_call(e, name);
        self.counters.failed(match (error.protocol, error.subtype.as_deref()) {
            (true, Some("timeout")) => Failure::Timeout,
            (true, _) => Failure::Unhandled,
            (false, _) => Failure::Endpoint,
        });
        error
    }

    /// Asks the node's clients on this host; the first answer counts.
    async fn ask_here(&self, node: &str, name: &str, args: &Value) -> Result<Bytes, CallError> {
        let conns = self.nodes.conns(node);
        if conns.is_empty() {
            let why = format!("node `{node}` is not connected to this host");
            return Err(CallError::new(ErrorKind::NoResponders, why));
        }
        let mut asked: FuturesUnordered<_> = conns.iter().map(|c| c.ask(name, args, self.timeout)).collect();
        let mut last = None;
        while let Some(answer) = asked.next().await {
            match answer {
                Ok(result) => return Ok(Bytes::from(result.to_string())),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || CallError::new(ErrorKind::NoResponders, "no client answered"),
            |e| e.to_call(),
        ))
    }

    /// A request that came to a node's inbox.
    async fn answer(&self, node: &str, message: &Message) -> Result<Bytes, CallError> {
        let name = message.header(SWARM_NAME).unwrap_or_default();
        let sender = message.header(SWARM_SENDER);
        let kind = message.header(SWARM_KIND).and_then(NodeTarget::parse);
        match kind {
            Some(NodeTarget::Client) => self.ask_here(node, name, &json_of(&message.body)).await,
            Some(NodeTarget::Server) => {
                self.counters.request(Direction::Server);
                self.call("server", node, name, message.body.clone(), sender).await
            }
            Some(NodeTarget::RemoteClient) => {
                self.counters.request(Direction::Remote);
                self.remote(node, name, message.body.clone(), sender).await
            }
            None => Err(CallError::new(
                ErrorKind::Handler,
                "a gateway inbox message without a known `swarm-kind`",
            )),
        }
    }

    /// A remote client request: the node's `<prefix>.remote.<name>`
    /// handler may answer (`swarm-pass: false`) or change the arguments;
    /// without one, they pass as they came.
    async fn remote(&self, node: &str, name: &str, args: Bytes, sender: Option<&str>) -> Result<Bytes, CallError> {
        let (target, message) = self.addressed("remote", node, name, args.clone(), sender)?;
        let passed = match target.request(message, self.timeout).await {
            Ok(reply) if says_stop(&reply.headers) => return Ok(reply.body),
            Ok(reply) => reply.body,
            Err(e) if matches!(e.kind, ErrorKind::NoResponders | ErrorKind::Unhandled) => args,
            Err(e) => return Err(e),
        };
        self.ask_here(node, name, &json_of(&passed)).await
    }
}

/// Whether a remote handler's reply is the answer itself.
fn says_stop(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(SWARM_PASS) && v.trim() == "false")
}

#[async_trait]
impl Nodes for Gateway {
    async fn request(&self, request: NodeRequest) -> Result<Bytes, CallError> {
        if let Err(why) = valid_node_id(&request.node) {
            let mut e = CallError::new(ErrorKind::Handler, why);
            e.code = 400;
            return Err(e);
        }
        let mut message = Message::new(self.inbox(&request.node), request.args)
            .with_header(SWARM_KIND, request.target.as_str())
            .with_header(SWARM_NAME, request.name.as_str());
        if let Some(sender) = &request.sender {
            message = message.with_header(SWARM_SENDER, sender.as_str());
        }
        let reply = match self.swarm.request(message, self.timeout).await {
            Ok(reply) => reply,
            Err(TransportError::NoResponders(_)) => {
                let why = format!("no host of the swarm holds node `{}`", request.node);
                return Err(CallError::new(ErrorKind::NoResponders, why));
            }
            Err(e) => return Err(e.into()),
        };
        match CallError::from_reply(&reply) {
            Some(e) => Err(e),
            None => Ok(reply.body),
        }
    }
}

/// Subscribes the node's inbox on the swarm's broker and answers what
/// comes to it until the node leaves this host.
pub(super) async fn open_inbox(gateway: &Arc<Gateway>, node: &Arc<str>) {
    let options = SubscribeOptions {
        pattern: gateway.inbox(node),
        group: None,
        capacity: INBOX_CAPACITY,
        ..SubscribeOptions::default()
    };
    let mut inbox = match gateway.swarm.subscribe(options).await {
        Ok(inbox) => inbox,
        Err(e) => {
            tracing::warn!(%node, "other hosts cannot reach node `{node}`: subscribing its inbox failed: {e}");
            return;
        }
    };
    let (gw, id) = (gateway.clone(), node.clone());
    let task = tokio::spawn(async move {
        while let Some(delivery) = inbox.next().await {
            let (gw, id) = (gw.clone(), id.clone());
            tokio::spawn(async move { reply(&gw, &id, delivery).await });
        }
    });
    gateway.nodes.set_inbox(node, task);
}

/// Answers one inbox delivery and settles it.
async fn reply(gateway: &Gateway, node: &str, mut delivery: Delivery) {
    let answer = gateway.answer(node, &delivery.message).await;
    let headers = vec![(CONTENT_TYPE.to_owned(), "application/json".to_owned())];
    let reply = match answer {
        Ok(body) => delivery.message.reply(body, headers),
        Err(e) => e.to_reply(&delivery.message),
    };
    if let Some(reply) = reply
        && let Err(e) = delivery.acker.reply(reply).await
    {
        tracing::warn!(%node, "could not answer a request to node `{node}`: {e}");
    }
    let _ = delivery.acker.settle(Settlement::Ack).await;
}

/// The JSON array of a client's arguments.
fn args_bytes(args: &Value) -> Bytes {
    Bytes::from(args.to_string())
}

/// A body as JSON: null when empty, a string when it is not JSON.
fn json_of(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
