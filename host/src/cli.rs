//! The `berth` command line.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::manifest::Manifest;
use crate::runtime::{CompileCache, Runtime};

/// Run message backends compiled to WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host described by a manifest until SIGINT or SIGTERM.
    Run {
        /// The manifest.
        #[arg(default_value = "berth.toml")]
        manifest: PathBuf,
    },
    /// Say whether a component fits the berth:backend contract, and why not.
    Check {
        /// The component file.
        wasm: PathBuf,
    },
    /// Send a request through a running host and print the reply body.
    Request {
        /// Subject to send to.
        subject: String,
        /// Request body; `-` reads standard input; absent means empty.
        body: Option<String>,
        /// The host's HTTP address.
        #[arg(long, env = "BERTH_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// How long to wait for the reply.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Publish a message through a running host.
    Publish {
        /// Subject to send to.
        subject: String,
        /// Message body; `-` reads standard input; absent means empty.
        body: Option<String>,
        /// The host's HTTP address.
        #[arg(long, env = "BERTH_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

impl Cli {
    /// Runs the command. `Ok(FAILURE)` means the command worked but its
    /// answer was negative (a misfit component, an error reply).
    pub async fn execute(self) -> Result<ExitCode> {
        match self.command {
            Command::Run { manifest } => {
                let manifest = Manifest::load(&manifest)?;
                crate::host::run(manifest, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Check { wasm } => check(&wasm),
            Command::Request {
                subject,
                body,
                url,
                timeout_ms,
            } => {
                let url = format!("{}/v1/request/{subject}?timeout_ms={timeout_ms}", url.trim_end_matches('/'));
                send(&url, body).await
            }
            Command::Publish { subject, body, url } => {
                let url = format!("{}/v1/publish/{subject}", url.trim_end_matches('/'));
                send(&url, body).await
            }
        }
    }
}

fn check(wasm: &PathBuf) -> Result<ExitCode> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let report = Runtime::new(CompileCache::disabled(), false)?.inspect(&bytes);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {report}", wasm.display())?;
    Ok(if report.fits() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn send(url: &str, body: Option<String>) -> Result<ExitCode> {
    let body = match body.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).context("reading the body from stdin")?;
            buf
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the host at {url}; is `berth run` running with [host] http set?"))?;
    let ok = response.status().is_success();
    let bytes = response.bytes().await.context("reading the reply")?;
    if ok {
        std::io::stdout().lock().write_all(&bytes)?;
        Ok(ExitCode::SUCCESS)
    } else {
        let mut err = std::io::stderr().lock();
        err.write_all(&bytes)?;
        writeln!(err)?;
        Ok(ExitCode::FAILURE)
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
