//! [`Router`]: subject patterns mapped to handlers.
//!
//! Patterns are NATS-style: `*` matches one token, `>` (last) matches one
//! or more. Routes are tried in the order they were added; the first match
//! wins. A message no route takes gets an `unhandled` error, which the host
//! reports to the caller as such.

use crate::{Error, Message, Reply, Verdict};

type RequestHandler = Box<dyn Fn(&Message) -> Result<Reply, Error>>;
type EventHandler = Box<dyn Fn(&Message) -> Result<(), Error>>;
type MiddlewareHandler = Box<dyn Fn(&Message) -> Result<Verdict, Error>>;

/// Routes messages to handlers by subject.
#[derive(Default)]
pub struct Router {
    requests: Vec<(String, RequestHandler)>,
    events: Vec<(String, EventHandler)>,
    middleware: Option<MiddlewareHandler>,
}

impl Router {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles requests (messages with a reply address) on `pattern`.
    pub fn request(mut self, pattern: &str, handler: impl Fn(&Message) -> Result<Reply, Error> + 'static) -> Self {
        self.requests.push((pattern.to_owned(), Box::new(handler)));
        self
    }

    /// Handles events (messages nobody waits for) on `pattern`.
    pub fn event(mut self, pattern: &str, handler: impl Fn(&Message) -> Result<(), Error> + 'static) -> Self {
        self.events.push((pattern.to_owned(), Box::new(handler)));
        self
    }

    /// Makes the component a middleware (manifest `middleware = true`):
    /// `handler` decides about every message of the routes and
    /// subscriptions that name it, before their handler. See
    /// [`crate::middleware`].
    pub fn middleware(mut self, handler: impl Fn(&Message) -> Result<Verdict, Error> + 'static) -> Self {
        self.middleware = Some(Box::new(handler));
        self
    }

    /// Runs the middleware; an `unhandled` error if it has none.
    pub fn handle_middleware(&self, msg: &Message) -> Result<Verdict, Error> {
        match &self.middleware {
            Some(handler) => handler(msg),
            None => Err(Error::unhandled(&msg.subject)),
        }
    }

    /// The patterns of its request routes, in the order they are tried.
    pub fn request_patterns(&self) -> impl Iterator<Item = &str> {
        self.requests.iter().map(|(p, _)| p.as_str())
    }

    /// The patterns of its event routes, in the order they are tried.
    pub fn event_patterns(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|(p, _)| p.as_str())
    }

    /// Runs the first request route that matches.
    pub fn handle_request(&self, msg: &Message) -> Result<Reply, Error> {
        match self.requests.iter().find(|(p, _)| matches(p, &msg.subject)) {
            Some((_, handler)) => handler(msg),
            None => Err(Error::unhandled(&msg.subject)),
        }
    }

    /// Runs the first event route that matches.
    pub fn handle_event(&self, msg: &Message) -> Result<(), Error> {
        match self.events.iter().find(|(p, _)| matches(p, &msg.subject)) {
            Some((_, handler)) => handler(msg),
            None => Err(Error::unhandled(&msg.subject).reject()),
        }
    }

    /// Refuses patterns that can never match as intended, so a typo fails
    /// `init` (and the host's load) instead of silently matching nothing.
    pub fn validate(&self) -> Result<(), Error> {
        let patterns = self
            .requests
            .iter()
            .map(|(p, _)| p)
            .chain(self.events.iter().map(|(p, _)| p));
        for p in patterns {
            let tokens: Vec<&str> = p.split('.').collect();
            let bad_rest = tokens.iter().rev().skip(1).any(|t| *t == ">");
            let bad_token = tokens
                .iter()
                .any(|t| t.is_empty() || (t.len() > 1 && t.contains(['*', '>'])));
            if bad_rest || bad_token {
                return Err(Error::internal(format!("invalid route pattern `{p}`")));
            }
        }
        Ok(())
    }
}

/// Whether `subject` matches `pattern`.
///
/// Runs for every message, so it walks the bytes itself: in wasm,
/// `str::split`'s searcher cost four times the rest of routing a message
/// (callgrind of the echo guest, BENCHMARKS.md "Instructions per message").
pub fn matches(pattern: &str, subject: &str) -> bool {
    let (mut pattern, mut subject) = (Some(pattern), Some(subject));
    while let Some(token) = next_token(&mut pattern) {
        match (token, next_token(&mut subject)) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.is_none()
}

/// The token before the next `.` of `rest` (all of it if there is none),
/// leaving what follows the dot; `None` once every token was taken. As
/// `split('.')`: `"a."` is `"a"` then `""`.
fn next_token<'a>(rest: &mut Option<&'a str>) -> Option<&'a str> {
    let text = rest.take()?;
    match text.bytes().position(|b| b == b'.') {
        Some(dot) => {
            *rest = Some(&text[dot + 1..]);
            Some(&text[..dot])
        }
        None => Some(text),
    }
}

/// What a routes function may return: a router, or an error that fails
/// `init`.
pub trait IntoRouter {
    /// The router, or why there is none.
    fn into_router(self) -> Result<Router, Error>;
}

impl IntoRouter for Router {
    fn into_router(self) -> Result<Router, Error> {
        Ok(self)
    }
}

impl IntoRouter for Result<Router, Error> {
    fn into_router(self) -> Result<Router, Error> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn first_matching_route_wins() {
        let r = Router::new()
            .request("a.special", |_| Ok(Reply::text("special")))
            .request("a.*", |_| Ok(Reply::text("any")));
        assert_eq!(
            r.handle_request(&Message::new("a.special", "")).expect("ok").body,
            b"special"
        );
        assert_eq!(r.handle_request(&Message::new("a.other", "")).expect("ok").body, b"any");
    }

    #[test]
    fn unmatched_subject_is_unhandled() {
        let r = Router::new().request("a.>", |_| Ok(Reply::new("")));
        let e = r.handle_request(&Message::new("b", "")).expect_err("no route");
        assert_eq!(e.kind, ErrorKind::Unhandled);
        assert!(
            r.handle_event(&Message::new("a.x", "")).is_err(),
            "requests routes do not take events"
        );
    }

    /// The token walk agrees with the definition by `split` on every
    /// pairing of these, empty tokens included.
    #[test]
    fn matching_agrees_with_splitting() {
        fn by_split(pattern: &str, subject: &str) -> bool {
            let mut subject = subject.split('.');
            for token in pattern.split('.') {
                match (token, subject.next()) {
                    (">", Some(_)) => return true,
                    ("*", Some(_)) => {}
                    (t, Some(s)) if t == s => {}
                    _ => return false,
                }
            }
            subject.next().is_none()
        }
        let texts = [
            "", ".", "a", "a.", ".a", "a.b", "a..b", "a.b.c", "ab.c", "*", ">", "a.*", "a.>", "*.b", "*.*", "a.*.c",
            "a.b.>", ">.a", "a.b.c.d",
        ];
        for pattern in texts {
            for subject in texts {
                assert_eq!(
                    matches(pattern, subject),
                    by_split(pattern, subject),
                    "{pattern:?} vs {subject:?}"
                );
            }
        }
    }

    #[test]
    fn wildcards() {
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*", "a.b.c"));
    }

    #[test]
    fn invalid_patterns_fail_validation() {
        assert!(
            Router::new()
                .request("a.>.b", |_| Ok(Reply::new("")))
                .validate()
                .is_err()
        );
        assert!(Router::new().event("a..b", |_| Ok(())).validate().is_err());
        assert!(Router::new().event("a.*", |_| Ok(())).validate().is_ok());
    }
}
