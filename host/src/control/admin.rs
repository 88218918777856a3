//! Operator actions over the broker, as Strata's service commands: an
//! operator steers hosts through the broker they already reach, without
//! an HTTP port per host.
//!
//! Off unless `[host] admin = true`. Each host listens on every transport
//! on `berth.admin.<service>` (all hosts of the service: each one answers,
//! a tool collects the answers) and `berth.admin.<service>.<host id>` (one
//! host; the id is in `info`, health and `$SRV` answers). A request is a
//! JSON object naming the command:
//!
//! ```json
//! {"command": "info"}
//! {"command": "suspend", "component": "orders"}
//! {"command": "resume", "component": "orders"}
//! {"command": "concurrency", "component": "orders", "value": 8}
//! {"command": "swap", "component": "orders", "path": "/srv/orders-2.wasm", "label": "2.0.0"}
//! {"command": "drain"}
//! ```
//!
//! `swap` takes the new version from a file the host can read (`path`) or
//! inline as base64 (`wasm_base64`), for components that fit in a message.
//! The token, if the host has one, travels in the `berth-admin-token`
//! header ([`super::auth`] decides). Answers are JSON; refusals are error
//! replies (400, 401, 403, 404, 422) in Berth's usual error shape.

use std::sync::Arc;

use anyhow::Result;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::{answer_on, refuse};
use super::auth::{Auth, Reach};
use crate::app::{App, OpError, SwapRequest};
use crate::core::error::CallError;
use crate::core::headers::ADMIN_TOKEN;
use crate::core::message::Message;

/// The subject every host of `service` answers admin commands on.
pub fn service_subject(service: &str) -> String {
    format!("berth.admin.{service}")
}

/// The subject only the host with `id` answers on.
pub fn host_subject(service: &str, id: &str) -> String {
    format!("berth.admin.{service}.{id}")
}

/// One admin command.
#[derive(Debug, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// The host: id, version, uptime, components with state and counters.
    Info,
    /// Stop calling a component; its messages wait at the broker.
    Suspend {
        /// The component.
        component: String,
    },
    /// Call it again.
    Resume {
        /// The component.
        component: String,
    },
    /// Set how many calls a component may have in flight.
    Concurrency {
        /// The component.
        component: String,
        /// The new limit, at least 1.
        value: usize,
    },
    /// Replace a component's version, as `berth swap` does.
    Swap {
        /// The component.
        component: String,
        /// A wasm file the host can read.
        path: Option<std::path::PathBuf>,
        /// Or the wasm itself, base64.
        wasm_base64: Option<String>,
        /// The new version's label.
        label: Option<String>,
        /// A new config for its `init`.
        config: Option<serde_json::Map<String, Value>>,
    },
    /// Stop taking work, finish what is in flight, exit.
    Drain,
}

/// Answers the admin subjects on every transport until `stop`.
pub(super) async fn start(app: &Arc<App>, auth: &Auth, tasks: &TaskTracker, stop: &CancellationToken) -> Result<()> {
    auth.announce(Reach::Broker);
    for transport in &app.transports {
        for subject in [service_subject(&app.name), host_subject(&app.name, &app.id)] {
            let (app, auth) = (app.clone(), auth.clone());
            answer_on(transport, subject, tasks, stop, move |message| {
                let (app, auth) = (app.clone(), auth.clone());
                async move { answer(&app, &auth, &message).await }
            })
            .await?;
        }
    }
    Ok(())
}

async fn answer(app: &App, auth: &Auth, message: &Message) -> Result<Value, CallError> {
    let how = format!("the `{ADMIN_TOKEN}` header");
    let caller = format!(
        "{} on `{}`, answer to `{}`",
        message.subject,
        app.transport.kind(),
        message.reply_to.as_deref().unwrap_or("nobody")
    );
    auth.check(Reach::Broker, message.header(ADMIN_TOKEN), &how, &caller)
        .map_err(|e| refuse(e.code(), e.to_string()))?;
    let command: Command =
        serde_json::from_slice(&message.body).map_err(|e| refuse(400, format!("not an admin command: {e}")))?;
    tracing::info!(?command, "admin command");
    execute(app, command).await.map_err(|e| refuse(e.code(), e.to_string()))
}

async fn execute(app: &App, command: Command) -> Result<Value, OpError> {
    match command {
        Command::Info => Ok(app.health().1),
        Command::Suspend { component } => app.suspend(&component),
        Command::Resume { component } => app.resume(&component),
        Command::Concurrency { component, value } => app.set_concurrency(&component, value),
        Command::Swap {
            component,
            path,
            wasm_base64,
            label,
            config,
        } => {
            let wasm = match (path, wasm_base64) {
                (Some(path), None) => std::fs::read(&path)
                    .map_err(|e| OpError::Invalid(format!("cannot read {}: {e}", path.display())))?,
                (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| OpError::Invalid(format!("wasm_base64 is not base64: {e}")))?,
                _ => {
                    return Err(OpError::Invalid(
                        "swap needs exactly one of `path` and `wasm_base64`".into(),
                    ));
                }
            };
            let request = SwapRequest {
                wasm: wasm.into(),
                label,
                config,
                component: None,
            };
            let report = app.swap(&component, request).await?;
            Ok(json!({ "host": app.id, "swap": report }))
        }
        Command::Drain => Ok(app.drain()),
    }
}
