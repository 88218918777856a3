//! Who may steer a host: the one authorization rule for every way in
//! (HTTP, broker admin, and through them the CLI).
//!
//! Anything that changes a running host loads code or stops work, so it
//! is an attack surface. With `[host] admin_token` (or
//! `BERTH_ADMIN_TOKEN`) set, a caller must present that token: missing or
//! wrong is 401. Without a token, only a caller that can reach nothing but
//! this machine is trusted: an HTTP listener on a loopback address. Every
//! other way in refuses every operator action (403): an HTTP listener on
//! another address, and the broker, where anyone with a connection could
//! otherwise steer the host (the manifest refuses `admin = true` without a
//! token, so this is a second line). Every refusal is logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a caller reaches the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// An HTTP listener on a loopback address.
    Loopback,
    /// An HTTP listener reachable from other machines.
    Network,
    /// The broker's admin subjects.
    Broker,
}

/// Why a caller may not act.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A token is required and the caller's is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// No token is configured and this way in is not trusted without one.
    #[error("{0}")]
    Forbidden(String),
}

impl Denied {
    /// The HTTP-style status every way in answers with.
    pub fn code(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
        }
    }
}

/// The rule, with the host's token. Cheap to clone; clones share the
/// count of refusals.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    token: Option<String>,
    /// Operator calls refused, on every way in, for `/metrics`.
    refused: Arc<AtomicU64>,
}

impl Auth {
    /// The rule for a host whose admin token is `token`.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            refused: Arc::default(),
        }
    }

    /// Operator calls refused so far.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether a caller that came by `reach` presenting `given` may act.
    /// `how` says how to present a token on that way in, for the refusal;
    /// `caller` is what is known of who asked, for the log.
    pub fn check(&self, reach: Reach, given: Option<&str>, how: &str, caller: &str) -> Result<(), Denied> {
        self.verdict(reach, given, how).map_err(|e| self.deny(reach, caller, e))
    }

    /// Logs and counts a refusal decided on this way in (a cross-origin
    /// call, say), as [`Auth::check`] does its own.
    pub fn deny(&self, reach: Reach, caller: &str, denied: Denied) -> Denied {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(?reach, caller, reason = %denied, "operator call refused");
        denied
    }

    fn verdict(&self, reach: Reach, given: Option<&str>, how: &str) -> Result<(), Denied> {
        match (&self.token, reach) {
            (Some(want), _) => match given {
                Some(got) if constant_time_eq(want.as_bytes(), got.as_bytes()) => Ok(()),
                Some(_) => Err(Denied::Unauthorized(format!("wrong admin token (send it as {how})"))),
                None => Err(Denied::Unauthorized(format!(
                    "operator actions need the admin token as {how}"
                ))),
            },
            (None, Reach::Loopback) => Ok(()),
            (None, Reach::Network) => Err(Denied::Forbidden(
                "operator actions need [host] admin_token (or BERTH_ADMIN_TOKEN) on a non-loopback listener".into(),
            )),
            (None, Reach::Broker) => Err(Denied::Forbidden(
                "operator actions over the broker need [host] admin_token (or BERTH_ADMIN_TOKEN)".into(),
            )),
        }
    }

    /// Says at start what the rule means for this way in.
    pub fn announce(&self, reach: Reach) {
        match (&self.token, reach) {
            (Some(_), _) => tracing::info!(?reach, "operator actions require the admin token"),
            (None, Reach::Loopback) => tracing::warn!(
                "no admin token set: operator actions are accepted from anyone who can reach this loopback listener"
            ),
            (None, Reach::Network) => {
                tracing::warn!("no admin token set and the listener is not loopback: operator actions are refused")
            }
            (None, Reach::Broker) => {
                tracing::warn!("no admin token set: operator actions over the broker are refused")
            }
        }
    }
}

/// Compares without an early exit, so the time taken says nothing about
/// how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_way_in() {
        let with = Auth::new(Some("s3cret".into()));
        for reach in [Reach::Loopback, Reach::Network, Reach::Broker] {
            assert_eq!(with.check(reach, Some("s3cret"), "x", "t"), Ok(()));
            assert_eq!(with.check(reach, None, "x", "t").map_err(|e| e.code()), Err(401));
            assert_eq!(
                with.check(reach, Some("s3cre"), "x", "t").map_err(|e| e.code()),
                Err(401)
            );
            assert_eq!(
                with.check(reach, Some("s3cret!"), "x", "t").map_err(|e| e.code()),
                Err(401)
            );
        }
        assert_eq!(with.refusals(), 9, "every refusal counted");
        let without = Auth::default();
        assert_eq!(without.check(Reach::Loopback, None, "x", "t"), Ok(()));
        assert_eq!(
            without.check(Reach::Broker, None, "x", "t").map_err(|e| e.code()),
            Err(403)
        );
        assert_eq!(
            without
                .check(Reach::Network, Some("any"), "x", "t")
                .map_err(|e| e.code()),
            Err(403)
        );
        assert_eq!(without.refusals(), 2);
    }

    #[test]
    fn equal_means_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
