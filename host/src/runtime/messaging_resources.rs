//! The host's side of the `wasi:messaging` resources (`client`,
//! `message`, `request-options`): plain data the bindings name, so that
//! they sit below them; what the interface does with them is in
//! `wasi_messaging`.

/// A `client`: the component's outbound transport.
pub struct Client;

/// A `message` as the host keeps it.
#[derive(Clone, Debug, Default)]
pub struct HostMessage {
    pub(super) topic: Option<String>,
    pub(super) data: Vec<u8>,
    pub(super) content_type: Option<String>,
    pub(super) metadata: Vec<(String, String)>,
    /// Where a reply to it goes (a received request).
    pub(super) reply_to: Option<String>,
}

/// A request's `request-options`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestOptions {
    pub(super) timeout_ms: Option<u32>,
}
