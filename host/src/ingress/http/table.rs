//! The routes as the listener looks them up: paths in axum's own router
//! (matchit), each path's routes by method, and each route compiled once
//! with its middleware, its target and its limits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::Method;

use super::counters::Counters;
use crate::app::App;
use crate::core::handler::Guard;
use crate::ingress::target::{DEFAULT_MAX_BODY, Resolver, SubjectTarget};
use crate::manifest::{GuardConfig, HttpRoute, Manifest};
use crate::router::Route;
use crate::router::chain::Chain;

/// How long a caller waits for a route's answer unless it sets `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One route, ready to serve.
pub struct Compiled {
    /// Its manifest entry.
    pub config: HttpRoute,
    /// The middleware its requests pass first.
    pub chain: Chain,
    /// The mark its guard wants, if any.
    pub guard: Option<Guard>,
    /// Who answers.
    pub target: Target,
    /// Largest request body.
    pub max_body: usize,
    /// How long the caller waits.
    pub timeout: Duration,
    /// Its counters.
    pub counters: Arc<Counters>,
}

/// Who answers a route.
pub enum Target {
    /// Whoever serves the subject.
    Subject(SubjectTarget),
    /// A `wasi:http` component, called directly.
    Component(Arc<Route>),
    /// A component the route needs failed to load: 503, with why.
    Failed(String),
}

/// What a request's method and path find.
pub enum Lookup {
    /// The route, and the path's parameters by name, decoded.
    Found(Arc<Compiled>, Vec<(String, String)>),
    /// A parameter that does not decode to text a header can carry.
    BadParameter(String),
    /// No route takes the path.
    NotFound,
    /// Routes take the path, but not the method: the ones they take, for
    /// `Allow`.
    WrongMethod(String),
}

/// Every route of the manifest.
#[derive(Default)]
pub struct Table {
    paths: matchit::Router<usize>,
    /// Each path's routes (a path may have one per method set).
    by_path: Vec<Vec<Arc<Compiled>>>,
}

impl Table {
    /// Compiles `manifest`'s routes against the running host; a route
    /// that was in `old` (same path and methods) keeps its counters.
    pub fn build(manifest: &Manifest, app: &App, old: Option<&Table>) -> Result<Self> {
        let mut table = Self::default();
        for config in &manifest.http.routes {
            let at = || format!("[[http.routes]] path `{}`", config.path);
            let counters = old
                .and_then(|old| old.find(&config.path, &config.methods))
                .map_or_else(Arc::default, |r| r.counters.clone());
            let compiled = Arc::new(compile(config, manifest, app, counters).with_context(at)?);
            match table.by_path.iter_mut().find(|rs| rs[0].config.path == config.path) {
                Some(routes) => routes.push(compiled),
                None => {
                    table
                        .paths
                        .insert(config.path.clone(), table.by_path.len())
                        .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                    table.by_path.push(vec![compiled]);
                }
            }
        }
        Ok(table)
    }

    /// The route for `method` on `path`. HEAD is taken by a route that
    /// takes GET.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup {
        let Ok(found) = self.paths.at(path) else {
            return Lookup::NotFound;
        };
        let Some(routes) = self.by_path.get(*found.value) else {
            return Lookup::NotFound;
        };
        let takes = |r: &Compiled, m: &str| r.config.methods.is_empty() || r.config.methods.iter().any(|x| x == m);
        let route = routes.iter().find(|r| takes(r, method.as_str())).or_else(|| {
            (method == Method::HEAD)
                .then(|| routes.iter().find(|r| takes(r, "GET")))
                .flatten()
        });
        match route {
            Some(route) => {
                let mut params = Vec::new();
                for (name, raw) in found.params.iter() {
                    match decode(raw) {
                        Some(value) => params.push((name.to_owned(), value)),
                        None => {
                            return Lookup::BadParameter(format!(
                                "path parameter `{name}` (`{raw}`) is not UTF-8 text without control characters"
                            ));
                        }
                    }
                }
                Lookup::Found(route.clone(), params)
            }
            None => {
                let mut allow: Vec<&str> = routes
                    .iter()
                    .flat_map(|r| r.config.methods.iter().map(String::as_str))
                    .collect();
                if allow.contains(&"GET") {
                    allow.push("HEAD");
                }
                allow.sort_unstable();
                allow.dedup();
                Lookup::WrongMethod(allow.join(", "))
            }
        }
    }

    /// Every route, in manifest order of their paths.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Compiled>> {
        self.by_path.iter().flatten()
    }

    fn find(&self, path: &str, methods: &[String]) -> Option<&Arc<Compiled>> {
        self.routes()
            .find(|r| r.config.path == path && r.config.methods == methods)
    }
}

/// A percent-encoded path segment as text a header can carry.
fn decode(raw: &str) -> Option<String> {
    let text = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    (!text.chars().any(char::is_control)).then(|| text.into_owned())
}

fn compile(config: &HttpRoute, manifest: &Manifest, app: &App, counters: Arc<Counters>) -> Result<Compiled> {
    let needs = config.middleware.iter().chain(&config.component);
    if let Some(failed) = needs
        .filter_map(|name| app.failed.iter().find(|f| &f.name == name))
        .next()
    {
        return Ok(Compiled {
            chain: Chain::new(Vec::new()),
            guard: None,
            target: Target::Failed(format!("component `{}` failed to load: {}", failed.name, failed.reason)),
            max_body: DEFAULT_MAX_BODY,
            timeout: DEFAULT_TIMEOUT,
            counters,
            config: config.clone(),
        });
    }
    let chain = Chain::new(
        config
            .middleware
            .iter()
            .map(|name| {
                app.route(name)
                    .cloned()
                    .with_context(|| format!("middleware `{name}` is not running"))
            })
            .collect::<Result<_>>()?,
    );
    let (target, max_body) = match (&config.subject, &config.component) {
        (Some(subject), _) => {
            let target = Resolver::new(manifest, app, false)?.target(subject);
            let max_body = target.max_body;
            (Target::Subject(target), max_body)
        }
        (None, Some(name)) => {
            let route = app
                .route(name)
                .cloned()
                .with_context(|| format!("component `{name}` is not running"))?;
            anyhow::ensure!(
                route.serves_http(),
                "component `{name}` exports no wasi:http/incoming-handler, so it cannot answer a route itself: \
                 route to a `subject` it subscribes to instead"
            );
            let max_kb = manifest
                .components
                .iter()
                .find(|c| &c.name == name)
                .map(|c| c.max_message_kb);
            (
                Target::Component(route),
                max_kb.map_or(DEFAULT_MAX_BODY, |kb| kb as usize * 1024),
            )
        }
        (None, None) => anyhow::bail!("the route names neither `subject` nor `component`"),
    };
    Ok(Compiled {
        chain,
        guard: match config.guard {
            GuardConfig::None => None,
            GuardConfig::Session => Some(Guard::Session),
            GuardConfig::Admin => Some(Guard::Admin),
        },
        target,
        max_body,
        timeout: config.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        counters,
        config: config.clone(),
    })
}
