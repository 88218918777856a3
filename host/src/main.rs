//! The `berth` binary: installs the allocator and logging and runs the
//! command line.

use std::process::ExitCode;

use clap::Parser;

/// A thread-caching allocator: a message's allocations are freed on
/// another worker thread than made them, where glibc's arenas contend on
/// a lock (measured: ~13% of the host's CPU under NATS load, see
/// BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = berth::cli::Cli::parse();
    berth::cli::install_logging(cli.log_format);
    match cli.execute().await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}
