//! The connection to RabbitMQ, and getting it back after it drops.
//!
//! One TCP connection per transport, shared by every channel. When the
//! broker closes it (a restart, `rabbitmqctl close_all_connections`, a
//! network cut), the next caller that needs it reconnects; each user then
//! re-declares what it needs on the new connection. Reconnection is ours,
//! not lapin's auto-recovery, so that the topology we re-declare and the
//! deliveries we drop are exactly the ones we know about.
//!
//! Every connection has a generation number, so that what was set up on an
//! old connection (the reply queue of outbound requests) is known to be
//! gone. The lock around reconnecting makes many consumers noticing one drop
//! cause one reconnect, not many.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::transport::TransportError;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A live connection and its generation.
#[derive(Clone)]
pub(super) struct Live {
    pub generation: u64,
    pub connection: Arc<Connection>,
}

#[derive(Default)]
struct State {
    generation: u64,
    connection: Option<Arc<Connection>>,
}

/// The shared connection of one AMQP transport.
pub(super) struct Link {
    url: String,
    /// The CA that signed an `amqps://` broker's certificate, as PEM.
    tls_ca: Option<String>,
    state: Mutex<State>,
    /// The channel for publishes and replies, in confirm mode, read without
    /// the lock: every reply takes it, and a clone of lapin's `Channel`
    /// (and dropping it) cost more than the rest of the reply's own work.
    publisher: ArcSwapOption<Channel>,
    /// The current connection, readable without the lock (for status).
    current: std::sync::Mutex<Option<Arc<Connection>>>,
    /// Connections made after the first, for metrics.
    reconnects: std::sync::atomic::AtomicU64,
}

impl Link {
    /// Connections made after the first.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connects once, failing with a clear error (a wrong URL, nothing
    /// listening, bad credentials) instead of retrying: used at start.
    pub async fn connect(url: &str, tls_ca: Option<&std::path::Path>) -> Result<Self, TransportError> {
        let tls_ca = match tls_ca {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                TransportError::Broker(anyhow::anyhow!("cannot read AMQP tls_ca {}: {e}", path.display()))
            })?),
            None => None,
        };
        let connection = Arc::new(open(url, tls_ca.as_deref()).await?);
        Ok(Self {
            url: url.to_owned(),
            tls_ca,
            current: std::sync::Mutex::new(Some(connection.clone())),
            reconnects: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                generation: 1,
                connection: Some(connection),
            }),
            publisher: ArcSwapOption::empty(),
        })
    }

    /// The current connection if it is up; otherwise one reconnect attempt.
    pub async fn live(&self) -> Result<Live, TransportError> {
        let mut state = self.state.lock().await;
        self.ensure(&mut state).await
    }

    /// The confirm-mode channel for publishes and replies; opened (on a
    /// new connection if need be) when there is none or it died.
    pub async fn publisher(&self) -> Result<Arc<Channel>, TransportError> {
        if let Some(channel) = self.open_publisher() {
            return Ok(channel);
        }
        let mut state = self.state.lock().await;
        // Another caller may have opened one while this one waited.
        if let Some(channel) = self.open_publisher() {
            return Ok(channel);
        }
        let live = self.ensure(&mut state).await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(broker("open a channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker("enable publisher confirms"))?;
        let channel = Arc::new(channel);
        self.publisher.store(Some(channel.clone()));
        Ok(channel)
    }

    /// The publisher channel, if there is one and it is open.
    fn open_publisher(&self) -> Option<Arc<Channel>> {
        self.publisher.load_full().filter(|c| c.status().connected())
    }

    /// Whether the connection is up right now (for health).
    pub fn is_connected(&self) -> bool {
        self.current
            .lock()
            .map(|c| c.as_ref().is_some_and(|c| c.status().connected()))
            .unwrap_or(false)
    }

    async fn ensure(&self, state: &mut State) -> Result<Live, TransportError> {
        if let Some(connection) = &state.connection
            && connection.status().connected()
        {
            return Ok(Live {
                generation: state.generation,
                connection: connection.clone(),
            });
        }
        let connection = Arc::new(open(&self.url, self.tls_ca.as_deref()).await?);
        state.generation += 1;
        state.connection = Some(connection.clone());
        self.publisher.store(None);
        if let Ok(mut current) = self.current.lock() {
            *current = Some(connection.clone());
        }
        self.reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(generation = state.generation, url = %redact(&self.url), "AMQP reconnected");
        Ok(Live {
            generation: state.generation,
            connection,
        })
    }
}

async fn open(url: &str, tls_ca: Option<&str>) -> Result<Connection, TransportError> {
    let properties = ConnectionProperties::default().with_connection_name("berth".into());
    let fail =
        |why: String| TransportError::Broker(anyhow::anyhow!("cannot connect to AMQP at {}: {why}", redact(url)));
    let tls = lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: tls_ca.map(str::to_owned),
    };
    let runtime = lapin::runtime::default_runtime().map_err(|e| fail(explain(&e)))?;
    let connecting = Connection::connect_with_config(url, properties, tls, runtime);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(fail(explain(&e))),
        Err(_) => Err(fail(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

/// Names the usual causes of a failed connect in words an operator acts on.
fn explain(e: &lapin::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("access_refused") || lower.contains("auth") || lower.contains("login") {
        format!("bad credentials or no access to the virtual host ({text})")
    } else if lower.contains("uri") || lower.contains("parse") || lower.contains("scheme") {
        format!("not a valid AMQP URL ({text})")
    } else if lower.contains("refused") || lower.contains("io error") {
        format!("broker not reachable ({text})")
    } else {
        text
    }
}

/// The URL without its password, for logs and errors.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Maps a lapin error to a transport error naming what we were doing.
pub(super) fn broker(what: &'static str) -> impl Fn(lapin::Error) -> TransportError {
    move |e| TransportError::Broker(anyhow::anyhow!("AMQP: could not {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("amqp://guest:secret@10.0.0.1:5672/%2f"),
            "amqp://guest:***@10.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://10.0.0.1"), "amqp://10.0.0.1");
    }
}
