//! Writing frames.

use crate::{BATCH, Error, Guard, OUTCOMES, VERDICTS, VERSION};

/// Builds one frame: a batch of messages, a batch's outcomes or a
/// middleware's verdicts.
///
/// Lengths are written as `u32`; a field longer than that (which neither
/// side lets through: message sizes are capped far below) is written so
/// that the frame fails to parse rather than being cut short.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    count: u32,
}

/// Where the item count sits: after the kind and version bytes.
const COUNT_AT: usize = 2;

impl Writer {
    /// A batch of messages, with room for `capacity` bytes.
    pub fn batch(capacity: usize) -> Self {
        Self::start(BATCH, capacity)
    }

    /// A batch's outcomes, with room for `capacity` bytes.
    pub fn outcomes(capacity: usize) -> Self {
        Self::start(OUTCOMES, capacity)
    }

    /// A middleware's verdicts, with room for `capacity` bytes. A verdict
    /// that answers is written with [`Writer::reply`], one that stops the
    /// chain with [`Writer::error`].
    pub fn verdicts(capacity: usize) -> Self {
        Self::start(VERDICTS, capacity)
    }

    fn start(kind: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(6));
        buf.extend_from_slice(&[kind, VERSION, 0, 0, 0, 0]);
        Self { buf, count: 0 }
    }

    /// How many messages or outcomes are written.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a message to a batch.
    pub fn message<'h>(
        &mut self,
        subject: &str,
        body: &[u8],
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        reply_to: Option<&str>,
        correlation_id: Option<&str>,
    ) {
        let flags = u8::from(reply_to.is_some()) | (u8::from(correlation_id.is_some()) << 1);
        self.buf.push(flags);
        self.bytes(subject.as_bytes());
        self.bytes(body);
        self.headers(headers);
        for field in [reply_to, correlation_id].into_iter().flatten() {
            self.bytes(field.as_bytes());
        }
        self.count += 1;
    }

    /// Adds an event's outcome: handled.
    pub fn done(&mut self) {
        self.buf.push(0);
        self.count += 1;
    }

    /// Adds a request's outcome: its reply (or a middleware's verdict:
    /// answer with it).
    pub fn reply<'h>(&mut self, body: &[u8], headers: impl IntoIterator<Item = (&'h str, &'h str)>) {
        self.buf.push(1);
        self.bytes(body);
        self.headers(headers);
        self.count += 1;
    }

    /// Adds a middleware's verdict: go on, with `headers` set and the
    /// caller marked `mark`.
    pub fn pass<'h>(&mut self, headers: impl IntoIterator<Item = (&'h str, &'h str)>, mark: Option<Guard>) {
        self.buf.push(0);
        self.headers(headers);
        self.buf.push(match mark {
            None => 0,
            Some(Guard::Session) => 1,
            Some(Guard::Admin) => 2,
        });
        self.count += 1;
    }

    /// Adds an outcome that is the handler's error (or a middleware's
    /// verdict: stop with it).
    pub fn error(&mut self, e: &Error<'_>) {
        self.buf.push(2);
        self.buf.push(e.kind);
        self.buf.extend_from_slice(&e.code.to_le_bytes());
        self.bytes(e.name.as_bytes());
        self.bytes(e.message.as_bytes());
        match e.data {
            Some(data) => {
                self.buf.push(1);
                self.bytes(data);
            }
            None => self.buf.push(0),
        }
        self.buf.push(u8::from(e.retry));
        self.count += 1;
    }

    /// The frame.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[COUNT_AT..COUNT_AT + 4].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }

    fn headers<'h>(&mut self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let mut n: u32 = 0;
        for (name, value) in headers {
            self.bytes(name.as_bytes());
            self.bytes(value.as_bytes());
            n = n.saturating_add(1);
        }
        self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }
}
