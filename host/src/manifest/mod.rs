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

use self::bounds::{HOUR_MS, within, within_opt};
use crate::core::limits::{DEFAULT_INSTANCE_SLOTS, MAX_DEFAULT_INSTANCE_SLOTS};

mod bounds;
mod component;
mod gateway;
mod http;
mod keyvalue;
mod source;
mod subscribe;
mod suggest;
mod transports;
mod validate;

pub use component::{ComponentConfig, MAX_CONCURRENCY, MAX_HOSTCALL_KB, MAX_MEMORY_MB, MAX_MESSAGE_KB};
pub use gateway::{Dedupe, GatewayConfig};
pub use http::{GuardConfig, HttpConfig, HttpRoute};
pub use keyvalue::{DEFAULT_REDIS_URL, KeyValueConfig, KvBackend};
pub use source::Lang;
pub use subscribe::{QueueType, SubscribeConfig};
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
    /// REST routes on the host's HTTP listener.
    #[serde(default)]
    pub http: HttpConfig,
    /// The WebSocket gateway for amqp-swarm clients.
    pub gateway: Option<GatewayConfig>,
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
    /// Refuse to start unless every component loads (`berth run
    /// --strict`). Otherwise a component that fails to load or `init` is
    /// reported as failed, with the reason, and the others serve.
    #[serde(default)]
    pub strict: bool,
    /// Linear memory that idle warm instances may hold, host-wide, in MiB.
    /// Past it, the instances of the components used longest ago are
    /// dropped, and their next call makes a new one (`init` included).
    #[serde(default = "default_max_warm_mb", deserialize_with = "within::<_, _, 0, 1_048_576>")]
    pub max_warm_mb: u32,
    /// Component instances that may exist at once, host-wide, running or
    /// warm: the slots of the instance pool, each reserving address space
    /// for its memories. Absent: enough for every component's
    /// `max_concurrency` (see [`Manifest::instance_slots`]).
    #[serde(default, deserialize_with = "within_opt::<_, _, 16, 20_000>")]
    pub instance_slots: Option<u32>,
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
            strict: false,
            max_warm_mb: default_max_warm_mb(),
            instance_slots: None,
        }
    }
}

fn default_http_max_connections() -> usize {
    4096
}

fn default_http_header_timeout_ms() -> u64 {
    10_000
}

fn default_max_warm_mb() -> u32 {
    1024
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

    /// `[host] instance_slots`, or by default room for every component's
    /// `max_concurrency` and a swap's second version beside it, between
    /// 1,000 and 10,000 slots: a slot reserves address space for its
    /// memories (up to 1 GiB each), not memory.
    pub fn instance_slots(&self) -> u32 {
        self.host.instance_slots.unwrap_or_else(|| {
            let wanted: usize = self.components.iter().map(|c| c.max_concurrency).sum();
            let wanted = u32::try_from(wanted.saturating_mul(2)).unwrap_or(u32::MAX);
            wanted.clamp(DEFAULT_INSTANCE_SLOTS, MAX_DEFAULT_INSTANCE_SLOTS)
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
