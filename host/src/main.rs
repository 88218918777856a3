//! The `berth` binary: installs the allocator and logging and runs the
//! command line.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, for a message's allocations freed on another thread than
/// made them (see the module for why and how).
#[global_allocator]
static ALLOCATOR: berth::cli::allocator::Allocator = berth::cli::allocator::Allocator;

fn main() -> ExitCode {
    quiet_library_backtraces();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            ExitCode::from(2)
        }
    }
}

/// Errors made inside libraries (a wasm trap is one, made by wasmtime)
/// capture a backtrace of the host when `RUST_BACKTRACE` is set, unless
/// `RUST_LIB_BACKTRACE` says otherwise: ~45 KB of host frames per trap,
/// and the time to take them, for every guest that traps. A guest's fault
/// is reported by its own message, so library backtraces are off unless
/// the operator asks for them with `RUST_LIB_BACKTRACE=1`. Panics of the
/// host itself still print theirs under `RUST_BACKTRACE`.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before the runtime or any
        // other thread exists, so nothing reads the environment meanwhile.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
}

async fn run() -> ExitCode {
    let cli = berth::cli::Cli::parse();
    cli.install_logging();
    let host = cli.is_host();
    // Every HTTP client and broker connection holds a file descriptor; the
    // soft limit is often 1,024 while the hard one is far higher.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the limit of open files");
    }
    match cli.execute().await {
        Ok(code) => code,
        // A host's failure is a log record, as its other lines are; a
        // tool's is one plain line for whoever typed the command.
        Err(e) if host => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(2)
        }
    }
}
