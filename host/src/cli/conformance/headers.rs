//! The conformance contract's header checks: headers travel both ways
//! as they are, and each language's helpers read one by name, and an HTTP
//! route's parameters (which the host sends as `berth-http-param-<name>`
//! headers, docs/http.md) by theirs.

use super::{Checks, expect, same_body};
use crate::{ErrorKind, Message};

impl Checks {
    /// `P.in.echo` hands every header back, a repeated name's values in
    /// order.
    pub(super) async fn echo_headers(&self) -> Result<(), String> {
        let sent = [
            ("x-conformance", "one"),
            ("x-repeat", "first"),
            ("x-repeat", "second"),
            ("x-text", "caf\u{e9} 1"),
        ];
        let reply = self.ok(self.with_headers("echo", "h", &sent)).await?;
        // NATS headers are a map: the order across names is not kept, the
        // order of one name's values is.
        for name in ["x-conformance", "x-repeat", "x-text"] {
            let want: Vec<&str> = sent.iter().filter(|(k, _)| *k == name).map(|(_, v)| *v).collect();
            let got: Vec<&str> = reply
                .headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if got != want {
                return Err(format!("header {name}: sent {want:?}, reply carries {got:?}"));
            }
        }
        Ok(())
    }

    /// `P.in.header` answers the first value of the header its body names.
    pub(super) async fn header_by_name(&self) -> Result<(), String> {
        let headers = [("x-repeat", "first"), ("X-Mixed", "yes"), ("x-repeat", "second")];
        for (name, want) in [("X-REPEAT", "first"), ("x-mixed", "yes")] {
            let reply = self.ok(self.with_headers("header", name, &headers)).await?;
            same_body(want.as_bytes(), &reply.body).map_err(|why| format!("header {name}: {why}"))?;
        }
        let e = self.error(self.with_headers("header", "x-absent", &headers)).await?;
        expect(&e, ErrorKind::Handler, 404).map_err(|why| format!("a header the message lacks: {why}"))
    }

    /// `P.in.param` answers the route parameter its body names, which is
    /// not a plain header of the same name.
    pub(super) async fn route_param(&self) -> Result<(), String> {
        let headers = [
            ("id", "7"),
            ("berth-http-param-id", "42"),
            ("berth-http-param-name", "caf\u{e9} 1"),
        ];
        for (name, want) in [("id", "42"), ("name", "caf\u{e9} 1")] {
            let reply = self.ok(self.with_headers("param", name, &headers)).await?;
            same_body(want.as_bytes(), &reply.body).map_err(|why| format!("parameter {name}: {why}"))?;
        }
        let e = self.error(self.with_headers("param", "other", &headers)).await?;
        expect(&e, ErrorKind::Handler, 404).map_err(|why| format!("a parameter the route lacks: {why}"))
    }

    /// A message to `P.in.<name>` with `body` and `headers`.
    fn with_headers(&self, name: &str, body: &str, headers: &[(&str, &str)]) -> Message {
        headers
            .iter()
            .fold(Message::new(self.subject(name), body.to_owned()), |m, (k, v)| {
                m.with_header(*k, *v)
            })
    }
}
