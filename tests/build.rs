//! Builds every component in `guests/` for wasm32-wasip2 in one cargo
//! invocation and writes `guests.rs` with a path constant per guest and a
//! `foreach_guest!` macro, so tests never spell out paths into `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf();
    let guests_dir = root.join("guests");
    let target_dir = root.join("target").join("guests");
    for watched in ["guests", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let names = guest_names(&guests_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&guests_dir)
        .args(["build", "--release", "--workspace", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        // The outer build's flags are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        .status()
        .expect("could not run cargo to build the guests");
    if !status.success() {
        panic!(
            "building the guest components failed. If the wasm target is missing, run:\n\n    rustup target add {TARGET}\n"
        );
    }

    let release = target_dir.join(TARGET).join("release");
    let mut out = String::new();
    for name in &names {
        let wasm = release.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(wasm.is_file(), "guest `{name}` built but {} is missing", wasm.display());
        out.push_str(&format!(
            "/// Path of the `{name}` guest component.\npub const {}: &str = {:?};\n",
            name.to_uppercase().replace('-', "_"),
            wasm.display().to_string()
        ));
    }
    let idents: Vec<String> = names.iter().map(|n| n.replace('-', "_")).collect();
    out.push_str(&format!(
        "/// Calls `$m!(guest_name)` for every guest, so a new guest without a test does not compile.\n\
         #[macro_export]\nmacro_rules! foreach_guest {{ ($m:ident) => {{ {} }}; }}\n",
        idents.iter().map(|i| format!("$m!({i});")).collect::<String>()
    ));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("guests.rs"), out).expect("writing guests.rs");
}

/// Every folder under `guests/` with a Cargo.toml is a guest.
fn guest_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("guests/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
