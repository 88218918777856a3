//! W3C Trace Context across a component: the `traceparent` (and
//! `tracestate`) of an incoming message is carried onto every message the
//! guest publishes or requests while handling it, as a child of the call.
//!
//! The call is one span: it gets a new parent-id under the incoming
//! trace-id, and each outbound message names it as its parent, so a trace
//! viewer shows "received → handled by <component> → sent". A guest that
//! sets `traceparent` itself keeps its own. Messages without a valid
//! `traceparent` start no trace: Berth carries context, it does not invent
//! it.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::headers::{TRACEPARENT, TRACESTATE};

/// The trace context of one call, as it goes onto outbound messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `00-<trace-id>-<this call's span id>-<flags>`.
    pub traceparent: String,
    /// Passed on unchanged.
    pub tracestate: Option<String>,
}

impl Context {
    /// The context for a call handling a message with these headers; `None`
    /// when they carry no valid `traceparent`.
    pub fn child_of(headers: &[(String, String)]) -> Option<Self> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (trace_id, flags) = parse(header(TRACEPARENT)?)?;
        Some(Self {
            traceparent: format!("00-{trace_id}-{:016x}-{flags}", span_id()),
            tracestate: header(TRACESTATE).map(str::to_owned),
        })
    }

    /// The trace id, for log fields.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// Adds the context to an outbound message's headers unless the guest
    /// set its own `traceparent`.
    pub fn inject(&self, headers: &mut Vec<(String, String)>) {
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(TRACEPARENT)) {
            return;
        }
        headers.push((TRACEPARENT.to_owned(), self.traceparent.clone()));
        if let Some(state) = &self.tracestate {
            headers.push((TRACESTATE.to_owned(), state.clone()));
        }
    }
}

/// The trace id of the message with these headers, if it carries a valid
/// `traceparent`: for log fields.
pub fn trace_id(headers: &[(String, String)]) -> Option<&str> {
    let (_, value) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(TRACEPARENT))?;
    parse(value).map(|(trace_id, _)| trace_id)
}

/// The trace id and flags of a version-00 `traceparent`, if it is valid:
/// lowercase hex fields of 32, 16 and 2 digits, ids not all zero.
fn parse(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && !zero(trace_id)
        && !zero(parent_id);
    valid.then_some((trace_id, flags))
}

/// A random, non-zero span id: std's randomly keyed hasher over a counter.
fn span_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_call_is_a_child_span_of_the_incoming_message() {
        let ctx = Context::child_of(&headers(&[
            ("Traceparent", PARENT),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]))
        .expect("valid");
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            ctx.traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && ctx.traceparent.ends_with("-01")
        );
        assert_ne!(&ctx.traceparent[36..52], "00f067aa0ba902b7", "a new parent id");
        assert_eq!(parse(&ctx.traceparent).map(|(t, _)| t), Some(ctx.trace_id()));
        let other = Context::child_of(&headers(&[("traceparent", PARENT)])).expect("valid");
        assert_ne!(other.traceparent, ctx.traceparent, "each call its own span id");

        let mut out = headers(&[("x", "1")]);
        ctx.inject(&mut out);
        assert_eq!(out[1], (TRACEPARENT.to_owned(), ctx.traceparent.clone()));
        assert_eq!(out[2], (TRACESTATE.to_owned(), "congo=t61rcWkgMzE".to_owned()));
        let mut own = headers(&[("traceparent", PARENT)]);
        ctx.inject(&mut own);
        assert_eq!(own.len(), 1, "the guest's own traceparent wins");
    }

    #[test]
    fn invalid_traceparents_start_nothing() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(Context::child_of(&headers(&[("traceparent", bad)])), None, "{bad:?}");
        }
        assert_eq!(Context::child_of(&[]), None);
    }
}
