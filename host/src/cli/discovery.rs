//! `berth services`: every Berth host reachable on a NATS server, with its
//! components and their versions, like Strata's list of services.
//!
//! It asks `$SRV.INFO` (the NATS service protocol, which every host answers
//! for each of its components, see the control layer's NATS service API) and gathers the
//! answers until none has come for a short while. The list is live: a host
//! that stopped answering is simply not in it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde::Serialize;

/// One component of one host, as its `$SRV.INFO` answer describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentSeen {
    /// The component's name.
    pub name: String,
    /// Content hash of the version serving.
    pub version: String,
    /// Its label, if any.
    pub label: String,
    /// The subjects it serves.
    pub subjects: Vec<String>,
}

/// One host (one running `berth` process) and its components.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostSeen {
    /// The service name (`[host] name`).
    pub service: String,
    /// The host's instance id.
    pub id: String,
    /// Its components, by name.
    pub components: Vec<ComponentSeen>,
}

/// Asks every service on `client`'s server and returns the Berth hosts
/// that answered, waiting until `quiet` passes without a new answer.
pub async fn services(client: &async_nats::Client, quiet: Duration) -> Result<Vec<HostSeen>> {
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .context("subscribing to the answer inbox")?;
    client
        .publish_with_reply("$SRV.INFO", inbox, bytes::Bytes::new())
        .await
        .context("asking $SRV.INFO")?;
    client.flush().await.context("flushing the question")?;
    let mut hosts: BTreeMap<(String, String), Vec<ComponentSeen>> = BTreeMap::new();
    while let Ok(Some(answer)) = tokio::time::timeout(quiet, answers.next()).await {
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&answer.payload) else {
            continue;
        };
        let Some(service) = info["metadata"]["berth.host"].as_str() else {
            continue; // a NATS service that is not a Berth host
        };
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let component = ComponentSeen {
            name: text(&info["name"]),
            version: text(&info["metadata"]["berth.version"]),
            label: text(&info["metadata"]["berth.label"]),
            subjects: info["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| text(&e["subject"]))
                .collect(),
        };
        let entry = hosts.entry((service.to_owned(), text(&info["id"]))).or_default();
        if !entry.contains(&component) {
            entry.push(component);
        }
    }
    Ok(hosts
        .into_iter()
        .map(|((service, id), mut components)| {
            components.sort_by(|a, b| a.name.cmp(&b.name));
            HostSeen {
                service,
                id,
                components,
            }
        })
        .collect())
}
