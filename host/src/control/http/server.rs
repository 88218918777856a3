//! The HTTP listener's connections: a cap on how many are open, a deadline
//! for a request's headers (which is also how long a kept-alive connection
//! may idle), and a graceful end. axum's own `serve` has neither a cap nor
//! a header deadline, so a few thousand half-sent requests could hold every
//! file descriptor and starve `/health`; this is hyper's connection builder
//! with those two set, and nothing else of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

/// How a listener treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and a
    /// kept-alive connection may sit idle.
    pub header_timeout: Duration,
}

/// How long shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(5);
/// How long a refused connection may take to read its refusal.
const REFUSAL_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause after a failed accept (out of file descriptors): the next accept
/// would fail the same way at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `listener` until `stop`, within `limits`, each request with the
/// router `routes` holds when it comes (the host's own once it has started).
pub(super) async fn serve(
    listener: TcpListener,
    routes: tokio::sync::watch::Receiver<Router>,
    limits: Limits,
    stop: CancellationToken,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP: cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, peer, limits.max_connections));
            continue;
        };
        let routes = routes.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = routes.borrow().clone();
            async move { router.call(request.map(Body::new)).await }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?GRACE, "HTTP requests still open after the grace period");
    }
    Ok(())
}

/// Answers a connection past the cap with a 503 that says so, and closes it.
async fn refuse(mut stream: TcpStream, peer: SocketAddr, cap: usize) {
    tracing::warn!(%peer, cap, "HTTP connection refused: too many open");
    let body = format!("{{\"message\":\"too many connections: this host keeps at most {cap} open\"}}");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
