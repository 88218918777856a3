//! Reading frames.

use crate::{BATCH, Error, FrameError, Guard, Headers, Message, OUTCOMES, Outcome, VERDICTS, VERSION, Verdict};

/// Reads one frame's items in order. Every length is checked against what
/// is left and every string for UTF-8, so a frame from an untrusted side
/// yields a [`FrameError`], never a panic or an out-of-bounds read.
#[derive(Debug)]
pub struct Reader<'a> {
    frame: &'a [u8],
    at: usize,
    left: u32,
}

impl<'a> Reader<'a> {
    /// A batch of messages.
    pub fn batch(frame: &'a [u8]) -> Result<Self, FrameError> {
        Self::start(frame, BATCH, "not a batch of messages")
    }

    /// A batch's outcomes.
    pub fn outcomes(frame: &'a [u8]) -> Result<Self, FrameError> {
        Self::start(frame, OUTCOMES, "not a batch's outcomes")
    }

    /// A middleware's verdicts.
    pub fn verdicts(frame: &'a [u8]) -> Result<Self, FrameError> {
        Self::start(frame, VERDICTS, "not a middleware's verdicts")
    }

    fn start(frame: &'a [u8], kind: u8, wrong_kind: &'static str) -> Result<Self, FrameError> {
        let mut r = Self { frame, at: 0, left: 0 };
        if r.u8()? != kind {
            return Err(r.error(wrong_kind, 0));
        }
        if r.u8()? != VERSION {
            return Err(r.error("unknown layout version", 1));
        }
        r.left = r.u32()?;
        Ok(r)
    }

    /// How many items are still to read.
    pub fn remaining(&self) -> u32 {
        self.left
    }

    /// The next message of a batch; `None` after the last.
    pub fn message(&mut self) -> Option<Result<Message<'a>, FrameError>> {
        self.item(|r| {
            let flags = r.u8()?;
            if flags > 0b11 {
                return Err(r.error("unknown message flags", r.at - 1));
            }
            Ok(Message {
                subject: r.str()?,
                body: r.bytes()?,
                headers: r.headers()?,
                reply_to: if flags & 1 != 0 { Some(r.str()?) } else { None },
                correlation_id: if flags & 2 != 0 { Some(r.str()?) } else { None },
            })
        })
    }

    /// The next outcome; `None` after the last.
    pub fn outcome(&mut self) -> Option<Result<Outcome<'a>, FrameError>> {
        self.item(|r| match r.u8()? {
            0 => Ok(Outcome::Done),
            1 => Ok(Outcome::Reply {
                body: r.bytes()?,
                headers: r.headers()?,
            }),
            2 => Ok(Outcome::Error(r.error_fields()?)),
            _ => Err(r.error("unknown outcome tag", r.at - 1)),
        })
    }

    /// The next verdict; `None` after the last.
    pub fn verdict(&mut self) -> Option<Result<Verdict<'a>, FrameError>> {
        self.item(|r| match r.u8()? {
            0 => Ok(Verdict::Pass {
                headers: r.headers()?,
                mark: match r.u8()? {
                    0 => None,
                    1 => Some(Guard::Session),
                    2 => Some(Guard::Admin),
                    _ => return Err(r.error("unknown guard mark", r.at - 1)),
                },
            }),
            1 => Ok(Verdict::Respond {
                body: r.bytes()?,
                headers: r.headers()?,
            }),
            2 => Ok(Verdict::Error(r.error_fields()?)),
            _ => Err(r.error("unknown verdict tag", r.at - 1)),
        })
    }

    /// Checks that the frame ends after its last item.
    pub fn finish(self) -> Result<(), FrameError> {
        if self.left != 0 {
            return Err(self.error("fewer items than the frame's count", self.at));
        }
        if self.at != self.frame.len() {
            return Err(self.error("bytes after the last item", self.at));
        }
        Ok(())
    }

    fn item<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, FrameError>) -> Option<Result<T, FrameError>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = read(self);
        if item.is_err() {
            // Nothing after a malformed item can be trusted.
            self.left = 0;
        }
        Some(item)
    }

    fn error_fields(&mut self) -> Result<Error<'a>, FrameError> {
        Ok(Error {
            kind: self.u8()?,
            code: u16::from_le_bytes(self.array()?),
            name: self.str()?,
            message: self.str()?,
            data: match self.u8()? {
                0 => None,
                1 => Some(self.bytes()?),
                _ => return Err(self.error("an error's data flag is neither 0 nor 1", self.at - 1)),
            },
            retry: match self.u8()? {
                0 => false,
                1 => true,
                _ => return Err(self.error("an error's disposition is neither 0 nor 1", self.at - 1)),
            },
        })
    }

    fn headers(&mut self) -> Result<Headers<'a>, FrameError> {
        let n = self.u32()?;
        // Each header takes at least eight bytes (two lengths), so a count
        // the frame cannot hold is refused before anything is allocated.
        if (n as usize).saturating_mul(8) > self.frame.len() - self.at {
            return Err(self.error("more headers than the frame holds", self.at - 4));
        }
        (0..n).map(|_| Ok((self.str()?, self.str()?))).collect()
    }

    fn str(&mut self) -> Result<&'a str, FrameError> {
        let at = self.at;
        text(self.bytes()?).ok_or_else(|| self.error("a string that is not UTF-8", at))
    }

    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = self.u32()? as usize;
        self.take(len)
            .ok_or_else(|| self.error("a length past the end of the frame", self.at - 4))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        self.take(N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.error("the frame ends inside a field", self.at))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let taken = self.frame.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn error(&self, what: &'static str, at: usize) -> FrameError {
        FrameError { what, at }
    }
}

/// `bytes` as text, if they are UTF-8.
///
/// Subjects, inboxes and most header values are ASCII, which is checked
/// here eight bytes at a time; anything else goes through
/// `str::from_utf8`. In a guest (wasm32, where `from_utf8`'s word is four
/// bytes and a string's start is rarely aligned) `from_utf8` alone cost
/// ~400 instructions per message, a sixth of the echo guest's work
/// (callgrind, BENCHMARKS.md "Instructions per message").
#[allow(unsafe_code)] // one unchecked conversion, of bytes checked to be ASCII just before
pub(crate) fn text(bytes: &[u8]) -> Option<&str> {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let ascii = words
        .by_ref()
        .all(|word| word.try_into().is_ok_and(|w| u64::from_le_bytes(w) & HIGH_BITS == 0))
        && words.remainder().is_ascii();
    if ascii {
        // SAFETY: every byte is below 0x80, and ASCII text is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}
