//! `berth dev`: build, run, and keep up with the sources and the manifest.
//!
//! A changed source folder is rebuilt and the new component swapped in
//! (a build that fails prints its errors and the old version keeps
//! serving); a changed manifest is swapped in component by component
//! (config, grants, limits) when a swap can carry it, and otherwise the
//! host is stopped and started again in this process (subscriptions,
//! components added or removed, `[host]`, transports, buckets). What the
//! components publish is printed as it goes out.
//!
//! Files are polled with watch mode's [`Settled`]: a change counts once two
//! polls agree.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::build;
use crate::app::{App, SwapRequest, swappable};
use crate::control::Running;
use crate::control::watch::{Settled, stamp};
use crate::manifest::Manifest;
use crate::transport::SubscribeOptions;

/// How often sources and the manifest are looked at.
const POLL: Duration = Duration::from_millis(300);
/// Files looked at per source folder, at most: a folder that holds more
/// is not one project's sources.
const MAX_FILES: usize = 20_000;
/// Folders that are build output or tool state, not sources.
const SKIPPED: [&str; 5] = ["target", "node_modules", "__pycache__", ".git", ".berth"];

/// Runs `berth dev` on the manifest at `path` until `shutdown`.
pub async fn run(path: &Path, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut manifest = Manifest::read(path)?;
    for component in build::buildable(&manifest, None)? {
        match tokio::task::block_in_place(|| build::build(component)) {
            Ok(built) => super::say(format_args!("{built}")),
            // The last good build can serve while this one is fixed.
            Err(e) if component.wasm.is_file() => super::say(format_args!("build failed: {}: {e:#}", component.name)),
            Err(e) => return Err(e.context(format!("building component `{}`", component.name))),
        }
    }
    manifest = Manifest::load(path)?;
    tokio::pin!(shutdown);
    loop {
        let running = Running::start(&manifest).await?;
        let app = running.app();
        let tails = tail(&app, &manifest).await;
        super::say(format_args!(
            "serving {} component(s){}; watching their sources and {} (Ctrl-C stops)",
            manifest.components.len(),
            match manifest.host.http {
                Some(addr) => format!(" on http://{addr}"),
                None => String::new(),
            },
            path.display()
        ));
        let next = tokio::select! {
            () = &mut shutdown => None,
            () = app.drain.cancelled() => None,
            next = follow(&running, path, manifest.clone()) => Some(next),
        };
        for t in tails {
            t.abort();
        }
        running.stop().await?;
        match next {
            Some(next) => manifest = next,
            None => return Ok(()),
        }
    }
}

/// Follows the sources and the manifest; returns the manifest the host
/// must be restarted with when it changes what a swap cannot.
async fn follow(running: &Running, path: &Path, mut manifest: Manifest) -> Manifest {
    let app = &running.app();
    let mut manifest_file = Settled::new(stamp(path));
    let skip = not_sources(&manifest, path);
    let sources_stamp = |dir: &Path| tree_stamp(dir, &skip);
    let mut sources: Vec<Settled<u64>> = manifest
        .components
        .iter()
        .map(|c| Settled::new(c.source.as_deref().map_or(0, sources_stamp)))
        .collect();
    loop {
        tokio::time::sleep(POLL).await;
        for (component, source) in manifest.components.iter().zip(&mut sources) {
            let Some(dir) = &component.source else { continue };
            if !source.changed(sources_stamp(dir)) {
                continue;
            }
            let built = tokio::task::spawn_blocking({
                let component = component.clone();
                move || build::build(&component)
            })
            .await;
            match built {
                Ok(Ok(_)) => swap(app, &component.name, &component.wasm, None).await,
                Ok(Err(e)) => super::say(format_args!("build failed: {}: {e:#}", component.name)),
                Err(e) => super::say(format_args!("build failed: {}: {e}", component.name)),
            }
        }
        if !manifest_file.changed(stamp(path)) {
            continue;
        }
        // A component the manifest gained is built before the manifest is
        // checked, which wants its file.
        if let Ok(read) = Manifest::read(path) {
            for c in read
                .components
                .iter()
                .filter(|c| c.source.is_some() && !c.wasm.exists())
            {
                let c = c.clone();
                match tokio::task::spawn_blocking(move || build::build(&c)).await {
                    Ok(Ok(built)) => super::say(format_args!("{built}")),
                    Ok(Err(e)) => super::say(format_args!("build failed: {e:#}")),
                    Err(e) => super::say(format_args!("build failed: {e}")),
                }
            }
        }
        let new = match Manifest::load(path) {
            Ok(new) => new,
            Err(e) => {
                super::say(format_args!("manifest not applied: {e:#}"));
                continue;
            }
        };
        if let Some(why) = needs_restart(&manifest, &new) {
            super::say(format_args!("restarting the host: {why}"));
            return new;
        }
        for (old, entry) in manifest.components.iter().zip(&new.components) {
            if old != entry {
                swap(app, &entry.name, &entry.wasm, Some(entry.clone())).await;
            }
        }
        if manifest.http != new.http {
            match running.set_routes(&new) {
                Ok(()) => super::say(format_args!("routes changed: {} route(s) serve", new.http.routes.len())),
                Err(e) => super::say(format_args!("routes not applied: {e:#}")),
            }
        }
        manifest = new;
    }
}

/// Swaps the component in from its file, with a new manifest entry if
/// given, and says what happened.
async fn swap(app: &App, name: &str, wasm: &Path, entry: Option<crate::manifest::ComponentConfig>) {
    let bytes = match std::fs::read(wasm) {
        Ok(bytes) => bytes,
        Err(e) => return super::say(format_args!("not swapped: {name}: cannot read {}: {e}", wasm.display())),
    };
    let request = SwapRequest {
        wasm: bytes.into(),
        label: None,
        config: None,
        component: entry,
    };
    match app.swap(name, request).await {
        Ok(r) if r.unchanged => super::say(format_args!("unchanged {name}: the same code and settings")),
        Ok(r) => super::say(format_args!(
            "swapped {name}: {} in {:.0} ms",
            &r.version[..12],
            r.elapsed_ms
        )),
        Err(e) => super::say(format_args!("not swapped: {name}: {e}")),
    }
}

/// Why the host must restart to apply `new`, if it must.
fn needs_restart(old: &Manifest, new: &Manifest) -> Option<String> {
    if old.host != new.host
        || old.transports != new.transports
        || old.keyvalue != new.keyvalue
        || old.gateway != new.gateway
    {
        return Some("[host], [transports], [keyvalue] or [gateway] changed".to_owned());
    }
    let names = |m: &Manifest| m.components.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(old) != names(new) {
        return Some("components were added, removed or reordered".to_owned());
    }
    old.components.iter().zip(&new.components).find_map(|(a, b)| {
        swappable(a, b)
            .err()
            .map(|what| format!("the {what} of `{}` changed", a.name))
    })
}

/// Prints what the components publish: one broadcast subscription per
/// publish grant, on the default transport.
async fn tail(app: &Arc<App>, manifest: &Manifest) -> Vec<tokio::task::JoinHandle<()>> {
    let patterns: BTreeSet<&String> = manifest.components.iter().flat_map(|c| &c.publish).collect();
    let mut tasks = Vec::new();
    for pattern in patterns {
        let options = SubscribeOptions {
            pattern: pattern.clone(),
            capacity: 256,
            ..SubscribeOptions::default()
        };
        match app.transport.subscribe(options).await {
            Ok(mut sub) => tasks.push(tokio::spawn(async move {
                while let Some(delivery) = sub.next().await {
                    super::say(format_args!(
                        "→ {}: {}",
                        delivery.message.subject,
                        super::tail::preview(&delivery.message.body)
                    ));
                }
            })),
            Err(e) => super::say(format_args!("cannot show what is published on {pattern}: {e}")),
        }
    }
    tasks
}

/// What a source folder may hold that is not its sources, beyond build
/// output: the host's data folder, whose compile cache and key-value file
/// change as the host serves (a project's own `./data`, by default), and
/// the manifest, whose changes are followed on their own. Both as
/// canonical paths, to be met by a walk from a canonical folder.
fn not_sources(manifest: &Manifest, path: &Path) -> Vec<PathBuf> {
    [manifest.host.data_dir.as_path(), path]
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

/// Every source file's path, size and modification time, hashed; build
/// output (`*.wasm`, [`SKIPPED`] folders) and `skip` left out.
fn tree_stamp(dir: &Path, skip: &[PathBuf]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut pending: Vec<PathBuf> = vec![dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if skip.contains(&path) {
                continue;
            }
            if path.is_dir() {
                if !SKIPPED.contains(&name.as_str()) {
                    pending.push(path);
                }
            } else if !name.ends_with(".wasm") {
                (&path, stamp(&path)).hash(&mut h);
                seen += 1;
                if seen >= MAX_FILES {
                    return h.finish();
                }
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_is_not_a_source_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app.c"), "int x;").expect("write");
        let before = tree_stamp(dir.path(), &[]);
        std::fs::write(dir.path().join("app.wasm"), "built").expect("write");
        std::fs::create_dir_all(dir.path().join("target/x")).expect("mkdir");
        std::fs::write(dir.path().join("target/x/y.o"), "o").expect("write");
        assert_eq!(tree_stamp(dir.path(), &[]), before);
        std::fs::write(dir.path().join("app.c"), "int xy;").expect("write");
        assert_ne!(tree_stamp(dir.path(), &[]), before);
    }

    /// A project whose sources are its own folder (`source = "."`, as
    /// `berth new` writes it) holds the host's data folder and the
    /// manifest too: the host writing its compile cache or key-value file
    /// is no source change, nor is an edit of the manifest.
    #[test]
    fn the_hosts_data_and_the_manifest_are_not_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("berth.toml");
        let text = "[[components]]\nname = \"app\"\nwasm = \"app.wasm\"\nsource = \".\"\nsubscribe = [\"a.>\"]\n";
        std::fs::write(&file, text).expect("write");
        std::fs::write(dir.path().join("app.c"), "int x;").expect("write");
        std::fs::create_dir_all(dir.path().join("data/cache")).expect("mkdir");
        let manifest = Manifest::read(&file).expect("manifest");
        let source = manifest.components[0].source.clone().expect("a source");
        let skip = not_sources(&manifest, &file);
        assert_eq!(skip.len(), 2, "{skip:?}");
        let before = tree_stamp(&source, &skip);
        std::fs::write(dir.path().join("data/cache/x.cwasm"), "compiled").expect("write");
        std::fs::write(dir.path().join("data/keyvalue.redb"), "kv").expect("write");
        std::fs::write(&file, format!("{text}# edited\n")).expect("write");
        assert_eq!(tree_stamp(&source, &skip), before);
        std::fs::write(dir.path().join("app.c"), "int xy;").expect("write");
        assert_ne!(tree_stamp(&source, &skip), before);
    }
}
