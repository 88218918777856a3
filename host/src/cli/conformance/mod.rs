//! `berth conformance WASM`: loads any component and checks that it keeps
//! the conformance contract (docs/conformance.md), one line per check.
//!
//! The contract is a set of subjects under one prefix token `P`, so that
//! several runs can share a broker: the guest takes `P.in.<name>`, routes
//! on the last token and derives every subject it sends to (`P.out.<name>`,
//! `P.upstream`, the forbidden `P.secret`) from the first. The checks go through
//! a real host on the chosen transport, so they test the guest, its
//! language's bindings and the host's wire mapping together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::manifest::{KvBackend, TransportKind};

mod headers;
mod keyvalue;
mod setup;
use crate::core::handler::World;
use crate::transport::{Settlement, Subscription, Transport};
use crate::{CallError, ErrorKind, Host, Message};
use setup::{answer_upstream, manifest, subscribe, unique_prefix};

/// How long one check waits for its answer.
const WAIT: Duration = Duration::from_secs(10);

/// Where and how to run the checks.
#[derive(Clone, Debug)]
pub struct Options {
    /// The component under test.
    pub wasm: PathBuf,
    /// The transport the host serves it on.
    pub transport: TransportKind,
    /// NATS server, for `nats`.
    pub nats_url: String,
    /// AMQP broker, for `amqp`.
    pub amqp_url: String,
    /// Compile cache and the embedded bucket; kept between runs because
    /// Python and JavaScript components take seconds to compile.
    pub data_dir: PathBuf,
    /// Where the bucket `state` of the key-value checks lives (NATS KV
    /// uses `nats_url`).
    pub keyvalue: KvBackend,
}

/// One check's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// What was checked.
    pub name: &'static str,
    /// `Err` says what differed from the contract.
    pub result: Result<(), String>,
}

/// Starts a host with the component and runs every check against it.
/// `Err` means the checks could not run at all (the component does not
/// load, the broker is down).
pub async fn run(options: &Options) -> Result<Vec<Outcome>> {
    let prefix = unique_prefix();
    let greeting = format!("hello from {prefix}");
    let manifest = manifest(options, &prefix, &greeting)?;
    let host = Host::start(&manifest)
        .await
        .with_context(|| format!("loading {} for the conformance checks", options.wasm.display()))?;
    let transport = host.transport();
    let outbox = subscribe(&*transport, &format!("{prefix}.out.>")).await?;
    let upstream = subscribe(&*transport, &format!("{prefix}.upstream")).await?;
    let responder = tokio::spawn(answer_upstream(upstream));

    let world = match setup::world(&host, options, &prefix) {
        Ok(world) => world,
        Err(refused) => {
            host.shutdown(Duration::from_secs(2)).await;
            return Err(refused);
        }
    };
    let c = Checks {
        world,
        transport,
        prefix,
        greeting,
        outbox: tokio::sync::Mutex::new(outbox),
    };
    let mut outcomes = Vec::new();
    for (name, worlds, check) in CHECKS {
        if !worlds.contains(&c.world) {
            continue;
        }
        let result = check(&c).await;
        outcomes.push(Outcome { name, result });
    }
    responder.abort();
    host.shutdown(Duration::from_secs(2)).await;
    Ok(outcomes)
}

type Check = for<'a> fn(&'a Checks) -> futures_util::future::BoxFuture<'a, Result<(), String>>;

/// Every messaging world: echo, publish, request, grants and events mean
/// the same in each.
const MESSAGING: &[World] = &[World::Berth, World::WasmCloud, World::WasiMessaging];
/// The worlds whose messages carry headers.
const HEADERS: &[World] = &[World::Berth, World::WasiMessaging];
/// The worlds with a configuration interface.
const CONFIGURED: &[World] = &[World::Berth, World::WasmCloud];
/// Only Berth's: JSON helpers, coded errors, declared routes, state.
const BERTH: &[World] = &[World::Berth];

/// The checks, in the order they run and print.
const CHECKS: [(&str, &[World], Check); 24] = [
    ("echo: text body", MESSAGING, |c| {
        Box::pin(c.echo(Bytes::from_static(b"hello, berth")))
    }),
    ("echo: empty body", MESSAGING, |c| Box::pin(c.echo(Bytes::new()))),
    ("echo: binary body, every byte value", MESSAGING, |c| {
        Box::pin(c.echo((0..=255u8).rev().chain(0..=255).collect::<Vec<_>>().into()))
    }),
    ("echo: JSON body byte for byte", MESSAGING, |c| {
        Box::pin(c.echo(Bytes::from_static(
            "{\"b\": [1, 2.5e3, null], \"a\": \"\u{e9}\u{1f6a2}\"}".as_bytes(),
        )))
    }),
    ("echo: 256 KiB body", MESSAGING, |c| {
        Box::pin(c.echo((0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>().into()))
    }),
    ("echo: headers, a repeated name's values in order", HEADERS, |c| {
        Box::pin(c.echo_headers())
    }),
    (
        "headers: read by name, any case, the first of a repeated one",
        BERTH,
        |c| Box::pin(c.header_by_name()),
    ),
    ("route parameters: read by name", BERTH, |c| Box::pin(c.route_param())),
    ("json: parses a request and answers JSON", BERTH, |c| {
        Box::pin(c.json_sum())
    }),
    ("json: bad JSON is a 400 handler error", BERTH, |c| {
        Box::pin(c.json_invalid())
    }),
    ("error: code, name, message and data", BERTH, |c| {
        Box::pin(c.handler_error())
    }),
    ("config: read at init", CONFIGURED, |c| Box::pin(c.config())),
    ("host publish: reaches the broker", MESSAGING, |c| Box::pin(c.publish())),
    ("host request: gets the upstream reply", MESSAGING, |c| {
        Box::pin(c.call())
    }),
    ("host publish outside the grants: refused with 403", MESSAGING, |c| {
        Box::pin(c.forbidden())
    }),
    ("event: handled, publishes", MESSAGING, |c| Box::pin(c.event())),
    ("unknown subject: unhandled 404 naming its routes", BERTH, |c| {
        Box::pin(c.unhandled())
    }),
    ("keyvalue: a value set is read back", BERTH, |c| {
        Box::pin(c.kv_round_trip())
    }),
    ("keyvalue: a missing key is 404", BERTH, |c| Box::pin(c.kv_missing())),
    ("keyvalue: delete removes the key", BERTH, |c| Box::pin(c.kv_delete())),
    ("keyvalue: concurrent increments all count", BERTH, |c| {
        Box::pin(c.kv_increment())
    }),
    ("keyvalue: compare-and-swap refuses a stale revision", BERTH, |c| {
        Box::pin(c.kv_cas())
    }),
    ("keyvalue: keys lists every key set", BERTH, |c| Box::pin(c.kv_keys())),
    ("keyvalue: a bucket not granted is refused with 403", BERTH, |c| {
        Box::pin(c.kv_denied())
    }),
];

/// What the checks share.
struct Checks {
    /// The contract the component speaks: which checks apply, and how.
    world: World,
    transport: Arc<dyn Transport>,
    prefix: String,
    greeting: String,
    outbox: tokio::sync::Mutex<Subscription>,
}

impl Checks {
    /// Where the guest takes `name`: `P.in.<name>`.
    fn subject(&self, name: &str) -> String {
        format!("{}.in.{name}", self.prefix)
    }

    /// Sends a request; `Ok` holds the reply, success or error.
    async fn send(&self, message: Message) -> Result<Message, String> {
        self.transport
            .request(message, WAIT)
            .await
            .map_err(|e| format!("no reply: {e}"))
    }

    async fn ok(&self, message: Message) -> Result<Message, String> {
        let reply = self.send(message).await?;
        match CallError::from_reply(&reply) {
            Some(e) => Err(format!("expected a reply, got error {}: {}", e.code, e.message)),
            None => Ok(reply),
        }
    }

    async fn error(&self, message: Message) -> Result<CallError, String> {
        let reply = self.send(message).await?;
        CallError::from_reply(&reply).ok_or_else(|| format!("expected an error, got reply {:?}", preview(&reply.body)))
    }

    async fn echo(&self, body: Bytes) -> Result<(), String> {
        let reply = self.ok(Message::new(self.subject("echo"), body.clone())).await?;
        same_body(&body, &reply.body)
    }

    async fn json_sum(&self) -> Result<(), String> {
        let reply = self
            .ok(Message::new(self.subject("json"), r#"{"a": 40, "b": 2}"#))
            .await?;
        let value: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| format!("reply is not JSON ({e}): {:?}", preview(&reply.body)))?;
        if value != serde_json::json!({"sum": 42}) {
            return Err(format!("expected {{\"sum\": 42}}, got {value}"));
        }
        Ok(())
    }

    async fn json_invalid(&self) -> Result<(), String> {
        let e = self.error(Message::new(self.subject("json"), "{not json")).await?;
        expect(&e, ErrorKind::Handler, 400)
    }

    async fn handler_error(&self) -> Result<(), String> {
        let e = self.error(Message::new(self.subject("fail"), "")).await?;
        expect(&e, ErrorKind::Handler, 418)?;
        if e.name != "I'm a teapot" || e.message != "short and stout" {
            return Err(format!(
                "expected name \"I'm a teapot\", message \"short and stout\"; got {:?}, {:?}",
                e.name, e.message
            ));
        }
        let data: Option<serde_json::Value> = e.data.as_deref().and_then(|d| serde_json::from_slice(d).ok());
        if data != Some(serde_json::json!({"spout": true})) {
            return Err(format!(
                "expected data {{\"spout\": true}}, got {:?}",
                e.data.as_deref().map(preview)
            ));
        }
        Ok(())
    }

    async fn config(&self) -> Result<(), String> {
        let reply = self.ok(Message::new(self.subject("config"), "")).await?;
        same_body(self.greeting.as_bytes(), &reply.body)
    }

    async fn publish(&self) -> Result<(), String> {
        let body = format!("published by {}", self.prefix);
        let reply = self.ok(Message::new(self.subject("publish"), body.clone())).await?;
        same_body(b"", &reply.body)?;
        let out = self.outgoing("published").await?;
        same_body(body.as_bytes(), &out.body)?;
        match out.header("conformance") {
            Some("published") => Ok(()),
            // wasmCloud's messages have no headers.
            None if self.world == World::WasmCloud => Ok(()),
            other => Err(format!(
                "published message: header conformance = {other:?}, expected \"published\""
            )),
        }
    }

    async fn call(&self) -> Result<(), String> {
        let reply = self.ok(Message::new(self.subject("call"), "ping")).await?;
        same_body(b"upstream: ping", &reply.body)
    }

    async fn forbidden(&self) -> Result<(), String> {
        // The guest hands back the host's refusal; the host reports what a
        // guest returns as a handler error, code and message kept.
        let e = self.error(Message::new(self.subject("forbidden"), "")).await?;
        // wasmCloud's errors are strings: the refusal's text, not its code.
        let code = if self.world == World::WasmCloud { 500 } else { 403 };
        expect(&e, ErrorKind::Handler, code)?;
        if !e.message.contains(&format!("{}.secret", self.prefix)) {
            return Err(format!("the 403 should name the refused subject, says {:?}", e.message));
        }
        Ok(())
    }

    async fn event(&self) -> Result<(), String> {
        let body = format!("event for {}", self.prefix);
        self.transport
            .publish(Message::new(self.subject("event"), body.clone()))
            .await
            .map_err(|e| format!("publishing the event: {e}"))?;
        let out = self.outgoing("event").await?;
        same_body(body.as_bytes(), &out.body)
    }

    async fn unhandled(&self) -> Result<(), String> {
        let e = self.error(Message::new(self.subject("no-such-route"), "")).await?;
        expect(&e, ErrorKind::Unhandled, 404)?;
        // The host names the routes the component declares (every SDK
        // exports `berth:backend/routes`).
        match e.message.contains("handles:") && e.message.contains("request *.in.echo") {
            true => Ok(()),
            false => Err(format!(
                "the error should name the routes it has (`request *.in.echo`, ...): does the component \
                 export berth:backend/routes? It says {:?}",
                e.message
            )),
        }
    }

    /// The next message the guest published under `P.out.`, which must be
    /// `P.out.<last>`.
    async fn outgoing(&self, last: &str) -> Result<Message, String> {
        let want = format!("{}.out.{last}", self.prefix);
        let mut outbox = self.outbox.lock().await;
        let delivery = tokio::time::timeout(WAIT, outbox.next())
            .await
            .map_err(|_| format!("nothing published to {want} within {WAIT:?}"))?
            .ok_or("the subscription ended")?;
        let message = delivery.message.clone();
        // A plain subscription: settling cannot fail in a way that matters.
        let _ = delivery.acker.settle(Settlement::Ack).await;
        if message.subject != want {
            return Err(format!("expected a message on {want}, got one on {}", message.subject));
        }
        Ok(message)
    }
}

fn expect(e: &CallError, kind: ErrorKind, code: u16) -> Result<(), String> {
    if e.kind != kind || e.code != code {
        return Err(format!(
            "expected a {} error with code {code}, got {} {} ({}: {})",
            kind.as_str(),
            e.kind.as_str(),
            e.code,
            e.name,
            e.message
        ));
    }
    Ok(())
}

fn same_body(want: &[u8], got: &[u8]) -> Result<(), String> {
    if want == got {
        return Ok(());
    }
    let at = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    Err(format!(
        "body differs at byte {at}: expected {} bytes {:?}, got {} bytes {:?}",
        want.len(),
        preview(want),
        got.len(),
        preview(got)
    ))
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(48)]).into_owned();
    if bytes.len() > 48 { format!("{text}...") } else { text }
}
