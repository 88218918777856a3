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
    /// Log lines as human-readable text or as JSON objects (stderr).
    #[arg(long, global = true, env = "BERTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Variables `--strict-env` requires, whatever the manifest says.
const ALWAYS_REQUIRED: [&str; 2] = ["SERVICE_NAME", "DATA_DIR"];

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host described by a manifest until SIGINT or SIGTERM.
    Run {
        /// The manifest.
        #[arg(default_value = "berth.toml")]
        manifest: PathBuf,
        /// Swap a component in when its wasm file changes on disk.
        #[arg(long)]
        watch: bool,
        /// Refuse to start unless the deployment's environment is complete:
        /// SERVICE_NAME, DATA_DIR, and NATS_URL / AMQP_URL for the
        /// transports the manifest uses.
        #[arg(long, env = "BERTH_STRICT_ENV")]
        strict_env: bool,
    },
    /// Replace a running component with a new version, without a restart.
    Swap {
        /// The component's name in the manifest.
        name: String,
        /// The new version's wasm file.
        wasm: PathBuf,
        /// A name for the new version, shown beside its hash.
        #[arg(long)]
        label: Option<String>,
        /// A new config for its `init`, as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// The host's HTTP address.
        #[arg(long, env = "BERTH_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The host's admin token, if it has one.
        #[arg(long, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// List every Berth host on a NATS server, with components and versions.
    Services {
        /// The NATS server.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// Stop listening for answers after this long without one.
        #[arg(long, default_value_t = 500)]
        quiet_ms: u64,
    },
    /// Steer the hosts of a service over NATS (they need `[host] admin = true`);
    /// prints each host's answer as a JSON line.
    Admin {
        /// The service (`[host] name`) whose hosts get the command.
        service: String,
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
        /// Only the host with this id (see `info`); default: every host.
        #[arg(long, global = true)]
        host: Option<String>,
        /// The hosts' admin token, if they have one.
        #[arg(long, global = true, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The NATS server.
        #[arg(long, global = true, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// Stop listening for answers after this long without one.
        #[arg(long, global = true, default_value_t = 500)]
        quiet_ms: u64,
    },
    /// Show a running host's components: version, state, counters.
    Status {
        /// The host's HTTP address.
        #[arg(long, env = "BERTH_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Say whether a component fits the berth:backend contract, and why not.
    Check {
        /// The component file.
        wasm: PathBuf,
    },
    /// Check that a component keeps the conformance contract
    /// (docs/conformance.md): one PASS/FAIL line per check, non-zero exit
    /// on any failure.
    Conformance {
        /// The component file.
        wasm: PathBuf,
        /// Serve it on this transport.
        #[arg(long, value_enum, default_value_t = crate::manifest::TransportKind::Memory)]
        transport: crate::manifest::TransportKind,
        /// The NATS server, for `--transport nats`.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The AMQP broker, for `--transport amqp`.
        #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        amqp_url: String,
        /// Compile cache folder, kept between runs.
        #[arg(long, env = "DATA_DIR")]
        data_dir: Option<PathBuf>,
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

/// `berth admin` commands; see [`crate::admin::Command`].
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Id, version, uptime and components of each host.
    Info,
    /// Stop calling a component; its messages wait at the broker.
    Suspend {
        /// The component.
        component: String,
    },
    /// Call a suspended component again.
    Resume {
        /// The component.
        component: String,
    },
    /// Set how many calls a component may have in flight.
    Concurrency {
        /// The component.
        component: String,
        /// The new limit.
        value: usize,
    },
    /// Swap in a new version from a wasm file the hosts can read.
    Swap {
        /// The component.
        component: String,
        /// The wasm file, as a path on the hosts' machines.
        path: PathBuf,
        /// A name for the new version.
        #[arg(long)]
        label: Option<String>,
    },
    /// Stop taking work, finish in-flight calls, exit.
    Drain,
}

impl AdminCommand {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Info => json!({ "command": "info" }),
            Self::Suspend { component } => json!({ "command": "suspend", "component": component }),
            Self::Resume { component } => json!({ "command": "resume", "component": component }),
            Self::Concurrency { component, value } => json!({ "command": "concurrency", "component": component, "value": value }),
            Self::Swap { component, path, label } => json!({ "command": "swap", "component": component, "path": path, "label": label }),
            Self::Drain => json!({ "command": "drain" }),
        }
    }
}

impl Cli {
    /// Runs the command. `Ok(FAILURE)` means the command worked but its
    /// answer was negative (a misfit component, an error reply).
    pub async fn execute(self) -> Result<ExitCode> {
        match self.command {
            Command::Run {
                manifest,
                watch,
                strict_env,
            } => {
                let mut manifest = Manifest::load(&manifest)?;
                if strict_env {
                    require_env(&manifest)?;
                }
                manifest.host.watch |= watch;
                crate::host::run(manifest, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Swap {
                name,
                wasm,
                label,
                config,
                url,
                token,
            } => {
                let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
                let url = format!("{}/v1/components/{name}", url.trim_end_matches('/'));
                let mut request = reqwest::Client::new().put(&url).body(bytes);
                if let Some(label) = label {
                    request = request.query(&[("label", label)]);
                }
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(config) = config {
                    request = request.header(crate::http::CONFIG_HEADER, config);
                }
                send(request, &url).await
            }
            Command::Status { url } => status(&url).await,
            Command::Admin {
                service,
                command,
                host,
                token,
                nats_url,
                quiet_ms,
            } => {
                let client = async_nats::connect(nats_url.as_str())
                    .await
                    .with_context(|| format!("cannot connect to NATS at {nats_url}"))?;
                let quiet = std::time::Duration::from_millis(quiet_ms);
                let answers =
                    crate::admin::ask(&client, &service, host.as_deref(), &command.to_json(), token.as_deref(), quiet).await?;
                if answers.is_empty() {
                    anyhow::bail!("no host of service `{service}` answered (is `[host] admin = true` set?)");
                }
                let mut out = std::io::stdout().lock();
                let mut failed = false;
                for answer in answers {
                    match answer {
                        Ok(body) => writeln!(out, "{body}")?,
                        Err(e) => {
                            failed = true;
                            writeln!(std::io::stderr(), "refused: {} {}: {}", e.code, e.name, e.message)?;
                        }
                    }
                }
                Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
            }
            Command::Services { nats_url, quiet_ms } => {
                let client = async_nats::connect(nats_url.as_str())
                    .await
                    .with_context(|| format!("cannot connect to NATS at {nats_url}"))?;
                let hosts = crate::discovery::services(&client, std::time::Duration::from_millis(quiet_ms)).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<24} {:<18} {:<20} {:<14} {:<12} SUBJECTS", "SERVICE", "HOST ID", "COMPONENT", "VERSION", "LABEL")?;
                for host in &hosts {
                    for c in &host.components {
                        writeln!(
                            out,
                            "{:<24} {:<18} {:<20} {:<14} {:<12} {}",
                            host.service,
                            host.id,
                            c.name,
                            &c.version[..c.version.len().min(12)],
                            if c.label.is_empty() { "-" } else { &c.label },
                            c.subjects.join(" ")
                        )?;
                    }
                }
                if hosts.is_empty() {
                    writeln!(out, "(no Berth hosts answered)")?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Check { wasm } => check(&wasm),
            Command::Conformance {
                wasm,
                transport,
                nats_url,
                amqp_url,
                data_dir,
            } => {
                let options = crate::conformance::Options {
                    wasm,
                    transport,
                    nats_url,
                    amqp_url,
                    data_dir: data_dir.unwrap_or_else(|| std::env::temp_dir().join("berth-conformance")),
                };
                conformance(&options).await
            }
            Command::Request {
                subject,
                body,
                url,
                timeout_ms,
            } => {
                let url = format!("{}/v1/request/{subject}?timeout_ms={timeout_ms}", url.trim_end_matches('/'));
                send(reqwest::Client::new().post(&url).body(read_body(body)?), &url).await
            }
            Command::Publish { subject, body, url } => {
                let url = format!("{}/v1/publish/{subject}", url.trim_end_matches('/'));
                send(reqwest::Client::new().post(&url).body(read_body(body)?), &url).await
            }
        }
    }
}

/// `--strict-env`: every variable this deployment needs must be set.
fn require_env(manifest: &Manifest) -> Result<()> {
    use crate::manifest::TransportKind;
    let used = |kind: TransportKind| {
        manifest.host.transport == kind
            || manifest
                .components
                .iter()
                .any(|c| c.outbound == Some(kind) || c.subscribe.iter().any(|s| s.transport == Some(kind)))
    };
    let mut required: Vec<&str> = ALWAYS_REQUIRED.to_vec();
    if used(TransportKind::Nats) {
        required.push("NATS_URL");
    }
    if used(TransportKind::Amqp) {
        required.push("AMQP_URL");
    }
    let missing: Vec<&str> = required.into_iter().filter(|k| std::env::var_os(k).is_none()).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "--strict-env: required environment variable(s) not set: {}",
        missing.join(", ")
    );
    Ok(())
}

fn check(wasm: &PathBuf) -> Result<ExitCode> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let report = Runtime::new(CompileCache::disabled(), false)?.inspect(&bytes);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {report}", wasm.display())?;
    Ok(if report.fits() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn conformance(options: &crate::conformance::Options) -> Result<ExitCode> {
    let outcomes = crate::conformance::run(options).await?;
    let mut out = std::io::stdout().lock();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    for o in &outcomes {
        match &o.result {
            Ok(()) => writeln!(out, "PASS  {}", o.name)?,
            Err(why) => writeln!(out, "FAIL  {}: {why}", o.name)?,
        }
    }
    writeln!(
        out,
        "{}: {} passed, {failed} failed ({} transport)",
        options.wasm.display(),
        outcomes.len() - failed,
        options.transport
    )?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A body argument: `-` reads standard input, absent is empty.
fn read_body(body: Option<String>) -> Result<Vec<u8>> {
    Ok(match body.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).context("reading the body from stdin")?;
            buf
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    })
}

/// Prints one line per component of a running host.
async fn status(url: &str) -> Result<ExitCode> {
    let url = format!("{}/v1/components", url.trim_end_matches('/'));
    let list: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot reach the host at {url}; is `berth run` running with [host] http set?"))?
        .json()
        .await
        .context("reading the component list")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<20} {:<14} {:<12} {:<12} {:>6} {:>10} {:>8}", "COMPONENT", "VERSION", "LABEL", "STATE", "SWAPS", "CALLS", "ERRORS")?;
    for c in list["components"].as_array().into_iter().flatten() {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
        let version = text(&c["version"]);
        let calls = c["stats"]["requests"].as_u64().unwrap_or(0) + c["stats"]["events"].as_u64().unwrap_or(0);
        writeln!(
            out,
            "{:<20} {:<14} {:<12} {:<12} {:>6} {:>10} {:>8}",
            text(&c["name"]),
            &version[..version.len().min(12)],
            text(&c["versions"]["label"]),
            text(&c["state"]["state"]),
            c["versions"]["swaps"].as_u64().unwrap_or(0),
            calls,
            c["stats"]["errors"].as_u64().unwrap_or(0),
        )?;
        if let Some(why) = c["versions"]["last_rollback"].as_str() {
            writeln!(out, "  last rollback: {why}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<ExitCode> {
    let response = request
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
