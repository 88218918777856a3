//! What the `berth` subcommands do beyond parsing: talking to a host over
//! HTTP or NATS and printing the answers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::manifest::Manifest;
use crate::runtime::{CompileCache, Runtime};

/// Variables `--strict-env` requires, whatever the manifest says.
const ALWAYS_REQUIRED: [&str; 2] = ["SERVICE_NAME", "DATA_DIR"];

async fn nats(url: &str) -> Result<async_nats::Client> {
    async_nats::connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

/// `berth services`: one line per component of every host that answers.
pub(super) async fn services(nats_url: &str, quiet_ms: u64, json: bool) -> Result<ExitCode> {
    let hosts = crate::cli::discovery::services(&nats(nats_url).await?, Duration::from_millis(quiet_ms)).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&hosts)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<24} {:<18} {:<20} {:<14} {:<12} SUBJECTS",
        "SERVICE", "HOST ID", "COMPONENT", "VERSION", "LABEL"
    )?;
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

/// `berth admin`: a line per host that answered (its answer as a JSON
/// line with `json`); refusals on stderr.
pub(super) async fn admin(
    nats_url: &str,
    service: &str,
    host: Option<&str>,
    command: &serde_json::Value,
    token: Option<&str>,
    quiet_ms: u64,
    json: bool,
) -> Result<ExitCode> {
    let client = nats(nats_url).await?;
    let answers =
        super::admin_client::ask(&client, service, host, command, token, Duration::from_millis(quiet_ms)).await?;
    if answers.is_empty() {
        anyhow::bail!("no host of service `{service}` answered (is `[host] admin = true` set?)");
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for answer in answers {
        match answer {
            Ok(body) if json => writeln!(out, "{body}")?,
            Ok(body) => writeln!(out, "{}", admin_line(&body))?,
            Err(e) => {
                failed = true;
                writeln!(std::io::stderr(), "refused: {} {}: {}", e.code, e.name, e.message)?;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One host's answer as a line: for `info`, its service, state, uptime
/// and components; for the other commands, what the answer says besides
/// the host.
fn admin_line(answer: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    if let Some(components) = answer["components"].as_array() {
        let names: Vec<String> = components.iter().map(|c| text(&c["name"])).collect();
        return format!(
            "{:<18} {} {} up {:.0} s, berth {}: {}",
            text(&answer["id"]),
            text(&answer["name"]),
            text(&answer["status"]),
            answer["uptime_s"].as_f64().unwrap_or(0.0),
            text(&answer["version"]),
            names.join(", ")
        );
    }
    let mut rest = answer.clone();
    let host = rest.as_object_mut().and_then(|o| o.remove("host"));
    format!("{:<18} ok {rest}", host.as_ref().map_or_else(|| "-".to_owned(), text))
}

/// `--strict-env`: every variable this deployment needs must be set.
pub(super) fn require_env(manifest: &Manifest) -> Result<()> {
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

pub(super) fn check(wasm: &PathBuf, link_unused_sockets: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let report = Runtime::new(CompileCache::disabled(), false)?.inspect(&bytes, link_unused_sockets);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {report}", wasm.display())?;
    Ok(if report.fits() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) async fn conformance(options: &crate::cli::conformance::Options) -> Result<ExitCode> {
    let outcomes = crate::cli::conformance::run(options).await?;
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
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A body argument: `-` reads standard input, absent is empty.
pub(super) fn read_body(body: Option<String>) -> Result<Vec<u8>> {
    Ok(match body.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the body from stdin")?;
            buf
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    })
}

/// `berth swap`: uploads the new version to the host's HTTP API.
pub(super) async fn swap(
    url: &str,
    name: &str,
    wasm: &Path,
    label: Option<String>,
    config: Option<String>,
    token: Option<String>,
) -> Result<ExitCode> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let url = format!("{}/v1/components/{name}", url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().put(&url).body(bytes);
    if let Some(label) = label {
        request = request.query(&[("label", label)]);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(config) = config {
        request = request.header(crate::core::headers::SWAP_CONFIG, config);
    }
    send(request, &url).await
}

/// Prints one line per component of a running host, or what the host
/// said as JSON.
pub(super) async fn status(url: &str, json: bool) -> Result<ExitCode> {
    let base = url.trim_end_matches('/');
    let url = format!("{base}/v1/components");
    let list: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot reach the host at {url}; is `berth run` running with [host] http set?"))?
        .json()
        .await
        .context("reading the component list")?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{list}")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Which host answered: a command run without `--url` asks the one its
    // folder's manifest names, or 8080's, which may be another project's.
    writeln!(out, "host {} at {base}", list["name"].as_str().unwrap_or("?"))?;
    writeln!(
        out,
        "{:<20} {:<14} {:<12} {:<12} {:>6} {:>10} {:>8}",
        "COMPONENT", "VERSION", "LABEL", "STATE", "SWAPS", "CALLS", "ERRORS"
    )?;
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

pub(super) async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<ExitCode> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the host at {url}; is `berth run` running with [host] http set?"))?;
    let ok = response.status().is_success();
    let bytes = response.bytes().await.context("reading the reply")?;
    if ok {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        // Text ends with a newline, as every line a command prints does;
        // other bytes are left as they came.
        if !bytes.is_empty() && !bytes.ends_with(b"\n") && std::str::from_utf8(&bytes).is_ok() {
            writeln!(out)?;
        }
        Ok(ExitCode::SUCCESS)
    } else {
        let mut err = std::io::stderr().lock();
        err.write_all(&bytes)?;
        writeln!(err)?;
        Ok(ExitCode::FAILURE)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
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
