//! What [`export!`](crate::export) expands to. Not part of the API.

use std::cell::RefCell;
use std::rc::Rc;

use crate::{Config, Error, IntoRouter, Message, Reply, Router};

#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "batched-backend",
        pub_export_macro: true,
        export_macro_name: "__export_berth_backend",
        default_bindings_module: "berth_sdk::__private::bindings",
        runtime_path: "berth_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::exports::berth::backend::batch_handler::Guest as BatchGuest;
pub use bindings::exports::berth::backend::handler::Guest;
pub use wit_bindgen;

thread_local! {
    /// The instance's router, built by `init`. A component instance is
    /// single-threaded, so a thread-local is the instance's global.
    static ROUTER: RefCell<Option<Rc<Router>>> = const { RefCell::new(None) };
}

/// Parses the config, builds the router and keeps it for this instance.
pub fn init<R: IntoRouter>(config: &str, routes: impl FnOnce(&Config) -> R) -> Result<(), Error> {
    let config = Config::parse(config)?;
    let router = routes(&config).into_router()?;
    router.validate()?;
    ROUTER.with(|r| *r.borrow_mut() = Some(Rc::new(router)));
    Ok(())
}

fn router() -> Result<Rc<Router>, Error> {
    ROUTER
        .with(|r| r.borrow().clone())
        .ok_or_else(|| Error::internal("the host called a handler before init"))
}

/// Dispatches a request to its route.
pub fn handle_request(msg: Message) -> Result<Reply, Error> {
    router()?.handle_request(&msg)
}

/// Dispatches an event to its route.
pub fn handle_event(msg: Message) -> Result<(), Error> {
    router()?.handle_event(&msg)
}

/// Dispatches each message of a batch to its route, as if each had come
/// in a call of its own: routes are independent, so batching is the
/// host's choice and invisible to them.
pub fn handle_batch(batch: Vec<Message>) -> Vec<Result<Option<Reply>, Error>> {
    let router = match router() {
        Ok(r) => r,
        Err(e) => return batch.iter().map(|_| Err(e.clone())).collect(),
    };
    batch
        .iter()
        .map(|msg| match msg.reply_to {
            Some(_) => router.handle_request(msg).map(Some),
            None => router.handle_event(msg).map(|()| None),
        })
        .collect()
}
