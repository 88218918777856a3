//! `berth-cc`: turns C sources into a Berth backend component in one step.
//!
//! C has no component toolchain of its own, so this does what `cargo build
//! --target wasm32-wasip2` does for Rust: generate the bindings for Berth's
//! WIT world (wit-bindgen's C generator), compile them with the sources and
//! the C helper layer (`guest-sdk/c`) using clang and wasi-libc, and wrap the
//! core module into a component with the WASI adapter that matches the
//! host's wasmtime. Libraries, not CLIs, so no `cargo install` is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// What to build and with which tools.
#[derive(Clone, Debug)]
pub struct Build {
    /// The C sources of the backend.
    pub sources: Vec<PathBuf>,
    /// The component to write.
    pub output: PathBuf,
    /// Berth's WIT folder.
    pub wit: PathBuf,
    /// clang with the wasm32 backend.
    pub cc: String,
    /// Where wasi-libc lives.
    pub sysroot: PathBuf,
    /// More flags for clang.
    pub flags: Vec<String>,
}

impl Build {
    /// `sources` into `output`, with this repository's WIT, `clang-14` and
    /// Debian's wasi-libc.
    pub fn new(sources: Vec<PathBuf>, output: PathBuf) -> Self {
        Self {
            sources,
            output,
            wit: PathBuf::from(DEFAULT_WIT),
            cc: DEFAULT_CC.into(),
            sysroot: PathBuf::from(DEFAULT_SYSROOT),
            flags: Vec::new(),
        }
    }
}

/// This repository's WIT folder.
pub const DEFAULT_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../wit");
/// Debian's clang with the wasm32 backend.
pub const DEFAULT_CC: &str = "clang-14";
/// Where Debian's wasi-libc installs.
pub const DEFAULT_SYSROOT: &str = "/usr";
/// How to get the C toolchain on Debian.
pub const INSTALL: &str = "apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32";

/// Builds the component.
pub fn build(args: &Build) -> Result<()> {
    let work = tempfile::tempdir().context("creating a build folder")?;
    bindings(&args.wit, work.path())?;
    let core = work.path().join("core.wasm");
    compile(args, work.path(), &core)?;
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the compiled module carries no Berth component type (was c_backend_component_type.o linked?)")?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("loading the WASI adapter")?
        .validate(true)
        .encode()
        .context("turning the module into a component")?;
    std::fs::write(&args.output, component).with_context(|| format!("writing {}", args.output.display()))
}

/// The world C guests are built for: `stateful-batched-backend` (state,
/// the gateway, batches) and the middleware export.
const WORLD: &str = "c-backend";

/// Writes `c_backend.h`, `c_backend.c` and `c_backend_component_type.o`
/// for [`WORLD`] into `out`.
pub fn bindings(wit: &Path, out: &Path) -> Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading the WIT in {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(WORLD)).with_context(|| {
        format!(
            "the WIT in {} has no world `{WORLD}`: it is older than this berth-cc; copy wit/ from this repository (or a new `berth new` project)",
            wit.display()
        )
    })?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("generating the C bindings")?;
    for (name, bytes) in files.iter() {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

/// The C helper layer, carried in the binary: `berth-cc` (and `berth
/// build`) compile C wherever they are installed, not only beside this
/// repository.
const HELPER_LAYER: [(&str, &str); 7] = [
    ("berth.h", include_str!("../../berth.h")),
    ("berth.c", include_str!("../../berth.c")),
    ("json.c", include_str!("../../json.c")),
    ("kv.c", include_str!("../../kv.c")),
    ("batch.c", include_str!("../../batch.c")),
    ("gateway.c", include_str!("../../gateway.c")),
    ("middleware.c", include_str!("../../middleware.c")),
];

/// Writes the helper layer into `dir` (beside the bindings it includes).
fn helper_layer(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for (name, text) in HELPER_LAYER {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if name.ends_with(".c") {
            sources.push(path);
        }
    }
    Ok(sources)
}

fn compile(args: &Build, bindings: &Path, core: &Path) -> Result<()> {
    let helpers = helper_layer(bindings)?;
    let status = Command::new(&args.cc)
        .args([
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-Wall",
            "-Wno-unused-parameter",
        ])
        .arg(format!("--sysroot={}", args.sysroot.display()))
        .arg("-I")
        .arg(bindings)
        .args(&args.flags)
        .arg(bindings.join("c_backend.c"))
        .arg(bindings.join("c_backend_component_type.o"))
        .args(&helpers)
        .args(&args.sources)
        .arg("-o")
        .arg(core)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!(
            "{} failed ({s}); if wasi-libc or the wasm32 runtime is missing: {INSTALL}",
            args.cc
        ),
        Err(e) => bail!("cannot run {}: {e}; install it with: {INSTALL}", args.cc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `guest-sdk/c` is carried too, or its functions
    /// would be missing from every build.
    #[test]
    fn the_helper_layer_is_every_file_of_guest_sdk_c() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("guest-sdk/c")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".c") || n.ends_with(".h"))
            .collect();
        let mut carried: Vec<String> = HELPER_LAYER.iter().map(|(n, _)| (*n).to_owned()).collect();
        on_disk.sort();
        carried.sort();
        assert_eq!(carried, on_disk);
    }
}
