//! Bounds and defaults that more than one layer must agree on.
//!
//! The manifest refuses a value past a bound that the runtime, a transport
//! or the control plane enforces; keeping the number here means the two
//! cannot disagree. Bounds that only one module knows stay in that module.

use std::time::Duration;

/// Largest linear memory any component may have: the pooling allocator
/// reserves this much address space per instance slot, and the manifest's
/// `memory_mb` may not exceed it.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Instance pool slots of a runtime made without a manifest, and the fewest
/// a manifest's default gives (`[host] instance_slots`).
pub const DEFAULT_INSTANCE_SLOTS: u32 = 1000;

/// Most instance pool slots a manifest's default gives: each reserves
/// address space for its memories.
pub const MAX_DEFAULT_INSTANCE_SLOTS: u32 = 10_000;

/// Most core instances, memories or tables one component may have: the
/// ceiling for `max_instances` and `max_tables` in the manifest.
pub const MAX_PER_COMPONENT: u32 = 100;

/// Most messages one batch call may carry (`max_batch`).
pub const MAX_BATCH: usize = 1024;

/// Deliveries of a failing message by default: the first and one retry.
pub const DEFAULT_MAX_DELIVER: u32 = 2;

/// Longest timeout a guest may ask for on an outbound request.
pub const MAX_GUEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight calls by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Whether a component's instances are reused between messages: the
/// isolation a component asks for, which the manifest reads, the runtime
/// enforces and the router reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceMode {
    /// Keep instances warm and reuse them (the default: see BENCHMARKS.md).
    #[default]
    Pooled,
    /// A new instance for every message.
    Fresh,
}
