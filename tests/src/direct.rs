//! A component loaded on its own, without a host, and called directly: for
//! tests of what one call, batch or run does with the messages it is given.

use std::sync::Arc;
use std::time::Duration;

use berth::core::handler::Reply;
use berth::runtime::counters::Counters;
use berth::runtime::{CompileCache, InstanceMode, Runtime, WasmHandler};
use berth::transport::memory::MemoryTransport;
use berth::{CallError, ErrorKind, Message};
use tempfile::TempDir;

use crate::bench::{environment, settings};

/// The guest at `wasm`, pooled, taking up to `max_batch` messages at once,
/// each call within `timeout`; its counters, and the folder its compile
/// cache lives in (kept as long as the handler is used).
pub async fn load(wasm: &str, max_batch: usize, timeout: Duration) -> (WasmHandler, Arc<Counters>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(CompileCache::new(dir.path()), false).expect("runtime");
    let env = environment(&MemoryTransport::default());
    let counters = env.counters.clone();
    let mut settings = settings(InstanceMode::Pooled, false);
    settings.max_batch = max_batch;
    settings.timeout = timeout;
    let bytes = std::fs::read(wasm).expect("guest");
    let (handler, _) = runtime.load(&bytes, settings, env).await.expect("load");
    (handler, counters, dir)
}

/// A request on `subject`, replied to at `reply.<subject>`.
pub fn request(subject: &str, body: &str) -> Message {
    let mut m = Message::new(subject, body.to_owned());
    m.reply_to = Some(format!("reply.{subject}"));
    m
}

/// The body of the reply `outcome` holds, as text; panics on anything else.
pub fn text(outcome: &Result<Option<Reply>, CallError>) -> String {
    match outcome {
        Ok(Some(reply)) => String::from_utf8_lossy(&reply.body).into_owned(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The kind of the error `outcome` holds; panics on anything else.
pub fn kind(outcome: &Result<Option<Reply>, CallError>) -> ErrorKind {
    match outcome {
        Err(e) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    }
}
