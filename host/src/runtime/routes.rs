//! The routes a component declares (`berth:backend/routes`): asked once
//! at load, checked against its manifest entry by the app layer, and named
//! in its `unhandled` errors.

use super::bindings::routes;
use super::component::{Instance, WasmHandler};
use crate::core::error::CallError;
use crate::core::handler::DeclaredRoute;

impl WasmHandler {
    /// The routes it declares, after `init` (they may depend on its
    /// config); none if it does not export them.
    pub fn routes(&self) -> &[DeclaredRoute] {
        &self.declared
    }

    /// Asks an instance for its routes, once, at load.
    pub(super) async fn declared_routes(&self, instance: &mut Instance) -> Result<Vec<DeclaredRoute>, CallError> {
        let Some(routes) = self.export(&self.exports().routes, instance, |l| &mut l.routes)? else {
            return Ok(Vec::new());
        };
        let call = routes.call_routes(&mut instance.store);
        let declared = match tokio::time::timeout(self.settings.timeout, call).await {
            Err(_) => return Err(self.timeout_error("routes")),
            Ok(Err(e)) => return Err(self.trapped(instance, &e)),
            Ok(Ok(declared)) => declared,
        };
        Ok(declared
            .into_iter()
            .map(|r| DeclaredRoute {
                pattern: r.pattern,
                request: r.kind == routes::RouteKind::Request,
            })
            .collect())
    }

    /// An `unhandled` error that names what the component does handle.
    pub(super) fn with_routes(&self, mut e: CallError) -> CallError {
        if !self.declared.is_empty() {
            e.message = format!(
                "{}; component `{}` handles: {}",
                e.message,
                self.env.name,
                DeclaredRoute::list(&self.declared)
            );
        }
        e
    }
}
