//! What a component may send: subject patterns it may publish to and
//! request from. Deny by default: an empty list allows nothing, and the
//! platform's own subjects ([`is_platform`]) are out of reach whatever a
//! pattern says, so a `>` grant cannot steer a host, delete a stream or
//! answer someone else's request.

use crate::core::error::{CallError, ErrorKind};
use crate::core::subject::{Pattern, SubjectError, is_platform};

/// One component's outbound grants, checked on every host call.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    publish: Vec<Pattern>,
    request: Vec<Pattern>,
}

/// Which outbound operation is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Fire-and-forget publish.
    Publish,
    /// Request that waits for a reply.
    Request,
}

impl Grants {
    /// Parses grant patterns as written in the manifest.
    pub fn parse(publish: &[String], request: &[String]) -> Result<Self, SubjectError> {
        let parse = |list: &[String]| list.iter().map(|s| Pattern::parse(s)).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            publish: parse(publish)?,
            request: parse(request)?,
        })
    }

    /// `Ok` if `subject` is granted for `op`, else a `forbidden` error that
    /// names the component, operation and subject.
    pub fn check(&self, component: &str, op: Operation, subject: &str) -> Result<(), CallError> {
        let list = match op {
            Operation::Publish => &self.publish,
            Operation::Request => &self.request,
        };
        let platform = is_platform(subject);
        if !platform && list.iter().any(|p| p.matches(subject)) {
            return Ok(());
        }
        let verb = match op {
            Operation::Publish => "publish to",
            Operation::Request => "request from",
        };
        let why = if platform {
            "it is one of the platform's subjects, which no grant reaches"
        } else {
            "not in its grants"
        };
        Err(CallError::new(
            ErrorKind::Forbidden,
            format!("component `{component}` may not {verb} `{subject}`: {why}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default_and_allow_by_pattern() {
        let g = Grants::parse(&["events.>".into()], &[]).expect("valid");
        assert!(g.check("c", Operation::Publish, "events.greeted").is_ok());
        let err = g.check("c", Operation::Publish, "orders.new").expect_err("denied");
        assert_eq!(err.kind, ErrorKind::Forbidden);
        assert!(err.message.contains("orders.new"), "{}", err.message);
        assert!(g.check("c", Operation::Request, "events.greeted").is_err());
    }

    #[test]
    fn no_pattern_reaches_the_platforms_subjects() {
        let g = Grants::parse(&[">".into(), "berth.>".into()], &[">".into(), "$JS.>".into()]).expect("valid");
        assert!(g.check("c", Operation::Publish, "orders.new").is_ok());
        for subject in [
            "berth.admin.svc",
            "$SRV.INFO",
            "$JS.API.STREAM.DELETE.S",
            "$KV.b.k",
            "_INBOX.x",
        ] {
            for op in [Operation::Publish, Operation::Request] {
                let err = g.check("c", op, subject).expect_err("platform subject");
                assert_eq!(err.kind, ErrorKind::Forbidden);
                assert!(err.message.contains("platform"), "{}", err.message);
            }
        }
    }
}
