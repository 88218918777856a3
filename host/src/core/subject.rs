//! NATS-style subjects and subject patterns.
//!
//! A subject is dot-separated tokens (`orders.eu.created`). A pattern may
//! use `*` for exactly one token and `>` as its last token for one or more
//! tokens. The same patterns bind as AMQP topic patterns (`*` and `#`), so
//! every transport speaks one pattern language.

use std::fmt;

/// Why a subject or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Nothing to match.
    #[error("subject is empty")]
    Empty,
    /// `a..b`, `.a` or `a.`.
    #[error("subject `{0}` has an empty token")]
    EmptyToken(String),
    /// Spaces or control characters would break the NATS wire protocol.
    #[error("subject `{0}` contains whitespace or a control character")]
    BadCharacter(String),
    /// `>` anywhere but last, or a wildcard glued to other characters.
    #[error("subject pattern `{0}` misuses a wildcard: `*` must be a whole token and `>` only the last token")]
    BadWildcard(String),
    /// Wildcards are for subscriptions and grants, not for sending.
    #[error("subject `{0}` contains a wildcard; messages must be sent to a concrete subject")]
    WildcardInSubject(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: exactly one token.
    One,
    /// `>`: one or more remaining tokens.
    Rest,
}

/// A parsed subject pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses and validates a pattern such as `orders.*.created` or `echo.>`.
    pub fn parse(text: &str) -> Result<Self, SubjectError> {
        let tokens = tokens(text)?
            .enumerate()
            .map(|(i, t)| match t {
                "*" => Ok(Token::One),
                ">" if i + 1 == text.split('.').count() => Ok(Token::Rest),
                t if t.contains(['*', '>']) => Err(SubjectError::BadWildcard(text.to_owned())),
                t => Ok(Token::Literal(t.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    /// Whether the pattern has no wildcard, so it matches only the subject
    /// spelled like it: a table can find it by that subject.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether a concrete subject matches this pattern.
    pub fn matches(&self, subject: &str) -> bool {
        let mut parts = subject.split('.');
        for token in &self.tokens {
            match (token, parts.next()) {
                (Token::Rest, Some(_)) => return true,
                (Token::One, Some(_)) => {}
                (Token::Literal(l), Some(p)) if l == p => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// Whether some subject matches both patterns: what a route and a
    /// subscription, or a grant and a subscription, have in common.
    pub fn overlaps(&self, other: &Pattern) -> bool {
        let (mut a, mut b) = (self.tokens.iter(), other.tokens.iter());
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(Token::Rest), Some(_)) | (Some(_), Some(Token::Rest)) => return true,
                (Some(Token::Literal(x)), Some(Token::Literal(y))) if x != y => return false,
                (Some(_), Some(_)) => {}
                _ => return false,
            }
        }
    }

    /// The same pattern as an AMQP topic binding key (`>` becomes `#`).
    pub fn to_amqp(&self) -> String {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Literal(l) => l.as_str(),
                Token::One => "*",
                Token::Rest => "#",
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Subject prefixes the platform keeps for itself: Berth's own health,
/// admin and dead letters; the NATS service API, JetStream's and KV's APIs
/// and the server's system account; and reply inboxes, which belong to
/// whoever is waiting on them.
pub const PLATFORM_PREFIXES: [&str; 6] = ["berth.", "$SRV.", "$JS.", "$KV.", "$SYS.", "_INBOX."];

/// Whether `subject` (or pattern) is one of the platform's: no grant
/// reaches it, whatever its pattern, and no ingress sends to it.
pub fn is_platform(subject: &str) -> bool {
    PLATFORM_PREFIXES.iter().any(|p| subject.starts_with(p))
}

/// Checks that `subject` is concrete (no wildcards) and well formed.
pub fn validate_subject(subject: &str) -> Result<(), SubjectError> {
    for t in tokens(subject)? {
        if t.contains(['*', '>']) {
            return Err(SubjectError::WildcardInSubject(subject.to_owned()));
        }
    }
    Ok(())
}

fn tokens(text: &str) -> Result<std::str::Split<'_, char>, SubjectError> {
    if text.is_empty() {
        return Err(SubjectError::Empty);
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SubjectError::BadCharacter(text.to_owned()));
    }
    if text.split('.').any(str::is_empty) {
        return Err(SubjectError::EmptyToken(text.to_owned()));
    }
    Ok(text.split('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_overlap_when_a_subject_matches_both() {
        let p = |s: &str| Pattern::parse(s).expect("pattern");
        for (a, b) in [
            ("a.b", "a.b"),
            ("a.*", "a.b"),
            ("a.>", "a.b.c"),
            ("*.b", "a.*"),
            ("a.>", "*.x"),
            (">", "q"),
        ] {
            assert!(p(a).overlaps(&p(b)) && p(b).overlaps(&p(a)), "{a} / {b}");
        }
        for (a, b) in [
            ("a.b", "a.c"),
            ("a.*", "a.b.c"),
            ("a.>", "a"),
            ("x.>", "y.>"),
            ("a.*.c", "a.b.d"),
        ] {
            assert!(!p(a).overlaps(&p(b)) && !p(b).overlaps(&p(a)), "{a} / {b}");
        }
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn literal_matches_only_itself() {
        assert!(p("a.b").matches("a.b"));
        assert!(!p("a.b").matches("a.b.c"));
        assert!(!p("a.b").matches("a"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(p("a.*.c").matches("a.x.c"));
        assert!(!p("a.*.c").matches("a.c"));
        assert!(!p("a.*.c").matches("a.x.y.c"));
        assert!(p("*").matches("anything"));
        assert!(!p("*").matches("two.tokens"));
    }

    #[test]
    fn rest_matches_one_or_more_tokens() {
        assert!(p("a.>").matches("a.b"));
        assert!(p("a.>").matches("a.b.c.d"));
        assert!(!p("a.>").matches("a"));
        assert!(p(">").matches("x.y"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert_eq!(Pattern::parse(""), Err(SubjectError::Empty));
        assert!(matches!(Pattern::parse("a..b"), Err(SubjectError::EmptyToken(_))));
        assert!(matches!(Pattern::parse("a.>.b"), Err(SubjectError::BadWildcard(_))));
        assert!(matches!(Pattern::parse("a.b*"), Err(SubjectError::BadWildcard(_))));
        assert!(matches!(Pattern::parse("a b"), Err(SubjectError::BadCharacter(_))));
    }

    #[test]
    fn subjects_must_be_concrete() {
        assert!(validate_subject("a.b").is_ok());
        assert!(matches!(
            validate_subject("a.*"),
            Err(SubjectError::WildcardInSubject(_))
        ));
        assert!(matches!(validate_subject("a."), Err(SubjectError::EmptyToken(_))));
    }

    #[test]
    fn platform_subjects_are_known_by_prefix() {
        for s in [
            "berth.admin.x",
            "$SRV.INFO",
            "$JS.API.STREAM.DELETE.S",
            "$KV.b.k",
            "$SYS.REQ.X",
            "_INBOX.abc",
        ] {
            assert!(is_platform(s), "{s}");
        }
        for s in ["berthx.a", "orders.berth.x", "$js.api", "JS.API", "inbox.x"] {
            assert!(!is_platform(s), "{s}");
        }
    }

    #[test]
    fn amqp_translation() {
        assert_eq!(p("orders.*.>").to_amqp(), "orders.*.#");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_text_is_a_pattern_or_a_reason(text in "\\PC{0,24}|[a-z.*> ]{0,24}", subject in "[a-z.*>]{0,16}") {
                if let Ok(p) = Pattern::parse(&text) {
                    let _ = p.matches(&subject);
                    let _ = p.to_amqp();
                }
                let _ = validate_subject(&text);
                let _ = is_platform(&text);
            }
        }
    }
}
