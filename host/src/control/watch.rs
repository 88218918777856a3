//! Watch mode (`berth run --watch`, or `[host] watch = true`): swap a
//! component in when its wasm file changes on disk.
//!
//! The files are polled (size and modification time) rather than watched
//! through inotify: a rebuild replaces the file in several steps, and a
//! poll that sees the same stamp twice in a row knows the writer is done,
//! which an event stream would need the same debounce for. A version that
//! cannot serve is refused like any swap and the old one keeps serving;
//! the file is tried again when it changes again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::app::{App, SwapRequest};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);

/// What identifies one state of a file.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Watches every component's file until `stop`.
pub fn spawn(app: Arc<App>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let files: Vec<(String, PathBuf)> = app.component_files();
    // (last swapped or refused stamp, stamp seen on the previous poll),
    // taken now: a change after this call returns is a change.
    let mut seen: Vec<(Stamp, Stamp)> = files.iter().map(|(_, p)| (stamp(p), stamp(p))).collect();
    tokio::spawn(async move {
        tracing::info!(files = files.len(), "watching component files for changes");
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            for ((name, path), (done, previous)) in files.iter().zip(seen.iter_mut()) {
                let now = stamp(path);
                let settled = now == *previous;
                *previous = now;
                if !settled || now == *done || now.is_none() {
                    continue;
                }
                *done = now;
                let wasm = match std::fs::read(path) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        tracing::warn!(component = %name, file = %path.display(), error = %e, "watch: cannot read the changed file");
                        continue;
                    }
                };
                let request = SwapRequest {
                    wasm: wasm.into(),
                    label: None,
                    config: None,
                    component: None,
                };
                match app.swap(name, request).await {
                    Ok(report) => {
                        tracing::info!(component = %name, version = %&report.version[..12], "watch: swapped in the changed file")
                    }
                    Err(e) => tracing::warn!(component = %name, error = %e, "watch: changed file refused"),
                }
            }
        }
    })
}
