//! Where Berth's own sources are: what `berth new` points a Rust project's
//! `berth-sdk` dependency at, and the WIT `berth build` falls back on for
//! a project without its own `wit/`. `BERTH_HOME` names a Berth checkout;
//! by default it is the one this binary was built from.

use std::path::PathBuf;

use anyhow::{Result, ensure};

/// The Berth checkout: `BERTH_HOME`, or where this binary was built.
pub fn root() -> PathBuf {
    match std::env::var_os("BERTH_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
    }
}

/// The `berth-sdk` crate's folder, absolute.
pub fn rust_sdk() -> Result<PathBuf> {
    let sdk = root().join("guest-sdk");
    ensure!(
        sdk.join("Cargo.toml").is_file(),
        "the berth-sdk crate is not at {}: set BERTH_HOME to a Berth checkout, or pass --sdk",
        sdk.display()
    );
    Ok(std::fs::canonicalize(&sdk).unwrap_or(sdk))
}

/// The contract's WIT folder.
pub fn wit() -> Result<PathBuf> {
    let wit = root().join("wit");
    ensure!(
        wit.join("backend.wit").is_file(),
        "Berth's WIT is not at {}: set BERTH_HOME to a Berth checkout, or give the project a wit/ folder (berth new does)",
        wit.display()
    );
    Ok(wit)
}
