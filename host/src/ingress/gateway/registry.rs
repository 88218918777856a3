//! The nodes this host holds: each node id with its connections (more
//! than one when a client connected twice) and the subscription through
//! which other hosts reach it, made when its first connection comes and
//! dropped with its last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::conn::Conn;

/// Node ids a host gives itself or takes from a URL are subject tokens:
/// no `.`, wildcard, space or control character, at most this long.
pub const MAX_NODE_ID: usize = 128;

struct Entry {
    conns: Vec<Arc<Conn>>,
    /// The task reading the node's inbox; aborted (and so unsubscribed)
    /// when the entry goes.
    inbox: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            inbox.abort();
        }
    }
}

/// Every node of this host.
#[derive(Default)]
pub struct Registry {
    nodes: Mutex<HashMap<Arc<str>, Entry>>,
}

impl Registry {
    /// Adds `conn` to its node. Returns whether the node is new here (its
    /// inbox is to be made), and, with `close_old`, the node's earlier
    /// connections, which the caller closes.
    pub fn join(&self, conn: Arc<Conn>, close_old: bool) -> (bool, Vec<Arc<Conn>>) {
        let Ok(mut nodes) = self.nodes.lock() else {
            return (false, Vec::new());
        };
        match nodes.get_mut(&conn.node) {
            Some(entry) => {
                let old = if close_old {
                    std::mem::take(&mut entry.conns)
                } else {
                    Vec::new()
                };
                entry.conns.push(conn);
                (false, old)
            }
            None => {
                let entry = Entry {
                    conns: vec![conn.clone()],
                    inbox: None,
                };
                nodes.insert(conn.node.clone(), entry);
                (true, Vec::new())
            }
        }
    }

    /// Keeps `inbox` as the node's inbox task; aborts it if the node has
    /// left meanwhile.
    pub fn set_inbox(&self, node: &str, inbox: tokio::task::JoinHandle<()>) {
        let Ok(mut nodes) = self.nodes.lock() else {
            inbox.abort();
            return;
        };
        match nodes.get_mut(node) {
            Some(entry) if entry.inbox.is_none() => entry.inbox = Some(inbox),
            _ => inbox.abort(),
        }
    }

    /// Removes `conn`; the node goes (and its inbox with it) with its last
    /// connection. Whether it went.
    pub fn leave(&self, conn: &Conn) -> bool {
        let Ok(mut nodes) = self.nodes.lock() else { return false };
        let Some(entry) = nodes.get_mut(&conn.node) else {
            return false;
        };
        entry.conns.retain(|c| c.serial != conn.serial);
        if entry.conns.is_empty() {
            nodes.remove(&conn.node);
            return true;
        }
        false
    }

    /// The node's connections on this host.
    pub fn conns(&self, node: &str) -> Vec<Arc<Conn>> {
        self.nodes
            .lock()
            .ok()
            .and_then(|nodes| nodes.get(node).map(|e| e.conns.clone()))
            .unwrap_or_default()
    }

    /// How many nodes this host holds.
    pub fn len(&self) -> usize {
        self.nodes.lock().map(|n| n.len()).unwrap_or(0)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every connection, to close them at shutdown.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.nodes
            .lock()
            .map(|n| n.values().flat_map(|e| e.conns.clone()).collect())
            .unwrap_or_default()
    }
}

/// Whether `id` can name a node: a subject token of at most
/// [`MAX_NODE_ID`] bytes.
pub fn valid_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a node id is not empty".to_owned());
    }
    if id.len() > MAX_NODE_ID {
        return Err(format!("a node id is at most {MAX_NODE_ID} bytes, not {}", id.len()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "node id `{}` has `{}`, which a node id cannot have (no `.`, `*`, `>`, spaces or control characters)",
            id.escape_debug(),
            c.escape_debug()
        ));
    }
    Ok(())
}
