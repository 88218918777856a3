//! The ingress families of `/metrics`: each `[[http.routes]]` route's
//! requests by status class, and the gateway's connections, nodes,
//! requests by direction and failures by kind.

use super::text::{escape, header, sample};
use crate::app::App;
use crate::ingress::Ingress;
use crate::ingress::gateway::Gateway;
use crate::ingress::http::Routes;
use crate::ingress::http::counters::CLASSES;

/// Appends the families of whatever ingress the host has.
pub(super) fn render(out: &mut String, app: &App, ingress: &Ingress) {
    http_routes(out, app, &ingress.routes);
    if let Some(gateway) = &ingress.gateway {
        gateway_families(out, app, gateway);
    }
}

/// The route families; nothing when the host has no route.
fn http_routes(out: &mut String, app: &App, routes: &Routes) {
    let routes = routes.counters();
    if routes.is_empty() {
        return;
    }
    let labels = |path: &str, methods: &str| {
        format!(
            "service=\"{}\",route=\"{}\",methods=\"{}\"",
            escape(&app.name),
            escape(path),
            escape(methods)
        )
    };
    let name = "berth_http_requests_total";
    header(out, name, "counter", "Requests a route answered, by status class.");
    for (path, methods, s) in &routes {
        for (class, n) in CLASSES.iter().zip(s.by_class) {
            sample(
                out,
                name,
                &format!("{},status=\"{class}\"", labels(path, methods)),
                n as f64,
            );
        }
    }
    let name = "berth_http_request_seconds_total";
    header(out, name, "counter", "Wall time spent answering a route's requests.");
    for (path, methods, s) in &routes {
        sample(out, name, &labels(path, methods), s.seconds);
    }
    let name = "berth_http_requests_in_flight";
    header(out, name, "gauge", "Requests a route is answering now.");
    for (path, methods, s) in &routes {
        sample(out, name, &labels(path, methods), s.in_flight as f64);
    }
}

/// The gateway's families.
fn gateway_families(out: &mut String, app: &App, gateway: &Gateway) {
    let service = format!("service=\"{}\"", escape(&app.name));
    let (snapshot, nodes) = gateway.counters();
    let name = "berth_gateway_connections";
    header(out, name, "gauge", "WebSocket connections the gateway holds now.");
    sample(out, name, &service, snapshot.connections as f64);
    let name = "berth_gateway_connections_total";
    header(out, name, "counter", "WebSocket connections the gateway accepted.");
    sample(out, name, &service, snapshot.connections_total as f64);
    let name = "berth_gateway_nodes";
    header(out, name, "gauge", "Nodes (distinct node ids) this host holds now.");
    sample(out, name, &service, nodes as f64);
    let name = "berth_gateway_requests_total";
    header(out, name, "counter", "Gateway requests, by direction.");
    for (direction, n) in &snapshot.requests {
        sample(out, name, &format!("{service},direction=\"{direction}\""), *n as f64);
    }
    let name = "berth_gateway_errors_total";
    header(out, name, "counter", "Gateway failures, by kind.");
    for (kind, n) in &snapshot.errors {
        sample(out, name, &format!("{service},kind=\"{kind}\""), *n as f64);
    }
}
