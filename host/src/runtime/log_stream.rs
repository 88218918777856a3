//! A component's stdout and stderr, turned into `tracing` lines tagged with
//! the component's name. Output is split on newlines; a line longer than
//! [`MAX_LINE`] is emitted in pieces so a guest cannot grow host memory by
//! never printing a newline.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
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

/// A WASI output stream that logs.
#[derive(Clone)]
pub struct LogStream {
    component: Arc<str>,
    stream: Stream,
}

impl LogStream {
    /// Output of `component` on `stream`.
    pub fn new(component: Arc<str>, stream: Stream) -> Self {
        Self { component, stream }
    }
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
        match self.target.stream {
            Stream::Stdout => tracing::info!(target: "berth::guest", component, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(target: "berth::guest", component, stream = "stderr", "{text}"),
        }
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
