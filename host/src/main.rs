//! The `berth` binary: installs logging and runs the command line.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = berth::cli::Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr);
    match cli.log_format {
        berth::cli::LogFormat::Text => logs.init(),
        berth::cli::LogFormat::Json => logs.json().init(),
    }
    match cli.execute().await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}
