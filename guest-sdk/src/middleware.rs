//! Middleware: a component that sits in front of others (manifest
//! `middleware = true`) and decides about each message before its
//! handler sees it: pass it on (with headers set, the caller marked as
//! signed in or an admin), answer it, or refuse it with an error.
//!
//! ```no_run
//! use berth_sdk::{Config, Error, Message, Router, Verdict};
//!
//! fn routes(_: &Config) -> Router {
//!     Router::new().middleware(|msg: &Message| match msg.header("authorization") {
//!         Some("Bearer admin-token") => Ok(Verdict::pass().header("x-user", "root").admin()),
//!         Some(_) => Ok(Verdict::pass().header("x-user", "someone").session()),
//!         None => Err(Error::unauthorized("no token")),
//!     })
//! }
//!
//! berth_sdk::export!(routes);
//! ```

use crate::__private::bindings::exports::berth::backend::middleware::Verdict as WitVerdict;
pub use crate::__private::bindings::exports::berth::backend::middleware::{Guard, Pass};
use crate::Reply;

/// What a middleware decided about one message.
#[derive(Clone, Debug)]
pub struct Verdict(pub(crate) WitVerdict);

impl Verdict {
    /// Go on to the next link, then the handler, unchanged.
    pub fn pass() -> Self {
        Self(WitVerdict::Pass(Pass {
            headers: Vec::new(),
            mark: None,
        }))
    }

    /// Answer here with `reply`; the handler is not called.
    pub fn respond(reply: Reply) -> Self {
        Self(WitVerdict::Respond(reply))
    }

    /// Sets a header on the message passed on (replacing the name's
    /// values). No effect on a `respond` verdict.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let WitVerdict::Pass(pass) = &mut self.0 {
            pass.headers.push((name.into(), value.into()));
        }
        self
    }

    /// Marks the caller as signed in (routes with `guard = "session"`).
    pub fn session(self) -> Self {
        self.mark(Guard::Session)
    }

    /// Marks the caller as an administrator (routes with `guard = "admin"`).
    pub fn admin(self) -> Self {
        self.mark(Guard::Admin)
    }

    fn mark(mut self, guard: Guard) -> Self {
        if let WitVerdict::Pass(pass) = &mut self.0 {
            pass.mark = Some(guard);
        }
        self
    }
}
