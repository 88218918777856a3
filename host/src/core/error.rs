//! The error every call can end with, whoever made it, and how it travels
//! inside a reply message.
//!
//! One shape for all errors keeps callers simple: a code (HTTP-style), a
//! short name, a message, optional data. The [`ErrorKind`] says whether a
//! handler returned it or the host made it (timeout, trap, forbidden ...),
//! the distinction amqp-swarm draws between endpoint and protocol errors.
//!
//! On the wire an error reply follows the NATS service convention
//! (`Nats-Service-Error`, `Nats-Service-Error-Code` headers) plus
//! `Berth-Error-Kind`, with the whole error as a JSON body, so that any
//! client, Berth or not, can read it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::core::headers::{ERROR as ERROR_HEADER, ERROR_CODE as ERROR_CODE_HEADER, ERROR_KIND as ERROR_KIND_HEADER};
use crate::core::message::Message;

/// Where an error came from. Everything but `Handler` is made by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The handler returned it on purpose.
    Handler,
    /// The call did not finish in time.
    Timeout,
    /// No handler in the component takes the subject.
    Unhandled,
    /// The component trapped; its instance was discarded.
    Trap,
    /// The component's grants do not allow the call.
    Forbidden,
    /// At a concurrency limit, suspended, or shutting down.
    Overloaded,
    /// Nobody subscribes to the subject of a request.
    NoResponders,
    /// A message exceeds a size limit.
    TooLarge,
    /// The broker connection failed.
    Transport,
}

impl ErrorKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [ErrorKind; 9] = [
        Self::Handler,
        Self::Timeout,
        Self::Unhandled,
        Self::Trap,
        Self::Forbidden,
        Self::Overloaded,
        Self::NoResponders,
        Self::TooLarge,
        Self::Transport,
    ];

    /// The kebab-case name used on the wire and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Timeout => "timeout",
            Self::Unhandled => "unhandled",
            Self::Trap => "trap",
            Self::Forbidden => "forbidden",
            Self::Overloaded => "overloaded",
            Self::NoResponders => "no-responders",
            Self::TooLarge => "too-large",
            Self::Transport => "transport",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// The code and name the host uses when it makes this kind of error.
    fn default_status(self) -> (u16, &'static str) {
        match self {
            Self::Handler | Self::Trap => (500, "Internal Server Error"),
            Self::Timeout => (504, "Gateway Timeout"),
            Self::Unhandled => (404, "Not Found"),
            Self::Forbidden => (403, "Forbidden"),
            Self::Overloaded => (503, "Service Unavailable"),
            Self::NoResponders => (503, "No Responders"),
            Self::TooLarge => (413, "Payload Too Large"),
            Self::Transport => (502, "Bad Gateway"),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a broker should do with an event whose call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Redeliver later: the failure may be transient.
    Retry,
    /// Dead-letter: trying again will not help.
    Reject,
}

/// An error that ended a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} error {code} {name}: {message}")]
pub struct CallError {
    /// Who made it.
    pub kind: ErrorKind,
    /// HTTP-style status code.
    pub code: u16,
    /// Short name for the code.
    pub name: String,
    /// Human-readable explanation.
    pub message: String,
    /// Optional machine-readable details, usually JSON.
    pub data: Option<Bytes>,
    /// For events: redeliver or dead-letter.
    pub disposition: Disposition,
}

impl CallError {
    /// A host-made error of `kind` with its usual code and name. Host-made
    /// failures are retried by default: they say nothing about the message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let (code, name) = kind.default_status();
        Self {
            kind,
            code,
            name: name.to_owned(),
            message: message.into(),
            data: None,
            disposition: Disposition::Retry,
        }
    }

    /// Same error with another disposition.
    pub fn with_disposition(mut self, disposition: Disposition) -> Self {
        self.disposition = disposition;
        self
    }

    /// The error as the JSON object `{kind, code, name, message, data}`.
    ///
    /// `data` is embedded as JSON when it parses as JSON, as a string when it
    /// is UTF-8, and as `{"base64": ...}` otherwise, so no byte is lost.
    pub fn to_json(&self) -> serde_json::Value {
        let data = self.data.as_ref().map(|d| {
            serde_json::from_slice::<serde_json::Value>(d).unwrap_or_else(|_| match std::str::from_utf8(d) {
                Ok(s) => serde_json::Value::String(s.to_owned()),
                Err(_) => json!({ "base64": BASE64.encode(d) }),
            })
        });
        json!({
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "data": data,
            "disposition": self.disposition,
        })
    }

    /// The reply message that carries this error to whoever sent `request`.
    /// `None` when the request expects no reply.
    ///
    /// A header holds one line, so the message's line breaks become spaces
    /// there (a broker would refuse the reply otherwise, and the caller
    /// would wait for its timeout); the body keeps the whole text.
    pub fn to_reply(&self, request: &Message) -> Option<Message> {
        let headers = vec![
            (ERROR_HEADER.to_owned(), self.message.replace(['\r', '\n'], " ")),
            (ERROR_CODE_HEADER.to_owned(), self.code.to_string()),
            (ERROR_KIND_HEADER.to_owned(), self.kind.as_str().to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        request.reply(self.to_json().to_string(), headers)
    }

    /// Reads an error back out of a reply; `None` if the reply is a success.
    ///
    /// Replies from non-Berth services that only set the NATS headers are
    /// understood too: they count as handler errors.
    pub fn from_reply(reply: &Message) -> Option<Self> {
        let header_message = reply.header(ERROR_HEADER)?;
        let code = reply
            .header(ERROR_CODE_HEADER)
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(500);
        let kind = reply
            .header(ERROR_KIND_HEADER)
            .and_then(ErrorKind::parse)
            .unwrap_or(ErrorKind::Handler);
        let body: Option<WireError> = serde_json::from_slice(&reply.body).ok();
        let mut error = CallError::new(kind, header_message);
        error.code = code;
        if let Some(body) = body {
            error.name = body.name;
            error.message = body.message;
            error.data = body.data.map(decode_data);
            if let Some(d) = body.disposition {
                error.disposition = d;
            }
        }
        Some(error)
    }
}

/// Inverse of the `data` encoding in [`CallError::to_json`].
fn decode_data(value: serde_json::Value) -> Bytes {
    if let Some(b64) = value.get("base64").and_then(|v| v.as_str())
        && value.as_object().is_some_and(|o| o.len() == 1)
        && let Ok(bytes) = BASE64.decode(b64)
    {
        return Bytes::from(bytes);
    }
    match value {
        serde_json::Value::String(s) => Bytes::from(s),
        other => Bytes::from(other.to_string()),
    }
}

/// The JSON body of an error reply, as far as the reader needs it.
#[derive(Deserialize)]
struct WireError {
    name: String,
    message: String,
    data: Option<serde_json::Value>,
    disposition: Option<Disposition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Message {
        let mut m = Message::new("svc.get", "");
        m.reply_to = Some("_INBOX.9".into());
        m
    }

    #[test]
    fn handler_error_round_trips_through_a_reply() {
        let mut e = CallError::new(ErrorKind::Handler, "no such order");
        e.code = 404;
        e.name = "Not Found".into();
        e.data = Some(Bytes::from_static(br#"{"id":7}"#));
        e.disposition = Disposition::Reject;
        let reply = e.to_reply(&request()).expect("request has reply_to");
        assert_eq!(reply.header(ERROR_CODE_HEADER), Some("404"));
        let back = CallError::from_reply(&reply).expect("is an error");
        assert_eq!(back, e);
    }

    #[test]
    fn a_message_of_several_lines_fits_a_header_and_survives_in_the_body() {
        let e = CallError::new(ErrorKind::Trap, "failed:\r\n  at line 3\nand more");
        let reply = e.to_reply(&request()).expect("reply");
        assert_eq!(reply.header(ERROR_HEADER), Some("failed:    at line 3 and more"));
        assert_eq!(CallError::from_reply(&reply).expect("error").message, e.message);
    }

    #[test]
    fn host_kinds_survive_the_trip() {
        let e = CallError::new(ErrorKind::Timeout, "took too long");
        let back = CallError::from_reply(&e.to_reply(&request()).expect("reply")).expect("error");
        assert_eq!(back.kind, ErrorKind::Timeout);
        assert_eq!(back.code, 504);
    }

    #[test]
    fn success_reply_is_not_an_error() {
        let ok = request().reply("fine", vec![]).expect("reply");
        assert!(CallError::from_reply(&ok).is_none());
    }

    #[test]
    fn binary_data_is_kept_as_base64() {
        let mut e = CallError::new(ErrorKind::Handler, "bin");
        e.data = Some(Bytes::from_static(&[0xff, 0x00, 0xfe]));
        assert_eq!(e.to_json()["data"]["base64"], "/wD+");
        let back = CallError::from_reply(&e.to_reply(&request()).expect("reply")).expect("error");
        assert_eq!(back.data, e.data);
    }
}
