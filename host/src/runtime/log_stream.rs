//! A component's stdout and stderr, turned into `tracing` lines tagged with
//! the component's name. Output is split on newlines; a line longer than
//! [`MAX_LINE`] is emitted in pieces so a guest cannot grow host memory by
//! never printing a newline.
//!
//! A Rust panic's report (`thread '…' panicked at FILE:LINE:COL:`, its
//! message, a `note:`) is one log record, `panicked at FILE:LINE:COL:
//! MESSAGE`, kept in the instance's [`Panic`] so the trap that follows can
//! say why it happened.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest line kept before it is emitted anyway.
const MAX_LINE: usize = 4096;

/// Which stream the output came from.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// The guest's stdout: logged at info.
    Stdout,
    /// The guest's stderr: logged at warn.
    Stderr,
}

/// The panic an instance reported on stderr, for the trap that follows.
#[derive(Clone, Debug, Default)]
pub struct Panic(Arc<Mutex<PanicState>>);

#[derive(Debug, Default)]
struct PanicState {
    /// A report being read: its text so far.
    reading: Option<String>,
    /// The last report read whole, not yet taken by a trap.
    last: Option<String>,
}

impl Panic {
    fn state(&self) -> std::sync::MutexGuard<'_, PanicState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The panic behind a trap, if the instance reported one: `panicked
    /// at src/lib.rs:15:5: boom`. A report cut short by the trap is logged
    /// now, as it stands.
    pub fn take(&self, component: &str) -> Option<String> {
        let mut state = self.state();
        if let Some(text) = state.reading.take() {
            log_panic(component, &text);
            return Some(text);
        }
        state.last.take()
    }
}

/// A WASI output stream that logs.
#[derive(Clone)]
pub struct LogStream {
    component: Arc<str>,
    stream: Stream,
    /// Where a panic report on this stream is kept (stderr only).
    panic: Option<Panic>,
}

impl LogStream {
    /// Output of `component` on `stream`.
    pub fn new(component: Arc<str>, stream: Stream) -> Self {
        Self {
            component,
            stream,
            panic: None,
        }
    }

    /// The same, with panic reports read into `panic`.
    pub fn with_panics(mut self, panic: Panic) -> Self {
        self.panic = Some(panic);
        self
    }
}

/// Longest panic report kept; the rest of a longer one is dropped.
const MAX_PANIC: usize = 4096;

fn log_panic(component: &str, text: &str) {
    tracing::warn!(target: "berth::guest", component, stream = "stderr", "{text}");
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            target: self.clone(),
            buffer: Vec::new(),
        })
    }
}

struct LineWriter {
    target: LogStream,
    buffer: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let component = &*self.target.component;
        // A blank line says nothing in a log (a panic report starts with one).
        if text.trim().is_empty() {
            return;
        }
        if let Some(panic) = &self.target.panic
            && read_panic(panic, component, text)
        {
            return;
        }
        match self.target.stream {
            Stream::Stdout => tracing::info!(target: "berth::guest", component, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(target: "berth::guest", component, stream = "stderr", "{text}"),
        }
    }
}

/// Reads `line` into a panic report if it starts or continues one;
/// returns whether it did (and so is not a log line of its own).
fn read_panic(panic: &Panic, component: &str, line: &str) -> bool {
    let mut state = panic.state();
    match state.reading.take() {
        Some(text) if line.starts_with("note: ") || line == "stack backtrace:" => {
            log_panic(component, &text);
            state.last = Some(text);
            true
        }
        Some(mut text) => {
            if text.len() < MAX_PANIC {
                text.push_str(if text.ends_with(':') { " " } else { " / " });
                text.push_str(line);
            }
            state.reading = Some(text);
            true
        }
        // `thread '<unnamed>' panicked at …`, or with the thread's id,
        // `thread '<unnamed>' (1) panicked at …`.
        None => match line
            .strip_prefix("thread '")
            .and_then(|rest| rest.split_once(" panicked at "))
        {
            Some((_, at)) => {
                state.reading = Some(format!("panicked at {at}"));
                true
            }
            None => false,
        },
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.buffer.extend_from_slice(buf);
        while let Some(pos) = this.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = this.buffer.drain(..=pos).collect();
            this.emit(&line[..line.len() - 1]);
        }
        while this.buffer.len() >= MAX_LINE {
            let piece: Vec<u8> = this.buffer.drain(..MAX_LINE).collect();
            this.emit(&piece);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buffer.is_empty() {
            let rest = std::mem::take(&mut this.buffer);
            this.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_report_is_one_line_and_kept_for_the_trap() {
        let panic = Panic::default();
        assert!(!read_panic(&panic, "c", "an ordinary line"));
        assert!(read_panic(
            &panic,
            "c",
            "thread '<unnamed>' panicked at src/lib.rs:15:5:"
        ));
        assert!(read_panic(&panic, "c", "boom requested"));
        assert!(read_panic(
            &panic,
            "c",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
        ));
        assert_eq!(
            panic.take("c").as_deref(),
            Some("panicked at src/lib.rs:15:5: boom requested")
        );
        assert_eq!(panic.take("c"), None, "taken once");
        // Cut short by the trap: what was read so far.
        assert!(read_panic(&panic, "c", "thread 'main' (1) panicked at src/x.rs:1:1:"));
        assert!(read_panic(&panic, "c", "first"));
        assert!(read_panic(&panic, "c", "second"));
        assert_eq!(
            panic.take("c").as_deref(),
            Some("panicked at src/x.rs:1:1: first / second")
        );
    }
}
