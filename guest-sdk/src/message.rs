//! Helpers on [`Message`] and [`Reply`]: bodies as text or JSON, headers.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::__private::bindings::berth::backend::types::{Headers, Message, Reply};
use crate::Error;

impl Message {
    /// A message with a subject and a body.
    pub fn new(subject: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            subject: subject.into(),
            body: body.into(),
            headers: Vec::new(),
            reply_to: None,
            correlation_id: None,
        }
    }

    /// The body as UTF-8 text; a 400 error if it is not.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|e| Error::bad_request(format!("body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON; a 400 error naming the problem if it is not.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A path parameter of the HTTP route the request came by (`id` of
    /// `/orders/{id}`), percent-decoded. The host sends each one as the
    /// header `berth-http-param-<name>` (docs/http.md); a header of that
    /// name is all this reads, so a message from elsewhere can carry one too.
    pub fn param(&self, name: &str) -> Option<&str> {
        let prefix = HTTP_PARAM_PREFIX.as_bytes();
        self.headers
            .iter()
            .find(|(n, _)| {
                let n = n.as_bytes();
                n.len() == prefix.len() + name.len()
                    && n[..prefix.len()].eq_ignore_ascii_case(prefix)
                    && n[prefix.len()..].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|(_, v)| v.as_str())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the host puts before a route parameter's name to make its header.
const HTTP_PARAM_PREFIX: &str = "berth-http-param-";

impl Reply {
    /// A reply with raw bytes.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A text reply (`content-type: text/plain`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(text.into()).with_header("content-type", "text/plain; charset=utf-8")
    }

    /// A JSON reply (`content-type: application/json`).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::internal(format!("cannot encode reply: {e}")))?;
        Ok(Self::new(body).with_header("content-type", "application/json"))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds several headers.
    pub fn with_headers(mut self, headers: impl IntoIterator<Item = (String, String)>) -> Self {
        self.headers.extend(headers);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_bad_requests() {
        let m = Message::new("a", "{not json");
        let e = m.json::<serde_json::Value>().expect_err("invalid");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn headers_and_params_are_read_by_name_ignoring_case() {
        let m = Message::new("a", "")
            .with_header("X-Repeat", "first")
            .with_header("x-repeat", "second")
            .with_header("berth-http-param-orderId", "42")
            .with_header("berth-http-param-\u{e9}", "accent");
        assert_eq!(m.header("x-REPEAT"), Some("first"));
        assert_eq!(m.header("x-absent"), None);
        assert_eq!(m.param("orderid"), Some("42"));
        assert_eq!(m.param("order"), None);
        assert_eq!(m.param("\u{e9}"), Some("accent"));
    }

    #[test]
    fn text_refuses_invalid_utf8() {
        let m = Message::new("a", vec![0xff, 0xfe]);
        assert_eq!(m.text().expect_err("invalid").code, 400);
    }
}
