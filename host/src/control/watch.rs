//! Watch mode (`berth run --watch`, or `[host] watch = true`): swap a
//! component in when its wasm file changes on disk.
//!
//! The files are polled (size and modification time) rather than watched
//! through inotify: a rebuild replaces the file in several steps, and a
//! poll that sees the same stamp twice in a row knows the writer is done,
//! which an event stream would need the same debounce for. A version that
//! cannot serve is refused like any swap and the old one keeps serving;
//! the file is tried again when it changes again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::app::{App, SwapRequest};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);

/// What identifies one state of a file: its size and modification time.
pub type Stamp = Option<(u64, SystemTime)>;

/// The file's stamp now; `None` if it cannot be read.
pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// A polled value (a file's stamp, a folder's) and whether a change of it
/// has settled: a writer replaces files in several steps, so a change
/// counts once two polls in a row agree on it, and once only.
pub struct Settled<T> {
    applied: T,
    previous: T,
}

impl<T: PartialEq + Clone> Settled<T> {
    /// Starts at `now`: only a change after this counts.
    pub fn new(now: T) -> Self {
        Self {
            applied: now.clone(),
            previous: now,
        }
    }

    /// Whether `now` is a change two polls agree on that has not been
    /// acted on yet.
    pub fn changed(&mut self, now: T) -> bool {
        let settled = now == self.previous;
        self.previous = now.clone();
        if settled && now != self.applied {
            self.applied = now;
            return true;
        }
        false
    }
}

/// Watches every component's file until `stop`.
pub fn spawn(app: Arc<App>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let files: Vec<(String, PathBuf)> = app.component_files();
    // Taken now: a change after this call returns is a change.
    let mut seen: Vec<Settled<Stamp>> = files.iter().map(|(_, p)| Settled::new(stamp(p))).collect();
    tokio::spawn(async move {
        tracing::info!(files = files.len(), "watching component files for changes");
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            for ((name, path), seen) in files.iter().zip(seen.iter_mut()) {
                let now = stamp(path);
                // A file that went away is not a new version.
                if !seen.changed(now) || now.is_none() {
                    continue;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_once_two_polls_agree() {
        let mut s = Settled::new(1);
        assert!(!s.changed(1));
        assert!(!s.changed(2), "the first sight of a change may be half-written");
        assert!(s.changed(2));
        assert!(!s.changed(2), "acted on once");
    }
}
