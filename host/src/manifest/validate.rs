//! What the types cannot check: unique names, valid patterns, sane limits,
//! files that exist. Every error names the component (and subscription)
//! and the field.

use std::collections::HashSet;

use anyhow::{Context, Result, bail, ensure};

use super::{ComponentConfig, MAX_MEMORY_MB, Manifest, SubscribeConfig, TransportKind};
use crate::core::limits::{MAX_BATCH, MAX_PER_COMPONENT};
use crate::core::subject::{Pattern, validate_subject};

impl Manifest {
    /// Checks what the types cannot; see the module docs.
    pub fn validate(&self) -> Result<()> {
        ensure!(!self.host.name.trim().is_empty(), "[host] name must not be empty");
        self.validate_transports()?;
        let mut names = HashSet::new();
        for c in &self.components {
            ensure!(
                names.insert(c.name.as_str()),
                "component name `{}` is used twice",
                c.name
            );
            self.validate_component(c)?;
        }
        Ok(())
    }

    fn validate_transports(&self) -> Result<()> {
        if let Some(nats) = &self.transports.nats {
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
        }
        if let Some(amqp) = &self.transports.amqp {
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
            !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            "component name `{}` must be non-empty letters, digits, `-` or `_`",
            c.name
        );
        for s in &c.subscribe {
            Pattern::parse(&s.subject).with_context(|| format!("{}: subscribe", at()))?;
            self.validate_subscription(s)
                .with_context(|| format!("{}: subscription `{}`", at(), s.subject))?;
        }
        for p in c.publish.iter().chain(&c.request) {
            Pattern::parse(p).with_context(|| format!("{}: publish/request grant", at()))?;
        }
        ensure!(c.max_concurrency >= 1, "{}: max_concurrency must be at least 1", at());
        ensure!(
            (1..=MAX_BATCH).contains(&c.max_batch),
            "{}: max_batch must be between 1 and {MAX_BATCH}",
            at()
        );
        ensure!(c.timeout_ms >= 1, "{}: timeout_ms must be at least 1", at());
        ensure!(c.max_deliver >= 1, "{}: max_deliver must be at least 1", at());
        let ceiling = MAX_PER_COMPONENT;
        ensure!(
            (1..=ceiling).contains(&c.max_instances) && (1..=ceiling).contains(&c.max_tables),
            "{}: max_instances and max_tables must be between 1 and {ceiling}",
            at()
        );
        ensure!(c.max_message_kb >= 1, "{}: max_message_kb must be at least 1", at());
        ensure!(
            c.max_hostcall_kb >= c.max_message_kb,
            "{}: max_hostcall_kb must be at least max_message_kb, or the component could not send its largest message",
            at()
        );
        ensure!(
            (1..=MAX_MEMORY_MB).contains(&c.memory_mb),
            "{}: memory_mb must be between 1 and {MAX_MEMORY_MB}",
            at()
        );
        ensure!(
            c.wasm.is_file(),
            "{}: wasm file {} does not exist",
            at(),
            c.wasm.display()
        );
        Ok(())
    }

    /// A subscription's sharing and stream settings fit together.
    fn validate_subscription(&self, s: &SubscribeConfig) -> Result<()> {
        if s.broadcast && s.group.is_some() {
            bail!("sets both `group` and `broadcast`");
        }
        let Some(stream) = &s.stream else {
            ensure!(
                s.durable.is_none() && s.dead_letter.is_none(),
                "sets `durable`/`dead_letter`, which need `stream`"
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
