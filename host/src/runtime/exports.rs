//! An instance's optional exports, looked up when a call first needs them.
//!
//! Looking an export's functions up in an instance type-checks each of
//! them, about a thousand instructions a function. An instance of a
//! component that exports much (the Rust SDK's: handler, batches,
//! middleware, routes) paid that for every interface at every
//! instantiation, although a call uses one or two of them; in fresh mode
//! that was every message. Now each instance looks up what its calls use,
//! once, and a component's first instance, made at load, looks up every
//! export, so one whose types do not fit is still refused at load.

use wasmtime::Store;

use super::bindings::{
    batch_handler, batch_middleware, messaging_handler, middleware, routes, wasmcloud_handler, watcher,
};
use super::component::{Live, WasmHandler};
use super::link::BATCH_EXPORT;
use super::state::CallState;
use crate::core::error::{CallError, ErrorKind};
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

/// Where an export's functions are in every instance of a component
/// (bindgen's `GuestIndices`), and how to find them in one.
pub(super) trait Indices {
    /// The export's functions in one instance.
    type Guest: Clone;

    /// Looks the functions up in `instance`, checking their types.
    fn find(
        &self,
        store: &mut Store<CallState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Self::Guest>;
}

macro_rules! indices {
    ($($export:ident),*) => {$(
        impl Indices for $export::GuestIndices {
            type Guest = $export::Guest;

            fn find(
                &self,
                store: &mut Store<CallState>,
                instance: &wasmtime::component::Instance,
            ) -> wasmtime::Result<Self::Guest> {
                self.load(store, instance)
            }
        }
    )*};
}

indices!(
    batch_handler,
    batch_middleware,
    messaging_handler,
    middleware,
    routes,
    wasmcloud_handler,
    watcher,
    incoming_handler
);

impl WasmHandler {
    /// The functions of the export `indices` describes in `live`, looked up
    /// the first time and kept in `slot`; `None` if the component does not
    /// export it.
    pub(super) fn export<I: Indices>(
        &self,
        indices: &Option<I>,
        live: &mut Live,
        slot: fn(&mut Live) -> &mut Option<I::Guest>,
    ) -> Result<Option<I::Guest>, CallError> {
        let Some(indices) = indices else {
            return Ok(None);
        };
        if let Some(guest) = slot(live) {
            return Ok(Some(guest.clone()));
        }
        let guest = indices
            .find(&mut live.store, &live.handle)
            .map_err(|e| self.wasm_error(&e, None))?;
        *slot(live) = Some(guest.clone());
        Ok(Some(guest))
    }

    /// Looks up every export the component has in its first instance, so
    /// that one whose types do not fit the contract is refused at load.
    pub(super) fn find_every_export(&self, live: &mut Live) -> Result<(), CallError> {
        let e = self.exports();
        let batch = self.export(&e.batch, live, |l| &mut l.batch);
        batch.map_err(|e| {
            CallError::new(
                ErrorKind::Trap,
                format!(
                    "component `{}`: its `{BATCH_EXPORT}` export does not match the berth:backend contract: {}",
                    self.env.name, e.message
                ),
            )
        })?;
        self.export(&e.watcher, live, |l| &mut l.watcher)?;
        self.export(&e.routes, live, |l| &mut l.routes)?;
        self.export(&e.middleware, live, |l| &mut l.middleware)?;
        self.export(&e.batch_middleware, live, |l| &mut l.batch_middleware)?;
        self.export(&e.http, live, |l| &mut l.http)?;
        self.export(&e.wasmcloud, live, |l| &mut l.wasmcloud)?;
        self.export(&e.messaging, live, |l| &mut l.messaging)?;
        Ok(())
    }
}
