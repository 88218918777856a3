//! `berth-cc SOURCES... -o backend.wasm`: see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_cc::{Build, DEFAULT_CC, DEFAULT_SYSROOT, DEFAULT_WIT};
use clap::Parser;

/// Build a Berth backend component from C sources.
#[derive(Debug, Parser)]
#[command(name = "berth-cc", version)]
struct Args {
    /// The C sources of the backend.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The component to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Berth's WIT folder.
    #[arg(long, default_value = DEFAULT_WIT)]
    wit: PathBuf,
    /// clang with the wasm32 backend (Debian: clang-14 lld-14).
    #[arg(long, env = "BERTH_CC", default_value = DEFAULT_CC)]
    cc: String,
    /// Where wasi-libc lives (Debian's wasi-libc installs under /usr).
    #[arg(long, env = "WASI_SYSROOT", default_value = DEFAULT_SYSROOT)]
    sysroot: PathBuf,
    /// More flags for clang, e.g. `--flag=-DDEBUG`.
    #[arg(long = "flag", allow_hyphen_values = true)]
    flags: Vec<String>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let build = Build {
        sources: a.sources,
        output: a.output,
        wit: a.wit,
        cc: a.cc,
        sysroot: a.sysroot,
        flags: a.flags,
    };
    match berth_cc::build(&build) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-cc: {e:#}");
            ExitCode::FAILURE
        }
    }
}
