//! Per-store state, and the host functions a component imports.
//!
//! A [`CallState`] lives as long as one instance: WASI context, resource
//! table, memory limits, and a shared [`Environment`] that says who the
//! component is and what it may send. The `host` imports check every
//! outbound call against the component's grants before it reaches a
//! transport.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{berth::backend::host, wit};
use super::environment::Environment;
use super::grants::Operation;
use super::limiter::Limits;
use super::log_stream::{LogStream, Panic, Stream};
use super::outbound_http::OutboundHttp;
use super::reply_slot::ReplySlot;
use super::throttle::CallClock;

use crate::core::error::{CallError, ErrorKind};
use crate::core::message::Message;

/// The data of one wasmtime `Store`.
pub struct CallState {
    /// Made on the instance's first WASI call: most calls of most backends
    /// make none, and a WASI context (its random generators, streams and
    /// environment) was a tenth of what a fresh instance cost to make and
    /// drop.
    wasi: Option<WasiCtx>,
    pub(super) table: ResourceTable,
    /// Memory and table limits; installed with `Store::limiter`.
    pub(crate) limits: Limits,
    /// How long the current call has computed; see `throttle`.
    pub(crate) clock: CallClock,
    /// Trace context of the current call, put on its outbound messages.
    pub(crate) trace: Option<crate::core::trace::Context>,
    /// A panic the instance reported on stderr, for its trap's error.
    pub(crate) panic: Panic,
    pub(super) env: Arc<Environment>,
    /// `wasi:http` state, for components that import or export it.
    http: WasiHttpCtx,
    /// Where its outbound `wasi:http` requests may go.
    http_hooks: OutboundHttp,
    /// The reply a wasmCloud component publishes (see `wasmcloud`).
    pub(super) reply: ReplySlot,
}

impl CallState {
    /// State for a new instance of the component `env` describes. A data
    /// folder is opened now, so that one that cannot be opened fails the
    /// instance rather than a later call.
    pub fn new(env: Arc<Environment>, limits: Limits) -> Result<Self, CallError> {
        let panic = Panic::default();
        let wasi = match &env.data_dir {
            Some(dir) => {
                let mut wasi = locked_down(&env, &panic);
                wasi.preopened_dir(dir, "/data", FsPerms::ReadWrite).map_err(|e| {
                    CallError::new(
                        ErrorKind::Overloaded,
                        format!("cannot open the data folder {} of `{}`: {e:#}", dir.display(), env.name),
                    )
                })?;
                Some(wasi.build())
            }
            None => None,
        };
        Ok(Self {
            http: WasiHttpCtx::new(),
            http_hooks: OutboundHttp::new(env.clone()),
            reply: ReplySlot::default(),
            wasi,
            table: ResourceTable::new(),
            limits,
            clock: CallClock::default(),
            trace: None,
            panic,
            env,
        })
    }

    /// Grants and size limit for an outbound message.
    fn check(&self, op: Operation, msg: &wit::Message) -> Result<(), CallError> {
        self.env
            .grants
            .check(&self.env.name, op, &msg.subject)
            .inspect_err(|e| {
                self.env.counters.forbade();
                tracing::warn!(component = %self.env.name, subject = %msg.subject, "{}", e.message);
            })?;
        if msg.body.len() > self.env.max_message_bytes {
            return Err(CallError::new(
                ErrorKind::TooLarge,
                format!(
                    "component `{}` sent {} bytes to `{}`; the limit is {} bytes",
                    self.env.name,
                    msg.body.len(),
                    msg.subject,
                    self.env.max_message_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (env, panic) = (&self.env, &self.panic);
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| locked_down(env, panic).build()),
            table: &mut self.table,
        }
    }
}

/// Locked-down WASI: no files, no sockets, no environment beyond the
/// grants; stdout and stderr become log lines, and a panic report on stderr
/// is kept in `panic` for the trap's error.
fn locked_down(env: &Environment, panic: &Panic) -> WasiCtxBuilder {
    let mut wasi = WasiCtx::builder();
    wasi.stdout(LogStream::new(env.name.clone(), Stream::Stdout))
        .stderr(LogStream::new(env.name.clone(), Stream::Stderr).with_panics(panic.clone()))
        .envs(&env.env)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    wasi
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl wit::Host for CallState {}

impl host::Host for CallState {
    async fn publish(&mut self, msg: wit::Message) -> wasmtime::Result<Result<(), wit::Error>> {
        if let Err(e) = self.check(Operation::Publish, &msg) {
            return Ok(Err(e.into()));
        }
        let mut msg = Message::from(msg);
        // A guest cannot make the host wait for replies it never asked for.
        msg.reply_to = None;
        if let Some(trace) = &self.trace {
            trace.inject(&mut msg.headers);
        }
        let sent = self.clock.wait(self.env.outbound.publish(msg)).await;
        Ok(sent.map_err(Into::into))
    }

    async fn request(
        &mut self,
        msg: wit::Message,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<wit::Message, wit::Error>> {
        if let Err(e) = self.check(Operation::Request, &msg) {
            return Ok(Err(e.into()));
        }
        let timeout = Duration::from_millis(timeout_ms.into()).min(self.env.max_request_timeout);
        let mut msg = Message::from(msg);
        if let Some(trace) = &self.trace {
            trace.inject(&mut msg.headers);
        }
        let reply = match self.clock.wait(self.env.outbound.request(msg, timeout)).await {
            Ok(reply) => reply,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(match CallError::from_reply(&reply) {
            Some(error) => Err(error.into()),
            None => Ok(reply.into()),
        })
    }

    fn log(&mut self, level: wit::Level, text: String) -> wasmtime::Result<()> {
        let component = &*self.env.name;
        match level {
            wit::Level::Trace => tracing::trace!(target: "berth::guest", component, "{text}"),
            wit::Level::Debug => tracing::debug!(target: "berth::guest", component, "{text}"),
            wit::Level::Info => tracing::info!(target: "berth::guest", component, "{text}"),
            wit::Level::Warn => tracing::warn!(target: "berth::guest", component, "{text}"),
            wit::Level::Error => tracing::error!(target: "berth::guest", component, "{text}"),
        }
        Ok(())
    }
}
