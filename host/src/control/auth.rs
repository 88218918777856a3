//! Who may steer a host: the one authorization rule for every way in
//! (HTTP, broker admin, and through them the CLI).
//!
//! Anything that changes a running host loads code or stops work, so it
//! is an attack surface. With `[host] admin_token` (or
//! `BERTH_ADMIN_TOKEN`) set, a caller must present that token: missing or
//! wrong is 401. Without a token, only a caller that can reach nothing but
//! this machine is trusted: an HTTP listener on a loopback address. An
//! HTTP listener on any other address refuses every operator action (403);
//! the broker is trusted as today's deployments configure it, and the host
//! says loudly at start that anyone on it can steer the host.

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

/// The rule, with the host's token.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    token: Option<String>,
}

impl Auth {
    /// The rule for a host whose admin token is `token`.
    pub fn new(token: Option<String>) -> Self {
        Self { token }
    }

    /// Whether a caller that came by `reach` presenting `given` may act.
    /// `how` says how to present a token on that way in, for the refusal.
    pub fn check(&self, reach: Reach, given: Option<&str>, how: &str) -> Result<(), Denied> {
        match (&self.token, reach) {
            (Some(want), _) => match given {
                Some(got) if constant_time_eq(want.as_bytes(), got.as_bytes()) => Ok(()),
                Some(_) => Err(Denied::Unauthorized(format!("wrong admin token (send it as {how})"))),
                None => Err(Denied::Unauthorized(format!(
                    "operator actions need the admin token as {how}"
                ))),
            },
            (None, Reach::Loopback | Reach::Broker) => Ok(()),
            (None, Reach::Network) => Err(Denied::Forbidden(
                "operator actions need [host] admin_token (or BERTH_ADMIN_TOKEN) on a non-loopback listener".into(),
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
            (None, Reach::Broker) => tracing::warn!(
                "no admin token set: anyone who can publish on the broker can steer this host; set [host] admin_token"
            ),
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
            assert_eq!(with.check(reach, Some("s3cret"), "x"), Ok(()));
            assert_eq!(with.check(reach, None, "x").map_err(|e| e.code()), Err(401));
            assert_eq!(with.check(reach, Some("s3cre"), "x").map_err(|e| e.code()), Err(401));
            assert_eq!(with.check(reach, Some("s3cret!"), "x").map_err(|e| e.code()), Err(401));
        }
        let without = Auth::default();
        assert_eq!(without.check(Reach::Loopback, None, "x"), Ok(()));
        assert_eq!(without.check(Reach::Broker, None, "x"), Ok(()));
        assert_eq!(
            without.check(Reach::Network, Some("any"), "x").map_err(|e| e.code()),
            Err(403)
        );
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
