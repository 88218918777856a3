//! The `berth` binary: installs the allocator and logging and runs the
//! command line.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, for a message's allocations freed on another thread than
/// made them (see the module for why and how).
#[global_allocator]
static ALLOCATOR: berth::cli::allocator::Allocator = berth::cli::allocator::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = berth::cli::Cli::parse();
    berth::cli::install_logging(cli.log_format);
    // Every HTTP client and broker connection holds a file descriptor; the
    // soft limit is often 1,024 while the hard one is far higher.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the limit of open files");
    }
    match cli.execute().await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}
