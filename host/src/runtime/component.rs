//! One loaded component and how a message becomes a call into it.
//!
//! Two instance modes:
//! - [`InstanceMode::Pooled`]: instances are kept warm and reused. A call
//!   costs about what the guest's code costs. An instance that trapped or
//!   ran out of time is discarded, never reused, because a trap leaves its
//!   store in an unknown state.
//! - [`InstanceMode::Fresh`]: a new instance (and `init`) per message, so no
//!   state survives from one message to the next.
//!
//! Every call runs under a deadline. The engine's epoch ticks; at each tick
//! a running guest yields to the executor, so the deadline's timer fires
//! even in a tight loop and the call (and its store) is dropped. A call that
//! keeps computing is demoted so it cannot take whole cores from the other
//! components (see [`super::throttle`]).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use super::bindings::{
    batch_handler, batch_middleware, messaging_handler, middleware, routes, wasmcloud_handler, watcher, wit,
};
use super::cache::{CompileCache, Source, content_hash};
use super::entry::HandlerFns;
use super::environment::Environment;
use super::link::{LoadError, link, refuse_sockets, sniff};
use super::linked::{Linked, LinkedCache};
use super::state::CallState;
use super::ticker::{Hold, Ticker};
use super::warm::Warm;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::{DeclaredRoute, Handler, Reply, Verdict, World};
use crate::core::headers::KV_BUCKET;
use crate::core::limits::InstanceMode;
use crate::core::message::Message;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

/// Limits and inputs for one component's instances.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Wall time for one call, instantiation and `init` included.
    pub timeout: Duration,
    /// Reuse instances or not; `None`: what its exports call for
    /// ([`default_mode`]).
    pub mode: Option<InstanceMode>,
    /// Most warm instances kept idle (pooled mode), within the host's
    /// warm budget.
    pub max_idle: usize,
    /// The `[components.config]` table as JSON, handed to `init`.
    pub config_json: String,
    /// Most bytes the guest may hand the host in one host call.
    pub max_hostcall_bytes: usize,
    /// Accept a component that imports `wasi:sockets` (some toolchains do
    /// without using it); every address stays denied.
    pub link_unused_sockets: bool,
    /// Fuel (roughly: wasm instructions) per call; `None` for no limit.
    /// Needs a runtime made with fuel metering.
    pub fuel: Option<u64>,
    /// Most core instances (and memories) one instance of the component
    /// may create.
    pub max_instances: u32,
    /// Most tables one instance of the component may create.
    pub max_tables: u32,
    /// Most messages handed to one `handle-batch` call, if the component
    /// exports it; 1 never batches.
    pub max_batch: usize,
}

/// A component ready to take calls.
pub struct WasmHandler {
    pub(super) engine: Engine,
    /// Keeps the epoch moving while this component's guest code may run.
    pub(super) ticker: Ticker,
    /// Its code, shared with every component loaded from the same bytes.
    pub(super) linked: Arc<Linked>,
    pub(super) settings: Settings,
    /// `settings.mode`, or the default for its exports.
    mode: InstanceMode,
    pub(super) env: Arc<Environment>,
    version: String,
    /// Whether the engine meters fuel, so every store needs some.
    pub(super) metered: bool,
    /// The host's warm instances (pooled mode only), and this component's
    /// key among them.
    pub(super) warm: Warm<Instance>,
    pub(super) key: u64,
    /// What it says it handles, if it exports its routes.
    pub(super) declared: Vec<DeclaredRoute>,
}

/// A live instance, boxed: it moves from the warm shelf into each call's
/// future and back, and a pointer moves where its store handle and every
/// export's functions (about a kilobyte) would be copied at each move.
pub(super) type Instance = Box<Live>;

/// A live instance and its store. Its optional exports are found when a
/// call first needs them (`exports`): `None` until then.
pub(super) struct Live {
    pub(super) store: Store<CallState>,
    /// Keeps the epoch moving while guest code may run in it: started
    /// from checkout until it is put back.
    pub(super) hold: Hold,
    pub(super) handle: wasmtime::component::Instance,
    pub(super) handler: Option<HandlerFns>,
    pub(super) batch: Option<batch_handler::Guest>,
    pub(super) watcher: Option<watcher::Guest>,
    pub(super) routes: Option<routes::Guest>,
    pub(super) middleware: Option<middleware::Guest>,
    pub(super) batch_middleware: Option<batch_middleware::Guest>,
    pub(super) http: Option<incoming_handler::Guest>,
    pub(super) wasmcloud: Option<wasmcloud_handler::Guest>,
    pub(super) messaging: Option<messaging_handler::Guest>,
}

pub(super) enum Call {
    Request(wit::Message),
    Event(wit::Message),
}

/// One message's call on an instance prepared for it, awaited where it is
/// written: `wasmtime::Result<Result<Option<wit::Reply>, CallError>>`,
/// whose `Err` is a trap (the instance must not be used again). A macro,
/// not an `async fn`: that fn's future, nested in a single call's and moved
/// into it, cost ~170 instructions a message (callgrind, `nats_rpc`'s
/// `berth-single`).
macro_rules! call_on {
    ($handler:expr, $instance:expr, $call:expr) => {{
        let (handler, instance, call) = ($handler, $instance, $call);
        match (call, instance.handler) {
            ($crate::runtime::component::Call::Event(m), _)
                if handler.exports().watcher.is_some() && $crate::runtime::component::is_change(&m) =>
            {
                handler.call_watcher(instance, &m).await.map(|r| r.map(|()| None))
            }
            ($crate::runtime::component::Call::Request(m), Some(typed)) => typed
                .handle_request(&mut instance.store, &m)
                .await
                .map(|r| r.map(Some).map_err($crate::core::error::CallError::from)),
            ($crate::runtime::component::Call::Event(m), Some(typed)) => typed
                .handle_event(&mut instance.store, &m)
                .await
                .map(|r| r.map(|()| None).map_err($crate::core::error::CallError::from)),
            ($crate::runtime::component::Call::Request(m), None) => handler.call_foreign(instance, m, true).await,
            ($crate::runtime::component::Call::Event(m), None) => handler.call_foreign(instance, m, false).await,
        }
    }};
}
pub(super) use call_on;

impl Call {
    /// A call for a copy of `message`: a request if it has a reply address.
    pub(super) fn of(message: &Message) -> Self {
        match message.reply_to {
            Some(_) => Call::Request(message.clone().into()),
            None => Call::Event(message.clone().into()),
        }
    }
}

/// How a component's instances are used when its manifest entry does not
/// say. A `wasi:http` component gets a new instance per request: the hosts
/// it is written for (`wasmtime serve` for wasi:http 0.2, Spin, wasmCloud)
/// make one for every request, and components may rely on it;
/// componentize-js's `fetch` event, for one, answers only the first
/// request of an instance and leaves the next hanging (StarlingMonkey
/// issue 247). Anything else is pooled: Berth's contract says instances
/// are reused, they cost ~3.5x less per message (BENCHMARKS.md), and no
/// messaging guest Berth runs has been seen to need otherwise.
pub(super) fn default_mode(exports: &super::link::Exports) -> InstanceMode {
    match exports.http {
        Some(_) => InstanceMode::Fresh,
        None => InstanceMode::Pooled,
    }
}

impl WasmHandler {
    #[allow(clippy::too_many_arguments)] // the runtime's parts, passed on from `Runtime::load`
    pub(super) async fn load(
        engine: &Engine,
        ticker: &Ticker,
        metered: bool,
        linker: &Linker<CallState>,
        cache: &CompileCache,
        shared: &LinkedCache,
        warm: &Warm<Instance>,
        bytes: &[u8],
        settings: Settings,
        env: Arc<Environment>,
    ) -> Result<(Self, Source), LoadError> {
        sniff(bytes)?;
        let version = content_hash(bytes);
        let (linked, source) = shared
            .get_or_make(&version, async {
                // Compiling takes seconds for a large component: on a
                // blocking thread, so that other components compile beside
                // it and the host's loops keep serving during a swap.
                let (compiler, cache, bytes, version) =
                    (engine.clone(), cache.clone(), bytes.to_vec(), version.clone());
                let (component, source) = tokio::task::spawn_blocking(move || cache.load(&compiler, &bytes, &version))
                    .await
                    .map_err(|e| LoadError::Invalid(anyhow::anyhow!("the compiler thread failed: {e}")))?
                    .map_err(LoadError::Invalid)?;
                // Before linking: the linker has no sockets to offer, and
                // the refusal says why and what to do.
                if !settings.link_unused_sockets {
                    refuse_sockets(engine, &component)?;
                }
                let (pre, exports) = link(linker, &component)?;
                Ok((
                    Linked {
                        component,
                        pre,
                        exports,
                    },
                    source,
                ))
            })
            .await?;
        // Again for bytes linked first for a component that allowed them.
        if !settings.link_unused_sockets {
            refuse_sockets(engine, &linked.component)?;
        }
        let mode = settings.mode.unwrap_or_else(|| default_mode(&linked.exports));
        let mut handler = Self {
            engine: engine.clone(),
            ticker: ticker.clone(),
            linked,
            settings,
            mode,
            env,
            version,
            metered,
            warm: warm.clone(),
            key: Warm::<Instance>::key(),
            declared: Vec::new(),
        };
        let mut first = handler.instantiate().await.map_err(LoadError::Init)?;
        handler.find_every_export(&mut first).map_err(LoadError::Init)?;
        handler.declared = handler.declared_routes(&mut first).await.map_err(LoadError::Init)?;
        if handler.mode == InstanceMode::Pooled {
            handler.check_in(first);
        }
        Ok((handler, source))
    }

    /// Where its exports are.
    pub(super) fn exports(&self) -> &super::link::Exports {
        &self.linked.exports
    }

    /// The SHA-256 of the wasm bytes.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How instances are used.
    pub fn mode(&self) -> InstanceMode {
        self.mode
    }

    /// Runs one call on a warm or fresh instance under the deadline. The
    /// instance goes back to the pool only if the call returned normally.
    pub(super) async fn call(&self, call: Call) -> Result<Option<wit::Reply>, CallError> {
        let body_len = match &call {
            Call::Request(m) | Call::Event(m) => m.body.len(),
        };
        if body_len > self.env.max_message_bytes {
            return Err(self.too_large("message", body_len));
        }
        let work = async {
            let trace = match &call {
                Call::Request(m) | Call::Event(m) => crate::core::trace::Context::child_of(&m.headers),
            };
            let mut instance = self.ready_instance(trace).await?;
            match call_on!(self, &mut instance, call) {
                Err(trap) => Err(self.trapped(&instance, &trap)),
                Ok(outcome) => {
                    self.give_back(instance);
                    self.answered(outcome)
                }
            }
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error("call")))
    }

    /// A call's answer, held to the component's limits: a reply over
    /// `max_message_kb` is an error, and an unhandled subject's error
    /// names the routes the component declares.
    pub(super) fn answered(
        &self,
        outcome: Result<Option<wit::Reply>, CallError>,
    ) -> Result<Option<wit::Reply>, CallError> {
        match outcome {
            Ok(Some(reply)) if reply.body.len() > self.env.max_message_bytes => {
                Err(self.too_large("reply", reply.body.len()))
            }
            Err(e) if e.kind == ErrorKind::Unhandled => Err(self.with_routes(e)),
            other => other,
        }
    }

    /// The error of a call that trapped in `instance`, with the guest's
    /// panic message if it left one.
    pub(super) fn trapped(&self, instance: &Instance, trap: &wasmtime::Error) -> CallError {
        let panic = instance.store.data().panic.take(&self.env.name);
        self.wasm_error(trap, panic)
    }
}

impl WasmHandler {
    /// A call into a component of another host's messaging world. The
    /// message is the call's to keep, so its parts move into that world's
    /// types uncopied.
    pub(super) async fn call_foreign(
        &self,
        instance: &mut Instance,
        message: wit::Message,
        request: bool,
    ) -> wasmtime::Result<Result<Option<wit::Reply>, CallError>> {
        match self.exports().messaging.is_some() {
            true => self.call_wasi_messaging(instance, message, request).await,
            false => self.call_wasmcloud(instance, message, request).await,
        }
    }
}

impl Drop for WasmHandler {
    /// Its warm instances go with it (a swapped-out version, say).
    fn drop(&mut self) {
        drop(self.warm.forget(self.key));
    }
}

/// Whether `message` is a key-value change (it carries the bucket header),
/// for a component's watcher rather than its handler.
pub(super) fn is_change(message: &wit::Message) -> bool {
    message
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(KV_BUCKET))
}

#[async_trait::async_trait]
impl Handler for WasmHandler {
    async fn handle_request(&self, message: Message) -> Result<Reply, CallError> {
        let reply = self.call(Call::Request(message.into())).await?;
        Ok(reply.map(Reply::from).unwrap_or_default())
    }

    async fn handle_event(&self, message: Message) -> Result<(), CallError> {
        self.call(Call::Event(message.into())).await.map(drop)
    }

    fn batch_limit(&self) -> usize {
        WasmHandler::batch_limit(self)
    }

    async fn handle_batch(&self, messages: &[Message]) -> Vec<Result<Option<Reply>, CallError>> {
        self.call_batch(messages).await
    }

    async fn filter(&self, message: Message) -> Result<(Verdict, Message), CallError> {
        self.call_middleware(message).await
    }

    fn serves_http(&self) -> bool {
        self.exports().http.is_some()
    }

    fn routes(&self) -> &[DeclaredRoute] {
        WasmHandler::routes(self)
    }

    fn world(&self) -> World {
        match self.exports() {
            e if e.http.is_some() => World::WasiHttp,
            e if e.wasmcloud.is_some() => World::WasmCloud,
            e if e.messaging.is_some() => World::WasiMessaging,
            _ => World::Berth,
        }
    }

    async fn serve_http(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, CallError> {
        self.call_http(request).await
    }
}
