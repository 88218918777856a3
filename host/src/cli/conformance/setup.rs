//! The host the conformance checks run on: its manifest (the component
//! under one unique prefix, with exactly the grants the contract needs), the
//! subscriptions that watch what the component sends, and the upstream
//! service it calls.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::Options;
use crate::Host;
use crate::core::handler::{DeclaredRoute, World};
use crate::core::subject::Pattern;
use crate::manifest::Manifest;
use crate::transport::{Settlement, SubscribeOptions, Subscription, Transport};

/// Answers `P.upstream` requests with `upstream: <body>`.
pub(super) async fn answer_upstream(mut sub: Subscription) {
    while let Some(mut delivery) = sub.next().await {
        let mut body = b"upstream: ".to_vec();
        body.extend_from_slice(&delivery.message.body);
        if let Some(reply) = delivery.message.reply(body, Vec::new())
            && let Err(e) = delivery.acker.reply(reply).await
        {
            tracing::warn!(error = %e, "conformance: cannot answer the upstream request");
        }
        let _ = delivery.acker.settle(Settlement::Ack).await;
    }
}

pub(super) async fn subscribe(transport: &dyn Transport, pattern: &str) -> Result<Subscription> {
    transport
        .subscribe(SubscribeOptions {
            pattern: pattern.into(),
            group: None,
            capacity: 64,
            ..SubscribeOptions::default()
        })
        .await
        .with_context(|| format!("subscribing to {pattern}"))
}

/// One token no other run uses, so runs can share a broker.
pub(super) fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("conformance-{:x}-{:x}", std::process::id(), nanos % (1 << 40))
}

/// The manifest the checks run under: the component subscribed to `P.in.>`,
/// allowed to publish to `P.out.>` and request `P.upstream`, and nothing
/// else. Sockets are linked (every address denied) because Python and
/// JavaScript toolchains import them unused.
pub(super) fn manifest(options: &Options, prefix: &str, greeting: &str) -> Result<Manifest> {
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let path = |p: &Path| s(&p.to_string_lossy());
    let wasm = std::path::absolute(&options.wasm).with_context(|| format!("resolving {}", options.wasm.display()))?;
    let text = format!(
        "[host]\nname = \"conformance\"\ntransport = \"{transport}\"\ndata_dir = {data}\nstrict = true\n\
         [transports.nats]\nurl = {nats}\n[transports.amqp]\nurl = {amqp}\n\
         [keyvalue.state]\nbackend = \"{keyvalue}\"\nbucket = {bucket}\n[keyvalue.other]\n\
         [[components]]\nname = \"conformance\"\nwasm = {wasm}\nsubscribe = [{sub}]\n\
         publish = [{publish}]\nrequest = [{request}]\nkeyvalue = [\"state\"]\n\
         link_unused_sockets = true\ntimeout_ms = 5000\n\
         [components.config]\ngreeting = {greeting}\n",
        transport = options.transport,
        data = path(&options.data_dir),
        nats = s(&options.nats_url),
        amqp = s(&options.amqp_url),
        wasm = path(&wasm),
        sub = s(&format!("{prefix}.in.>")),
        publish = s(&format!("{prefix}.out.>")),
        request = s(&format!("{prefix}.upstream")),
        greeting = s(greeting),
        keyvalue = options.keyvalue,
        // A bucket of this run's own, so runs never see each other's keys.
        bucket = s(&prefix.replace('-', "_")),
    );
    let manifest = Manifest::parse(&text)?;
    manifest.validate()?;
    Ok(manifest)
}

/// The world of the component under test, or why the checks are not for
/// it: a wasi:http component, or one whose declared routes take none of
/// the contract's subjects (an application's own backend, most often,
/// where every check would fail as `unhandled`).
pub(super) fn world(host: &Host, options: &Options, prefix: &str) -> Result<World> {
    let Some(route) = host.route("conformance") else {
        return Ok(World::Berth);
    };
    let handler = &route.versions.active().handler;
    let world = handler.world();
    let wasm = options.wasm.display();
    if world == World::WasiHttp {
        anyhow::bail!(
            "{wasm} is a wasi:http component: the conformance checks are for messaging components; \
             serve it on an [[http.routes]] route (docs/http.md)"
        );
    }
    let echo = format!("{prefix}.in.echo");
    let routes = handler.routes();
    let takes_echo = |pattern: &str| Pattern::parse(pattern).is_ok_and(|p| p.matches(&echo));
    if !routes.is_empty() && !routes.iter().any(|r| takes_echo(&r.pattern)) {
        let list = DeclaredRoute::list(routes);
        anyhow::bail!(
            "{wasm} routes {list}, and none of them takes the contract's subjects (`<prefix>.in.echo` and the \
             rest): the conformance checks are for a language's toolchain or helper layer, through a guest \
             written to the contract (docs/conformance.md), not for a backend's own routes"
        );
    }
    Ok(world)
}
