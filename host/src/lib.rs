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
//! - [`core`]: the types every layer speaks — [`core::message`],
//!   [`core::error`], [`core::subject`], [`core::headers`] (every header
//!   name), [`core::limits`] (bounds several layers share),
//!   [`core::trace`], and the two joining traits: [`core::handler`] (what
//!   the router calls) and [`core::outbound`] (where a component's messages
//!   go).
//! - [`manifest`]: `berth.toml`, parsed and validated.
//! - [`transport`]: the `Transport` trait; [`transport::memory`] (the
//!   embedded default), [`transport::nats`] (with [`transport::nats::jetstream`]),
//!   [`transport::amqp`]; [`transport::retry`], the one retry and
//!   dead-letter policy.
//! - [`runtime`]: the wasmtime engine, compile cache, components and their
//!   instances, host imports, [`runtime::grants`]. Beside the transports:
//!   neither imports the other.
//! - [`router`]: subscriptions to calls — [`router::serve`],
//!   `dispatch`, [`router::quarantine`], [`router::versions`],
//!   [`router::stats`].
//! - [`app`]: the running host — [`app::Host::start`], shutdown, the
//!   loader, and every operator action once ([`app::ops`], `swap`).
//! - [`control`]: how operators reach it — [`control::http`],
//!   [`control::admin`] (over the broker), [`control::health`], the NATS
//!   service API, [`control::metrics`], [`control::watch`], and the one
//!   authorization rule, [`control::auth`]; [`control::run`] is `berth run`.
//! - [`cli`]: the `berth` command and what only it uses:
//!   [`cli::admin_client`], [`cli::discovery`], [`cli::conformance`],
//!   [`cli::allocator`] (the binary's global allocator).

pub mod app;
pub mod cli;
pub mod control;
pub mod core;
pub mod manifest;
pub mod router;
pub mod runtime;
pub mod transport;

pub use crate::app::Host;
pub use crate::core::error::{CallError, Disposition, ErrorKind};
pub use crate::core::handler::{Handler, NativeHandler, Reply};
pub use crate::core::message::Message;
pub use crate::manifest::Manifest;
