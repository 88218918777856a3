//! Requests to the WebSocket gateway's nodes and their clients, from a
//! component the manifest grants `gateway = true`.
//!
//! A node is a client connected to some host's `[gateway]`; the request
//! reaches it wherever it is connected. Arguments go as a JSON array and
//! the result comes back as JSON, as amqp-swarm's `send(name, ...args)`.
//!
//! ```no_run
//! use berth_sdk::gateway;
//! // Ask node "alice"'s client (its `client.on("greet", ...)` handler).
//! let answer: String = gateway::send_client("alice", "greet", &("bob",))?;
//! # Ok::<(), berth_sdk::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::berth::backend::gateway::{self as wit, Target};
use crate::Error;

/// Sends request `name` to `node`'s client and parses its answer.
pub fn send_client<A: Serialize + ?Sized, R: DeserializeOwned>(node: &str, name: &str, args: &A) -> Result<R, Error> {
    send(Target::Client, node, name, args, None)
}

/// Sends request `name` to the components of the host holding `node`
/// (`<prefix>.server.<name>`), on behalf of `sender` if given.
pub fn send_node<A: Serialize + ?Sized, R: DeserializeOwned>(
    node: &str,
    name: &str,
    args: &A,
    sender: Option<&str>,
) -> Result<R, Error> {
    send(Target::Server, node, name, args, sender)
}

/// Sends request `name` to `node`'s client through that node's
/// `<prefix>.remote.<name>` handlers, on behalf of `sender` if given.
pub fn send_remote_client<A: Serialize + ?Sized, R: DeserializeOwned>(
    node: &str,
    name: &str,
    args: &A,
    sender: Option<&str>,
) -> Result<R, Error> {
    send(Target::RemoteClient, node, name, args, sender)
}

/// `args` must serialize to a JSON array (a tuple, a `Vec`, `[..]`): a
/// single value is sent as a one-element array.
fn send<A: Serialize + ?Sized, R: DeserializeOwned>(
    to: Target,
    node: &str,
    name: &str,
    args: &A,
    sender: Option<&str>,
) -> Result<R, Error> {
    let args = match serde_json::to_value(args) {
        Ok(serde_json::Value::Array(items)) => serde_json::Value::Array(items),
        Ok(single) => serde_json::Value::Array(vec![single]),
        Err(e) => return Err(Error::internal(format!("cannot encode the arguments of `{name}`: {e}"))),
    };
    let body = serde_json::to_vec(&args).map_err(|e| Error::internal(format!("cannot encode `{name}`: {e}")))?;
    let result = wit::request(to, node, name, &body, sender)?;
    serde_json::from_slice(&result).map_err(|e| {
        Error::internal(format!(
            "the answer to `{name}` from node `{node}` is not the JSON expected: {e}"
        ))
    })
}
