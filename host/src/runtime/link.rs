//! Linking a component against the host, and what it may and must
//! export: the checks that refuse a component at load, with the reason.

use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::bindings::{batch_handler, handler, watcher};
use super::state::CallState;
use crate::core::error::CallError;

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
    pub(super) handler: Option<handler::GuestIndices>,
    /// `None` if it does not export `batch-handler`.
    pub(super) batch: Option<batch_handler::GuestIndices>,
    /// `None` if it does not export `wasi:keyvalue/watcher`.
    pub(super) watcher: Option<watcher::GuestIndices>,
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

/// The export that handles messages; optional only beside [`WATCHER_EXPORT`].
const HANDLER_EXPORT: &str = "berth:backend/handler@0.1.0";

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
    // A component that only watches buckets need not handle messages.
    let handler = match (handler::GuestIndices::new(&pre), &watcher) {
        (Ok(handler), _) => Some(handler),
        (Err(_), Some(_)) if component.get_export_index(None, HANDLER_EXPORT).is_none() => None,
        (Err(e), _) => return Err(LoadError::Contract(e.into())),
    };
    let batch = match component.get_export_index(None, BATCH_EXPORT) {
        Some(_) => Some(batch_handler::GuestIndices::new(&pre).map_err(|e| LoadError::Contract(e.into()))?),
        None => None,
    };
    Ok((
        pre,
        Exports {
            handler,
            batch,
            watcher,
        },
    ))
}
