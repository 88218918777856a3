//! `GET /metrics`: the host's counters in the Prometheus text format.
//!
//! The counters already live in atomics ([`crate::stats::Stats`], the
//! breaker, the transports); this module only renders a snapshot of them at
//! scrape time, so a scrape costs the hot path nothing. Names follow
//! Prometheus conventions: `_total` for counters, base units (seconds).

use std::fmt::Write;

use crate::host::Shared;
use crate::stats::LATENCY_BUCKETS;

/// The exposition text for one scrape.
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let per_component = |f: &dyn Fn(&crate::router::Route) -> f64| -> Vec<(String, f64)> {
        shared
            .routes
            .iter()
            .map(|r| (component_labels(&shared.name, &r.name), f(r)))
            .collect()
    };
    let snapshot = |r: &crate::router::Route| r.stats.snapshot();
    family(
        "berth_requests_total",
        "counter",
        "Requests handled by the component, successfully or not.",
        per_component(&|r| snapshot(r).requests as f64),
    );
    family(
        "berth_events_total",
        "counter",
        "Events handled by the component, successfully or not.",
        per_component(&|r| snapshot(r).events as f64),
    );
    family(
        "berth_messages_received_total",
        "counter",
        "Messages taken from each of the component's subscriptions.",
        shared
            .routes
            .iter()
            .flat_map(|r| {
                r.received().map(|(subject, n)| {
                    let labels = format!(
                        "{},subscription=\"{}\"",
                        component_labels(&shared.name, &r.name),
                        escape(subject)
                    );
                    (labels, n as f64)
                })
            })
            .collect(),
    );
    family(
        "berth_errors_total",
        "counter",
        "Calls that ended with an error.",
        per_component(&|r| snapshot(r).errors as f64),
    );
    family(
        "berth_errors_by_kind_total",
        "counter",
        "Calls that ended with an error, by kind (handler, timeout, trap, ...).",
        shared
            .routes
            .iter()
            .flat_map(|r| {
                r.stats.errors_by_kind().map(|(kind, n)| {
                    let labels = format!("{},kind=\"{}\"", component_labels(&shared.name, &r.name), kind.as_str());
                    (labels, n as f64)
                })
            })
            .collect(),
    );
    family(
        "berth_quarantines_total",
        "counter",
        "Times the component was quarantined for trapping or timing out.",
        per_component(&|r| r.breaker.status().quarantines as f64),
    );
    family(
        "berth_forbidden_total",
        "counter",
        "Outbound calls refused by the component's grants.",
        per_component(&|r| snapshot(r).forbidden as f64),
    );
    family(
        "berth_batches_total",
        "counter",
        "Calls into the component that carried several messages.",
        per_component(&|r| snapshot(r).batches as f64),
    );
    family(
        "berth_batched_messages_total",
        "counter",
        "Messages answered in calls that carried several.",
        per_component(&|r| snapshot(r).batched as f64),
    );
    family(
        "berth_batch_failures_total",
        "counter",
        "Batches that failed as a whole; their messages ran one call each.",
        per_component(&|r| snapshot(r).batch_failures as f64),
    );
    family(
        "berth_call_seconds_total",
        "counter",
        "Wall time spent in calls.",
        per_component(&|r| snapshot(r).busy_ns as f64 / 1e9),
    );
    histogram(&mut out, shared);
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    family(
        "berth_in_flight",
        "gauge",
        "Calls running now.",
        per_component(&|r| snapshot(r).in_flight as f64),
    );
    family(
        "berth_serving",
        "gauge",
        "1 while the component takes messages, 0 while quarantined or suspended.",
        per_component(&|r| {
            f64::from(u8::from(!matches!(
                r.breaker.status().state,
                "quarantined" | "suspended"
            )))
        }),
    );
    family(
        "berth_swaps_total",
        "counter",
        "Version switches: swaps and rollbacks.",
        per_component(&|r| r.versions.status().swaps as f64),
    );
    let transports: Vec<_> = shared.transports.iter().map(|t| t.status()).collect();
    family(
        "berth_transport_connected",
        "gauge",
        "1 while the broker connection is up.",
        transports
            .iter()
            .map(|t| {
                (
                    format!("service=\"{}\",transport=\"{}\"", escape(&shared.name), t.kind),
                    f64::from(u8::from(t.connected)),
                )
            })
            .collect(),
    );
    family(
        "berth_slow_consumer_events_total",
        "counter",
        "Times the broker client reported dropping messages for a slow consumer.",
        transports
            .iter()
            .map(|t| {
                (
                    format!("service=\"{}\",transport=\"{}\"", escape(&shared.name), t.kind),
                    t.slow_consumer_events as f64,
                )
            })
            .collect(),
    );
    family(
        "berth_transport_reconnects_total",
        "counter",
        "Times the broker connection was lost and made again.",
        transports
            .iter()
            .map(|t| {
                (
                    format!("service=\"{}\",transport=\"{}\"", escape(&shared.name), t.kind),
                    t.reconnects as f64,
                )
            })
            .collect(),
    );
    out
}

fn component_labels(service: &str, component: &str) -> String {
    format!("service=\"{}\",component=\"{}\"", escape(service), escape(component))
}

/// `berth_call_duration_seconds`: a histogram per component.
fn histogram(out: &mut String, shared: &Shared) {
    let name = "berth_call_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Wall time of calls into the component.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for r in &shared.routes {
        let labels = component_labels(&shared.name, &r.name);
        let counts = r.stats.latency_cumulative();
        let bounds = LATENCY_BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_owned()));
        for (le, n) in bounds.zip(&counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            r.stats.snapshot().busy_ns as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", counts.last().copied().unwrap_or(0));
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
