//! The wasm runtime: one wasmtime [`Engine`] and [`Linker`] for the whole
//! host, the compile cache, and the epoch ticker that lets a deadline
//! interrupt a guest that never returns.
//!
//! Per component, [`Runtime::load`] compiles (or loads from cache), links
//! and pre-instantiates once; see [`component`] for what happens per call.

mod batch;
mod bindings;
pub mod cache;
pub mod component;
pub mod counters;
mod entry;
mod environment;
mod exports;
mod faults;
mod gateway;
pub mod grants;
mod http;
pub mod inspect;
mod instance;
mod keyvalue;
mod limiter;
mod link;
mod linked;
mod log_stream;
mod messaging_resources;
mod middleware;
mod outbound_http;
mod reply_slot;
mod routes;
mod run;
mod state;
mod throttle;
mod ticker;
mod warm;
mod wasi_messaging;
mod wasmcloud;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::core::limits::{DEFAULT_INSTANCE_SLOTS, MAX_MEMORY_BYTES, MAX_PER_COMPONENT};

pub use crate::core::limits::InstanceMode;
pub use cache::{CompileCache, Source};
pub use component::{Settings, WasmHandler};
pub use environment::Environment;
pub use link::LoadError;
pub use warm::WarmStats;
pub use wasmcloud::flatten as flatten_config;

use component::Instance;
use linked::LinkedCache;
use state::CallState;
use ticker::Ticker;
use warm::Warm;

/// How often the engine's epoch advances. A guest stuck in a loop yields
/// at the next tick, so a call's deadline is enforced to within this, and
/// a neighbour waits at most this long behind a computing guest.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Wasm stack per call, for every component: deep enough for ordinary
/// recursion, small enough that runaway recursion traps quickly as a stack
/// overflow instead of growing. Engine-wide in wasmtime, so not per component.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// The warm budget of a runtime made without one: `[host] max_warm_mb`'s
/// default.
pub const DEFAULT_WARM_BYTES: usize = 1 << 30;

/// How much a runtime may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Linear memory idle warm instances may hold, host-wide
    /// (`[host] max_warm_mb`).
    pub warm_bytes: usize,
    /// Component instances that may exist at once, running or warm: the
    /// instance pool's slots (`[host] instance_slots`).
    pub slots: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            warm_bytes: DEFAULT_WARM_BYTES,
            slots: DEFAULT_INSTANCE_SLOTS,
        }
    }
}

/// The shared wasm machinery. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// Advances the engine's epoch while guest code may run.
    ticker: Ticker,
    /// Whether the engine meters fuel (some component sets `fuel`).
    metered: bool,
    linker: Linker<CallState>,
    cache: CompileCache,
    /// Compiled components shared by loads of the same bytes.
    linked: LinkedCache,
    /// Idle instances of every component, within the warm budget.
    warm: Warm<Instance>,
    /// What it was sized for.
    capacity: Capacity,
}

impl Runtime {
    /// Builds the engine (component model, epoch interruption, pooling
    /// allocator with copy-on-write memory images) and the linker with WASI
    /// and the Berth host interface. `fuel` turns on fuel metering, which
    /// costs every component some speed, so only when one asks for it.
    pub fn new(cache: CompileCache, fuel: bool) -> Result<Self> {
        Self::with_capacity(cache, fuel, Capacity::default())
    }

    /// [`Runtime::new`] holding at most `capacity`: idle instances within
    /// its warm bytes, and an instance pool of its slots.
    pub fn with_capacity(cache: CompileCache, fuel: bool, capacity: Capacity) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        config.max_wasm_stack(MAX_WASM_STACK);
        // A trap's message names its cause (unreachable, out of bounds,
        // stack overflow, deadline) without a backtrace; capturing one on
        // every trap made a trap storm cost its neighbours real CPU.
        config.wasm_backtrace_max_frames(None);
        config.memory_init_cow(true);
        // A component instance holds a few core instances (a Rust echo:
        // three, with the WASI adapter's) and usually one or two memories
        // and tables; slots beyond what a component uses cost address
        // space only.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(capacity.slots);
        pool.total_core_instances(capacity.slots.saturating_mul(4));
        pool.total_memories(capacity.slots.saturating_mul(2));
        pool.total_tables(capacity.slots.saturating_mul(2));
        pool.max_memory_size(MAX_MEMORY_BYTES);
        // Per-component ceilings; each component's own limits (manifest
        // `max_instances`, `max_tables`) are enforced per store below these.
        pool.max_core_instances_per_component(MAX_PER_COMPONENT);
        pool.max_memories_per_component(MAX_PER_COMPONENT);
        pool.max_tables_per_component(MAX_PER_COMPONENT);
        // Reset recycled slots with memset instead of madvise up to these
        // sizes, so a fresh instance does not page-fault its way back in.
        pool.linear_memory_keep_resident(2 << 20);
        pool.table_keep_resident(64 << 10);
        pool.pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
        bindings::Platform::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)
            .context("linking the berth host interface")?;

        let ticker = Ticker::start(&engine).context("starting the epoch ticker")?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                ticker,
                metered: fuel,
                linker,
                cache,
                linked: LinkedCache::default(),
                warm: Warm::new(capacity.warm_bytes),
                capacity,
            }),
        })
    }

    /// The engine, for callers that inspect components.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// What it was sized for: the warm budget and the pool's slots.
    pub fn capacity(&self) -> Capacity {
        self.inner.capacity
    }

    /// What the warm instances hold, against the budget.
    pub fn warm(&self) -> WarmStats {
        self.inner.warm.stats()
    }

    /// Compiles `bytes` and describes what it imports and exports and
    /// whether it fits the contract, without instantiating it.
    /// `link_unused_sockets` judges it as a component whose manifest sets
    /// it (toolchains such as componentize-py import `wasi:sockets`).
    pub fn inspect(&self, bytes: &[u8], link_unused_sockets: bool) -> inspect::Report {
        inspect::inspect(&self.inner.engine, &self.inner.linker, bytes, link_unused_sockets)
    }

    /// Compiles (or loads from cache, or shares with a loaded component of
    /// the same bytes), links, pre-instantiates and initialises one
    /// instance of a component, so that a component that cannot serve is
    /// refused here and not on its first message. That instance stays warm
    /// if the warm budget has room.
    pub async fn load(
        &self,
        bytes: &[u8],
        settings: Settings,
        env: Arc<Environment>,
    ) -> Result<(WasmHandler, Source), LoadError> {
        WasmHandler::load(
            &self.inner.engine,
            &self.inner.ticker,
            self.inner.metered,
            &self.inner.linker,
            &self.inner.cache,
            &self.inner.linked,
            &self.inner.warm,
            bytes,
            settings,
            env,
        )
        .await
    }
}
