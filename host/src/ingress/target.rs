//! Where an ingress sends a request for a subject: to the transport of
//! the subscription of this host that serves it (else the host's default
//! transport), or — when that subscription is on the in-memory transport,
//! where nothing else could answer — straight into its component.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::app::App;
use crate::core::error::CallError;
use crate::core::handler::Reply;
use crate::core::message::Message;
use crate::core::subject::Pattern;
use crate::manifest::{Manifest, TransportKind};
use crate::router::Route;
use crate::transport::Transport;

/// The largest request body for a subject no component of this host
/// serves (else that component's `max_message_kb`): the components'
/// default.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Whoever serves one subject.
#[derive(Clone)]
pub struct SubjectTarget {
    /// Where the request goes.
    pub subject: String,
    /// The transport it goes on.
    pub transport: Arc<dyn Transport>,
    /// The component of this host that takes it in process, with the
    /// pattern of its subscription.
    pub local: Option<(Arc<Route>, String)>,
    /// The largest body its server takes.
    pub max_body: usize,
}

impl SubjectTarget {
    /// Sends `message` (to [`Self::subject`]) and waits up to `timeout`;
    /// an error reply comes back as the error it carries.
    pub async fn request(&self, message: Message, timeout: Duration) -> Result<Reply, CallError> {
        if let Some((route, pattern)) = &self.local {
            return match tokio::time::timeout(timeout, route.request_local(pattern, message)).await {
                Ok(answer) => answer,
                Err(_) => Err(CallError::new(
                    crate::core::error::ErrorKind::Timeout,
                    format!("`{}` did not answer within {} ms", self.subject, timeout.as_millis()),
                )),
            };
        }
        let reply = self
            .transport
            .request(message, timeout)
            .await
            .map_err(CallError::from)?;
        if let Some(e) = CallError::from_reply(&reply) {
            return Err(e);
        }
        Ok(Reply {
            body: reply.body,
            headers: reply.headers,
        })
    }

    /// Sends `message` without waiting; nobody listening is no error.
    pub async fn publish(&self, message: Message) -> Result<(), CallError> {
        self.transport.publish(message).await.map_err(CallError::from)
    }
}

/// Each subscription of this host's components, to find a subject's
/// server quickly (the gateway looks one up per request name).
pub struct Resolver {
    servers: Vec<Server>,
    default: Arc<dyn Transport>,
}

struct Server {
    pattern: Pattern,
    transport: Arc<dyn Transport>,
    local: Option<(Arc<Route>, String)>,
    max_body: usize,
}

impl Resolver {
    /// The subscriptions of `manifest`'s components, on `app`'s transports.
    /// With `in_process`, a subject this host's components serve is
    /// called in process whatever their transport (the gateway's: a node's
    /// requests are its own host's to answer); otherwise only on the
    /// in-memory transport, and other transports share the work among
    /// their hosts.
    pub fn new(manifest: &Manifest, app: &App, in_process: bool) -> Result<Self> {
        let mut servers = Vec::new();
        for c in &manifest.components {
            for s in &c.subscribe {
                let Ok(pattern) = Pattern::parse(&s.subject) else {
                    continue;
                };
                let kind = s.transport.unwrap_or(manifest.host.transport);
                let name = kind.to_string();
                let transport = app
                    .transports
                    .iter()
                    .find(|t| t.kind() == name)
                    .cloned()
                    .with_context(|| format!("the {name} transport is not connected"))?;
                let local = match kind {
                    _ if in_process => app.route(&c.name).map(|r| (r.clone(), s.subject.clone())),
                    TransportKind::Memory => app.route(&c.name).map(|r| (r.clone(), s.subject.clone())),
                    _ => None,
                };
                servers.push(Server {
                    pattern,
                    transport,
                    local,
                    max_body: c.max_message_kb as usize * 1024,
                });
            }
        }
        Ok(Self {
            servers,
            default: app.transport.clone(),
        })
    }

    /// Whoever serves `subject`: the first subscription that takes it, in
    /// manifest order.
    pub fn target(&self, subject: &str) -> SubjectTarget {
        match self.servers.iter().find(|s| s.pattern.matches(subject)) {
            Some(s) => SubjectTarget {
                subject: subject.to_owned(),
                transport: s.transport.clone(),
                local: s.local.clone(),
                max_body: s.max_body,
            },
            None => SubjectTarget {
                subject: subject.to_owned(),
                transport: self.default.clone(),
                local: None,
                max_body: DEFAULT_MAX_BODY,
            },
        }
    }
}
