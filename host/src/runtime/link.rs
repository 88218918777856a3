//! Linking a component against the host, and what it may and must
//! export: the checks that refuse a component at load, with the reason.

use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::bindings::{
    batch_handler, batch_middleware, messaging_handler, middleware, routes, wasmcloud_handler, watcher,
};
use super::entry::HandlerIndices;
use super::state::CallState;
use crate::core::error::CallError;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

/// Why a component could not be loaded. The message names the problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a valid component (truncated, random bytes, a core module ...).
    #[error("not a valid wasm component: {0:#}")]
    Invalid(anyhow::Error),
    /// It imports something the host does not provide.
    #[error("cannot link: {0:#}")]
    Link(anyhow::Error),
    /// It imports an interface Berth refuses to give (`wasi:sockets`).
    #[error("refused: it imports `{import}`; {why}")]
    Refused {
        /// The import, as the component names it.
        import: String,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// It does not export the `berth:backend/handler` interface as required.
    #[error("does not fit the berth:backend contract: {0:#}")]
    Contract(anyhow::Error),
    /// Instantiation or `init` failed.
    #[error("init failed: {0}")]
    Init(CallError),
}

/// Where a component's exports are, found once at load.
pub(super) struct Exports {
    /// `None` for a component that only watches buckets.
    pub(super) handler: Option<HandlerIndices>,
    /// `None` if it does not export `batch-handler`.
    pub(super) batch: Option<batch_handler::GuestIndices>,
    /// `None` if it does not export `wasi:keyvalue/watcher`.
    pub(super) watcher: Option<watcher::GuestIndices>,
    /// `None` if it does not declare its routes.
    pub(super) routes: Option<routes::GuestIndices>,
    /// `None` if it is no middleware.
    pub(super) middleware: Option<middleware::GuestIndices>,
    /// `None` unless it also takes middleware calls as frames.
    pub(super) batch_middleware: Option<batch_middleware::GuestIndices>,
    /// `None` unless it exports `wasi:http/incoming-handler`.
    pub(super) http: Option<incoming_handler::GuestIndices>,
    /// `None` unless it exports `wasmcloud:messaging/handler`.
    pub(super) wasmcloud: Option<wasmcloud_handler::GuestIndices>,
    /// `None` unless it exports `wasi:messaging/incoming-handler`.
    pub(super) messaging: Option<messaging_handler::GuestIndices>,
}

/// Berth never gives a component the network. A component that imports
/// `wasi:sockets` is refused at load, naming the import, unless the
/// manifest says the toolchain imports it without using it.
pub(super) fn refuse_sockets(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    match component
        .component_type()
        .imports(engine)
        .find(|(name, _)| name.starts_with("wasi:sockets/"))
    {
        Some((name, _)) => Err(LoadError::Refused {
            import: name.to_owned(),
            why: "Berth never gives a component the network: it talks to brokers through the host's publish and request. \
                  If the toolchain imports sockets without using them (componentize-py, componentize-js), set \
                  `link_unused_sockets = true` for this component (every address stays denied) or build without them",
        }),
        None => Ok(()),
    }
}

/// The optional export that takes several messages in one call.
pub(super) const BATCH_EXPORT: &str = "berth:backend/batch-handler@0.1.0";

/// The optional export that declares what the component handles.
const ROUTES_EXPORT: &str = "berth:backend/routes@0.1.0";

/// The optional export of a middleware component.
pub(super) const MIDDLEWARE_EXPORT: &str = "berth:backend/middleware@0.1.0";

/// The optional export of a middleware that takes its messages as frames.
const BATCH_MIDDLEWARE_EXPORT: &str = "berth:backend/batch-middleware@0.1.0";

/// The export of a wasmCloud messaging component.
pub(super) const WASMCLOUD_EXPORT: &str = "wasmcloud:messaging/handler@0.2.0";

/// The export of a `wasi:messaging` component.
pub(super) const WASI_MESSAGING_EXPORT: &str = "wasi:messaging/incoming-handler@0.2.0-draft";

/// The export of a `wasi:http` component, without its version.
pub(super) const HTTP_EXPORT: &str = "wasi:http/incoming-handler";

/// The export that handles messages; optional only beside [`WATCHER_EXPORT`].
pub(super) const HANDLER_EXPORT: &str = "berth:backend/handler@0.1.0";

/// The optional export told of changes to the component's buckets.
pub(super) const WATCHER_EXPORT: &str = "wasi:keyvalue/watcher@0.2.0-draft";

/// Links a component against the host and finds its exports; errors name
/// the missing import or export. `batch-handler` is optional, but one that
/// is there must be whole.
pub(super) fn link(
    linker: &Linker<CallState>,
    component: &Component,
) -> Result<(InstancePre<CallState>, Exports), LoadError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::Link(e.into()))?;
    let watcher = match component.get_export_index(None, WATCHER_EXPORT) {
        Some(_) => Some(watcher::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    // Any version of wasi:http 0.2 (the lookup takes semver-compatible
    // names); one exported with the wrong shape is refused.
    let http = match incoming_handler::GuestIndices::new(&pre) {
        Ok(indices) => Some(indices),
        Err(_) if !exports_interface(component, HTTP_EXPORT) => None,
        Err(e) => return Err(LoadError::Contract(e.into())),
    };
    let wasmcloud = match component.get_export_index(None, WASMCLOUD_EXPORT) {
        Some(_) => Some(wasmcloud_handler::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    let messaging = match component.get_export_index(None, WASI_MESSAGING_EXPORT) {
        Some(_) => Some(messaging_handler::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    // A component that only watches buckets, only serves HTTP, or targets
    // another host's messaging world need not export Berth's handler.
    let others = watcher.is_some() || http.is_some() || wasmcloud.is_some() || messaging.is_some();
    let handler = match HandlerIndices::new(component, HANDLER_EXPORT).map_err(LoadError::Contract)? {
        Some(handler) => Some(handler),
        None if others => None,
        None => {
            return Err(LoadError::Contract(anyhow::anyhow!(
                "it does not export `{HANDLER_EXPORT}` (nor another world's handler Berth runs)"
            )));
        }
    };
    let batch = match component.get_export_index(None, BATCH_EXPORT) {
        Some(_) => Some(batch_handler::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    let routes = match component.get_export_index(None, ROUTES_EXPORT) {
        Some(_) => Some(routes::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    let middleware = match component.get_export_index(None, MIDDLEWARE_EXPORT) {
        Some(_) => Some(middleware::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    let batch_middleware = match component.get_export_index(None, BATCH_MIDDLEWARE_EXPORT) {
        Some(_) => Some(batch_middleware::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    Ok((
        pre,
        Exports {
            handler,
            batch,
            watcher,
            routes,
            middleware,
            batch_middleware,
            http,
            wasmcloud,
            messaging,
        },
    ))
}

/// Whether the component exports some version of `interface`
/// (`wasi:http/incoming-handler`, whatever its `@0.2.x`).
fn exports_interface(component: &Component, interface: &str) -> bool {
    let engine = component.engine();
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.split('@').next() == Some(interface))
}

/// What the first eight bytes say a file is, before anything compiles it:
/// a file that is not wasm at all, or a core module where a component was
/// wanted, gets an error that says so instead of a parser's report on its
/// magic number.
pub(super) fn sniff(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    let invalid = |why: String| Err(LoadError::Invalid(anyhow::anyhow!(why)));
    if !bytes.starts_with(MAGIC) {
        return invalid(format!("not a WebAssembly file (it starts with {})", preview(bytes)));
    }
    // After the magic: a core module's version is 1; a component's is
    // 0x0d with layer 1.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return invalid(
            "it is a core WebAssembly module, not a component: build for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The first bytes of a file, as text if they are printable, else in hex.
fn preview(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(8)];
    if head.is_empty() {
        return "nothing: it is empty".to_owned();
    }
    match std::str::from_utf8(head) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => format!("{text:?}"),
        _ => head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(bytes: &[u8]) -> String {
        sniff(bytes).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn files_that_are_not_components_say_what_they_are() {
        assert!(why(b"not wasm at all").contains(r#"not a WebAssembly file (it starts with "not wasm")"#));
        assert!(why(b"\x7fELF\x02\x01\x01\x00").contains("7f 45 4c 46"));
        assert!(why(b"").contains("it is empty"));
        assert!(why(b"\0asm\x01\0\0\0").contains("core WebAssembly module, not a component"));
        assert!(sniff(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
