//! The host's view of a message: what a transport delivers and what a
//! component sends out. Bodies are opaque bytes and cheap to clone, because
//! fan-out hands the same body to several subscribers.

use bytes::Bytes;

/// Message headers in order; a name may repeat.
pub type Headers = Vec<(String, String)>;

/// One message, independent of the broker it travels on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The subject (NATS) or routing key (AMQP) the message is addressed to.
    pub subject: String,
    /// Opaque payload; never parsed by the host.
    pub body: Bytes,
    /// Headers, carried end to end.
    pub headers: Headers,
    /// Where the reply goes; `Some` exactly when the sender waits for one.
    pub reply_to: Option<String>,
    /// Ties a reply to its request on brokers that need it (AMQP).
    pub correlation_id: Option<String>,
}

impl Message {
    /// A message with a subject and a body and nothing else.
    pub fn new(subject: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds a header, keeping any earlier value of the same name.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a header to one value, whatever it held before under any
    /// spelling of its name: for facts the host states about a delivery,
    /// which a sender's copy of them must not contradict.
    pub fn set_header(&mut self, name: &str, value: String) {
        self.remove_header(name);
        self.headers.push((name.to_owned(), value));
    }

    /// Removes every value of a header, under any spelling of its name.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of a header, compared case-insensitively as HTTP and
    /// NATS tooling do.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The reply to this message: addressed to its `reply_to`, carrying its
    /// correlation id. `None` when nobody waits for a reply.
    pub fn reply(&self, body: impl Into<Bytes>, headers: Headers) -> Option<Message> {
        Some(Message {
            subject: self.reply_to.clone()?,
            body: body.into(),
            headers,
            reply_to: None,
            correlation_id: self.correlation_id.clone(),
        })
    }

    /// [`reply`](Self::reply), taking the address and correlation id
    /// instead of copying them, where the message is done with.
    pub fn into_reply(self, body: impl Into<Bytes>, headers: Headers) -> Option<Message> {
        Some(Message {
            subject: self.reply_to?,
            body: body.into(),
            headers,
            reply_to: None,
            correlation_id: self.correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case_and_keeps_first() {
        let m = Message::new("a", "x")
            .with_header("Content-Type", "text/plain")
            .with_header("content-type", "application/json");
        assert_eq!(m.header("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(m.header("missing"), None);
    }

    #[test]
    fn set_header_replaces_every_spelling() {
        let mut m = Message::new("a", "x")
            .with_header("Berth-Attempt", "7")
            .with_header("x-trace", "t")
            .with_header("berth-attempt", "9");
        m.set_header("berth-attempt", "1".to_owned());
        assert_eq!(m.header("berth-attempt"), Some("1"));
        assert_eq!(m.headers.len(), 2, "{:?}", m.headers);
        assert_eq!(m.header("x-trace"), Some("t"));
    }

    #[test]
    fn reply_goes_to_reply_to_with_correlation() {
        let mut m = Message::new("svc.get", "q");
        assert!(m.reply("a", vec![]).is_none());
        m.reply_to = Some("_INBOX.1".into());
        m.correlation_id = Some("c-7".into());
        let r = m.reply("a", vec![]).expect("has reply_to");
        assert_eq!(
            Some(&r),
            m.clone().into_reply("a", vec![]).as_ref(),
            "the same reply, moved"
        );
        assert_eq!(r.subject, "_INBOX.1");
        assert_eq!(r.correlation_id.as_deref(), Some("c-7"));
        assert_eq!(r.body, "a");
    }
}
