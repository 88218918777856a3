//! amqp-swarm's client protocol, as the npm client `amqp-swarm@0.3.2`
//! speaks it: UTF-8 JSON objects with a `type`, in text or binary frames.
//!
//! - `init` (host → client): the node is ready; the client sends nothing
//!   before it.
//! - `ping` / `pong` with a `correlationId`, both ways.
//! - `request` `{name, args, correlationId}`, both ways, answered by
//!   `response` `{correlationId, result}` or `error` `{correlationId,
//!   errorType, errorSubtype, message, data}`.
//! - `close` (host → client): the host ends the node; the client does not
//!   reconnect.
//!
//! A correlation id is whatever JSON the sender chose (the npm client
//! uses UUID strings): it is echoed back as it came.

use serde_json::{Value, json};

use crate::core::error::{CallError, ErrorKind};

/// A frame a client sent.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A client request.
    Request {
        /// The request's name.
        name: String,
        /// Its arguments (a JSON array).
        args: Value,
        /// Echoed on the answer.
        correlation_id: Value,
    },
    /// The answer to a request the host sent.
    Response {
        /// The host's request.
        correlation_id: Value,
        /// Its result.
        result: Value,
    },
    /// A request the host sent failed on the client.
    Error {
        /// The host's request.
        correlation_id: Value,
        /// Why.
        error: SwarmError,
    },
    /// The client checks the node is there.
    Ping(Value),
    /// The answer to the host's ping.
    Pong(Value),
}

/// An error as amqp-swarm carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmError {
    /// `endpoint` (the handler's own) or `protocol`.
    pub protocol: bool,
    /// For `protocol`: `timeout`, `unhandled`, or none.
    pub subtype: Option<String>,
    /// The message.
    pub message: String,
    /// Custom data (JSON).
    pub data: Value,
}

/// A frame that cannot be taken, and the correlation id it carried (if
/// one could be read), for the `error` frame that answers it.
#[derive(Debug, PartialEq)]
pub struct BadFrame {
    /// What is wrong with it.
    pub why: String,
    /// Its `correlationId`, if it had one.
    pub correlation_id: Option<Value>,
}

/// Reads one frame.
pub fn parse(bytes: &[u8]) -> Result<Incoming, BadFrame> {
    let bad = |why: String, correlation_id: Option<Value>| BadFrame { why, correlation_id };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("the frame is not JSON: {e}"), None))?;
    let Value::Object(mut frame) = value else {
        return Err(bad("the frame is not a JSON object".to_owned(), None));
    };
    let correlation_id = frame.remove("correlationId").filter(|v| !v.is_null());
    let kind = match frame.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(bad("the frame has no `type`".to_owned(), correlation_id)),
    };
    let Some(id) = correlation_id else {
        return Err(bad(format!("a `{kind}` frame needs a `correlationId`"), None));
    };
    match kind.as_str() {
        "request" => {
            let name = match frame.remove("name") {
                Some(Value::String(name)) => name,
                _ => return Err(bad("a request needs a string `name`".to_owned(), Some(id))),
            };
            let args = match frame.remove("args") {
                None | Some(Value::Null) => Value::Array(Vec::new()),
                Some(Value::Array(args)) => Value::Array(args),
                Some(single) => Value::Array(vec![single]),
            };
            Ok(Incoming::Request {
                name,
                args,
                correlation_id: id,
            })
        }
        "response" => Ok(Incoming::Response {
            correlation_id: id,
            result: frame.remove("result").unwrap_or(Value::Null),
        }),
        "error" => Ok(Incoming::Error {
            correlation_id: id,
            error: SwarmError {
                protocol: frame.get("errorType").and_then(Value::as_str) == Some("protocol"),
                subtype: frame.get("errorSubtype").and_then(Value::as_str).map(str::to_owned),
                message: frame
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                data: frame.remove("data").unwrap_or(Value::Null),
            },
        }),
        "ping" => Ok(Incoming::Ping(id)),
        "pong" => Ok(Incoming::Pong(id)),
        other => Err(bad(format!("unknown frame type `{}`", other.escape_debug()), Some(id))),
    }
}

/// `init`.
pub fn init() -> Value {
    json!({ "type": "init" })
}

/// `close`.
pub fn close() -> Value {
    json!({ "type": "close" })
}

/// `ping` or `pong`.
pub fn ping(pong: bool, correlation_id: &Value) -> Value {
    json!({ "type": if pong { "pong" } else { "ping" }, "correlationId": correlation_id })
}

/// A request to the client.
pub fn request(name: &str, args: &Value, correlation_id: &Value) -> Value {
    json!({ "type": "request", "name": name, "args": args, "correlationId": correlation_id })
}

/// A client request's `response` frame, with the handler's reply body
/// as its `result` ([`result_json`]): spliced in as it is, not parsed into
/// values and written out again.
pub fn response(correlation_id: &Value, body: &[u8]) -> String {
    let id = correlation_id.to_string();
    let result = result_json(body);
    let mut frame = String::with_capacity(40 + id.len() + result.len());
    frame.push_str(r#"{"type":"response","correlationId":"#);
    frame.push_str(&id);
    frame.push_str(r#","result":"#);
    frame.push_str(&result);
    frame.push('}');
    frame
}

/// A reply body as JSON text: the body itself when it is JSON (checked,
/// not built into values), `null` when it is empty, and a JSON string of
/// its text otherwise, so a handler may answer plain text.
pub fn result_json(body: &[u8]) -> std::borrow::Cow<'_, str> {
    if body.is_empty() {
        return "null".into();
    }
    match std::str::from_utf8(body) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => text.into(),
        _ => Value::String(String::from_utf8_lossy(body).into_owned())
            .to_string()
            .into(),
    }
}

/// A client request's error (or a bad frame's, without a correlation id).
pub fn error(correlation_id: Option<&Value>, error: &SwarmError) -> Value {
    json!({
        "type": "error",
        "correlationId": correlation_id,
        "errorType": if error.protocol { "protocol" } else { "endpoint" },
        "errorSubtype": error.subtype,
        "message": error.message,
        "data": error.data,
    })
}

impl SwarmError {
    /// A `protocol` error of `subtype`.
    pub fn protocol(subtype: Option<&str>, message: impl Into<String>, data: Value) -> Self {
        Self {
            protocol: true,
            subtype: subtype.map(str::to_owned),
            message: message.into(),
            data,
        }
    }

    /// The error a client sees for a failed call. The handler's own error
    /// is `endpoint` with its data; no handler is `unhandled`, the deadline
    /// `timeout`; what the platform refused (a trap, a limit, a grant) is
    /// `endpoint` with `{kind, code}` as data, so a client can tell.
    pub fn from_call(e: &CallError, name: &str) -> Self {
        let data = e.data.as_ref().map(|d| {
            serde_json::from_slice(d).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(d).into_owned()))
        });
        match e.kind {
            ErrorKind::Handler => Self {
                protocol: false,
                subtype: None,
                message: e.message.clone(),
                data: data.unwrap_or(Value::Null),
            },
            ErrorKind::Timeout => Self::protocol(Some("timeout"), "Request timed out", Value::Null),
            ErrorKind::Unhandled | ErrorKind::NoResponders => Self::protocol(
                Some("unhandled"),
                format!("No handler found for request '{name}'"),
                json!({ "requestName": name }),
            ),
            kind => Self {
                protocol: false,
                subtype: None,
                message: e.message.clone(),
                data: json!({ "kind": kind.as_str(), "code": e.code }),
            },
        }
    }

    /// The error as it travels between hosts and reaches a component: the
    /// inverse of [`Self::from_call`] for the kinds amqp-swarm has.
    pub fn to_call(&self) -> CallError {
        let kind = match (self.protocol, self.subtype.as_deref()) {
            (true, Some("timeout")) => ErrorKind::Timeout,
            (true, Some("unhandled")) => ErrorKind::Unhandled,
            _ => ErrorKind::Handler,
        };
        let mut e = CallError::new(kind, self.message.clone());
        if !self.data.is_null() {
            e.data = Some(self.data.to_string().into());
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_npm_client_sends() {
        let frame = br#"{"type":"request","name":"hello there","args":["kenobi"],"correlationId":"c-1"}"#;
        assert_eq!(
            parse(frame),
            Ok(Incoming::Request {
                name: "hello there".into(),
                args: json!(["kenobi"]),
                correlation_id: json!("c-1")
            })
        );
        assert_eq!(
            parse(br#"{"type":"pong","correlationId":7}"#),
            Ok(Incoming::Pong(json!(7)))
        );
        let error = br#"{"type":"error","correlationId":"x","errorType":"endpoint","errorSubtype":null,"message":"clone","data":null}"#;
        let Ok(Incoming::Error { error, .. }) = parse(error) else {
            panic!("error frame")
        };
        assert!(!error.protocol);
        assert_eq!(error.message, "clone");
    }

    #[test]
    fn a_response_splices_a_json_body_and_quotes_anything_else() {
        let frame =
            |body: &[u8]| -> Value { serde_json::from_str(&response(&json!("c-1"), body)).expect("the frame is JSON") };
        let expect = |result: Value| json!({ "type": "response", "correlationId": "c-1", "result": result });
        assert_eq!(frame(br#" ["x", {"n": 1}] "#), expect(json!(["x", { "n": 1 }])));
        assert_eq!(frame(b""), expect(Value::Null));
        assert_eq!(frame(b"plain \"text\""), expect(json!("plain \"text\"")));
        assert_eq!(frame(b"[1, 2"), expect(json!("[1, 2")), "cut JSON is text");
        assert_eq!(frame(b"\xff\xfe"), expect(json!("\u{fffd}\u{fffd}")));
        assert_eq!(
            response(&json!(7), b"true"),
            r#"{"type":"response","correlationId":7,"result":true}"#
        );
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let why = |frame: &[u8]| parse(frame).expect_err("bad").why;
        assert!(why(b"not json").contains("not JSON"));
        assert!(why(b"[1]").contains("not a JSON object"));
        assert!(why(br#"{"correlationId":"a"}"#).contains("no `type`"));
        assert!(why(br#"{"type":"request","name":"x"}"#).contains("needs a `correlationId`"));
        assert!(why(br#"{"type":"request","correlationId":"a","name":3}"#).contains("string `name`"));
        let unknown = parse(br#"{"type":"teleport","correlationId":"a"}"#).expect_err("unknown");
        assert!(unknown.why.contains("unknown frame type `teleport`"));
        assert_eq!(unknown.correlation_id, Some(json!("a")));
    }

    #[test]
    fn errors_keep_their_kind_between_hosts() {
        for error in [
            SwarmError::protocol(Some("timeout"), "Request timed out", Value::Null),
            SwarmError {
                protocol: false,
                subtype: None,
                message: "take a seat".into(),
                data: json!({"council": true}),
            },
        ] {
            assert_eq!(SwarmError::from_call(&error.to_call(), "x"), error);
        }
        let unhandled = SwarmError::from_call(&CallError::new(ErrorKind::NoResponders, "none"), "kamino");
        assert_eq!(unhandled.subtype.as_deref(), Some("unhandled"));
        assert_eq!(unhandled.data, json!({"requestName": "kamino"}));
    }
}
