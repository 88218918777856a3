//! Builds the non-Rust guests with their own toolchains, once per test
//! binary, into `target/guests/<language>/`. A missing toolchain is an
//! error that says how to install it (`scripts/test` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A guest language besides Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// componentize-py.
    Python,
    /// componentize-js.
    JavaScript,
    /// clang + wasi-libc through berth-cc.
    C,
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How each toolchain is installed; pinned where the registry allows.
pub const PYTHON_INSTALL: &str = berth::cli::build::PYTHON_INSTALL;
/// See [`PYTHON_INSTALL`].
pub const JAVASCRIPT_INSTALL: &str = "npm install --prefix guests/javascript";

/// Builds `guests/<language>/<name>` into a component and returns its path.
pub fn build(language: Language, name: &str) -> Result<PathBuf> {
    build_for(language, name, "wit", berth::cli::build::BATCHED_WORLD)
}

/// As [`build`], for the world `world` of the WIT in `wit` (a folder
/// under the repository root): a component of another host's world.
pub fn build_for(language: Language, name: &str, wit: &str, world: &str) -> Result<PathBuf> {
    // These worlds have no wasi:http: leave componentize-js's `fetch` and
    // `fetch` event out.
    build_with(language, name, wit, world, &["http", "fetch-event"])
}

/// Builds `guests/<language>/<name>`, written against the standard WIT
/// alone, for `world` (`proxy`, `counter`) of `guests/wasi-http/wit` (see
/// its README), with componentize-js's `fetch` and `fetch` event left in.
pub fn build_wasi_http(language: Language, name: &str, world: &str) -> Result<PathBuf> {
    if language == Language::C {
        bail!("no C guest is written against wasi:http");
    }
    build_with(language, name, "guests/wasi-http/wit", world, &[])
}

fn build_with(language: Language, name: &str, wit: &str, world: &str, js_left_out: &[&str]) -> Result<PathBuf> {
    let root = root();
    let out_dir = root.join("target/guests").join(format!("{language:?}").to_lowercase());
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join(format!("{name}.wasm"));
    match language {
        Language::Python => run(
            Command::new("componentize-py")
                .current_dir(&root)
                .args(["-d", wit, "-w", world, "componentize", "-p", "guest-sdk/python", "-p"])
                .arg(format!("guests/python/{name}"))
                .args(["app", "-o"])
                .arg(&out),
            PYTHON_INSTALL,
        )?,
        Language::JavaScript => {
            let cli = root.join("guests/javascript/node_modules/.bin/componentize-js");
            if !cli.is_file() {
                bail!("componentize-js is not installed; run: {JAVASCRIPT_INSTALL}");
            }
            run(
                Command::new(cli)
                    .current_dir(&root)
                    .arg(format!("guests/javascript/{name}/app.js"))
                    .args(["--wit", wit, "--world-name", world])
                    .args(js_left_out.iter().flat_map(|feature| ["-d", feature]))
                    .arg("-o")
                    .arg(&out),
                JAVASCRIPT_INSTALL,
            )?
        }
        Language::C => {
            let sources = vec![root.join(format!("guests/c/{name}/app.c"))];
            berth_cc::build(&berth_cc::Build::new(sources, out.clone()))
                .with_context(|| format!("if the C toolchain is missing: {}", berth_cc::INSTALL))?;
        }
    }
    Ok(out)
}

fn run(command: &mut Command, install: &str) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = match command.output() {
        Ok(o) => o,
        Err(e) => bail!("cannot run {program} ({e}); install it with: {install}"),
    };
    if !output.status.success() {
        bail!(
            "{program} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
