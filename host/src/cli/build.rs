//! `berth build`: every component of a manifest that names its `source`,
//! built with its language's pinned toolchain into its `wasm` file. A
//! missing toolchain is one line saying how to install it; a compiler's
//! own errors go to stderr as the compiler wrote them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::home;
use crate::manifest::{ComponentConfig, Lang, Manifest};

/// The Python toolchain, pinned as the conformance suite builds it.
pub const PYTHON_INSTALL: &str = "pip install componentize-py==0.25.1";
/// The world Python, JavaScript and C components are built for: their
/// helper layers also export `batch-handler`, so a batch of queued messages
/// is one call. (`berth-cc` builds C for the same world.)
pub const BATCHED_WORLD: &str = "stateful-batched-backend";

/// The world an app is built for, from what its text exports (each
/// marker as the language writes it):
/// - a link of middleware (`middleware`) with the helper layer's router
///   (`router.routes()`): `stateful-middleware-backend`; without it (an
///   app written against the bindings alone): `middleware-backend`;
/// - the batch handler (`batch`, as the helper layer names it; `berth new`
///   writes it): the batched world;
/// - neither: the world without batches, so that an app written before
///   them builds unchanged, one message per call.
fn world(app: &Path, batch: &str, middleware: &[&str]) -> &'static str {
    let Ok(text) = std::fs::read_to_string(app) else {
        return BATCHED_WORLD;
    };
    if middleware.iter().any(|m| text.contains(m)) {
        let world = match text.contains("router.routes()") {
            true => "stateful-middleware-backend",
            false => "middleware-backend",
        };
        tracing::info!(app = %app.display(), "exports a middleware: built for world {world}");
        return world;
    }
    if !text.contains(batch) {
        tracing::info!(
            app = %app.display(),
            "no `{batch}` export: built for world stateful-backend, one message per call"
        );
        return "stateful-backend";
    }
    BATCHED_WORLD
}

/// A component that was built.
#[derive(Debug)]
pub struct Built {
    /// Its name in the manifest.
    pub name: String,
    /// What it was written in.
    pub lang: Lang,
    /// The component file.
    pub wasm: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long the build took.
    pub took: Duration,
}

impl std::fmt::Display for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "built {} ({}, {:.1} MB) in {:.1} s: {}",
            self.name,
            self.lang,
            self.bytes as f64 / 1e6,
            self.took.as_secs_f64(),
            self.wasm.display()
        )
    }
}

/// The components of `manifest` that have a `source`, or the one named
/// `only`.
pub fn buildable<'m>(manifest: &'m Manifest, only: Option<&str>) -> Result<Vec<&'m ComponentConfig>> {
    let components: Vec<_> = manifest
        .components
        .iter()
        .filter(|c| c.source.is_some() && only.is_none_or(|n| n == c.name))
        .collect();
    if let Some(name) = only {
        ensure!(
            !components.is_empty(),
            "no component `{name}` with a `source` in the manifest"
        );
    }
    ensure!(
        !components.is_empty(),
        "no component in the manifest names its `source` folder, so there is nothing to build \
         (add `source = \"path/to/sources\"` to a [[components]] entry)"
    );
    Ok(components)
}

/// Builds one component; logs a line when it starts, since a Python or
/// JavaScript component takes seconds.
pub fn build(component: &ComponentConfig) -> Result<Built> {
    let source = component
        .source
        .as_deref()
        .with_context(|| format!("component `{}` has no `source`", component.name))?;
    ensure!(
        source.is_dir(),
        "component `{}`: source folder {} does not exist",
        component.name,
        source.display()
    );
    let lang = match component.lang.or_else(|| Lang::infer(source)) {
        Some(lang) => lang,
        None => bail!(
            "component `{}`: cannot tell the language of {} (no Cargo.toml, app.py, package.json or .c file); \
             set `lang = \"rust\" | \"python\" | \"js\" | \"c\"`",
            component.name,
            source.display()
        ),
    };
    tracing::info!(component = %component.name, %lang, "building");
    let started = Instant::now();
    let wasm = &component.wasm;
    if let Some(parent) = wasm.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match lang {
        Lang::Rust => rust(source, wasm)?,
        Lang::Python => run(
            Command::new("componentize-py")
                .arg("-d")
                .arg(wit(source)?)
                .arg("-w")
                .arg(world(
                    &source.join("app.py"),
                    "BatchHandler",
                    &["class Middleware(", "Middleware = "],
                ))
                .args(["componentize", "-p"])
                .arg(source)
                .args(["app", "-o"])
                .arg(wasm),
            PYTHON_INSTALL,
        )?,
        Lang::Js => {
            let cli = source.join("node_modules/.bin/componentize-js");
            ensure!(
                cli.is_file(),
                "componentize-js is not installed in {}: run `npm install` there (its package.json names it)",
                std::path::absolute(source)
                    .unwrap_or_else(|_| source.to_path_buf())
                    .display()
            );
            let app = source.join("app.js");
            // wasi:http is not linked by the host: leave it out.
            let built = run(
                Command::new(cli)
                    .arg(&app)
                    .arg("--wit")
                    .arg(wit(source)?)
                    .arg("--world-name")
                    .arg(world(&app, "batchHandler", &["export const middleware "]))
                    .args(["-d", "http", "-d", "fetch-event", "-o"])
                    .arg(wasm),
                "npm install",
            );
            if let Err(failed) = built {
                match js_syntax_error(source) {
                    Some((file, why)) => bail!("{} is not valid JavaScript:\n{why}", file.display()),
                    None => return Err(failed),
                }
            }
        }
        Lang::C => {
            let mut sources: Vec<PathBuf> = std::fs::read_dir(source)
                .with_context(|| format!("reading {}", source.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "c"))
                .collect();
            sources.sort();
            let mut build = berth_cc::Build::new(sources, wasm.clone());
            build.wit = wit(source)?;
            berth_cc::build(&build)?;
        }
    }
    let bytes = std::fs::metadata(wasm)
        .with_context(|| format!("the build wrote no {}", wasm.display()))?
        .len();
    Ok(Built {
        name: component.name.clone(),
        lang,
        wasm: wasm.clone(),
        bytes,
        took: started.elapsed(),
    })
}

/// The project's own `wit/`, or Berth's.
fn wit(source: &Path) -> Result<PathBuf> {
    let own = source.join("wit");
    match own.join("backend.wit").is_file() {
        true => Ok(own),
        false => home::wit(),
    }
}

/// `cargo build --release --target wasm32-wasip2`, then the cdylib it
/// made copied to `wasm`.
fn rust(source: &Path, wasm: &Path) -> Result<()> {
    let target = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output();
    if let Ok(out) = target {
        let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        ensure!(
            out.status.success() && Path::new(&libdir).is_dir(),
            "the wasm32-wasip2 target is not installed: rustup target add wasm32-wasip2"
        );
    }
    let output = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(source.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo; install Rust with rustup (https://rustup.rs)")?;
    ensure!(output.status.success(), "cargo build failed ({})", output.status);
    // The last cdylib cargo reports is the project's own (it builds
    // dependencies first).
    let artifact = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["kind"].to_string().contains("cdylib"))
        .filter_map(|m| {
            let files = m["filenames"].as_array()?.clone();
            files
                .into_iter()
                .find_map(|f| f.as_str().filter(|f| f.ends_with(".wasm")).map(PathBuf::from))
        })
        .next();
    let Some(artifact) = artifact else {
        bail!("cargo built no component: is `crate-type = [\"cdylib\"]` in [lib] of Cargo.toml?")
    };
    if artifact != wasm {
        std::fs::copy(&artifact, wasm)
            .with_context(|| format!("copying {} to {}", artifact.display(), wasm.display()))?;
    }
    Ok(())
}

/// The first of the project's own JavaScript files (`*.js` in `source`,
/// by name) whose syntax is wrong, and what `node --check` says of it
/// (file, line, a caret, the error); `None` if node finds nothing.
/// componentize-js reports a syntax error as "failed to parse JS source,
/// encountered [1] errors", without saying where or what.
fn js_syntax_error(source: &Path) -> Option<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(source)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    files.sort();
    files.into_iter().find_map(|file| {
        let out = Command::new("node").arg("--check").arg(&file).output().ok()?;
        if out.status.success() {
            return None;
        }
        // node's own stack frame and version line say nothing about the app.
        let text = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("at ") && !l.starts_with("Node.js v"))
            .collect();
        Some((file, lines.join("\n").trim().to_owned()))
    })
}

/// Runs a toolchain; its output is shown only if it fails.
fn run(command: &mut Command, install: &str) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = match command.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{program} is not installed: {install}"),
        Err(e) => bail!("cannot run {program}: {e}"),
    };
    if !output.status.success() {
        bail!(
            "{program} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim_end(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}
