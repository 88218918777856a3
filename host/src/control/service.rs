//! The NATS service API (ADR-32), so `nats micro ls`-style tooling lists
//! and monitors each component as a service.
//!
//! Each component is a service named after it, with one endpoint per
//! subscription. PING, INFO and STATS answer on `$SRV.<VERB>`,
//! `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>`. The service version
//! is the component's label when it is a semantic version and `0.0.0`
//! otherwise; the content hash is in the metadata.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::answer_on;
use crate::app::App;
use crate::router::Route;

/// The verbs of the protocol.
#[derive(Clone, Copy)]
enum Verb {
    Ping,
    Info,
    Stats,
}

impl Verb {
    const ALL: [Verb; 3] = [Verb::Ping, Verb::Info, Verb::Stats];

    fn name(self) -> &'static str {
        match self {
            Verb::Ping => "PING",
            Verb::Info => "INFO",
            Verb::Stats => "STATS",
        }
    }
}

/// Answers the service API for every component on each NATS transport
/// until `stop`.
pub(super) async fn start(app: &Arc<App>, tasks: &TaskTracker, stop: &CancellationToken) -> Result<()> {
    let started = humantime_now();
    for transport in app.transports.iter().filter(|t| t.kind() == "nats") {
        for (i, route) in app.routes.iter().enumerate() {
            for verb in Verb::ALL {
                // The bare verb reaches every service at once: each
                // component answers it too.
                for subject in [
                    format!("$SRV.{}", verb.name()),
                    format!("$SRV.{}.{}", verb.name(), route.name),
                    format!("$SRV.{}.{}.{}", verb.name(), route.name, app.id),
                ] {
                    let (app, started) = (app.clone(), started.clone());
                    answer_on(transport, subject, tasks, stop, move |_| {
                        let route = &app.routes[i];
                        let body = match verb {
                            Verb::Ping => common("ping_response", &app, route),
                            Verb::Info => info(&app, route),
                            Verb::Stats => stats(&app, route, &started),
                        };
                        async move { Ok(body) }
                    })
                    .await?;
                }
            }
        }
    }
    Ok(())
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

fn common(kind: &str, app: &App, route: &Route) -> Value {
    let version = route.versions.active();
    json!({
        "type": format!("io.nats.micro.v1.{kind}"),
        "name": route.name,
        "id": app.id,
        "version": semver(version.label.as_deref()),
        "metadata": {
            "berth.host": app.name,
            "berth.version": version.hash,
            "berth.label": version.label.clone().unwrap_or_default(),
        },
    })
}

fn info(app: &App, route: &Route) -> Value {
    let mut v = common("info_response", app, route);
    v["description"] = json!(format!("Berth component `{}` on service `{}`", route.name, app.name));
    v["endpoints"] = route
        .endpoints()
        .iter()
        .map(|e| json!({ "name": e.name, "subject": e.subject, "queue_group": queue_group(app, route), "metadata": null }))
        .collect();
    v
}

/// Each endpoint's own counts: the calls for messages its subscription
/// took. `data` is left out, as the schema (an object if present) allows.
fn stats(app: &App, route: &Route, started: &str) -> Value {
    let mut v = common("stats_response", app, route);
    v["started"] = json!(started);
    v["endpoints"] = route
        .endpoints()
        .iter()
        .map(|e| {
            let s = e.snapshot();
            json!({
                "name": e.name,
                "subject": e.subject,
                "queue_group": queue_group(app, route),
                "num_requests": s.received,
                "num_errors": s.errors,
                "last_error": s.last_error,
                "processing_time": s.busy_ns,
                "average_processing_time": s.busy_ns.checked_div(s.handled).unwrap_or(0),
            })
        })
        .collect();
    v
}

fn queue_group(app: &App, route: &Route) -> String {
    format!("{}.{}", app.name, route.name)
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
    }
}
