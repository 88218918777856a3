//! One `[[components]]` entry: the component's file and sources, what it
//! subscribes to and may send, and its limits, each with its default and
//! its range.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::bounds::{DAY_MS, HOUR_MS, within, within_opt};
use super::{Lang, SubscribeConfig, TransportKind};
use crate::core::limits::{DEFAULT_MAX_DELIVER, InstanceMode, MAX_BATCH, MAX_MEMORY_BYTES, MAX_PER_COMPONENT};

/// One `[[components]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Unique name: letters, digits, `-` and `_`.
    pub name: String,
    /// Path to the component, relative to the manifest's folder.
    pub wasm: PathBuf,
    /// The folder of its sources, for `berth build` and `berth dev`.
    pub source: Option<PathBuf>,
    /// The language of its sources; `berth build` infers it when absent.
    pub lang: Option<Lang>,
    /// Subjects it handles.
    #[serde(default)]
    pub subscribe: Vec<SubscribeConfig>,
    /// It exports `berth:backend/middleware` and routes or subscriptions
    /// may name it in their `middleware` lists.
    #[serde(default)]
    pub middleware: bool,
    /// Where its publishes and requests go; the transport of its first
    /// subscription when absent, or `[host] transport` if it has none.
    pub outbound: Option<TransportKind>,
    /// Subject patterns it may publish to. Deny by default.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Subject patterns it may send requests to. Deny by default.
    #[serde(default)]
    pub request: Vec<String>,
    /// Buckets (`[keyvalue.<name>]`) it may open. Deny by default.
    #[serde(default)]
    pub keyvalue: Vec<String>,
    /// `host:port`s its `wasi:http` outbound requests may reach (port 80
    /// or 443 when a URL leaves it out). Deny by default.
    #[serde(default)]
    pub http_outbound: Vec<String>,
    /// It may send requests to the gateway's nodes and their clients
    /// (`berth:backend/gateway`). Needs a `[gateway]`.
    #[serde(default)]
    pub gateway: bool,
    /// Most calls in flight at once; the router stops pulling beyond it.
    #[serde(
        default = "default_concurrency",
        deserialize_with = "within::<_, _, 1, MAX_CONCURRENCY>"
    )]
    pub max_concurrency: usize,
    /// Most queued messages handed to one call, if the component exports
    /// `berth:backend/batch-handler` (the Rust SDK's components do); 1
    /// turns batching off.
    #[serde(default = "default_max_batch", deserialize_with = "within::<_, _, 1, MAX_BATCH_U64>")]
    pub max_batch: usize,
    /// Wall time for one call.
    #[serde(default = "default_timeout_ms", deserialize_with = "within::<_, _, 1, HOUR_MS>")]
    pub timeout_ms: u64,
    /// Linear memory cap per instance.
    #[serde(
        default = "default_memory_mb",
        deserialize_with = "within::<_, _, 1, MAX_MEMORY_MB_U64>"
    )]
    pub memory_mb: u32,
    /// Reuse instances (`pooled`) or make one per message (`fresh`);
    /// unset, `fresh` for a component that exports `wasi:http` and
    /// `pooled` for any other (see `runtime::component::default_mode`).
    #[serde(default)]
    pub instance_mode: Option<InstanceMode>,
    /// Largest message body into or out of the component, in KiB.
    #[serde(
        default = "default_max_message_kb",
        deserialize_with = "within::<_, _, 1, MAX_MESSAGE_KB>"
    )]
    pub max_message_kb: u32,
    /// Most KiB the component may hand the host in one call (a publish, a
    /// log line); guards the host's memory.
    #[serde(
        default = "default_max_hostcall_kb",
        deserialize_with = "within::<_, _, 1, MAX_HOSTCALL_KB>"
    )]
    pub max_hostcall_kb: u32,
    /// Fuel (roughly: wasm instructions) per call; unlimited when absent.
    /// Setting it on any component meters fuel for all (a few % slower).
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, { u64::MAX }>")]
    pub fuel: Option<u64>,
    /// Most core wasm instances (and memories) one instance may create.
    #[serde(
        default = "default_max_per_component",
        deserialize_with = "within::<_, _, 1, MAX_PER_COMPONENT_U64>"
    )]
    pub max_instances: u32,
    /// Most tables one instance may create.
    #[serde(
        default = "default_max_per_component",
        deserialize_with = "within::<_, _, 1, MAX_PER_COMPONENT_U64>"
    )]
    pub max_tables: u32,
    /// Accept a component whose toolchain imports `wasi:sockets` without
    /// using it; every address stays denied. Refused otherwise.
    #[serde(default)]
    pub link_unused_sockets: bool,
    /// Give the component a private folder, `DATA_DIR/components/<name>`,
    /// mounted at `/data`. No filesystem otherwise.
    #[serde(default)]
    pub filesystem: bool,
    /// Deliveries of a failing event before it is dead-lettered, on brokers
    /// that redeliver (AMQP): 2 means the first try and one retry.
    #[serde(default = "default_max_deliver", deserialize_with = "within::<_, _, 1, 1000>")]
    pub max_deliver: u32,
    /// The operator's name for this version, reported beside its hash.
    pub label: Option<String>,
    /// How long after a swap the new version is on probation.
    #[serde(default = "default_probation_ms", deserialize_with = "within::<_, _, 0, DAY_MS>")]
    pub probation_ms: u64,
    /// Failed calls (traps, timeouts, 5xx) on probation that roll the swap
    /// back; 0 never does.
    #[serde(
        default = "default_rollback_after",
        deserialize_with = "within::<_, _, 0, 1_000_000>"
    )]
    pub rollback_after: u32,
    /// Traps or timeouts in a row that quarantine the component; 0 never does.
    #[serde(
        default = "default_quarantine_after",
        deserialize_with = "within::<_, _, 0, 1_000_000>"
    )]
    pub quarantine_after: u32,
    /// First quarantine's length; it doubles while trial calls keep failing.
    #[serde(default = "default_quarantine_ms", deserialize_with = "within::<_, _, 1, DAY_MS>")]
    pub quarantine_ms: u64,
    /// Environment variables the component may read. None by default.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Handed to the component's `init` as a JSON object.
    #[serde(default)]
    pub config: toml::Table,
}

fn default_concurrency() -> usize {
    64
}

fn default_max_batch() -> usize {
    32
}

fn default_timeout_ms() -> u64 {
    1000
}

fn default_max_message_kb() -> u32 {
    1024
}

fn default_max_hostcall_kb() -> u32 {
    4096
}

fn default_max_per_component() -> u32 {
    50
}

fn default_probation_ms() -> u64 {
    30_000
}

fn default_rollback_after() -> u32 {
    3
}

fn default_max_deliver() -> u32 {
    DEFAULT_MAX_DELIVER
}

fn default_quarantine_after() -> u32 {
    5
}

fn default_quarantine_ms() -> u64 {
    10_000
}

fn default_memory_mb() -> u32 {
    64
}

/// Largest `memory_mb`: the runtime's per-instance memory ceiling.
pub const MAX_MEMORY_MB: u32 = (MAX_MEMORY_BYTES >> 20) as u32;
const MAX_MEMORY_MB_U64: u64 = MAX_MEMORY_MB as u64;
const MAX_BATCH_U64: u64 = MAX_BATCH as u64;
const MAX_PER_COMPONENT_U64: u64 = MAX_PER_COMPONENT as u64;
/// Largest `max_concurrency`: far beyond what one host can run at once,
/// far below what a semaphore holds.
pub const MAX_CONCURRENCY: u64 = 100_000;
/// Largest `max_message_kb`: 64 MiB (NATS's own ceiling is 64 MiB too).
pub const MAX_MESSAGE_KB: u64 = 64 * 1024;
/// Largest `max_hostcall_kb`: 256 MiB.
pub const MAX_HOSTCALL_KB: u64 = 256 * 1024;
