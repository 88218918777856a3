//! Write Berth message backends in Rust.
//!
//! A backend is a [`Router`] built once per instance from its [`Config`]:
//! subject patterns mapped to handlers. [`export!`] turns it into a
//! WebAssembly component that a Berth host runs.
//!
//! ```no_run
//! use berth_sdk::{Config, Error, Message, Reply, Router};
//!
//! fn routes(config: &Config) -> Router {
//!     let prefix = config.get_str("prefix").unwrap_or("echo: ").to_owned();
//!     Router::new().request("echo.>", move |msg: &Message| {
//!         Ok(Reply::text(format!("{prefix}{}", msg.text()?)))
//!     })
//! }
//!
//! berth_sdk::export!(routes);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component.
//!
//! # Layout
//! - [`router`]: subject patterns to handlers.
//! - [`message`]: helpers on [`Message`] and [`Reply`].
//! - [`error`]: [`Error`] and its constructors (`not_found`, `bad_request` ...).
//! - [`config`]: the manifest's `[components.config]` table.
//! - [`host`]: `publish`, `request` and `log` through the host.
//! - [`kv`]: state, in the buckets the manifest grants.
//! - [`gateway`]: requests to WebSocket clients and their nodes.
//! - [`middleware`]: deciding about messages in front of other components.

extern crate self as berth_sdk;

pub mod config;
pub mod error;
pub mod gateway;
pub mod host;
pub mod kv;
pub mod message;
pub mod middleware;
pub mod router;

#[doc(hidden)]
pub mod __private;

pub use config::Config;
pub use error::{Disposition, Error, ErrorKind};
pub use host::{Level, log, publish, publish_json, publish_message, request, request_json};
pub use message::{Headers, Message, Reply};
pub use middleware::Verdict;
pub use router::{IntoRouter, Router};

/// Makes this crate a Berth component: `routes` is called once per
/// instance, with the component's config, to build its [`Router`]. It may
/// return a `Router` or a `Result<Router, Error>`; an error fails `init`
/// and the host refuses the component with that error.
///
/// The component also exports its routes (`berth:backend/routes`), which
/// the host checks its subscriptions and grants against, and
/// `batch-handler`, so the host may hand it
/// several queued messages in one call (its `max_batch`); each still goes
/// to its own route, exactly as if it had come alone.
#[macro_export]
macro_rules! export {
    ($routes:expr) => {
        #[doc(hidden)]
        struct __BerthBackend;

        impl $crate::__private::Guest for __BerthBackend {
            fn init(config: ::std::string::String) -> ::std::result::Result<(), $crate::Error> {
                $crate::__private::init(&config, $routes)
            }
            fn handle_request(msg: $crate::Message) -> ::std::result::Result<$crate::Reply, $crate::Error> {
                $crate::__private::handle_request(msg)
            }
            fn handle_event(msg: $crate::Message) -> ::std::result::Result<(), $crate::Error> {
                $crate::__private::handle_event(msg)
            }
        }

        impl $crate::__private::BatchGuest for __BerthBackend {
            fn handle_batch(batch: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                $crate::__private::handle_batch(batch)
            }
        }

        impl $crate::__private::MiddlewareGuest for __BerthBackend {
            fn handle(msg: $crate::Message) -> ::std::result::Result<$crate::__private::WitVerdict, $crate::Error> {
                $crate::__private::handle_middleware(msg)
            }
        }

        impl $crate::__private::BatchMiddlewareGuest for __BerthBackend {
            fn handle_batch(batch: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                $crate::__private::handle_middleware_batch(batch)
            }
        }

        impl $crate::__private::RoutesGuest for __BerthBackend {
            fn routes() -> ::std::vec::Vec<$crate::__private::Route> {
                $crate::__private::routes()
            }
        }

        $crate::__private::bindings::__export_berth_backend!(__BerthBackend with_types_in $crate::__private::bindings);
    };
}
