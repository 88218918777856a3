//! Knowing the server has what this client sent.
//!
//! async-nats's `flush` only empties the client's buffer into the socket:
//! a core publish is then still on its way, and a connection lost now
//! loses it with no error to anyone. A confirmation is a message to the
//! host's own inbox. The server handles what one connection carries in
//! order, so the echo comes back only after the server read everything
//! sent before it on that connection: a subscription it now has, a publish
//! it has passed on.
//!
//! A confirmation is bound to the connection its caller started on (the
//! client's count of connections made): after a reconnect the echo would
//! come back over the new connection while what went before it may have
//! died in the old one's buffers, so a changed count fails it. A
//! disconnect fails every confirmation waiting at once rather than at its
//! timeout.
//!
//! One standing subscription serves every confirmation, made on first
//! use: a confirmation costs one small message each way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use rustc_hash::FxHashMap;
use tokio::sync::{OnceCell, oneshot};

use crate::transport::{AbortOnDrop, TransportError};

/// Confirmations sent and not yet echoed, by token.
#[derive(Default)]
pub(super) struct Waiting(Mutex<FxHashMap<u64, oneshot::Sender<()>>>);

impl Waiting {
    fn insert(&self, token: u64, echoed: oneshot::Sender<()>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, echoed);
    }

    fn remove(&self, token: u64) -> Option<oneshot::Sender<()>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&token)
    }

    /// The connection is gone and what was on its way with it: each
    /// waiting confirmation fails now.
    pub(super) fn fail_all(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// The confirmations of one client.
pub(super) struct Confirmations {
    client: async_nats::Client,
    /// The client's counters, whose count of connections numbers them.
    statistics: Arc<async_nats::Statistics>,
    waiting: Arc<Waiting>,
    next: AtomicU64,
    /// The inbox echoes come back to, and the task reading it.
    inbox: OnceCell<(async_nats::Subject, AbortOnDrop)>,
    timeout: Duration,
}

impl Confirmations {
    /// Confirmations over `client`; `waiting` is failed on its disconnects.
    pub(super) fn new(client: async_nats::Client, waiting: Arc<Waiting>, timeout: Duration) -> Self {
        Self {
            statistics: client.statistics(),
            client,
            waiting,
            next: AtomicU64::new(0),
            inbox: OnceCell::new(),
            timeout,
        }
    }

    /// The number of the connection the client is on now; what is sent
    /// after reading it goes out on it or a later one.
    pub(super) fn connection(&self) -> u64 {
        self.statistics.connects.load(Ordering::Relaxed)
    }

    /// Returns once the server has read everything sent before this call
    /// on connection `since`, if the client is still on it; with `None`,
    /// on whichever connection the echo took (for what a reconnect sends
    /// again by itself: a subscription).
    pub(super) async fn confirm(&self, since: Option<u64>) -> Result<(), TransportError> {
        let inbox = self.inbox().await?;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (echoed, echo) = oneshot::channel();
        self.waiting.insert(token, echoed);
        let sent = self
            .client
            .publish(inbox.clone(), bytes::Bytes::copy_from_slice(&token.to_be_bytes()))
            .await;
        let outcome = match sent {
            Err(e) => Err(format!("the confirmation could not be sent: {e}")),
            Ok(()) => match tokio::time::timeout(self.timeout, echo).await {
                Ok(Ok(())) if since.is_none_or(|since| self.connection() == since) => Ok(()),
                Ok(_) => Err("the connection was lost; what was sent on it may be too".to_owned()),
                Err(_) => Err(format!("the server did not confirm within {:?}", self.timeout)),
            },
        };
        self.waiting.remove(token);
        outcome.map_err(|why| TransportError::Broker(anyhow::anyhow!("NATS: {why}")))
    }

    async fn inbox(&self) -> Result<&async_nats::Subject, TransportError> {
        let (inbox, _) = self
            .inbox
            .get_or_try_init(|| async {
                let inbox = async_nats::Subject::from(self.client.new_inbox());
                let mut echoes = self.client.subscribe(inbox.clone()).await.map_err(|e| {
                    TransportError::Broker(anyhow::anyhow!("NATS: cannot subscribe to confirmations: {e}"))
                })?;
                let waiting = self.waiting.clone();
                let reader = tokio::spawn(async move {
                    while let Some(echo) = echoes.next().await {
                        let token = <[u8; 8]>::try_from(echo.payload.as_ref()).map(u64::from_be_bytes);
                        if let Some(echoed) = token.ok().and_then(|t| waiting.remove(t)) {
                            let _ = echoed.send(());
                        }
                    }
                });
                Ok::<_, TransportError>((inbox, AbortOnDrop(reader)))
            })
            .await?;
        Ok(inbox)
    }
}
