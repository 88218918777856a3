//! Admin commands over the broker, as Strata's service commands: an
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
//! With `[host] admin_token` set, a request must carry it in the
//! `berth-admin-token` header. Answers are JSON; refusals are error replies
//! (401, 403, 400, 404, 422) in Berth's usual error shape.

use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{CallError, ErrorKind};
use crate::host::{Shared, SwapError, SwapRequest};
use crate::transport::{Delivery, Settlement, SubscribeOptions};

/// Header an admin request carries its token in.
pub const TOKEN_HEADER: &str = "berth-admin-token";

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

/// Subscribes the admin subjects on every transport and answers until `stop`.
pub async fn start(shared: Arc<Shared>, tasks: &TaskTracker, stop: CancellationToken) -> Result<()> {
    for transport in &shared.transports {
        for subject in [service_subject(&shared.name), host_subject(&shared.name, &shared.id)] {
            let mut subscription = transport
                .subscribe(SubscribeOptions {
                    pattern: subject.clone(),
                    group: None,
                    capacity: 16,
                    ..SubscribeOptions::default()
                })
                .await
                .with_context(|| format!("subscribing to `{subject}` on {}", transport.kind()))?;
            let (shared, stop) = (shared.clone(), stop.clone());
            tasks.spawn(async move {
                loop {
                    let delivery = tokio::select! {
                        _ = stop.cancelled() => break,
                        d = subscription.next() => match d {
                            Some(d) => d,
                            None => break,
                        },
                    };
                    answer(&shared, delivery).await;
                }
            });
        }
    }
    Ok(())
}

async fn answer(shared: &Shared, delivery: Delivery) {
    let Delivery { message, mut acker } = delivery;
    let outcome = match authorize(shared, message.header(TOKEN_HEADER)) {
        Err(e) => Err(e),
        Ok(()) => match serde_json::from_slice::<Command>(&message.body) {
            Err(e) => Err(refuse(400, format!("not an admin command: {e}"))),
            Ok(command) => execute(shared, command).await,
        },
    };
    let reply = match &outcome {
        Ok(body) => message.reply(
            body.to_string(),
            vec![("content-type".into(), "application/json".into())],
        ),
        Err(e) => e.to_reply(&message),
    };
    if let Some(reply) = reply
        && let Err(e) = acker.reply(reply).await
    {
        tracing::warn!(error = %e, "could not answer an admin command");
    }
    if let Err(e) = acker.settle(Settlement::Ack).await {
        tracing::debug!(error = %e, "could not settle an admin command");
    }
    // Drain after the answer is out: the caller learns it was accepted.
    if let Ok(body) = &outcome
        && body["draining"] == json!(true)
    {
        shared.drain.cancel();
    }
}

fn authorize(shared: &Shared, given: Option<&str>) -> Result<(), CallError> {
    match (&shared.admin_token, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(refuse(401, format!("admin commands need the `{TOKEN_HEADER}` header"))),
        (Some(want), Some(got)) if want == got => Ok(()),
        (Some(_), Some(_)) => Err(refuse(403, "wrong admin token")),
    }
}

async fn execute(shared: &Shared, command: Command) -> Result<Value, CallError> {
    tracing::info!(?command, "admin command");
    let route = |name: &str| {
        shared
            .routes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| refuse(404, format!("no component named `{name}` on this host")))
    };
    let component = |name: &str| {
        shared
            .component_list()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or(Value::Null)
    };
    match command {
        Command::Info => Ok(info(shared)),
        Command::Suspend { component: name } => {
            route(&name)?.breaker.suspend("suspended by an operator");
            Ok(json!({ "host": shared.id, "component": component(&name) }))
        }
        Command::Resume { component: name } => {
            route(&name)?.breaker.resume();
            Ok(json!({ "host": shared.id, "component": component(&name) }))
        }
        Command::Concurrency { component: name, value } => {
            if value == 0 {
                return Err(refuse(400, "concurrency must be at least 1"));
            }
            route(&name)?.set_concurrency(value);
            Ok(json!({ "host": shared.id, "component": component(&name) }))
        }
        Command::Swap {
            component: name,
            path,
            wasm_base64,
            label,
            config,
        } => {
            let wasm = match (path, wasm_base64) {
                (Some(path), None) => {
                    std::fs::read(&path).map_err(|e| refuse(400, format!("cannot read {}: {e}", path.display())))?
                }
                (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| refuse(400, format!("wasm_base64 is not base64: {e}")))?,
                _ => return Err(refuse(400, "swap needs exactly one of `path` and `wasm_base64`")),
            };
            match shared
                .swap(
                    &name,
                    SwapRequest {
                        wasm: wasm.into(),
                        label,
                        config,
                    },
                )
                .await
            {
                Ok(report) => Ok(json!({ "host": shared.id, "swap": report })),
                Err(e @ SwapError::NotFound(_)) => Err(refuse(404, e.to_string())),
                Err(e @ SwapError::Refused { .. }) => Err(refuse(422, e.to_string())),
            }
        }
        Command::Drain => Ok(json!({ "host": shared.id, "draining": true })),
    }
}

/// What `info` answers: the health document plus the host's id.
pub fn info(shared: &Shared) -> Value {
    let mut body = shared.health().1;
    body["id"] = json!(shared.id);
    body
}

fn refuse(code: u16, message: impl Into<String>) -> CallError {
    let mut e = CallError::new(ErrorKind::Handler, message);
    e.code = code;
    e.name = match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Unprocessable Entity",
    }
    .into();
    e
}

/// Sends `command` over NATS to every host of `service`, or to the one
/// with id `host`, and returns each host's answer, waiting until `quiet`
/// passes without a new one. For `berth admin`.
pub async fn ask(
    client: &async_nats::Client,
    service: &str,
    host: Option<&str>,
    command: &Value,
    token: Option<&str>,
    quiet: std::time::Duration,
) -> Result<Vec<Result<Value, CallError>>> {
    use futures_util::StreamExt;
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
        headers.insert(TOKEN_HEADER, token);
    }
    client
        .publish_with_reply_and_headers(subject.clone(), inbox, headers, command.to_string().into())
        .await
        .with_context(|| format!("sending the command to {subject}"))?;
    client.flush().await.context("flushing the command")?;
    let mut out = Vec::new();
    while let Ok(Some(answer)) = tokio::time::timeout(quiet, answers.next()).await {
        // The server's "no responders" status: nobody listens (admin off).
        if answer.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            continue;
        }
        let message = crate::transport::nats::from_nats(answer);
        out.push(match CallError::from_reply(&message) {
            Some(e) => Err(e),
            None => serde_json::from_slice(&message.body).map_err(|e| refuse(400, format!("answer is not JSON: {e}"))),
        });
    }
    Ok(out)
}
