//! `[[http.routes]]`: REST paths a backend owns on the host's HTTP
//! listener, each sent to a subject (whichever component serves it, on
//! any transport) or answered by a `wasi:http` component, behind an
//! optional middleware chain and guard.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use super::Manifest;
use super::bounds::{HOUR_MS, within_opt};
use crate::core::subject::{is_platform, validate_subject};

/// `[http]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The routes, tried by path (the most specific path wins, as in
    /// axum), then by method.
    #[serde(default)]
    pub routes: Vec<HttpRoute>,
}

/// One `[[http.routes]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRoute {
    /// `/orders/{id}`: `{name}` matches one segment, a final `{*name}` the
    /// rest of the path.
    pub path: String,
    /// The methods it takes (upper case); all when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The subject the request is sent to.
    pub subject: Option<String>,
    /// The `wasi:http` component that answers the route itself.
    pub component: Option<String>,
    /// Middleware components the request passes first, in order.
    #[serde(default)]
    pub middleware: Vec<String>,
    /// Whom the route admits, as its middleware marked the caller.
    #[serde(default)]
    pub guard: GuardConfig,
    /// How long the caller waits for the answer; 5 s when absent.
    #[serde(default, deserialize_with = "within_opt::<_, _, 1, HOUR_MS>")]
    pub timeout_ms: Option<u64>,
}

/// A route's `guard`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardConfig {
    /// Anyone the middleware lets through.
    #[default]
    None,
    /// Only a caller some middleware marked signed in (else 401).
    Session,
    /// Only a caller some middleware marked admin (401 if not signed in,
    /// 403 if signed in but no admin).
    Admin,
}

/// Paths the host's own API answers; a route may not take them.
const RESERVED: &[&str] = &["/health", "/metrics", "/v1"];

impl Manifest {
    /// Routes are well formed, take no path of the host's API or each
    /// other's, and name components that exist and are what they are used
    /// as.
    pub(super) fn validate_http(&self) -> Result<()> {
        if self.http.routes.is_empty() {
            return Ok(());
        }
        ensure!(
            self.host.http.is_some(),
            "[[http.routes]] are served on the host's HTTP listener: set [host] http (e.g. \"127.0.0.1:8080\")"
        );
        let mut paths = matchit::Router::new();
        let mut methods: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for route in &self.http.routes {
            let at = || format!("[[http.routes]] path `{}`", route.path.escape_debug());
            self.validate_route(route).with_context(at)?;
            let taken = methods.entry(route.path.as_str()).or_default();
            if taken.is_empty() {
                paths
                    .insert(route.path.as_str(), ())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            }
            let mine: Vec<&str> = match route.methods.is_empty() {
                true => vec!["*"],
                false => route.methods.iter().map(String::as_str).collect(),
            };
            for m in mine {
                ensure!(
                    !taken.iter().any(|t| *t == m || *t == "*" || m == "*"),
                    "{}: another route of this path takes {} already",
                    at(),
                    if m == "*" { "some of its methods" } else { m }
                );
                taken.push(m);
            }
        }
        Ok(())
    }

    fn validate_route(&self, route: &HttpRoute) -> Result<()> {
        path(&route.path)?;
        for m in &route.methods {
            ensure!(
                !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()),
                "method `{}` must be an upper-case HTTP method (GET, POST ...)",
                m.escape_debug()
            );
        }
        match (&route.subject, &route.component) {
            (Some(subject), None) => {
                validate_subject(subject).context("subject")?;
                ensure!(
                    !is_platform(subject),
                    "subject `{subject}` is one of the platform's own, which routes do not reach"
                );
            }
            (None, Some(name)) => {
                let c = self.components.iter().find(|c| &c.name == name);
                ensure!(c.is_some(), "component `{name}` is not in [[components]]");
            }
            _ => bail!("give either `subject` (a request to whoever serves it) or `component` (a wasi:http component)"),
        }
        self.validate_chain(&route.middleware)?;
        ensure!(
            route.guard == GuardConfig::None || !route.middleware.is_empty(),
            "guard `{}` admits only callers a middleware marked, but the route names no `middleware`",
            match route.guard {
                GuardConfig::Admin => "admin",
                _ => "session",
            }
        );
        Ok(())
    }

    /// Each name in a `middleware` list is a component marked
    /// `middleware = true`.
    pub(super) fn validate_chain(&self, chain: &[String]) -> Result<()> {
        for name in chain {
            match self.components.iter().find(|c| &c.name == name) {
                None => bail!("middleware `{name}` is not in [[components]]"),
                Some(c) if !c.middleware => {
                    bail!("component `{name}` is used as middleware: mark it `middleware = true`")
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// A route path: absolute, clean segments, parameters named with letters,
/// digits and `_`, a catch-all only at the end, and not the host's own.
fn path(p: &str) -> Result<()> {
    ensure!(p.starts_with('/'), "must start with `/`");
    ensure!(
        !p.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#'),
        "must not contain spaces, control characters, `?` or `#`"
    );
    for reserved in RESERVED {
        ensure!(
            p != *reserved && !p.starts_with(&format!("{reserved}/")),
            "`{reserved}` is the host's own API; choose another path"
        );
    }
    let segments: Vec<&str> = p[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let Some(inner) = segment.strip_prefix('{') else {
            ensure!(
                !segment.contains(['{', '}']),
                "segment `{segment}`: a parameter is a whole segment, `{{name}}`"
            );
            continue;
        };
        let Some(name) = inner.strip_suffix('}') else {
            bail!("segment `{segment}`: a parameter is a whole segment, `{{name}}`");
        };
        let name = match name.strip_prefix('*') {
            Some(rest) => {
                ensure!(
                    i + 1 == segments.len(),
                    "`{segment}` takes the rest of the path: it must come last"
                );
                rest
            }
            None => name,
        };
        ensure!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "parameter `{segment}`: its name must be letters, digits and `_`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What validating the routes of `routes` (TOML after a host with an
    /// HTTP address and two components, `mw` a middleware) says.
    fn routes_say(routes: &str) -> String {
        let text = format!(
            "[host]\nhttp = \"127.0.0.1:0\"\n\
             [[components]]\nname = \"app\"\nwasm = \"a.wasm\"\n\
             [[components]]\nname = \"mw\"\nwasm = \"m.wasm\"\nmiddleware = true\n{routes}"
        );
        let m = Manifest::parse(&text).expect("parses");
        m.validate_http().err().map(|e| format!("{e:#}")).unwrap_or_default()
    }

    #[test]
    fn routes_that_could_not_serve_as_meant_are_refused_by_path() {
        let route = |extra: &str| format!("[[http.routes]]\npath = \"/a/{{id}}\"\n{extra}\n");
        assert_eq!(
            routes_say(&route("subject = \"a.get\"\nmiddleware = [\"mw\"]\nguard = \"admin\"")),
            ""
        );
        for (extra, says) in [
            ("", "either `subject`"),
            ("subject = \"a\"\ncomponent = \"app\"", "either `subject`"),
            ("component = \"nope\"", "`nope` is not in [[components]]"),
            ("subject = \"a.*\"", "subject"),
            ("subject = \"$SRV.PING\"", "platform"),
            ("subject = \"a\"\nmethods = [\"get\"]", "upper-case"),
            ("subject = \"a\"\nguard = \"session\"", "names no `middleware`"),
            ("subject = \"a\"\nmiddleware = [\"app\"]", "mark it `middleware = true`"),
            (
                "subject = \"a\"\nmiddleware = [\"ghost\"]",
                "`ghost` is not in [[components]]",
            ),
        ] {
            let said = routes_say(&route(extra));
            assert!(
                said.contains("path `/a/{id}`") && said.contains(says),
                "{extra}: {said}"
            );
        }
        let twice = format!(
            "{}{}",
            route("subject = \"a\"\nmethods = [\"GET\"]"),
            route("subject = \"b\"")
        );
        assert!(
            routes_say(&twice).contains("takes some of its methods already"),
            "{}",
            routes_say(&twice)
        );
        let split = format!(
            "{}{}",
            route("subject = \"a\"\nmethods = [\"GET\"]"),
            route("subject = \"b\"\nmethods = [\"POST\"]")
        );
        assert_eq!(routes_say(&split), "");
        let clash = format!(
            "{}[[http.routes]]\npath = \"/a/{{other}}\"\nsubject = \"c\"\n",
            route("subject = \"a\"")
        );
        assert!(routes_say(&clash).contains("conflict"), "{}", routes_say(&clash));
        let no_listener = Manifest::parse("[[http.routes]]\npath = \"/x\"\nsubject = \"x\"\n").expect("parses");
        let said = format!("{:#}", no_listener.validate_http().expect_err("no listener"));
        assert!(said.contains("set [host] http"), "{said}");
    }

    fn why(p: &str) -> String {
        path(p).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn paths_are_checked_where_a_router_would_misread_them() {
        for good in ["/", "/orders/{id}", "/files/{*rest}", "/a/b_c/{x_1}/d"] {
            assert!(path(good).is_ok(), "{good}");
        }
        assert!(why("orders").contains("start with `/`"));
        assert!(why("/v1/request/x").contains("host's own API"));
        assert!(why("/health").contains("host's own API"));
        assert!(path("/healthy").is_ok());
        assert!(why("/a/{*rest}/b").contains("must come last"));
        assert!(why("/a/x{id}").contains("whole segment"));
        assert!(why("/a/{i-d}").contains("letters, digits"));
        assert!(why("/a/{}").contains("letters, digits"));
        assert!(why("/a b").contains("spaces"));
    }
}
