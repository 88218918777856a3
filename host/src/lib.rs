//! Berth: a host for message backends compiled to WebAssembly components.
//!
//! A backend is a component that implements the `berth:backend` WIT world.
//! Berth runs it sandboxed in wasmtime, owns the broker connections, turns
//! each incoming message into a call into the component, and checks what
//! the component sends out against the grants in the manifest.
//!
//! # Layout
//!
//! The folders are layers; a layer imports only from the layers below it.
//!
//! ```text
//! broker ──► transport ──► router ──► runtime (component) ──► guest call
//!   ▲                                        │
//!   └──────── transport ◄── grants ◄─────────┘
//! ```
//!
//! Every module, layer by layer (a private module in `code`):
//!
//! - [`core`] — the types every layer speaks; imports no other Berth
//!   module. [`core::message`], [`core::error`] (the one error shape and
//!   its wire form), [`core::subject`] (patterns, the platform's subjects),
//!   [`core::headers`] (every header name), [`core::limits`] (bounds
//!   several layers share), [`core::trace`] (W3C trace context), and the
//!   traits that join the layers: [`core::handler`] (what the router
//!   calls), [`core::outbound`] (where a component's messages go) and
//!   [`core::keyvalue`] (where its state lives).
//! - [`manifest`] — `berth.toml`: the tables, `subscribe` entries,
//!   `[transports]`, `bounds` (numbers checked as they are read) and
//!   `validate` (what the types cannot check), `keyvalue` (the buckets).
//! - [`transport`] — the `Transport` trait, [`transport::Delivery`] and its
//!   `acker`, and [`transport::retry`] (the one retry and dead-letter
//!   policy); [`transport::memory`] (the embedded default);
//!   [`transport::nats`] (`convert`, `acker`, [`transport::nats::jetstream`]);
//!   [`transport::amqp`] (`link`, `convert`, `delivery`, `acks`,
//!   `replies`).
//! - [`keyvalue`] — beside the transports: the buckets of `[keyvalue.*]`
//!   on their backends ([`keyvalue::embedded`], [`keyvalue::nats`],
//!   [`keyvalue::redis`]), behind [`keyvalue::guarded`] (limits, counts)
//!   with [`keyvalue::changes`] (the change feed).
//! - [`runtime`] — beside the transports, neither importing the other: the
//!   wasmtime engine ([`runtime`] itself), [`runtime::cache`],
//!   [`runtime::component`] (instances and calls), `link` (linking and
//!   the exports a component may have), `batch`, `watch` (the key-value
//!   watcher export), `middleware` (the middleware export), `bindings`,
//!   `environment` (who a component is to its imports), `state` (the host
//!   imports), `keyvalue` (the `wasi:keyvalue` imports), other hosts'
//!   worlds: `http` and `outbound_http` (`wasi:http`), `wasmcloud`
//!   (`wasmcloud:messaging`, `wasi:logging`, `wasi:config`),
//!   `wasi_messaging`, with `reply_slot` (their replies);
//!   [`runtime::grants`], [`runtime::counters`], [`runtime::inspect`]
//!   (`berth check`), `log_stream`, `throttle` (demoting a guest that
//!   computes too long).
//! - [`router`] — subscriptions to calls: [`router::serve`], `dispatch`,
//!   `busy` (time in a call's polls), [`router::chain`] (middleware in
//!   front of a handler), [`router::quarantine`], [`router::versions`],
//!   [`router::stats`], [`router::endpoint`].
//! - [`app`] — the running host: `start`, `loader`, shutdown
//!   ([`app::Host`]), and every operator action once ([`app::ops`],
//!   `swap`).
//! - [`ingress`] — how clients reach the components: [`ingress::http`]
//!   (`[[http.routes]]`: `table`, `forward`, `counters`).
//! - [`control`] — how operators reach the host: [`control::http`]
//!   (`server`: connections; `operator`: the actions; `ingress`: requests
//!   and publishes), [`control::admin`] (over the broker), `answer` (the
//!   broker answerers' loop), [`control::health`], `service` (the NATS
//!   service API), [`control::metrics`], [`control::watch`], the one
//!   authorization rule [`control::auth`]; [`control::run`] is `berth run`.
//! - [`cli`] — the `berth` command (`actions`) and what only it uses:
//!   [`cli::admin_client`], [`cli::discovery`], [`cli::conformance`],
//!   [`cli::allocator`] (the binary's global allocator).

pub mod app;
pub mod cli;
pub mod control;
pub mod core;
pub mod ingress;
pub mod keyvalue;
pub mod manifest;
pub mod router;
pub mod runtime;
pub mod transport;

pub use crate::app::Host;
pub use crate::core::error::{CallError, Disposition, ErrorKind};
pub use crate::core::handler::{Handler, NativeHandler, Reply};
pub use crate::core::message::Message;
pub use crate::manifest::Manifest;
