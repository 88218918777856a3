//! `berth check`: what a component imports and exports, and whether it
//! fits the `berth:backend` contract on this host, with the reason if not.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::link::LoadError;
use super::state::CallState;

/// The result of inspecting one component.
#[derive(Debug, Default)]
pub struct Report {
    /// Interfaces and functions it imports.
    pub imports: Vec<String>,
    /// Interfaces and functions it exports.
    pub exports: Vec<String>,
    /// Why it cannot run here; empty when it fits.
    pub problems: Vec<String>,
    /// What to know before running it, though it fits.
    pub notes: Vec<String>,
}

impl Report {
    /// Whether the component can be loaded by this host.
    pub fn fits(&self) -> bool {
        self.problems.is_empty()
    }

    /// The world it targets, by its exports, and what the host gives it.
    pub fn world(&self) -> String {
        let exports = |prefix: &str| self.exports.iter().any(|e| e.starts_with(prefix));
        let imports = |prefix: &str| self.imports.iter().any(|e| e.starts_with(prefix));
        if exports(super::link::HTTP_EXPORT) {
            return "wasi:http/proxy: it answers the [[http.routes]] that name it as `component`, \
                    on a new instance per request unless its `instance_mode` is `pooled`; \
                    its outbound requests go only where `http_outbound` grants"
                .to_owned();
        }
        if exports(super::link::WASMCLOUD_EXPORT) {
            return "wasmcloud:messaging@0.2.0 handler: its subscriptions' messages reach `handle-message`, \
                    a publish to a request's reply-to is its reply; consumer, wasi:logging and wasi:config are provided"
                .to_owned();
        }
        if exports(super::link::WASI_MESSAGING_EXPORT) {
            let world = match imports("wasi:messaging/request-reply") {
                true => "messaging-request-reply",
                false => "messaging-core",
            };
            return format!(
                "wasi:messaging@0.2.0-draft {world}: its subscriptions' messages reach `incoming-handler`; \
                 a client connects to its outbound transport"
            );
        }
        if !exports("berth:backend/handler") && exports(super::link::WATCHER_EXPORT) {
            return "wasi:keyvalue watch-service: told of changes to the buckets it is granted".to_owned();
        }
        // (Middleware is not told: the Rust SDK exports it from every
        // component, and the manifest's `middleware = true` says which are.)
        let features: Vec<&str> = [
            (exports("berth:backend/batch-handler"), "batches"),
            (imports("wasi:keyvalue/"), "state (wasi:keyvalue)"),
            (imports("berth:backend/gateway"), "the gateway (needs `gateway = true`)"),
        ]
        .into_iter()
        .filter_map(|(has, what)| has.then_some(what))
        .collect();
        match features.is_empty() {
            true => "berth:backend@0.1.0 backend".to_owned(),
            false => format!("berth:backend@0.1.0 backend, with {}", features.join(" and ")),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "imports:")?;
        for i in &self.imports {
            writeln!(f, "  {i}")?;
        }
        // Interfaces are what the host calls; a toolchain's plainly named
        // exports (componentize-py's `exports`) are not, and are only counted.
        let (interfaces, other): (Vec<&String>, Vec<&String>) = self.exports.iter().partition(|e| e.contains(':'));
        writeln!(f, "exports:")?;
        for e in interfaces {
            writeln!(f, "  {e}")?;
        }
        if !other.is_empty() {
            let names: Vec<&str> = other.iter().map(|e| e.as_str()).collect();
            writeln!(f, "  (and {}, which Berth does not call)", names.join(", "))?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if self.fits() {
            write!(f, "ok: {}", self.world())
        } else {
            for p in &self.problems {
                writeln!(f, "problem: {p}")?;
            }
            write!(
                f,
                "does not fit any world this host runs (berth:backend, wasmcloud:messaging, wasi:http)"
            )
        }
    }
}

pub(super) fn inspect(engine: &Engine, linker: &Linker<CallState>, bytes: &[u8], link_unused_sockets: bool) -> Report {
    let component = match super::link::sniff(bytes)
        .and_then(|()| Component::new(engine, bytes).map_err(|e| LoadError::Invalid(e.into())))
    {
        Ok(c) => c,
        Err(e) => {
            return Report {
                problems: vec![e.to_string()],
                ..Report::default()
            };
        }
    };
    let ty = component.component_type();
    let mut report = Report {
        imports: ty.imports(engine).map(|(name, _)| name.to_owned()).collect(),
        exports: ty.exports(engine).map(|(name, _)| name.to_owned()).collect(),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    if built_by_componentize_js(bytes) && report.exports.iter().any(|e| e.starts_with(super::link::HTTP_EXPORT)) {
        report.notes.push(ONE_REQUEST_PER_INSTANCE.to_owned());
    }
    if !link_unused_sockets && let Err(e) = super::link::refuse_sockets(engine, &component) {
        report.problems.push(format!(
            "{e} (berth check --link-unused-sockets checks it as a component with link_unused_sockets = true)"
        ));
    }
    if let Err(e) = super::link::link(linker, &component) {
        report.problems.push(e.to_string());
    }
    report
}

/// Why a componentize-js wasi:http component must not be pooled.
pub const ONE_REQUEST_PER_INSTANCE: &str = "built by ComponentizeJS, whose `fetch` event answers only the first \
     request of an instance (StarlingMonkey issue 247): leave its `instance_mode` unset (a new instance per \
     request), or a pooled instance's second request times out";

/// Whether componentize-js built the component, by the producers section
/// it writes on the outer component. Its `fetch` event answers one request
/// per instance, so such a component cannot be pooled; nothing in its
/// imports or exports says so.
pub fn built_by_componentize_js(bytes: &[u8]) -> bool {
    match wasm_metadata::Producers::from_wasm(bytes) {
        Ok(Some(producers)) => producers
            .get("processed-by")
            .is_some_and(|tools| tools.get("ComponentizeJS").is_some()),
        _ => false,
    }
}
