//! The host as seen on the broker: a health subject on every transport,
//! and on NATS the NATS service protocol (`$SRV.PING`, `$SRV.INFO`,
//! `$SRV.STATS`), so `nats micro ls`-style tooling lists and monitors each
//! component as a service.
//!
//! Health: `berth.health.<service>` answers with the same JSON as
//! `GET /health`; with `[host] telestion = true` the host also answers on
//! `__telestion__/health`, as Telestion services do. These subscriptions
//! are broadcasts (every host of a service answers); a request gets the
//! first answer, a discovery tool collects them all.
//!
//! NATS service protocol (ADR-32): each component is a service named after
//! it, with one endpoint per subscription. PING, INFO and STATS answer on
//! `$SRV.<VERB>`, `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>`. The
//! service version is the component's label when it is a semantic version
//! and `0.0.0` otherwise; the content hash is in the metadata.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::host::Shared;
use crate::router::Route;
use crate::transport::{Delivery, Settlement, SubscribeOptions};

/// The health subject of a service.
pub fn health_subject(service: &str) -> String {
    format!("berth.health.{service}")
}

/// Telestion's health subject.
pub const TELESTION_HEALTH: &str = "__telestion__/health";

/// What a subscription of this module answers.
#[derive(Clone)]
enum Answer {
    Health,
    Ping(usize),
    Info(usize),
    Stats(usize),
}

/// Subscribes the health subjects (and on NATS the service protocol) on
/// every transport of the host and answers until `stop`.
pub async fn start(shared: Arc<Shared>, telestion: bool, tasks: &TaskTracker, stop: CancellationToken) -> Result<()> {
    let id = shared.id.clone();
    let started = humantime_now();
    for transport in &shared.transports {
        let mut subjects = vec![(health_subject(&shared.name), Answer::Health)];
        if telestion {
            subjects.push((TELESTION_HEALTH.to_owned(), Answer::Health));
        }
        if transport.kind() == "nats" {
            for (i, route) in shared.routes.iter().enumerate() {
                for (verb, answer) in [
                    ("PING", Answer::Ping(i)),
                    ("INFO", Answer::Info(i)),
                    ("STATS", Answer::Stats(i)),
                ] {
                    subjects.push((format!("$SRV.{verb}.{}", route.name), answer.clone()));
                    subjects.push((format!("$SRV.{verb}.{}.{id}", route.name), answer.clone()));
                }
            }
            // The bare verbs reach every service at once: answer for each
            // component.
            for verb in ["PING", "INFO", "STATS"] {
                for i in 0..shared.routes.len() {
                    let answer = match verb {
                        "PING" => Answer::Ping(i),
                        "INFO" => Answer::Info(i),
                        _ => Answer::Stats(i),
                    };
                    subjects.push((format!("$SRV.{verb}"), answer));
                }
            }
        }
        for (subject, answer) in subjects {
            let subscription = transport
                .subscribe(SubscribeOptions {
                    pattern: subject.clone(),
                    group: None,
                    capacity: 16,
                    ..SubscribeOptions::default()
                })
                .await
                .with_context(|| format!("subscribing to `{subject}` on {}", transport.kind()))?;
            let (shared, stop, id, started) = (shared.clone(), stop.clone(), id.clone(), started.clone());
            tasks.spawn(async move {
                let mut subscription = subscription;
                loop {
                    let delivery = tokio::select! {
                        _ = stop.cancelled() => break,
                        d = subscription.next() => match d {
                            Some(d) => d,
                            None => break,
                        },
                    };
                    let body = match &answer {
                        Answer::Health => shared.health().1,
                        Answer::Ping(i) => ping(&shared, &shared.routes[*i], &id),
                        Answer::Info(i) => info(&shared, &shared.routes[*i], &id),
                        Answer::Stats(i) => stats(&shared, &shared.routes[*i], &id, &started),
                    };
                    answer_with(delivery, &body).await;
                }
            });
        }
    }
    Ok(())
}

async fn answer_with(delivery: Delivery, body: &Value) {
    let Delivery { message, mut acker } = delivery;
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(reply) = message.reply(body.to_string(), headers)
        && let Err(e) = acker.reply(reply).await
    {
        tracing::debug!(error = %e, subject = %message.subject, "could not answer a service request");
    }
    if let Err(e) = acker.settle(Settlement::Ack).await {
        tracing::debug!(error = %e, "could not settle a service request");
    }
}

/// Unique enough per host start: service, process and start time.
pub(crate) fn instance_id(service: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service
        .bytes()
        .chain(std::process::id().to_le_bytes())
        .chain(nanos.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

fn humantime_now() -> String {
    // RFC 3339 in UTC without a date crate: seconds since the epoch are
    // enough for tooling to show "started"; the format is what ADR-32 asks.
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn semver(label: Option<&str>) -> String {
    match label {
        Some(l)
            if l.split('.').count() == 3
                && l.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) =>
        {
            l.to_owned()
        }
        _ => "0.0.0".to_owned(),
    }
}

fn common(kind: &str, shared: &Shared, route: &Route, id: &str) -> Value {
    let version = route.versions.active();
    json!({
        "type": format!("io.nats.micro.v1.{kind}"),
        "name": route.name,
        "id": id,
        "version": semver(version.label.as_deref()),
        "metadata": {
            "berth.host": shared.name,
            "berth.version": version.hash,
            "berth.label": version.label.clone().unwrap_or_default(),
        },
    })
}

fn endpoint_names(route: &Route) -> impl Iterator<Item = (String, &String)> {
    route
        .subjects
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{}-{i}", route.name), s))
}

fn ping(shared: &Shared, route: &Route, id: &str) -> Value {
    common("ping_response", shared, route, id)
}

fn info(shared: &Shared, route: &Route, id: &str) -> Value {
    let mut v = common("info_response", shared, route, id);
    v["description"] = json!(format!("Berth component `{}` on service `{}`", route.name, shared.name));
    v["endpoints"] = endpoint_names(route)
        .map(|(name, subject)| json!({ "name": name, "subject": subject, "queue_group": format!("{}.{}", shared.name, route.name), "metadata": null }))
        .collect();
    v
}

fn stats(shared: &Shared, route: &Route, id: &str, started: &str) -> Value {
    let mut v = common("stats_response", shared, route, id);
    let s = route.stats.snapshot();
    let calls = s.requests + s.events;
    // Counters are per component; with several subscriptions the first
    // endpoint carries them and the others report zero.
    v["started"] = json!(started);
    v["endpoints"] = endpoint_names(route)
        .enumerate()
        .map(|(i, (name, subject))| {
            let (n, errors, busy) = if i == 0 {
                (calls, s.errors, s.busy_ns)
            } else {
                (0, 0, 0)
            };
            json!({
                "name": name,
                "subject": subject,
                "queue_group": format!("{}.{}", shared.name, route.name),
                "num_requests": n,
                "num_errors": errors,
                "last_error": "",
                "processing_time": busy,
                "average_processing_time": busy.checked_div(n).unwrap_or(0),
                "data": null,
            })
        })
        .collect();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_versions() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(semver(Some("1.4.0")), "1.4.0");
        assert_eq!(semver(Some("v2")), "0.0.0");
        assert_eq!(semver(None), "0.0.0");
        assert_eq!(instance_id("a").len(), 16);
    }
}
