//! Who a component is to the host imports: its name, grants, outbound
//! transport, environment, folder, buckets and limits. Shared by all its
//! instances (and their stores).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::counters::Counters;
use super::grants::Grants;
use crate::core::gateway::GatewayLink;
use crate::core::keyvalue::Bucket;
use crate::core::outbound::Outbound;

/// What every instance of one component shares.
pub struct Environment {
    /// The component's name, for logs and errors.
    pub name: Arc<str>,
    /// Outbound grants, checked on every `publish` and `request`.
    pub grants: Grants,
    /// Where the component's `publish` and `request` go.
    pub outbound: Arc<dyn Outbound>,
    /// Environment variables the manifest grants; none by default.
    pub env: Vec<(String, String)>,
    /// Upper bound on a guest's outbound request timeout.
    pub max_request_timeout: Duration,
    /// Largest message body into or out of the component.
    pub max_message_bytes: usize,
    /// The component's private folder, mounted at `/data`; none by default.
    pub data_dir: Option<PathBuf>,
    /// What the runtime counts for the component's stats.
    pub counters: Arc<Counters>,
    /// The buckets its manifest entry grants, by the name it opens them
    /// with; `open` of any other is `access-denied`.
    pub keyvalue: HashMap<String, Arc<dyn Bucket>>,
    /// The `host:port`s its `wasi:http` requests may reach; none by default.
    pub http_outbound: Vec<String>,
    /// The `[components.config]` table as string pairs (nested tables
    /// as dotted keys, other values as JSON), for `wasi:config/store`.
    pub config: Vec<(String, String)>,
    /// The host's gateway, if the manifest grants it `gateway = true`.
    pub gateway: Option<Arc<GatewayLink>>,
}
