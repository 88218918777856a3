//! A TCP proxy a test controls, to break the network between a host and
//! its broker without touching the broker: kill every connection through
//! it (the host sees its socket close and reconnects), or cut it (nothing
//! passes either way, and connections stay open, as in a partition that
//! TCP outlives) and heal it again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// A proxy from a free port on 127.0.0.1 to one upstream address.
pub struct Proxy {
    addr: SocketAddr,
    /// Open (`true`) or cut.
    gate: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (gate, _) = watch::channel(true);
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let (gate, connections) = (gate.clone(), connections.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = tokio::spawn(pipe(client_read, server_write, gate.subscribe()));
                    let down = tokio::spawn(pipe(server_read, client_write, gate.subscribe()));
                    let mut live = connections.lock().unwrap_or_else(|p| p.into_inner());
                    live.retain(|c| !c.is_finished());
                    live.extend([up.abort_handle(), down.abort_handle()]);
                }
            }
        })
        .abort_handle();
        Self {
            addr,
            gate,
            connections,
            accept,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Closes every connection through the proxy; new ones are let through.
    /// Returns how many were open.
    pub fn kill_connections(&self) -> usize {
        let live: Vec<AbortHandle> = std::mem::take(&mut *self.connections.lock().unwrap_or_else(|p| p.into_inner()));
        let open = live.iter().filter(|c| !c.is_finished()).count() / 2;
        for connection in live {
            connection.abort();
        }
        open
    }

    /// Stops every byte, both ways, until [`Proxy::heal`]; connections
    /// stay open and what was sent waits.
    pub fn cut(&self) {
        self.gate.send_replace(false);
    }

    /// Lets bytes through again.
    pub fn heal(&self) {
        self.gate.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.kill_connections();
    }
}

/// Copies `from` to `to` while the gate is open; ends with either side.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: watch::Receiver<bool>) {
    let mut buf = vec![0; 16 << 10];
    loop {
        if gate.wait_for(|open| *open).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just as the cut came wait for the heal.
        if gate.wait_for(|open| *open).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
