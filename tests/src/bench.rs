//! What the in-process benches share: a component's settings and
//! environment as a host would give them, without a manifest.

use std::sync::Arc;
use std::time::Duration;

use berth::runtime::{Environment, InstanceMode, Settings};
use berth::transport::memory::MemoryTransport;

/// Default limits, `mode` instances; `link_unused_sockets` for the Python
/// and JavaScript components, which import sockets they never use.
pub fn settings(mode: InstanceMode, link_unused_sockets: bool) -> Settings {
    Settings {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(5),
        mode: Some(mode),
        max_idle: 4,
        config_json: "{}".into(),
        max_hostcall_bytes: 4 << 20,
        link_unused_sockets,
        fuel: None,
        max_instances: 50,
        max_tables: 50,
        max_batch: 32,
    }
}

/// No grants, outbound calls on `bus`.
pub fn environment(bus: &MemoryTransport) -> Arc<Environment> {
    Arc::new(Environment {
        name: "echo".into(),
        grants: Default::default(),
        outbound: Arc::new(berth::transport::Sender(Arc::new(bus.clone()))),
        env: Vec::new(),
        max_request_timeout: Duration::from_secs(1),
        max_message_bytes: 1 << 20,
        data_dir: None,
        counters: Default::default(),
        keyvalue: Default::default(),
        http_outbound: Vec::new(),
        config: Vec::new(),
        gateway: None,
    })
}
