//! `GET /metrics`: the host's counters in the Prometheus text format.
//!
//! The counters already live in atomics (the router's stats, the breaker,
//! the transports); this module only renders a snapshot of them at scrape
//! time, so a scrape costs the hot path nothing. Each family is one row of
//! a table below. Names follow Prometheus conventions: `_total` for
//! counters, base units (seconds).

mod ingress;
mod text;

use std::fmt::Write;

use super::auth::Auth;
use crate::app::App;
use crate::ingress::Ingress;
use crate::keyvalue::guarded::{Op, OpStats};
use crate::router::Route;
use crate::router::stats::{LATENCY_BUCKETS, StatsSnapshot};
use crate::transport::TransportStatus;
use text::{escape, header, sample};

/// A family with one sample per component.
struct PerComponent {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Route, &StatsSnapshot) -> f64,
}

const PER_COMPONENT: &[PerComponent] = &[
    PerComponent {
        name: "berth_requests_total",
        kind: "counter",
        help: "Requests handled by the component, successfully or not.",
        value: |_, s| s.requests as f64,
    },
    PerComponent {
        name: "berth_events_total",
        kind: "counter",
        help: "Events handled by the component, successfully or not.",
        value: |_, s| s.events as f64,
    },
    PerComponent {
        name: "berth_errors_total",
        kind: "counter",
        help: "Calls that ended with an error.",
        value: |_, s| s.errors as f64,
    },
    PerComponent {
        name: "berth_quarantines_total",
        kind: "counter",
        help: "Times the component was quarantined for trapping or timing out.",
        value: |r, _| r.breaker.status().quarantines as f64,
    },
    PerComponent {
        name: "berth_forbidden_total",
        kind: "counter",
        help: "Outbound calls refused by the component's grants.",
        value: |_, s| s.forbidden as f64,
    },
    PerComponent {
        name: "berth_batches_total",
        kind: "counter",
        help: "Calls into the component that carried several messages.",
        value: |_, s| s.batches as f64,
    },
    PerComponent {
        name: "berth_batched_messages_total",
        kind: "counter",
        help: "Messages answered in calls that carried several.",
        value: |_, s| s.batched as f64,
    },
    PerComponent {
        name: "berth_batch_failures_total",
        kind: "counter",
        help: "Batches that failed as a whole; their messages ran one call each.",
        value: |_, s| s.batch_failures as f64,
    },
    PerComponent {
        name: "berth_demotions_total",
        kind: "counter",
        help: "Calls slowed to a tenth of a core for computing too long without returning.",
        value: |_, s| s.demotions as f64,
    },
    PerComponent {
        name: "berth_call_seconds_total",
        kind: "counter",
        help: "Wall time spent in calls.",
        value: |_, s| s.busy_ns as f64 / 1e9,
    },
    PerComponent {
        name: "berth_in_flight",
        kind: "gauge",
        help: "Calls running now.",
        value: |_, s| s.in_flight as f64,
    },
    PerComponent {
        name: "berth_serving",
        kind: "gauge",
        help: "1 while the component takes messages, 0 while quarantined or suspended.",
        value: |r, _| f64::from(u8::from(r.breaker.is_serving())),
    },
    PerComponent {
        name: "berth_swaps_total",
        kind: "counter",
        help: "Version switches: swaps and rollbacks.",
        value: |r, _| r.versions.status().swaps as f64,
    },
];

/// A family with one sample per transport.
struct PerTransport {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&TransportStatus) -> f64,
}

const PER_TRANSPORT: &[PerTransport] = &[
    PerTransport {
        name: "berth_transport_connected",
        kind: "gauge",
        help: "1 while the broker connection is up.",
        value: |t| f64::from(u8::from(t.connected)),
    },
    PerTransport {
        name: "berth_slow_consumer_events_total",
        kind: "counter",
        help: "Times the broker client reported dropping messages for a slow consumer.",
        value: |t| t.slow_consumer_events as f64,
    },
    PerTransport {
        name: "berth_transport_malformed_total",
        kind: "counter",
        help: "Messages from the broker dropped because they could not be read; the connection stayed up.",
        value: |t| t.malformed as f64,
    },
    PerTransport {
        name: "berth_transport_reconnects_total",
        kind: "counter",
        help: "Times the broker connection was lost and made again.",
        value: |t| t.reconnects as f64,
    },
];

/// The exposition text for one scrape; `auth` counts the refused operator
/// calls, `ingress` the `[[http.routes]]` and the gateway.
pub fn render(app: &App, ingress: &Ingress, auth: &Auth) -> String {
    let mut out = String::new();
    let components: Vec<(&Route, String, StatsSnapshot)> = app
        .routes
        .iter()
        .map(|r| (&**r, component_labels(&app.name, &r.name), r.stats.snapshot()))
        .collect();
    for family in PER_COMPONENT {
        header(&mut out, family.name, family.kind, family.help);
        for (route, labels, snapshot) in &components {
            sample(&mut out, family.name, labels, (family.value)(route, snapshot));
        }
    }
    let name = "berth_component_failed";
    header(
        &mut out,
        name,
        "gauge",
        "1 for a component that failed to load or init; the others serve.",
    );
    for failed in &app.failed {
        sample(&mut out, name, &component_labels(&app.name, &failed.name), 1.0);
    }
    let name = "berth_messages_received_total";
    header(
        &mut out,
        name,
        "counter",
        "Messages taken from each of the component's subscriptions.",
    );
    for (route, labels, _) in &components {
        for endpoint in route.endpoints().iter() {
            let labels = format!("{labels},subscription=\"{}\"", escape(&endpoint.subject));
            sample(&mut out, name, &labels, endpoint.snapshot().received as f64);
        }
    }
    let name = "berth_errors_by_kind_total";
    header(
        &mut out,
        name,
        "counter",
        "Calls that ended with an error, by kind (handler, timeout, trap, ...).",
    );
    for (route, labels, _) in &components {
        for (kind, n) in route.stats.errors_by_kind() {
            let labels = format!("{labels},kind=\"{}\"", kind.as_str());
            sample(&mut out, name, &labels, n as f64);
        }
    }
    histogram(&mut out, &components);
    let name = "berth_operator_refusals_total";
    header(
        &mut out,
        name,
        "counter",
        "Operator calls refused by the authorization rule, on every way in.",
    );
    sample(
        &mut out,
        name,
        &format!("service=\"{}\"", escape(&app.name)),
        auth.refusals() as f64,
    );
    let transports = app.transport_status();
    for family in PER_TRANSPORT {
        header(&mut out, family.name, family.kind, family.help);
        for t in &transports {
            let labels = format!("service=\"{}\",transport=\"{}\"", escape(&app.name), t.kind);
            sample(&mut out, family.name, &labels, (family.value)(t));
        }
    }
    keyvalue(&mut out, app);
    warm(&mut out, app);
    ingress::render(&mut out, app, ingress);
    out
}

/// The host's warm instances against `[host] max_warm_mb`.
fn warm(out: &mut String, app: &App) {
    let stats = app.warm();
    let labels = format!("service=\"{}\"", escape(&app.name));
    let families = [
        (
            "berth_warm_instances",
            "gauge",
            "Idle instances kept warm, all components together.",
            stats.instances as f64,
        ),
        (
            "berth_warm_bytes",
            "gauge",
            "Linear memory of the idle warm instances.",
            stats.bytes as f64,
        ),
        (
            "berth_warm_budget_bytes",
            "gauge",
            "[host] max_warm_mb, in bytes.",
            stats.budget as f64,
        ),
        (
            "berth_instance_slots",
            "gauge",
            "Component instances that may exist at once, running or warm ([host] instance_slots).",
            f64::from(app.capacity().slots),
        ),
        (
            "berth_warm_evictions_total",
            "counter",
            "Warm instances dropped to stay within the budget or to free a pool slot; the component's next call makes a new one.",
            stats.evictions as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        header(out, name, kind, help);
        sample(out, name, &labels, value);
    }
}

/// A family with one sample per bucket and operation.
struct PerBucketOp {
    name: &'static str,
    help: &'static str,
    value: fn(&OpStats) -> f64,
}

const PER_BUCKET_OP: &[PerBucketOp] = &[
    PerBucketOp {
        name: "berth_kv_calls_total",
        help: "Key-value calls components made, by bucket and operation.",
        value: |s| s.calls as f64,
    },
    PerBucketOp {
        name: "berth_kv_errors_total",
        help: "Key-value calls that failed, by bucket and operation.",
        value: |s| s.errors as f64,
    },
    PerBucketOp {
        name: "berth_kv_seconds_total",
        help: "Wall time spent in key-value calls, by bucket and operation.",
        value: |s| s.seconds,
    },
];

/// The key-value families; nothing when the host has no bucket.
fn keyvalue(out: &mut String, app: &App) {
    let buckets: Vec<_> = app.buckets().iter().collect();
    if buckets.is_empty() {
        return;
    }
    let stats: Vec<(String, Vec<(Op, OpStats)>)> = buckets
        .iter()
        .map(|b| {
            let labels = format!(
                "service=\"{}\",bucket=\"{}\",backend=\"{}\"",
                escape(&app.name),
                escape(&b.name),
                b.backend
            );
            (labels, b.stats().collect())
        })
        .collect();
    for family in PER_BUCKET_OP {
        header(out, family.name, "counter", family.help);
        for (labels, ops) in &stats {
            for (op, s) in ops {
                sample(
                    out,
                    family.name,
                    &format!("{labels},op=\"{}\"", op.name()),
                    (family.value)(s),
                );
            }
        }
    }
}

fn component_labels(service: &str, component: &str) -> String {
    format!("service=\"{}\",component=\"{}\"", escape(service), escape(component))
}

/// `berth_call_duration_seconds`: a histogram per component.
fn histogram(out: &mut String, components: &[(&Route, String, StatsSnapshot)]) {
    let name = "berth_call_duration_seconds";
    header(out, name, "histogram", "Wall time of calls into the component.");
    for (route, labels, snapshot) in components {
        let counts = route.stats.latency_cumulative();
        let bounds = LATENCY_BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_owned()));
        for (le, n) in bounds.zip(&counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", snapshot.busy_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", counts.last().copied().unwrap_or(0));
    }
}
