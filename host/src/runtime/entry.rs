//! The handler export's functions (`init`, `handle-request`,
//! `handle-event`) in one instance, found without checking their types
//! again.
//!
//! bindgen's `load` type-checks every function of an export in every
//! instance it looks them up in, ~1,300 instructions a function: the
//! handler's three were a twentieth of what a fresh instance costs to make
//! and drop. A function's type is its component's, the same in every
//! instance of it, so the first instance of a component checks them against
//! the very types the calls use, and later instances only look them up.

use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, Func, Instance, TypedFunc};

use super::bindings::wit;
use super::state::CallState;

/// What `init`, `handle-request` and `handle-event` take and give. The
/// check and the calls both name these, so they cannot drift apart.
type InitParams<'a> = (&'a str,);
type InitResults = (Result<(), wit::Error>,);
type RequestParams<'a> = (&'a wit::Message,);
type RequestResults = (Result<wit::Reply, wit::Error>,);
type EventParams<'a> = (&'a wit::Message,);
type EventResults = (Result<(), wit::Error>,);

/// Where the handler's functions are in every instance of a component.
pub(super) struct HandlerIndices {
    init: ComponentExportIndex,
    handle_request: ComponentExportIndex,
    handle_event: ComponentExportIndex,
    /// Whether an instance of the component passed the type check.
    checked: AtomicBool,
}

/// The handler's functions in one instance.
#[derive(Clone, Copy)]
pub(super) struct HandlerFns {
    init: Func,
    handle_request: Func,
    handle_event: Func,
}

impl HandlerIndices {
    /// The functions of `export` in `component`; `None` if it does not
    /// export that interface, an error naming the function it lacks.
    pub(super) fn new(component: &Component, export: &str) -> anyhow::Result<Option<Self>> {
        let Some(interface) = component.get_export_index(None, export) else {
            return Ok(None);
        };
        let find = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| anyhow::anyhow!("its `{export}` export has no function `{name}`"))
        };
        Ok(Some(Self {
            init: find("init")?,
            handle_request: find("handle-request")?,
            handle_event: find("handle-event")?,
            checked: AtomicBool::new(false),
        }))
    }

    /// The functions in `instance`, their types checked if no instance of
    /// the component has had them checked yet.
    pub(super) fn load(&self, store: &mut Store<CallState>, instance: &Instance) -> wasmtime::Result<HandlerFns> {
        if !self.checked.load(Ordering::Acquire) {
            instance.get_typed_func::<InitParams<'_>, InitResults>(&mut *store, &self.init)?;
            instance.get_typed_func::<RequestParams<'_>, RequestResults>(&mut *store, &self.handle_request)?;
            instance.get_typed_func::<EventParams<'_>, EventResults>(&mut *store, &self.handle_event)?;
            self.checked.store(true, Ordering::Release);
        }
        let mut find = |index: &ComponentExportIndex| {
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| wasmtime::format_err!("the instance lacks a function its component exports"))
        };
        Ok(HandlerFns {
            init: find(&self.init)?,
            handle_request: find(&self.handle_request)?,
            handle_event: find(&self.handle_event)?,
        })
    }
}

// SAFETY (each `new_unchecked` below): a `HandlerFns` comes only from
// `HandlerIndices::load`, which hands one out once an instance of the same
// component passed `get_typed_func` with these very parameter and result
// types, and a function's type is its component's, the same in each of its
// instances.
#[allow(unsafe_code)]
impl HandlerFns {
    /// `init(config)`.
    pub(super) async fn init(
        &self,
        store: &mut Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let func = unsafe { TypedFunc::<InitParams<'_>, InitResults>::new_unchecked(self.init) };
        Ok(func.call_async(store, (config,)).await?.0)
    }

    /// `handle-request(msg)`.
    pub(super) async fn handle_request(
        &self,
        store: &mut Store<CallState>,
        msg: &wit::Message,
    ) -> wasmtime::Result<Result<wit::Reply, wit::Error>> {
        let func = unsafe { TypedFunc::<RequestParams<'_>, RequestResults>::new_unchecked(self.handle_request) };
        Ok(func.call_async(store, (msg,)).await?.0)
    }

    /// `handle-event(msg)`.
    pub(super) async fn handle_event(
        &self,
        store: &mut Store<CallState>,
        msg: &wit::Message,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let func = unsafe { TypedFunc::<EventParams<'_>, EventResults>::new_unchecked(self.handle_event) };
        Ok(func.call_async(store, (msg,)).await?.0)
    }
}
