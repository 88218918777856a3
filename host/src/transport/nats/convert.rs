//! Messages and headers between async-nats and Berth. A header NATS cannot
//! carry is refused with an error naming it, never handed to async-nats,
//! which would panic on it.

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};

use crate::core::message::{Headers, Message};
use crate::transport::TransportError;

/// NATS headers from ours. A name must be printable ASCII without `:` and
/// a value must not break the line; anything else is refused here with an
/// error naming it (async-nats would panic on it).
pub(super) fn to_nats_headers(headers: &Headers) -> Result<HeaderMap, TransportError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let parsed = (!name.is_empty()).then(|| name.parse::<HeaderName>().ok()).flatten();
        let name: HeaderName = parsed.ok_or_else(|| {
            TransportError::Unsupported(format!(
                "header name `{}` cannot travel on NATS: use printable ASCII without `:`",
                name.escape_debug()
            ))
        })?;
        let value: HeaderValue = value.parse().map_err(|_| {
            TransportError::Unsupported(format!(
                "the value of header `{name}` cannot travel on NATS: it contains a line break"
            ))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// `text` as a header value: line breaks become spaces (an error message
/// may have several lines; a NATS header has one).
pub(super) fn header_value(text: &str) -> HeaderValue {
    text.replace(['\r', '\n'], " ").parse().unwrap_or_default()
}

pub(crate) fn from_nats(message: async_nats::Message) -> Message {
    // Most messages have no header block: no iterator chain for them
    // (~100 instructions per message, callgrind).
    let headers = match &message.headers {
        None => Vec::new(),
        Some(map) => map
            .iter()
            .flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |v| (name.to_owned(), v.as_str().to_owned()))
            })
            .collect(),
    };
    // (`as_str().to_owned()`, not `to_string()`: no formatter per message.)
    Message {
        subject: message.subject.as_str().to_owned(),
        body: message.payload,
        headers,
        reply_to: message.reply.map(|r| r.as_str().to_owned()),
        correlation_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn headers_convert_in_order_with_repeats() {
        let map = to_nats_headers(&headers(&[("a", "1"), ("b", "2"), ("a", "3")])).expect("valid headers");
        let a: Vec<&str> = map.get_all("a").map(|v| v.as_str()).collect();
        assert_eq!(a, ["1", "3"]);
        assert_eq!(map.get("b").map(|v| v.as_str()), Some("2"));
    }

    #[test]
    fn headers_nats_cannot_carry_are_refused_by_name_not_panicked_on() {
        for (name, value, says) in [
            ("bad name", "v", "header name `bad name`"),
            ("a:b", "v", "header name `a:b`"),
            ("ok", "two\nlines", "header `ok`"),
            ("ok", "carriage\rreturn", "header `ok`"),
        ] {
            match to_nats_headers(&headers(&[(name, value)])) {
                Err(TransportError::Unsupported(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{name:?}={value:?}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn multi_line_text_becomes_one_header_line() {
        assert_eq!(header_value("failed:\r\n  at line 3").as_str(), "failed:    at line 3");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_header_converts_or_is_refused_by_name(name in "\\PC{0,12}|[ -~]{0,12}", value in "\\PC{0,24}|[\\x00-\\x7f]{0,24}") {
                let headers = vec![(name.clone(), value.clone())];
                if let Ok(map) = to_nats_headers(&headers) {
                    prop_assert!(!name.is_empty());
                    prop_assert_eq!(map.get(name.as_str()).map(|v| v.as_str()), Some(value.as_str()));
                }
                let _ = header_value(&value);
            }
        }
    }
}
