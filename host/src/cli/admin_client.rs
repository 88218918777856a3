//! The client side of broker admin, for `berth admin`: one command sent to
//! every host of a service (or one host), every answer collected.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::Value;

use crate::control::admin::{host_subject, service_subject};
use crate::core::error::{CallError, ErrorKind};
use crate::core::headers::ADMIN_TOKEN;

/// How long the first answer may take: a swap compiles its new version
/// before it answers. Nobody listening is known at once (the server's "no
/// responders"), so this is only waited out for a host that is there.
const FIRST_ANSWER: Duration = Duration::from_secs(60);

/// Sends `command` over NATS to every host of `service`, or to the one
/// with id `host`, and returns each host's answer: the first as soon as it
/// comes (up to a minute), then more until `quiet` passes without
/// a new one.
pub async fn ask(
    client: &async_nats::Client,
    service: &str,
    host: Option<&str>,
    command: &Value,
    token: Option<&str>,
    quiet: Duration,
) -> Result<Vec<Result<Value, CallError>>> {
    let subject = match host {
        Some(id) => host_subject(service, id),
        None => service_subject(service),
    };
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .context("subscribing to the answer inbox")?;
    let mut headers = async_nats::HeaderMap::new();
    if let Some(token) = token {
        let token: async_nats::HeaderValue = token
            .parse()
            .map_err(|_| anyhow::anyhow!("the admin token must be a single line"))?;
        headers.insert(ADMIN_TOKEN, token);
    }
    client
        .publish_with_reply_and_headers(subject.clone(), inbox, headers, command.to_string().into())
        .await
        .with_context(|| format!("sending the command to {subject}"))?;
    client.flush().await.context("flushing the command")?;
    let mut out = Vec::new();
    let mut wait = FIRST_ANSWER;
    while let Ok(Some(answer)) = tokio::time::timeout(wait, answers.next()).await {
        // The server's "no responders" status: nobody listens (admin off).
        if answer.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            break;
        }
        wait = quiet;
        let message = crate::transport::nats::from_nats(answer);
        out.push(match CallError::from_reply(&message) {
            Some(e) => Err(e),
            None => serde_json::from_slice(&message.body)
                .map_err(|e| CallError::new(ErrorKind::Transport, format!("an answer is not JSON: {e}"))),
        });
    }
    Ok(out)
}

/// `berth admin` commands; see [`crate::control::admin::Command`].
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
    pub(super) fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Info => json!({ "command": "info" }),
            Self::Suspend { component } => json!({ "command": "suspend", "component": component }),
            Self::Resume { component } => json!({ "command": "resume", "component": component }),
            Self::Concurrency { component, value } => {
                json!({ "command": "concurrency", "component": component, "value": value })
            }
            Self::Swap { component, path, label } => {
                json!({ "command": "swap", "component": component, "path": path, "label": label })
            }
            Self::Drain => json!({ "command": "drain" }),
        }
    }
}
