//! What the router calls: anything that turns a message into a reply or an
//! outcome. A wasm component is one kind of handler; a native closure is
//! another, used as the baseline in benchmarks and as a stand-in in tests.
//! A middleware component is a handler that also answers
//! [`Handler::filter`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::core::error::{CallError, ErrorKind};
use crate::core::message::{Headers, Message};

/// A successful answer to a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Opaque payload.
    pub body: Bytes,
    /// Headers for the reply message.
    pub headers: Headers,
}

/// What a caller is known to be, once middleware has said so
/// (`berth:backend/middleware`'s `guard`). Ordered: an admin is signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Guard {
    /// Signed in.
    Session,
    /// An administrator.
    Admin,
}

impl Guard {
    /// Its name in manifests and in the `berth-guard` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Admin => "admin",
        }
    }

    /// Reads a `berth-guard` header value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "session" => Some(Self::Session),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A middleware link's decision about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on, with these headers set (each replaces its name's values) and
    /// the caller marked, if `mark` says so.
    Pass {
        /// Headers to set.
        headers: Headers,
        /// What the link established about the caller.
        mark: Option<Guard>,
    },
    /// Answer here; the handler is not called.
    Respond(Reply),
}

/// The contract a handler speaks: Berth's own, or another host's that
/// Berth runs unchanged. What applies to it (the conformance checks, the
/// features it has) follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// `berth:backend`: the full contract.
    Berth,
    /// `wasmcloud:messaging@0.2.0`: no headers, errors are strings, a
    /// reply is a publish to the reply-to.
    WasmCloud,
    /// `wasi:messaging@0.2.0-draft`: headers as metadata, errors of four
    /// kinds, a reply through `reply`.
    WasiMessaging,
    /// `wasi:http/proxy`: HTTP requests only.
    WasiHttp,
}

/// Handles messages for one component.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The contract it speaks.
    fn world(&self) -> World {
        World::Berth
    }

    /// A message whose sender waits for a reply.
    async fn handle_request(&self, message: Message) -> Result<Reply, CallError>;
    /// A message nobody waits for.
    async fn handle_event(&self, message: Message) -> Result<(), CallError>;

    /// Most messages worth handing to one [`handle_batch`](Self::handle_batch)
    /// call; 1 (the default) when batching saves nothing.
    fn batch_limit(&self) -> usize {
        1
    }

    /// Several independent messages, one outcome per message in their
    /// order: a request's reply, `None` for an event. The default handles
    /// them one by one.
    ///
    /// Borrowed, unlike a single message: the caller keeps each message to
    /// reply to and settle it, and a batch handler copies them into the
    /// guest anyway.
    async fn handle_batch(&self, messages: &[Message]) -> Vec<Result<Option<Reply>, CallError>> {
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in messages {
            outcomes.push(match message.reply_to {
                Some(_) => self.handle_request(message.clone()).await.map(Some),
                None => self.handle_event(message.clone()).await.map(|()| None),
            });
        }
        outcomes
    }

    /// The routes it declares (`berth:backend/routes`); none if it
    /// declares none, or is no component.
    fn routes(&self) -> &[DeclaredRoute] {
        &[]
    }

    /// Whether it answers HTTP requests itself (a `wasi:http` component).
    fn serves_http(&self) -> bool {
        false
    }

    /// Answers an HTTP request, for a handler that [serves
    /// HTTP](Self::serves_http); bodies whole, within the component's
    /// message size limit.
    async fn serve_http(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, CallError> {
        Err(CallError::new(
            ErrorKind::Unhandled,
            format!(
                "{} {} reached a handler that serves no HTTP",
                request.method(),
                request.uri().path()
            ),
        ))
    }

    /// Decides about a message as a middleware link, and hands the
    /// message back with the verdict (the chain goes on with it, so it is
    /// not copied per link). The default: this handler is no middleware.
    async fn filter(&self, message: Message) -> Result<(Verdict, Message), CallError> {
        Err(CallError::new(
            ErrorKind::Unhandled,
            format!("`{}` reached a handler that is no middleware", message.subject),
        ))
    }
}

/// A handler written as a plain Rust function: replies with what it returns,
/// and treats events as requests whose reply is dropped.
pub struct NativeHandler<F>(pub F);

#[async_trait]
impl<F> Handler for NativeHandler<F>
where
    F: Fn(Message) -> Result<Reply, CallError> + Send + Sync + 'static,
{
    async fn handle_request(&self, message: Message) -> Result<Reply, CallError> {
        (self.0)(message)
    }

    async fn handle_event(&self, message: Message) -> Result<(), CallError> {
        (self.0)(message).map(drop)
    }
}

/// A route a component declares (`berth:backend/routes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredRoute {
    /// Its NATS-style subject pattern.
    pub pattern: String,
    /// A request route (else an event route).
    pub request: bool,
}

impl std::fmt::Display for DeclaredRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.request { "request" } else { "event" };
        write!(f, "{kind} {}", self.pattern)
    }
}

impl DeclaredRoute {
    /// Routes as one line for people (`request orders.get, event audit.*`),
    /// as warnings and errors name them.
    pub fn list(routes: &[DeclaredRoute]) -> String {
        routes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}
