//! AMQP deliveries to Berth messages and back.
//!
//! A guest sees one flat list of headers whatever the broker. AMQP has two
//! places for metadata, the `headers` table and the basic properties; both
//! arrive as headers. Properties that HTTP also has keep HTTP's name
//! (`content-type`, `content-encoding`); the others get an `amqp-` prefix
//! (`amqp-message-id`, `amqp-timestamp`, `amqp-redelivered` ...). Outbound,
//! the same names set the properties again, so a guest can read and set
//! every property without knowing the wire. Correlation id and `reply_to`
//! are fields of [`Message`] already.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};

use crate::core::message::{Headers, Message};
use crate::transport::TransportError;

/// `content-type` property.
const CONTENT_TYPE: &str = "content-type";
/// `content-encoding` property.
const CONTENT_ENCODING: &str = "content-encoding";
/// `message-id` property.
const MESSAGE_ID: &str = "amqp-message-id";
/// `timestamp` property, seconds since the Unix epoch.
const TIMESTAMP: &str = "amqp-timestamp";
/// `type` property.
const TYPE: &str = "amqp-type";
/// `app-id` property.
const APP_ID: &str = "amqp-app-id";
/// `user-id` property (the broker checks it against the login).
const USER_ID: &str = "amqp-user-id";
/// `priority` property, 0-9.
const PRIORITY: &str = "amqp-priority";
/// `expiration` property, milliseconds as text.
const EXPIRATION: &str = "amqp-expiration";
/// `delivery-mode` property: 1 transient, 2 persistent.
const DELIVERY_MODE: &str = "amqp-delivery-mode";
/// Set on an inbound delivery the broker delivered before.
pub const REDELIVERED: &str = "amqp-redelivered";
/// The exchange an inbound delivery came through.
const EXCHANGE: &str = "amqp-exchange";

/// Delivery mode for messages that must survive a broker restart.
pub const PERSISTENT: u8 = 2;
/// Delivery mode for replies: nobody waits for them after a restart.
pub const TRANSIENT: u8 = 1;

/// A short string (routing key, header name, property), refused with a
/// clear error past AMQP's 255 bytes instead of lapin's panic.
pub fn short(value: &str, what: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(value).map_err(|_| {
        TransportError::TooLarge(format!(
            "AMQP {what} is {} bytes; the protocol allows at most 255: `{}…`",
            value.len(),
            value.chars().take(40).collect::<String>()
        ))
    })
}

/// The message a delivery carries; the body moves, it is not copied.
pub fn to_message(
    routing_key: &str,
    exchange: &str,
    redelivered: bool,
    properties: &BasicProperties,
    data: Vec<u8>,
) -> Message {
    let mut headers = Headers::new();
    if let Some(table) = properties.headers() {
        for (name, value) in table.inner() {
            push_value(&mut headers, name.as_str(), value);
        }
    }
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            headers.push((name.to_owned(), v));
        }
    };
    put(
        CONTENT_TYPE,
        properties.content_type().as_ref().map(ToString::to_string),
    );
    put(
        CONTENT_ENCODING,
        properties.content_encoding().as_ref().map(ToString::to_string),
    );
    put(MESSAGE_ID, properties.message_id().as_ref().map(ToString::to_string));
    put(TIMESTAMP, properties.timestamp().map(|t| t.to_string()));
    put(TYPE, properties.kind().as_ref().map(ToString::to_string));
    put(APP_ID, properties.app_id().as_ref().map(ToString::to_string));
    put(USER_ID, properties.user_id().as_ref().map(ToString::to_string));
    put(PRIORITY, properties.priority().map(|p| p.to_string()));
    put(EXPIRATION, properties.expiration().as_ref().map(ToString::to_string));
    put(DELIVERY_MODE, properties.delivery_mode().map(|m| m.to_string()));
    if !exchange.is_empty() {
        put(EXCHANGE, Some(exchange.to_owned()));
    }
    if redelivered {
        put(REDELIVERED, Some("true".to_owned()));
    }
    Message {
        subject: routing_key.to_owned(),
        body: data.into(),
        headers,
        reply_to: properties.reply_to().as_ref().map(ToString::to_string),
        correlation_id: properties.correlation_id().as_ref().map(ToString::to_string),
    }
}

/// A header table value as text; arrays become repeated headers.
fn push_value(headers: &mut Headers, name: &str, value: &AMQPValue) {
    let text = match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        AMQPValue::FieldArray(items) => {
            for item in items.as_slice() {
                push_value(headers, name, item);
            }
            return;
        }
        // Nested tables (RabbitMQ's `x-death`), decimals, byte arrays:
        // JSON keeps their structure readable.
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    headers.push((name.to_owned(), text));
}

/// The properties to publish `message` with: its headers split into the
/// properties they name and the header table, repeated names as arrays.
pub fn properties(message: &Message, default_mode: u8) -> Result<BasicProperties, TransportError> {
    let mut props = BasicProperties::default().with_delivery_mode(default_mode);
    let mut table = FieldTable::default();
    let number = |name: &str, value: &str| {
        value.parse::<u8>().map_err(|_| {
            TransportError::Broker(anyhow::anyhow!("header `{name}` must be a small number, got `{value}`"))
        })
    };
    for (name, value) in &message.headers {
        let lower = name.to_ascii_lowercase();
        props = match lower.as_str() {
            CONTENT_TYPE => props.with_content_type(short(value, "content-type")?),
            CONTENT_ENCODING => props.with_content_encoding(short(value, "content-encoding")?),
            MESSAGE_ID => props.with_message_id(short(value, "message id")?),
            TYPE => props.with_type(short(value, "type")?),
            APP_ID => props.with_app_id(short(value, "app id")?),
            USER_ID => props.with_user_id(short(value, "user id")?),
            EXPIRATION => props.with_expiration(short(value, "expiration")?),
            PRIORITY => props.with_priority(number(name, value)?),
            DELIVERY_MODE => props.with_delivery_mode(number(name, value)?),
            TIMESTAMP => props.with_timestamp(value.parse().map_err(|_| {
                TransportError::Broker(anyhow::anyhow!(
                    "header `{name}` must be seconds since the epoch, got `{value}`"
                ))
            })?),
            // Inbound-only facts; echoing them back would be a lie.
            REDELIVERED | EXCHANGE => props,
            _ => {
                add(&mut table, short(name, "header name")?, value);
                props
            }
        };
    }
    if let Some(id) = &message.correlation_id {
        props = props.with_correlation_id(short(id, "correlation id")?);
    }
    if let Some(reply_to) = &message.reply_to {
        props = props.with_reply_to(short(reply_to, "reply-to")?);
    }
    Ok(props.with_headers(table))
}

fn add(table: &mut FieldTable, name: ShortString, value: &str) {
    let value = AMQPValue::LongString(LongString::from(value.as_bytes()));
    let merged = match table.inner().get(name.as_str()) {
        None => value,
        Some(AMQPValue::FieldArray(items)) => {
            let mut items = items.clone();
            items.push(value);
            AMQPValue::FieldArray(items)
        }
        Some(first) => AMQPValue::FieldArray(FieldArray::from(vec![first.clone(), value])),
    };
    table.insert(name, merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_properties_round_trip() {
        let mut m = Message::new("orders.created", vec![0u8, 159, 146, 150])
            .with_header("content-type", "application/octet-stream")
            .with_header("amqp-message-id", "m-1")
            .with_header("amqp-timestamp", "1700000000")
            .with_header("x-tag", "a")
            .with_header("x-tag", "b")
            .with_header("trace", "t-9");
        m.correlation_id = Some("c-1".into());
        m.reply_to = Some("replies".into());
        let props = properties(&m, PERSISTENT).expect("valid");
        assert_eq!(props.delivery_mode(), &Some(PERSISTENT));
        let back = to_message("orders.created", "berth", true, &props, m.body.to_vec());
        assert_eq!(back.body, m.body);
        assert_eq!(back.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(back.reply_to.as_deref(), Some("replies"));
        assert_eq!(back.header("content-type"), Some("application/octet-stream"));
        assert_eq!(back.header("amqp-message-id"), Some("m-1"));
        assert_eq!(back.header("amqp-timestamp"), Some("1700000000"));
        assert_eq!(back.header("trace"), Some("t-9"));
        assert_eq!(back.header(REDELIVERED), Some("true"));
        let tags: Vec<_> = back
            .headers
            .iter()
            .filter(|(n, _)| n == "x-tag")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn oversized_names_and_bad_numbers_are_errors_not_panics() {
        let long = "k".repeat(300);
        let m = Message::new("a", "").with_header(long.as_str(), "v");
        assert!(matches!(properties(&m, TRANSIENT), Err(TransportError::TooLarge(_))));
        let m = Message::new("a", "").with_header("amqp-priority", "high");
        let e = properties(&m, TRANSIENT).expect_err("not a number");
        assert!(e.to_string().contains("amqp-priority"), "{e}");
        assert!(short(&long, "routing key").is_err());
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_message_converts_or_is_refused(
                name in "\\PC{0,300}|[ -~]{0,12}",
                value in "\\PC{0,24}|[0-9a-z-]{0,8}",
                subject in "\\PC{0,300}",
            ) {
                let message = Message::new(subject, "x").with_header(name, value);
                if let Ok(props) = properties(&message, TRANSIENT) {
                    let _ = to_message(&message.subject, "x", false, &props, Vec::new());
                }
            }
        }
    }
}
