//! `[gateway]`: a WebSocket listener that speaks amqp-swarm's client
//! protocol. Each connection is a *node*; its client's requests go to
//! components on `<prefix>.client.<name>`, and components reach nodes —
//! on this host or another — over the broker.

use std::net::SocketAddr;

use anyhow::{Result, ensure};
use serde::Deserialize;

use super::Manifest;
use super::bounds::{HOUR_MS, within};
use super::transports::TransportKind;
use crate::core::subject::{is_platform, validate_subject};

/// `[gateway]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where WebSocket clients connect: `ws://LISTEN/NODE-ID`.
    pub listen: SocketAddr,
    /// The first token of every subject the gateway uses.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The broker requests to nodes travel on between hosts; `[host]
    /// transport` when absent.
    pub transport: Option<TransportKind>,
    /// Connections beyond this are refused at the handshake (503).
    #[serde(
        default = "default_max_connections",
        deserialize_with = "within::<_, _, 1, 1_000_000>"
    )]
    pub max_connections: usize,
    /// A frame larger than this closes its connection (1009, too big).
    #[serde(default = "default_max_frame_kb", deserialize_with = "within::<_, _, 1, 65_536>")]
    pub max_frame_kb: usize,
    /// A client's requests still unanswered; one more is answered with a
    /// `protocol` error at once.
    #[serde(default = "default_in_flight", deserialize_with = "within::<_, _, 1, 65_536>")]
    pub max_in_flight_per_client: usize,
    /// How long a request to or from a client waits for its answer (the
    /// amqp-swarm client itself gives up after 1 s).
    #[serde(default = "default_timeout_ms", deserialize_with = "within::<_, _, 1, HOUR_MS>")]
    pub request_timeout_ms: u64,
    /// The host pings each client this often, and closes one that has
    /// not answered the previous ping.
    #[serde(default = "default_ping_ms", deserialize_with = "within::<_, _, 10, HOUR_MS>")]
    pub ping_interval_ms: u64,
    /// Frames queued to one client; a client that lets more pile up is
    /// too slow to keep, and is closed.
    #[serde(default = "default_send_buffer", deserialize_with = "within::<_, _, 1, 1_000_000>")]
    pub send_buffer: usize,
    /// What a second connection with a node id this host already holds
    /// does to the first.
    #[serde(default)]
    pub dedupe: Dedupe,
}

/// `[gateway] dedupe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dedupe {
    /// Both stay; requests to the node reach both (amqp-swarm's way).
    #[default]
    Keep,
    /// The older connections are closed (a client that reconnected).
    CloseOld,
}

fn default_prefix() -> String {
    "swarm".to_owned()
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_frame_kb() -> usize {
    256
}
fn default_in_flight() -> usize {
    64
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_ping_ms() -> u64 {
    1000
}
fn default_send_buffer() -> usize {
    1024
}

impl Manifest {
    /// The gateway's prefix makes subjects, its listener is its own, and
    /// only a manifest with a gateway grants components its import.
    pub(super) fn validate_gateway(&self) -> Result<()> {
        let Some(gateway) = &self.gateway else {
            if let Some(c) = self.components.iter().find(|c| c.gateway) {
                anyhow::bail!(
                    "component `{}` sets `gateway = true`, but the manifest has no [gateway] \
                     (add one with `listen = \"127.0.0.1:8090\"`)",
                    c.name
                );
            }
            return Ok(());
        };
        let prefix = &gateway.prefix;
        ensure!(
            validate_subject(prefix).is_ok() && !is_platform(&format!("{prefix}.")),
            "[gateway] prefix `{}` must be subject tokens without wildcards or spaces, outside the platform's \
             (`berth.`, `$SRV.` ...), e.g. \"swarm\"",
            prefix.escape_debug()
        );
        ensure!(
            self.host.http != Some(gateway.listen),
            "[gateway] listen {} is [host] http as well: give the gateway its own port",
            gateway.listen
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;

    fn said(toml: &str) -> String {
        match Manifest::parse(toml) {
            Ok(m) => m.validate().err().map(|e| format!("{e:#}")).unwrap_or_default(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn defaults_follow_amqp_swarm() {
        let m = Manifest::parse("[gateway]\nlisten = \"127.0.0.1:8090\"\n").expect("parses");
        let g = m.gateway.expect("gateway");
        assert_eq!(g.prefix, "swarm");
        assert_eq!(g.request_timeout_ms, 1000);
        assert_eq!(g.ping_interval_ms, 1000);
        assert_eq!(g.max_frame_kb, 256);
        assert_eq!(g.max_in_flight_per_client, 64);
        assert_eq!(g.dedupe, super::Dedupe::Keep);
    }

    #[test]
    fn bad_gateways_are_named() {
        let said_of = |extra: &str| said(&format!("[gateway]\nlisten = \"127.0.0.1:8090\"\n{extra}"));
        assert!(said_of("prefix = \"a b\"").contains("[gateway] prefix"));
        assert!(said_of("prefix = \"berth\"").contains("platform"));
        assert!(said_of("prefix = \"s.*\"").contains("wildcards"));
        assert!(said_of("max_frame_kb = 0").contains("max_frame_kb"));
        assert!(said_of("dedupe = \"newest\"").contains("dedupe"));
        assert!(said_of("listen_on = 1").contains("listen_on"));
        let both = said("[host]\nhttp = \"127.0.0.1:8090\"\n[gateway]\nlisten = \"127.0.0.1:8090\"\n");
        assert!(both.contains("own port"), "{both}");
        assert!(said("[gateway]\n").contains("listen"));
    }
}
