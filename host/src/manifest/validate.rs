//! What the types cannot check: unique names, valid patterns, sane limits,
//! files that exist. Every error names the component (and subscription)
//! and the field.

use std::collections::HashSet;

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::{ComponentConfig, Manifest, QueueType, SubscribeConfig, TransportKind};
use crate::core::subject::{Pattern, validate_subject};

impl Manifest {
    /// Checks what the types cannot; see the module docs.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            is_name(&self.host.name),
            "[host] name `{}` (or SERVICE_NAME) must be letters, digits, `-` and `_`: it is a token of \
             the service's subjects, where `*`, `>` or `.` would reach other services",
            self.host.name.escape_debug()
        );
        ensure!(
            !self.host.admin || self.host.admin_token.is_some(),
            "[host] admin = true lets whoever can publish on the broker steer this host: \
             set [host] admin_token (or BERTH_ADMIN_TOKEN) as well"
        );
        self.validate_transports()?;
        self.validate_keyvalue()?;
        self.validate_gateway()?;
        let mut names = HashSet::new();
        for c in &self.components {
            ensure!(
                names.insert(c.name.as_str()),
                "component name `{}` is used twice",
                c.name
            );
            self.validate_component(c)?;
        }
        self.validate_http()?;
        Ok(())
    }

    fn validate_transports(&self) -> Result<()> {
        if let Some(nats) = &self.transports.nats {
            for server in nats.url.split(',') {
                url(server.trim(), &["nats", "tls", "ws", "wss"], true)
                    .with_context(|| format!("[transports.nats] url (or NATS_URL) `{}`", nats.url.escape_debug()))?;
            }
            let ways = [
                nats.user.is_some() || nats.password.is_some(),
                nats.token.is_some(),
                nats.credentials.is_some(),
            ];
            ensure!(
                ways.iter().filter(|w| **w).count() <= 1,
                "[transports.nats]: use one of user/password, token or credentials, not several"
            );
            ensure!(
                nats.user.is_some() == nats.password.is_some(),
                "[transports.nats]: user and password go together"
            );
            ensure!(
                nats.tls_cert.is_some() == nats.tls_key.is_some(),
                "[transports.nats]: tls_cert and tls_key go together"
            );
            for (key, file) in [
                ("tls_ca", &nats.tls_ca),
                ("tls_cert", &nats.tls_cert),
                ("tls_key", &nats.tls_key),
            ] {
                if let Some(file) = file {
                    ensure!(
                        file.is_file(),
                        "[transports.nats] {key}: {} is not a file",
                        file.display()
                    );
                }
            }
        }
        if let Some(amqp) = &self.transports.amqp {
            if let Some(ca) = &amqp.tls_ca {
                ensure!(ca.is_file(), "[transports.amqp] tls_ca: {} is not a file", ca.display());
                ensure!(
                    amqp.url.starts_with("amqps://"),
                    "[transports.amqp] tls_ca is for an amqps:// url"
                );
            }
            url(&amqp.url, &["amqp", "amqps"], false).with_context(|| {
                format!(
                    "[transports.amqp] url (or AMQP_URL) `{}`",
                    redact(&amqp.url).escape_debug()
                )
            })?;
            ensure!(
                !amqp.exchange.is_empty(),
                "[transports.amqp] exchange must not be empty"
            );
            ensure!(
                amqp.prefetch != Some(0),
                "[transports.amqp] prefetch must be at least 1"
            );
        }
        Ok(())
    }

    fn validate_component(&self, c: &ComponentConfig) -> Result<()> {
        let at = || format!("component `{}`", c.name);
        ensure!(
            is_name(&c.name),
            "component name `{}` must be non-empty letters, digits, `-` or `_`",
            c.name.escape_debug()
        );
        for s in &c.subscribe {
            Pattern::parse(&s.subject).with_context(|| format!("{}: subscribe", at()))?;
            self.validate_subscription(s)
                .and_then(|()| self.validate_chain(&s.middleware))
                .with_context(|| format!("{}: subscription `{}`", at(), s.subject))?;
        }
        for p in c.publish.iter().chain(&c.request) {
            Pattern::parse(p).with_context(|| format!("{}: publish/request grant", at()))?;
        }
        for target in &c.http_outbound {
            let (host, port) = target.rsplit_once(':').unwrap_or((target, ""));
            ensure!(
                !host.is_empty() && !host.contains(['/', ' ', '*']) && port.parse::<u16>().is_ok(),
                "{}: http_outbound `{}` must be `host:port` (e.g. \"api.example.com:443\")",
                at(),
                target.escape_debug()
            );
        }
        ensure!(
            c.max_hostcall_kb >= c.max_message_kb,
            "{}: max_hostcall_kb must be at least max_message_kb, or the component could not send its largest message",
            at()
        );
        match &c.source {
            // Built from source: a missing file says how to make it.
            Some(_) if !c.wasm.exists() => bail!(
                "{}: wasm file {} does not exist yet: build it with `berth build` (or run `berth dev`)",
                at(),
                c.wasm.display()
            ),
            _ => wasm_file(&c.wasm).with_context(at)?,
        }
        Ok(())
    }

    /// A subscription's sharing and stream settings fit together.
    fn validate_subscription(&self, s: &SubscribeConfig) -> Result<()> {
        if s.broadcast && s.group.is_some() {
            bail!("sets both `group` and `broadcast`");
        }
        if s.queue_type == QueueType::Quorum {
            ensure!(
                s.transport.unwrap_or(self.host.transport) == TransportKind::Amqp,
                "sets `queue_type = \"quorum\"`, a RabbitMQ queue type: its transport is not amqp"
            );
            ensure!(
                !s.broadcast,
                "sets `queue_type = \"quorum\"` and `broadcast`: a broadcast subscription's queue is its host's \
                 alone and goes with it, which a quorum queue cannot"
            );
        }
        let Some(stream) = &s.stream else {
            ensure!(
                s.durable.is_none() && s.dead_letter.is_none() && s.ack_wait_ms.is_none() && s.replicas.is_none(),
                "sets `durable`, `dead_letter`, `ack_wait_ms` or `replicas`, which need `stream`"
            );
            return Ok(());
        };
        let transport = s.transport.unwrap_or(self.host.transport);
        ensure!(
            transport == TransportKind::Nats,
            "names stream `{stream}`, a NATS JetStream feature, but uses the {transport} transport"
        );
        for (what, name) in [("stream", Some(stream)), ("durable", s.durable.as_ref())] {
            if let Some(name) = name {
                ensure!(
                    !name.is_empty() && !name.contains(['.', '*', '>', ' ', '\t']),
                    "{what} name `{name}` must be non-empty, without `.`, `*`, `>` or spaces"
                );
            }
        }
        if let Some(dead_letter) = &s.dead_letter {
            validate_subject(dead_letter).context("dead_letter")?;
        }
        ensure!(!s.broadcast, "a JetStream durable consumer cannot be `broadcast`");
        Ok(())
    }
}

/// A service or component name: a token of subjects and queue groups.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `text` is `[<scheme>://][user[:password]@]<host>[:<port>][/...]` with
/// one of `schemes` (the first is assumed when it is left out, if
/// `implied`): nothing a client would quietly replace by its default.
fn url(text: &str, schemes: &[&str], implied: bool) -> Result<()> {
    ensure!(
        !text.chars().any(|c| c.is_control() || c.is_whitespace()),
        "is not a valid URL: it contains a control character or a space"
    );
    let rest = match text.split_once("://") {
        Some((scheme, rest)) => {
            ensure!(
                schemes.contains(&scheme),
                "is not a valid URL here: the scheme must be one of {}",
                schemes.join(", ")
            );
            rest
        }
        None if implied => text,
        None => bail!("is not a valid URL: expected {}://host[:port]", schemes[0]),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => bail!("is not a valid URL: `[` without `]`"),
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    ensure!(!host.is_empty(), "is not a valid URL: it names no host");
    if let Some(port) = port {
        ensure!(
            port.parse::<u16>().is_ok(),
            "is not a valid URL: port `{port}` is not a number up to 65535"
        );
    }
    Ok(())
}

/// The URL without its password, for an error message.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, rest)| Some((s, rest.split_once('@')?)))
    {
        Some((scheme, (_, host))) => format!("{scheme}://…@{host}"),
        None => url.to_owned(),
    }
}

/// The component's file is there and is a file, not a folder or a device.
fn wasm_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("wasm file {} does not exist", path.display()))?;
    ensure!(
        !meta.is_dir(),
        "wasm file {} is a folder, not a component",
        path.display()
    );
    ensure!(meta.is_file(), "wasm file {} is not a regular file", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_client_would_misread_are_refused() {
        for good in [
            "nats://127.0.0.1:4222",
            "tls://user:pw@host",
            "nats://[::1]:4222",
            "nats://h/",
            "h:4222",
        ] {
            assert!(url(good, &["nats", "tls"], true).is_ok(), "{good}");
        }
        assert!(url("h:4222", &["amqp"], false).is_err(), "AMQP names its scheme");
        for (bad, says) in [
            ("amqp://\u{0}", "control character"),
            ("127.0.0.1:99999", "port"),
            ("http://h", "scheme"),
            ("nats://", "no host"),
            ("nats://:4222", "no host"),
            ("nats://h:99999", "port"),
            ("nats://h :1", "space"),
        ] {
            let err = format!("{:#}", url(bad, &["nats", "tls"], !bad.contains("://")).expect_err(bad));
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert_eq!(redact("amqp://guest:secret@h:5672/%2f"), "amqp://…@h:5672/%2f");
    }

    #[test]
    fn names_are_tokens() {
        assert!(is_name("orders-2_b"));
        for bad in ["", "*", ">", "a.b", "a b", "ä"] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
