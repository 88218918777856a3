//! The manifest (`berth.toml`): which components run, what they subscribe
//! to, what they may send, and their limits.
//!
//! Unknown keys are errors, so a typo never silently changes behaviour; the
//! error names the key, the line and the column. Environment variables
//! (`SERVICE_NAME`, `DATA_DIR`, `NATS_URL`, `AMQP_URL` ...) override the file,
//! Telestion style, so one manifest serves every deployment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use self::bounds::{DAY_MS, HOUR_MS, within, within_opt};
use crate::core::limits::{DEFAULT_MAX_DELIVER, InstanceMode, MAX_BATCH, MAX_MEMORY_BYTES, MAX_PER_COMPONENT};

mod bounds;
mod keyvalue;
mod source;
mod subscribe;
mod suggest;
mod transports;
mod validate;

pub use keyvalue::{DEFAULT_REDIS_URL, KeyValueConfig, KvBackend};
pub use source::Lang;
pub use subscribe::SubscribeConfig;
pub use transports::{AmqpConfig, NatsConfig, TransportKind, TransportsConfig};
pub use validate::is_name;

/// A whole manifest.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Host-wide settings.
    #[serde(default)]
    pub host: HostConfig,
    /// Broker connections, by transport.
    #[serde(default)]
    pub transports: TransportsConfig,
    /// Key-value buckets, by the name components open them with.
    #[serde(default)]
    pub keyvalue: BTreeMap<String, KeyValueConfig>,
    /// The components to run.
    #[serde(default)]
    pub components: Vec<ComponentConfig>,
}

/// `[host]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Service name: names queue groups and appears in health and discovery.
    #[serde(default = "default_name")]
    pub name: String,
    /// The transport plain subscriptions and outbound calls use.
    #[serde(default)]
    pub transport: TransportKind,
    /// Admin and ingress HTTP address; `None` disables HTTP.
    pub http: Option<SocketAddr>,
    /// Where the compile cache and component folders live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Token that calls which change the host must carry.
    pub admin_token: Option<String>,
    /// Swap a component in when its wasm file changes (`berth run --watch`).
    #[serde(default)]
    pub watch: bool,
    /// Also answer Telestion's `__telestion__/health` subject.
    #[serde(default)]
    pub telestion: bool,
    /// Answer admin commands on the broker (the control layer's broker admin).
    #[serde(default)]
    pub admin: bool,
    /// Add `Berth-Component` and `Berth-Version` to every successful reply,
    /// to see which component and version answered (while testing a swap,
    /// say). Off by default: a reply is exactly what the component
    /// returned, because on NATS the two headers cost ~1.3 µs of host CPU
    /// per reply and a third of the throughput at 256 in flight
    /// (BENCHMARKS.md); the serving version is in health, `info` and logs.
    #[serde(default)]
    pub reply_headers: bool,
    /// Most HTTP connections open at once; one more is answered 503 and
    /// closed.
    #[serde(
        default = "default_http_max_connections",
        deserialize_with = "within::<_, _, 1, 1_000_000>"
    )]
    pub http_max_connections: usize,
    /// How long an HTTP client may take to send a request's headers, and
    /// how long a kept-alive connection may sit idle, before it is closed.
    #[serde(
        default = "default_http_header_timeout_ms",
        deserialize_with = "within::<_, _, 100, HOUR_MS>"
    )]
    pub http_header_timeout_ms: u64,
    /// Largest component a swap over HTTP may upload, in MiB.
    #[serde(default = "default_max_component_mb", deserialize_with = "within::<_, _, 1, 1024>")]
    pub max_component_mb: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            name: default_name(),
            transport: TransportKind::default(),
            http: None,
            data_dir: default_data_dir(),
            admin_token: None,
            watch: false,
            telestion: false,
            admin: false,
            reply_headers: false,
            http_max_connections: default_http_max_connections(),
            http_header_timeout_ms: default_http_header_timeout_ms(),
            max_component_mb: default_max_component_mb(),
        }
    }
}

fn default_http_max_connections() -> usize {
    4096
}

fn default_http_header_timeout_ms() -> u64 {
    10_000
}

fn default_max_component_mb() -> u32 {
    256
}

fn default_name() -> String {
    "berth".to_owned()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

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
    /// Reuse instances (`pooled`) or make one per message (`fresh`).
    #[serde(default)]
    pub instance_mode: InstanceMode,
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

impl Manifest {
    /// Reads, parses, applies the process environment and validates a
    /// manifest file. Relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let mut manifest = Self::read(path)?;
        manifest.apply_env(|k| std::env::var(k).ok());
        manifest
            .validate()
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        Ok(manifest)
    }

    /// Reads and parses the manifest at `path` and resolves its paths,
    /// without the environment's overrides or validation: what `berth
    /// build` needs of a manifest whose components are not built yet.
    pub fn read(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "there is no manifest {}: name one, or make a project with `berth new NAME --lang rust|python|js|c`",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read manifest {}", path.display())),
        };
        let mut manifest = Self::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))?;
        manifest.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(manifest)
    }

    /// Parses manifest text; the error names the offending key and line,
    /// and for an unknown key the known one nearest to it.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| match suggest::nearest_key(e.message()) {
            Some(key) => anyhow::anyhow!("{e}did you mean `{key}`?"),
            None => e.into(),
        })
    }

    /// Makes relative `wasm` and `data_dir` paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.host.data_dir.is_relative() {
            self.host.data_dir = base.join(&self.host.data_dir);
        }
        for c in &mut self.components {
            for path in std::iter::once(&mut c.wasm).chain(c.source.as_mut()) {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        let nats = self.transports.nats.as_mut().into_iter().flat_map(|nats| {
            [
                &mut nats.credentials,
                &mut nats.tls_ca,
                &mut nats.tls_cert,
                &mut nats.tls_key,
            ]
        });
        let amqp = self.transports.amqp.as_mut().map(|amqp| &mut amqp.tls_ca);
        for file in nats.chain(amqp).flatten() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }

    /// Applies environment overrides, read through `var` so tests need not
    /// touch the process environment.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("SERVICE_NAME") {
            self.host.name = v;
        }
        if let Some(v) = var("DATA_DIR") {
            self.host.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("BERTH_ADMIN_TOKEN") {
            self.host.admin_token = Some(v);
        }
        let nats_vars = ["NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS"].map(&var);
        if nats_vars.iter().any(Option::is_some) {
            let nats = self.transports.nats.get_or_insert_with(NatsConfig::default);
            let [url, user, password, token, creds] = nats_vars;
            nats.url = url.unwrap_or(std::mem::take(&mut nats.url));
            nats.user = user.or(nats.user.take());
            nats.password = password.or(nats.password.take());
            nats.token = token.or(nats.token.take());
            nats.credentials = creds.map(PathBuf::from).or(nats.credentials.take());
        }
        if let Some(url) = var("AMQP_URL") {
            self.transports.amqp.get_or_insert_with(AmqpConfig::default).url = url;
        }
        if let Some(url) = var("REDIS_URL") {
            for kv in self.keyvalue.values_mut().filter(|kv| kv.backend == KvBackend::Redis) {
                kv.url = Some(url.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
