//! The reply a component of another host's world sends by its own means
//! — wasmCloud's publish to the reply-to, `wasi:messaging`'s `reply` — to
//! the request it is handling. The host keeps the request's reply address
//! for the call; the first reply sent to it is the request's reply, which
//! the router then sends like any reply (after the call, with its acks).

use super::bindings::wit;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::Reply;

/// The reply address of the request being handled, and its reply once
/// the component sent it.
#[derive(Default)]
pub(crate) struct ReplySlot {
    to: Option<String>,
    reply: Option<Reply>,
}

impl ReplySlot {
    /// A slot for a request whose reply goes to `to` (`None` for an event).
    pub(super) fn expecting(to: Option<String>) -> Self {
        Self { to, reply: None }
    }

    /// Whether `to` is the address of the request being handled, whose
    /// reply has not been sent yet.
    pub(super) fn awaits(&self, to: &str) -> bool {
        self.to.as_deref() == Some(to)
    }

    /// Takes `reply` as the request's reply; after it, the address awaits
    /// nothing.
    pub(super) fn fill(&mut self, reply: Reply) {
        self.to = None;
        self.reply = Some(reply);
    }

    /// The reply, if one was sent; empties the slot.
    pub(super) fn take(&mut self) -> Option<Reply> {
        self.to = None;
        self.reply.take()
    }
}

/// A call's outcome from what the component returned (`handled`) and the
/// reply it sent, if a request's: the reply, or an error naming the
/// component and the subject if it sent none (`how` says how it should
/// have).
pub(super) fn outcome(
    handled: Result<(), CallError>,
    request: bool,
    replied: Option<Reply>,
    (component, subject, how): (&str, &str, &str),
) -> Result<Option<wit::Reply>, CallError> {
    match (handled, request, replied) {
        (Err(e), ..) => Err(e),
        (Ok(()), false, _) => Ok(None),
        (Ok(()), true, Some(reply)) => Ok(Some(wit::Reply {
            body: reply.body.into(),
            headers: reply.headers,
        })),
        (Ok(()), true, None) => Err(CallError::new(
            ErrorKind::Handler,
            format!("component `{component}` handled the request on `{subject}` without {how}"),
        )),
    }
}
