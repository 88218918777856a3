//! Middleware chains: the components a route or a subscription names in
//! `middleware`, called in order before its handler.
//!
//! Each link is a [`Route`] of its own, so a middleware component has its
//! concurrency limit, breaker, counters, versions and hot-swap like any
//! other; a link that traps counts against the middleware, never against
//! the handler behind it.

use std::sync::Arc;

use super::Route;
use crate::core::error::CallError;
use crate::core::handler::{Guard, Reply, Verdict};
use crate::core::headers::{GUARD, is_reserved};
use crate::core::message::Message;

/// The links in front of one handler, in order; empty for none.
#[derive(Clone, Default)]
pub struct Chain {
    links: Vec<Arc<Route>>,
}

/// Why a chain did not reach its handler.
#[derive(Debug)]
pub enum Stopped {
    /// A link answered itself.
    Respond(Reply),
    /// A link refused the message, or could not be called.
    Fail(CallError),
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.links.iter().map(|l| &l.name)).finish()
    }
}

impl Chain {
    /// A chain of these middleware routes.
    pub fn new(links: Vec<Arc<Route>>) -> Self {
        Self { links }
    }

    /// Whether it has no link.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Its links' component names, in order.
    pub fn names(&self) -> Vec<String> {
        self.links.iter().map(|l| l.name.clone()).collect()
    }

    /// Runs `message` through every link. What comes out is the message
    /// with the headers the links set and, if one marked the caller, the
    /// mark in `berth-guard`; a mark the message already carried is
    /// dropped first, so only this chain's links can set it.
    pub async fn run(&self, mut message: Message) -> Result<(Message, Option<Guard>), Stopped> {
        message.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(GUARD));
        let mut mark = None;
        for link in &self.links {
            match link.filter(message).await {
                Ok((Verdict::Pass { headers, mark: m }, back)) => {
                    message = back;
                    set_headers(&mut message, headers, &link.name);
                    mark = mark.max(m);
                }
                Ok((Verdict::Respond(reply), _)) => return Err(Stopped::Respond(reply)),
                Err(e) => return Err(Stopped::Fail(e)),
            }
        }
        if let Some(mark) = mark {
            message.headers.push((GUARD.to_owned(), mark.as_str().to_owned()));
        }
        Ok((message, mark))
    }
}

/// Sets each header, replacing every earlier value of its name; the
/// host's own names (`berth-*`) are not a link's to set.
fn set_headers(message: &mut Message, headers: Vec<(String, String)>, link: &str) {
    for (name, value) in headers {
        if is_reserved(&name) {
            tracing::debug!(middleware = link, header = %name, "a middleware may not set the host's own headers; ignored");
            continue;
        }
        message.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        message.headers.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;
    use crate::core::handler::{Handler, NativeHandler};
    use async_trait::async_trait;

    /// A native middleware: passes with `x-user` and a mark unless the
    /// message has no `authorization`, then refuses with 401.
    struct Auth(Option<Guard>);

    #[async_trait]
    impl Handler for Auth {
        async fn handle_request(&self, _: Message) -> Result<Reply, CallError> {
            Ok(Reply::default())
        }
        async fn handle_event(&self, _: Message) -> Result<(), CallError> {
            Ok(())
        }
        async fn filter(&self, message: Message) -> Result<(Verdict, Message), CallError> {
            match message.header("authorization") {
                Some(token) => Ok((
                    Verdict::Pass {
                        headers: vec![("x-user".into(), token.into()), ("berth-guard".into(), "admin".into())],
                        mark: self.0,
                    },
                    message.clone(),
                )),
                None => Err(CallError {
                    code: 401,
                    ..CallError::new(ErrorKind::Handler, "no token")
                }),
            }
        }
    }

    fn link(name: &str, mark: Option<Guard>) -> Arc<Route> {
        let mut route = Route::native(name, &[], 4, Arc::new(Auth(mark)));
        route.name = name.to_owned();
        Arc::new(route)
    }

    #[tokio::test]
    async fn links_set_headers_raise_the_mark_and_cannot_forge_the_host_s_own() {
        let chain = Chain::new(vec![link("a", Some(Guard::Session)), link("b", None)]);
        let message = Message::new("s", "x")
            .with_header("authorization", "ann")
            .with_header("x-user", "mallory")
            .with_header("berth-guard", "admin");
        let (out, mark) = chain.run(message).await.expect("passes");
        assert_eq!(mark, Some(Guard::Session));
        assert_eq!(out.header("x-user"), Some("ann"));
        let guards: Vec<_> = out.headers.iter().filter(|(n, _)| n == "berth-guard").collect();
        assert_eq!(guards, [&("berth-guard".to_owned(), "session".to_owned())]);
    }

    #[tokio::test]
    async fn a_refusal_stops_the_chain_and_counts_against_the_link() {
        let a = link("a", None);
        let chain = Chain::new(vec![a.clone()]);
        match chain.run(Message::new("s", "x")).await {
            Err(Stopped::Fail(e)) => assert_eq!(e.code, 401),
            other => panic!("expected a 401, got {other:?}"),
        }
        assert_eq!(a.stats.snapshot().errors, 1);
    }

    #[tokio::test]
    async fn a_handler_that_is_no_middleware_says_so() {
        let plain = Arc::new(Route::native(
            "plain",
            &[],
            4,
            Arc::new(NativeHandler(|_| Ok(Reply::default()))),
        ));
        let Err(Stopped::Fail(e)) = Chain::new(vec![plain]).run(Message::new("s", "x")).await else {
            panic!("passed through a handler that is no middleware");
        };
        assert_eq!(e.kind, ErrorKind::Unhandled);
    }
}
