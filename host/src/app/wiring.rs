//! A component's subscriptions made on their transports and served by the
//! router: at start, and when a swap brings a manifest entry whose
//! subscriptions changed (added ones start before removed ones stop, so a
//! subject that stays subscribed is never left without one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::manifest::{ComponentConfig, HostConfig, SubscribeConfig, TransportKind};
use crate::router::chain::Chain;
use crate::router::{self, Route};
use crate::transport::nats::NatsTransport;
use crate::transport::{StreamOptions, SubscribeOptions, Transport};

/// A connected transport as the app layer holds it: behind the trait, and
/// NATS also as itself, so that the router serves its core subscriptions
/// with their acker unboxed (see [`crate::transport::Settle`]). This layer
/// chose the concrete transports; it is the one place that knows them.
#[derive(Clone)]
pub(super) struct Connected {
    pub(super) any: Arc<dyn Transport>,
    pub(super) nats: Option<NatsTransport>,
}

pub(super) type Transports = HashMap<TransportKind, Connected>;

/// What subscribing needs: the transports, the service's name (queue
/// groups are named after it), and the tasks serving and their stop.
pub(super) struct Wiring {
    pub(super) transports: Transports,
    service: String,
    default: TransportKind,
    pub(super) tasks: TaskTracker,
    pub(super) stop: CancellationToken,
}

impl Wiring {
    pub(super) fn new(transports: Transports, host: &HostConfig) -> Self {
        Self {
            transports,
            service: host.name.clone(),
            default: host.transport,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Serves each subscription of a loaded component, and the change
    /// feeds it watches (its endpoints after the subscriptions').
    /// `links` are the host's components, among which its subscriptions'
    /// middleware is found.
    pub(super) async fn serve(
        &self,
        config: &ComponentConfig,
        route: &Arc<Route>,
        watched: Vec<String>,
        links: &[Arc<Route>],
    ) -> Result<()> {
        for (index, sub) in config.subscribe.iter().enumerate() {
            self.subscribe(config, route, index, sub, links).await?;
        }
        for (offset, feed) in watched.into_iter().enumerate() {
            self.watch(config, route, config.subscribe.len() + offset, feed).await?;
        }
        Ok(())
    }

    /// Subscribes to `sub` and serves it as the route's endpoint `index`,
    /// behind its middleware (found among `links`) from its first message.
    pub(super) async fn subscribe(
        &self,
        config: &ComponentConfig,
        route: &Arc<Route>,
        index: usize,
        sub: &SubscribeConfig,
        links: &[Arc<Route>],
    ) -> Result<()> {
        let chain = chain_of(&sub.middleware, links)
            .with_context(|| format!("component `{}`: subscription `{}`", config.name, sub.subject))?;
        if let Some(endpoint) = route.endpoints().get(index) {
            endpoint.set_chain(chain);
        }
        let kind = sub.transport.unwrap_or(self.default);
        let transport = self.transports.get(&kind).with_context(|| {
            format!(
                "component `{}`: {kind} is not connected (restart the host to add it)",
                config.name
            )
        })?;
        let options = subscribe_options(&self.service, config, sub);
        let at = || {
            format!(
                "component `{}`: subscribing to `{}` on {kind}",
                config.name, sub.subject
            )
        };
        let (route, stop) = (route.clone(), self.stop.clone());
        match (&transport.nats, &options.stream) {
            (Some(nats), None) => {
                let subscription = nats.subscribe_core(options).await.with_context(at)?;
                router::serve(route, index, "nats", subscription, &self.tasks, stop);
            }
            _ => {
                let subscription = transport.any.subscribe(options).await.with_context(at)?;
                router::serve(route, index, transport.any.kind(), subscription, &self.tasks, stop);
            }
        }
        Ok(())
    }

    /// Change feeds are published on the default transport; a queue group
    /// per component, so one host of the service takes each change.
    async fn watch(&self, config: &ComponentConfig, route: &Arc<Route>, index: usize, feed: String) -> Result<()> {
        let kind = self.default;
        let transport = &self.transports[&kind].any;
        let options = SubscribeOptions {
            pattern: feed,
            group: Some(format!("{}.{}.watch", self.service, config.name)),
            capacity: config.max_concurrency,
            max_deliver: config.max_deliver,
            ..SubscribeOptions::default()
        };
        let at = || format!("component `{}`: watching `{}` on {kind}", config.name, options.pattern);
        let subscription = transport.subscribe(options.clone()).await.with_context(at)?;
        router::serve(
            route.clone(),
            index,
            transport.kind(),
            subscription,
            &self.tasks,
            self.stop.clone(),
        );
        Ok(())
    }

    /// Moves the route from the subscriptions of `old` to those of `new`:
    /// each added one subscribed first, then each removed one ended.
    pub(super) async fn resubscribe(
        &self,
        route: &Arc<Route>,
        old: &ComponentConfig,
        new: &ComponentConfig,
        links: &[Arc<Route>],
    ) -> Result<()> {
        let added: Vec<&SubscribeConfig> = new.subscribe.iter().filter(|s| !old.subscribe.contains(s)).collect();
        let removed: Vec<&SubscribeConfig> = old.subscribe.iter().filter(|s| !new.subscribe.contains(s)).collect();
        for (done, sub) in added.iter().enumerate() {
            let index = route.add_endpoint(sub.subject.clone());
            if let Err(e) = self.subscribe(new, route, index, sub, links).await {
                // Leave the route as it was: the ones added so far go again.
                for undo in added.iter().take(done + 1) {
                    route.remove_last_endpoint(&undo.subject);
                }
                return Err(e);
            }
        }
        for sub in removed {
            route.remove_endpoint(&sub.subject);
        }
        for sub in &added {
            tracing::info!(component = %new.name, subject = %sub.subject, "subscribed");
        }
        Ok(())
    }
}

/// The middleware `names` as a chain of the routes among `links`.
pub(super) fn chain_of(names: &[String], links: &[Arc<Route>]) -> Result<Chain> {
    let found = names.iter().map(|name| {
        links
            .iter()
            .find(|l| &l.name == name)
            .cloned()
            .with_context(|| format!("middleware `{name}` is not a component of this host"))
    });
    Ok(Chain::new(found.collect::<Result<_>>()?))
}

/// What the manifest's subscription asks of the transport: the queue group
/// (`<service>.<component>` unless named or a broadcast), and for a stream
/// its durable consumer and dead-letter subject.
fn subscribe_options(service: &str, config: &ComponentConfig, sub: &SubscribeConfig) -> SubscribeOptions {
    let group = match (&sub.group, sub.broadcast) {
        (_, true) => None,
        (Some(g), false) => Some(g.clone()),
        (None, false) => Some(format!("{service}.{}", config.name)),
    };
    let stream = sub.stream.as_ref().map(|stream| {
        let durable = sub.durable.clone().unwrap_or_else(|| {
            group
                .as_deref()
                .unwrap_or(&config.name)
                .replace(['.', '*', '>', ' '], "_")
        });
        StreamOptions {
            ack_wait: sub.ack_wait_ms.map_or_else(
                || Duration::from_millis(config.timeout_ms.saturating_mul(2)) + Duration::from_secs(1),
                Duration::from_millis,
            ),
            stream: stream.clone(),
            dead_letter: sub
                .dead_letter
                .clone()
                .unwrap_or_else(|| format!("berth.dead.{durable}")),
            durable,
            replicas: sub.replicas,
        }
    });
    SubscribeOptions {
        pattern: sub.subject.clone(),
        group,
        capacity: config.max_concurrency,
        max_deliver: config.max_deliver,
        stream,
        quorum: sub.queue_type == crate::manifest::QueueType::Quorum,
    }
}
