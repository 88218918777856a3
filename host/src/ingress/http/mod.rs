//! `[[http.routes]]` on the host's HTTP listener: each request to a
//! route's path goes through its middleware and guard to its subject, and
//! the reply comes back as the response (see [`forward`] for the headers
//! a handler sees and may set).
//!
//! The table is replaced whole when the manifest's routes change (`berth
//! dev`), while requests keep coming: each request looks its route up
//! once, in the table of the moment it came.

use std::sync::Arc;

use anyhow::Result;
use arc_swap::ArcSwap;
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::App;
use crate::manifest::Manifest;

pub mod counters;
pub mod describe;
pub mod forward;
pub mod table;

use table::{Lookup, Table};

/// The routes a host serves, replaceable while it runs.
pub struct Routes {
    table: ArcSwap<Table>,
}

impl Routes {
    /// The manifest's routes, compiled against the running host.
    pub fn new(manifest: &Manifest, app: &App) -> Result<Self> {
        Ok(Self {
            table: ArcSwap::from_pointee(Table::build(manifest, app, None)?),
        })
    }

    /// Serves `manifest`'s routes from now on; routes that stay keep their
    /// counters. On an error the old routes keep serving.
    pub fn replace(&self, manifest: &Manifest, app: &App) -> Result<()> {
        let new = Table::build(manifest, app, Some(&self.table.load()))?;
        self.table.store(Arc::new(new));
        Ok(())
    }

    /// Answers a request no API path took: a route's, a 405 or a 404.
    pub async fn handle(&self, request: Request) -> Response {
        let table = self.table.load_full();
        let (parts, body) = request.into_parts();
        match table.lookup(&parts.method, parts.uri.path()) {
            // Run to its end even if the client hangs up (`finish`).
            Lookup::Found(route, params) => {
                crate::ingress::finish::to_the_end(async move { route.serve(parts, body, params).await }).await
            }
            Lookup::WrongMethod(allow) => forward::wrong_method(parts.method.as_str(), parts.uri.path(), &allow),
            Lookup::NotFound => forward::not_found(parts.method.as_str(), parts.uri.path()),
            Lookup::BadParameter(why) => forward::failure(&crate::core::error::CallError {
                code: 400,
                name: "Bad Request".to_owned(),
                ..crate::core::error::CallError::new(crate::core::error::ErrorKind::Handler, why)
            }),
        }
    }

    /// Each route with its counters, for `/v1/routes` and metrics.
    pub fn status(&self) -> Vec<Value> {
        self.table
            .load()
            .routes()
            .map(|r| {
                let c = &r.config;
                json!({
                    "path": c.path,
                    "methods": c.methods,
                    "subject": c.subject,
                    "component": c.component,
                    "middleware": c.middleware,
                    "guard": r.guard.map(|g| g.as_str()),
                    "counters": r.counters.snapshot(),
                })
            })
            .collect()
    }

    /// Each route's path, methods and counters, for metrics.
    pub fn counters(&self) -> Vec<(String, String, counters::Snapshot)> {
        self.table
            .load()
            .routes()
            .map(|r| (r.config.path.clone(), r.config.methods.join(","), r.counters.snapshot()))
            .collect()
    }
}
