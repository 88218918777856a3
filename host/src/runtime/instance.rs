//! How a component's instances are made, kept warm and handed to calls.
//!
//! An instance is made from the component's linked pre-instance with
//! `init` already run. Pooled components take a warm one from the
//! host-wide shelf when there is one ([`super::warm`]) and put it back
//! after a call that returned normally; fresh ones make a new one every
//! time. When the pooling allocator has no free slot, warm instances of
//! the components used longest ago give way and the make is tried again.

use wasmtime::{PoolConcurrencyLimitError, Store, StoreLimitsBuilder};

use super::component::{Instance, Live, WasmHandler};
use super::limiter::Limits;
use super::link::HANDLER_EXPORT;
use super::state::CallState;
use crate::core::error::{CallError, ErrorKind};
use crate::core::limits::InstanceMode;

impl WasmHandler {
    /// A new instance with `init` already run. When the instance pool is
    /// full, warm instances of the components used longest ago give way.
    pub(super) async fn instantiate(&self) -> Result<Instance, CallError> {
        for _ in 0..MAKE_ATTEMPTS {
            match self.instantiate_once().await {
                Ok(instance) => return Ok(instance),
                Err(MakeError::Call(e)) => return Err(e),
                Err(MakeError::PoolFull) => {
                    let freed = self.warm.evict(EVICT_WHEN_FULL);
                    if freed.is_empty() {
                        break;
                    }
                }
            }
        }
        Err(CallError::new(
            ErrorKind::Overloaded,
            format!(
                "component `{}`: no instance slot left in the host's pool (every slot is busy with a call)",
                self.env.name
            ),
        ))
    }

    async fn instantiate_once(&self) -> Result<Instance, MakeError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.settings.memory_bytes)
            .instances(self.settings.max_instances as usize)
            .tables(self.settings.max_tables as usize)
            .memories(self.settings.max_instances as usize)
            .build();
        // Guest code runs from here (instantiation, `init`) on.
        let hold = self.ticker.hold();
        let state = CallState::new(self.env.clone(), Limits::new(limits))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(self.settings.max_hostcall_bytes);
        self.refuel(&mut store);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            Ok(super::throttle::on_tick(&mut state.clock, || {
                state.env.counters.demoted()
            }))
        });
        store.set_epoch_deadline(1);
        let work = async {
            let instance = match self.linked.pre.instantiate_async(&mut store).await {
                Ok(instance) => instance,
                Err(e) if e.is::<PoolConcurrencyLimitError>() => return Err(MakeError::PoolFull),
                Err(e) => return Err(self.wasm_error(&e, None).into()),
            };
            // Only the handler, which `init` needs: the other exports are
            // found when a call first needs them (`exports`).
            let handler = match &self.linked.exports.handler {
                Some(indices) => Some(indices.load(&mut store, &instance).map_err(|e| {
                    CallError::new(
                        ErrorKind::Trap,
                        format!(
                            "component `{}`: its `{HANDLER_EXPORT}` export does not match the berth:backend contract: {e:#}",
                            self.env.name
                        ),
                    )
                })?),
                None => None,
            };
            let init = match &handler {
                Some(handler) => handler
                    .init(&mut store, &self.settings.config_json)
                    .await
                    .map_err(|e| self.wasm_error(&e, store.data().panic.take(&self.env.name)))?,
                None => Ok(()),
            };
            let instance = Box::new(Live {
                store,
                hold,
                handle: instance,
                handler,
                batch: None,
                watcher: None,
                routes: None,
                middleware: None,
                batch_middleware: None,
                http: None,
                wasmcloud: None,
                messaging: None,
            });
            Ok::<_, MakeError>((instance, init))
        };
        match tokio::time::timeout(self.settings.timeout, work).await {
            Err(_) => Err(self.timeout_error("init").into()),
            Ok(Err(e)) => Err(e),
            Ok(Ok((_, Err(e)))) => Err(CallError::from(e).into()),
            Ok(Ok((instance, Ok(())))) => Ok(instance),
        }
    }

    /// Gives a store its per-call fuel, if the engine meters fuel.
    fn refuel(&self, store: &mut Store<CallState>) {
        if self.metered {
            // Cannot fail: the engine meters fuel.
            let _ = store.set_fuel(self.settings.fuel.unwrap_or(u64::MAX));
        }
    }

    fn check_out(&self) -> Option<Instance> {
        self.warm.take(self.key)
    }

    /// Keeps an instance warm for the next call, if the host's budget has
    /// room; what the budget pushes out is dropped here, outside its lock.
    pub(super) fn check_in(&self, mut instance: Instance) {
        instance.hold.stop();
        let bytes = instance.store.data().limits.memory_bytes();
        drop(self.warm.put(self.key, instance, bytes, self.settings.max_idle));
    }

    /// Hands back an instance whose call returned normally: kept warm for
    /// the next call in pooled mode, dropped in fresh mode. (An instance
    /// whose call trapped or timed out is never handed back.)
    pub(super) fn give_back(&self, instance: Instance) {
        if self.mode() == InstanceMode::Pooled {
            self.check_in(instance);
        }
    }

    /// A warm instance (pooled mode) or a fresh one, set up for a new call
    /// in the trace of its message.
    pub(super) async fn ready_instance(
        &self,
        trace: Option<crate::core::trace::Context>,
    ) -> Result<Instance, CallError> {
        let mut instance = self.taken_instance().await?;
        self.prepare(&mut instance, trace);
        Ok(instance)
    }

    /// A warm instance (pooled mode) or a fresh one, its epoch moving.
    pub(super) async fn taken_instance(&self) -> Result<Instance, CallError> {
        let warm = match self.mode() {
            InstanceMode::Pooled => self.check_out(),
            InstanceMode::Fresh => None,
        };
        match warm {
            Some(mut i) => {
                i.hold.start();
                Ok(i)
            }
            None => self.instantiate().await,
        }
    }

    /// Sets `instance` up for a new call: its fuel, a fresh slice and no
    /// demotion, in the trace of its message.
    pub(super) fn prepare(&self, instance: &mut Instance, trace: Option<crate::core::trace::Context>) {
        self.refuel(&mut instance.store);
        let state = instance.store.data_mut();
        state.clock.restart();
        state.trace = trace;
        instance.store.set_epoch_deadline(1);
    }
}

/// How many times a call tries for an instance slot when the pool is full,
/// and how many warm instances each try frees.
const MAKE_ATTEMPTS: usize = 4;
const EVICT_WHEN_FULL: usize = 8;

/// Why no instance was made.
enum MakeError {
    /// The pooling allocator has no free slot (of some kind) left.
    PoolFull,
    /// Instantiation or `init` failed.
    Call(CallError),
}

impl From<CallError> for MakeError {
    fn from(e: CallError) -> Self {
        Self::Call(e)
    }
}
