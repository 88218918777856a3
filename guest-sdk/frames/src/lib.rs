//! The byte layout of a Berth batch: the messages the host hands a
//! component's `handle-batch` in one `list<u8>`, and the outcomes (or, for
//! a middleware, the verdicts) it hands back in another
//! (docs/batch-frames.md).
//!
//! Why bytes and not `list<message>`: lowering a typed list into a guest
//! costs one call into the guest's allocator for every string and list in
//! every message (four per message, even for empty headers), and lifting
//! the answers back costs as much again. For a cheap handler that was half
//! of what a batched message cost (BENCHMARKS.md, "Batches"). One byte
//! buffer each way is one allocation and one copy per batch.
//!
//! The host and the Rust SDK both use this crate, so the layout is written
//! once. It has no dependencies and never panics on its input: a frame that
//! does not parse is a [`FrameError`] saying what and where.

mod read;
mod write;

pub use read::Reader;
pub use write::Writer;

/// The first byte of a batch of messages (host to guest).
pub const BATCH: u8 = b'B';
/// The first byte of a batch's outcomes (guest to host).
pub const OUTCOMES: u8 = b'O';
/// The first byte of a middleware's verdicts (guest to host).
pub const VERDICTS: u8 = b'V';
/// The layout's version, the second byte of every frame.
pub const VERSION: u8 = 1;

/// Headers as they are in the frame, in order; a name may repeat.
pub type Headers<'a> = Vec<(&'a str, &'a str)>;

/// One message of a batch, borrowed from its frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message<'a> {
    /// The subject (NATS) or routing key (AMQP).
    pub subject: &'a str,
    /// The body, as it arrived.
    pub body: &'a [u8],
    /// The headers, in order.
    pub headers: Headers<'a>,
    /// Where the reply goes; `Some` exactly for a request.
    pub reply_to: Option<&'a str>,
    /// Ties a reply to its request on brokers that need it (AMQP).
    pub correlation_id: Option<&'a str>,
}

/// What became of one message, borrowed from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// An event, handled.
    Done,
    /// A request's reply.
    Reply {
        /// The reply's body.
        body: &'a [u8],
        /// The reply's headers.
        headers: Headers<'a>,
    },
    /// The handler's error.
    Error(Error<'a>),
}

/// What a middleware decided about one message, borrowed from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Go on, with these headers set and the caller marked, or not.
    Pass {
        /// Headers to set on the message, each replacing its name's values.
        headers: Headers<'a>,
        /// The mark the link gives the caller, if any.
        mark: Option<Guard>,
    },
    /// Answer here with this reply.
    Respond {
        /// The reply's body.
        body: &'a [u8],
        /// The reply's headers.
        headers: Headers<'a>,
    },
    /// Stop the chain with this error.
    Error(Error<'a>),
}

/// What a middleware may establish about the caller (the contract's
/// `middleware.guard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Signed in.
    Session,
    /// An administrator.
    Admin,
}

/// A handler's error: the fields of the contract's `error` record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Error<'a> {
    /// The `error-kind`, as its position in the WIT enum (`handler` = 0).
    pub kind: u8,
    /// HTTP-style status code.
    pub code: u16,
    /// Short name for the code.
    pub name: &'a str,
    /// Human-readable explanation.
    pub message: &'a str,
    /// Machine-readable details.
    pub data: Option<&'a [u8]>,
    /// For a failed event: redeliver it (`true`, `retry`) or dead-letter it.
    pub retry: bool,
}

/// A frame that does not parse: what was wrong and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// What was wrong.
    pub what: &'static str,
    /// The offset in the frame where it was found.
    pub at: usize,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed batch frame: {} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for FrameError {}

#[cfg(test)]
mod tests;
