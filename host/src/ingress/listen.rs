//! Listening sockets for the ways in, with an accept queue as deep as the
//! connections they are meant to take.
//!
//! A reconnect storm (every client of a restarted host at once, a
//! thousand WebSocket clients starting together) arrives faster than one
//! accept loop takes it. Past the kernel's accept queue, connection
//! attempts are dropped and each client retries on TCP's backoff (1 s,
//! 3 s, 7 s, 15 s …), so a few clients wait many seconds for a host that
//! was ready all along. tokio's `TcpListener::bind` asks for a queue of
//! 1,024; these listeners ask for their `max_connections` (the kernel caps
//! it at `net.core.somaxconn`).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Most a listener asks the kernel to queue: `listen(2)` takes an `int`,
/// and no kernel queues more.
const MOST: usize = 65_535;

/// Listens on `addr` with an accept queue of `backlog` connections
/// (at least tokio's 1,024, at most 65,535).
pub fn listen(addr: SocketAddr, backlog: usize) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As tokio's own bind does: a restarted host may take its port again
    // while the last one's connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let backlog = u32::try_from(backlog.clamp(1024, MOST)).unwrap_or(1024);
    socket.listen(backlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_listens_on_a_port_the_system_chose_and_refuses_one_in_use() {
        let first = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 100_000).expect("listens");
        let addr = first.local_addr().expect("address");
        assert_ne!(addr.port(), 0);
        let taken = listen(addr, 10).expect_err("the port is in use");
        assert_eq!(taken.kind(), io::ErrorKind::AddrInUse);
    }
}
