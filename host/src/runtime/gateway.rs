//! `berth:backend/gateway`: a component's requests to the gateway's nodes
//! and their clients, for components the manifest grants `gateway = true`.
//! The request's size is the component's message limit, its wait the
//! gateway's `request_timeout_ms`, and it counts as the call's waiting
//! time, not its computing time, as a broker request does.

use bytes::Bytes;

use super::bindings::{berth::backend::gateway, wit};
use super::state::CallState;
use crate::core::error::{CallError, ErrorKind};
use crate::core::gateway::{NodeRequest, NodeTarget};

impl gateway::Host for CallState {
    async fn request(
        &mut self,
        to: gateway::Target,
        node: String,
        name: String,
        args: Vec<u8>,
        sender: Option<String>,
    ) -> wasmtime::Result<Result<Vec<u8>, wit::Error>> {
        let Some(link) = &self.env.gateway else {
            self.env.counters.forbade();
            let why = format!(
                "component `{}` may not reach the gateway's nodes: set `gateway = true` on it in the manifest",
                self.env.name
            );
            tracing::warn!(component = %self.env.name, %node, "{why}");
            return Ok(Err(CallError::new(ErrorKind::Forbidden, why).into()));
        };
        if args.len() > self.env.max_message_bytes {
            let why = format!(
                "component `{}` sent {} bytes of arguments to node `{node}`; the limit is {} bytes",
                self.env.name,
                args.len(),
                self.env.max_message_bytes
            );
            return Ok(Err(CallError::new(ErrorKind::TooLarge, why).into()));
        }
        let nodes = match link.nodes() {
            Ok(nodes) => nodes.clone(),
            Err(e) => return Ok(Err(e.into())),
        };
        let request = NodeRequest {
            target: match to {
                gateway::Target::Client => NodeTarget::Client,
                gateway::Target::Server => NodeTarget::Server,
                gateway::Target::RemoteClient => NodeTarget::RemoteClient,
            },
            node,
            name,
            args: Bytes::from(args),
            sender,
        };
        let answer = self.clock.wait(nodes.request(request)).await;
        Ok(answer.map(Vec::from).map_err(Into::into))
    }
}
