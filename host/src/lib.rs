//! Berth: a host for message backends compiled to WebAssembly components.
//!
//! A backend is a component that implements the `berth:backend` WIT world.
//! Berth runs it sandboxed in wasmtime, owns the broker connections, turns
//! each incoming message into a call into the component, and checks what
//! the component sends out against the grants in the manifest.
//!
//! # Layout
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! broker ──► transport ──► router ──► runtime (component) ──► guest call
//!   ▲                                        │
//!   └──────── transport ◄── grants ◄─────────┘
//! ```
//!
//! - [`message`]: the host's message type.
//! - [`error`]: the one error shape every call can end with, and its wire form.
//! - [`subject`]: NATS-style subjects and `*` / `>` patterns.
//! - [`transport`]: the `Transport` trait and its implementations
//!   ([`transport::memory`] is the embedded default).
//! - [`handler`]: what the router calls; wasm components and native closures.
//! - [`router`]: subscriptions to calls, concurrency limits, acks.
//! - [`quarantine`]: the breaker that stops feeding a component that keeps failing.
//! - [`runtime`]: wasmtime engine, compile cache, instances, host imports.
//! - [`grants`]: what a component may publish to and request from.
//! - [`stats`]: per-component counters.
//! - [`manifest`] reads and validates `berth.toml`.
//! - [`host`]: a running host; [`http`]: its admin and ingress API.
//! - [`cli`]: the `berth` command line; [`conformance`]: `berth conformance`;
//!   [`allocator`]: the global allocator the binary runs with.

pub mod admin;
pub mod allocator;
pub mod cli;
pub mod conformance;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod handler;
pub mod host;
pub mod http;
pub mod manifest;
pub mod message;
pub mod metrics;
pub mod quarantine;
pub mod router;
pub mod runtime;
pub mod service;
pub mod stats;
pub mod subject;
pub mod trace;
pub mod transport;
pub mod versions;
pub mod watch;

pub use error::{CallError, Disposition, ErrorKind};
pub use handler::{Handler, NativeHandler, Reply};
pub use host::Host;
pub use manifest::Manifest;
pub use message::Message;
