//! Generated bindings for the `berth:backend` world, and the conversions
//! between them and the host's own types. Kept in one private module so the
//! rest of the host never sees generated names.

#![allow(missing_docs)]

use std::sync::Arc;

use bytes::Bytes;

use crate::core::error::{CallError, Disposition, ErrorKind};
use crate::core::handler::Reply;
use crate::core::keyvalue::Bucket;
use crate::core::message::Message;

// The widest world: every import a Berth component may use (`backend`'s
// and the key-value ones) and every optional export (batches, the
// key-value watcher). A component is linked against the imports it has,
// and its exports are looked up one by one, so one without the optional
// ones fits as well.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "platform",
    imports: {
        "berth:backend/host.log": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "wasi:keyvalue/store.bucket": OpenBucket,
        "wasi:messaging/types.client": super::messaging_resources::Client,
        "wasi:messaging/types.message": super::messaging_resources::HostMessage,
        "wasi:messaging/request-reply.request-options": super::messaging_resources::RequestOptions,
    },
});

pub use self::berth::backend::keyvalue_cas;
/// A bucket a guest has opened: the host's side of the resource
/// `wasi:keyvalue/store.bucket`.
pub struct OpenBucket(pub Arc<dyn Bucket>);

pub use self::berth::backend::types as wit;
pub use self::exports::berth::backend::{batch_handler, batch_middleware, middleware, routes};
pub use self::exports::wasi::keyvalue::watcher;
pub use self::exports::wasi::messaging::incoming_handler as messaging_handler;
pub use self::exports::wasmcloud::messaging::handler as wasmcloud_handler;
pub use self::wasi::keyvalue as wasi_keyvalue;
pub use self::wasi::messaging::{
    producer as messaging_producer, request_reply as messaging_request_reply, types as messaging_types,
};
pub use self::wasi::{config::store as wasi_config, logging::logging as wasi_logging};
pub use self::wasmcloud::messaging::{consumer as wasmcloud_consumer, types as wasmcloud_types};

impl From<Message> for wit::Message {
    fn from(m: Message) -> Self {
        Self {
            subject: m.subject,
            body: m.body.into(),
            headers: m.headers,
            reply_to: m.reply_to,
            correlation_id: m.correlation_id,
        }
    }
}

impl From<wit::Message> for Message {
    fn from(m: wit::Message) -> Self {
        Self {
            subject: m.subject,
            body: Bytes::from(m.body),
            headers: m.headers,
            reply_to: m.reply_to,
            correlation_id: m.correlation_id,
        }
    }
}

impl From<wit::Reply> for Reply {
    fn from(r: wit::Reply) -> Self {
        Self {
            body: Bytes::from(r.body),
            headers: r.headers,
        }
    }
}

impl From<wit::ErrorKind> for ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        match k {
            wit::ErrorKind::Handler => Self::Handler,
            wit::ErrorKind::Timeout => Self::Timeout,
            wit::ErrorKind::Unhandled => Self::Unhandled,
            wit::ErrorKind::Trap => Self::Trap,
            wit::ErrorKind::Forbidden => Self::Forbidden,
            wit::ErrorKind::Overloaded => Self::Overloaded,
            wit::ErrorKind::NoResponders => Self::NoResponders,
            wit::ErrorKind::TooLarge => Self::TooLarge,
            wit::ErrorKind::Transport => Self::Transport,
        }
    }
}

impl From<ErrorKind> for wit::ErrorKind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Handler => Self::Handler,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Unhandled => Self::Unhandled,
            ErrorKind::Trap => Self::Trap,
            ErrorKind::Forbidden => Self::Forbidden,
            ErrorKind::Overloaded => Self::Overloaded,
            ErrorKind::NoResponders => Self::NoResponders,
            ErrorKind::TooLarge => Self::TooLarge,
            ErrorKind::Transport => Self::Transport,
        }
    }
}

impl From<wit::Error> for CallError {
    /// An error a guest returned. `unhandled` is kept (the SDK's router says
    /// it when no route matches); any other kind a guest claims is recorded
    /// as `handler`, because only the host makes host errors.
    fn from(e: wit::Error) -> Self {
        Self {
            kind: guest_kind(e.kind == wit::ErrorKind::Unhandled),
            code: e.code,
            name: e.name,
            message: e.message,
            data: e.data.map(Bytes::from),
            disposition: match e.disposition {
                wit::Disposition::Retry => Disposition::Retry,
                wit::Disposition::Reject => Disposition::Reject,
            },
        }
    }
}

/// The kind of an error a guest returned, from whether it claimed
/// `unhandled`: that one is kept (the SDK's router says it when no route
/// matches); any other kind a guest claims is `handler`, because only the
/// host makes host errors.
pub(super) fn guest_kind(unhandled: bool) -> ErrorKind {
    if unhandled {
        ErrorKind::Unhandled
    } else {
        ErrorKind::Handler
    }
}

impl From<CallError> for wit::Error {
    fn from(e: CallError) -> Self {
        Self {
            kind: e.kind.into(),
            code: e.code,
            name: e.name,
            message: e.message,
            data: e.data.map(Vec::from),
            disposition: match e.disposition {
                Disposition::Retry => wit::Disposition::Retry,
                Disposition::Reject => wit::Disposition::Reject,
            },
        }
    }
}
