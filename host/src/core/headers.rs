//! Every header name Berth reads or writes, in one place.
//!
//! A header crosses layers (the router sets one, a transport carries it, a
//! guest or an operator reads it), so its spelling must not drift between
//! them. Names are matched case-insensitively wherever they are read
//! ([`crate::core::message::Message::header`]).

/// An error reply's message (the NATS service convention).
pub const ERROR: &str = "Nats-Service-Error";
/// An error reply's code (the NATS service convention).
pub const ERROR_CODE: &str = "Nats-Service-Error-Code";
/// An error reply's [`ErrorKind`](crate::core::error::ErrorKind), so errors
/// the host made survive the trip.
pub const ERROR_KIND: &str = "Berth-Error-Kind";

/// On a reply: the component that answered (`[host] reply_headers`).
pub const COMPONENT: &str = "Berth-Component";
/// On a reply: the content hash of the version that answered.
pub const VERSION: &str = "Berth-Version";

/// On every delivery from a broker that redelivers: which delivery of the
/// message this is (1, 2, ...), the same on AMQP and JetStream.
pub const ATTEMPT: &str = "berth-attempt";
/// On a dead-lettered message: why it failed.
pub const DEAD_LETTER_REASON: &str = "berth-error";
/// On a dead-lettered or re-sent message: the subject it was first
/// published to (a retry or a dead letter is routed by another name).
pub const ORIGINAL_SUBJECT: &str = "berth-subject";
/// On an AMQP dead letter: the exchange it was first published to.
pub const ORIGINAL_EXCHANGE: &str = "berth-exchange";

/// An admin command's token, on the broker.
pub const ADMIN_TOKEN: &str = "berth-admin-token";
/// A swap's new `[components.config]`, as a JSON object, over HTTP.
pub const SWAP_CONFIG: &str = "berth-config";

/// W3C Trace Context: the caller's span.
pub const TRACEPARENT: &str = "traceparent";
/// W3C Trace Context: vendor state, passed on unchanged.
pub const TRACESTATE: &str = "tracestate";

/// The body's media type, as on HTTP and AMQP.
pub const CONTENT_TYPE: &str = "content-type";

/// Names the bucket of a key-value change message, so a consumer can
/// route it without parsing the body.
pub const KV_BUCKET: &str = "Berth-KV-Bucket";

/// On a message a middleware chain passed: what it established about the
/// caller (`session` or `admin`). Stripped from what callers send, so
/// only middleware can set it.
pub const GUARD: &str = "berth-guard";
/// On an HTTP route's request: the method (`GET`).
pub const HTTP_METHOD: &str = "berth-http-method";
/// On an HTTP route's request: the path as sent (`/orders/42`).
pub const HTTP_PATH: &str = "berth-http-path";
/// On an HTTP route's request: the query string without `?`, if any.
pub const HTTP_QUERY: &str = "berth-http-query";
/// On an HTTP route's request: the route's path pattern (`/orders/{id}`).
pub const HTTP_ROUTE: &str = "berth-http-route";
/// On an HTTP route's request, followed by a parameter's name: its value
/// (`berth-http-param-id: 42`).
pub const HTTP_PARAM_PREFIX: &str = "berth-http-param-";
/// On a reply to an HTTP route: the status to answer with (200 when
/// absent); not passed on to the client.
pub const HTTP_STATUS: &str = "berth-http-status";

/// On a gateway request: the node it is for (a client's own, or the
/// one a component addressed).
pub const SWARM_NODE: &str = "swarm-node";
/// On a gateway request: its name as the client or component sent it
/// (the subject's last tokens carry it with unfit characters replaced).
pub const SWARM_NAME: &str = "swarm-name";
/// On a request between nodes: the node on whose behalf it was sent.
pub const SWARM_SENDER: &str = "swarm-sender";
/// Between hosts: which of a node's handlers a request is for
/// (`client`, `server`, `remote`).
pub const SWARM_KIND: &str = "swarm-kind";
/// On a `<prefix>.remote.<name>` handler's reply: `false` makes its body
/// the answer; otherwise the body is the arguments passed to the client.
pub const SWARM_PASS: &str = "swarm-pass";

/// Whether a header is one only the host may set on a message entering
/// through a route or a middleware chain: the HTTP description and the
/// guard mark. A caller's own are dropped, so none can pose as signed in.
pub fn is_reserved(name: &str) -> bool {
    name.len() >= 6 && name[..6].eq_ignore_ascii_case("berth-")
}
