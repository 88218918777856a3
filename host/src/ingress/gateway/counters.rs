//! What the gateway counts, for `/v1/gateway`, health and `/metrics`:
//! connections, requests by direction, and failures by kind.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Requests, by who sent them to whom.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    /// A client's request to the components.
    FromClient,
    /// A component's (or another host's) request to a client.
    ToClient,
    /// A request between nodes, to `<prefix>.server.<name>`.
    Server,
    /// A remote client request, through `<prefix>.remote.<name>`.
    Remote,
}

/// Failures, by kind.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// A frame that is not the protocol's (not JSON, no type, ...).
    BadFrame,
    /// A frame over `max_frame_kb`; its connection is closed.
    TooLarge,
    /// A request over `max_in_flight_per_client`.
    TooMany,
    /// No answer in time.
    Timeout,
    /// No handler for the request.
    Unhandled,
    /// The handler's own error (or the platform's refusal of the call).
    Endpoint,
    /// A client that let its send buffer fill; it is closed.
    SlowClient,
    /// A client that did not answer a ping; it is closed.
    NoPong,
    /// A connection refused at `max_connections`.
    Refused,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Counters {
    open: AtomicU64,
    opened: AtomicU64,
    pongs: AtomicU64,
    requests: [AtomicU64; 4],
    failures: [AtomicU64; 9],
}

/// The counters at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Connections open now.
    pub connections: u64,
    /// Connections ever accepted.
    pub connections_total: u64,
    /// The host's pings its clients answered.
    pub pongs: u64,
    /// Requests by direction.
    pub requests: Vec<(&'static str, u64)>,
    /// Failures by kind.
    pub errors: Vec<(&'static str, u64)>,
}

const DIRECTIONS: [&str; 4] = ["from_client", "to_client", "server", "remote"];
const FAILURES: [&str; 9] = [
    "bad_frame",
    "too_large",
    "too_many_in_flight",
    "timeout",
    "unhandled",
    "endpoint",
    "slow_client",
    "no_pong",
    "refused",
];

impl Counters {
    /// A connection opened.
    pub fn opened(&self) {
        self.open.fetch_add(1, Relaxed);
        self.opened.fetch_add(1, Relaxed);
    }

    /// A connection closed.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// A client answered the host's ping.
    pub fn pong(&self) {
        self.pongs.fetch_add(1, Relaxed);
    }

    /// One request went `direction`.
    pub fn request(&self, direction: Direction) {
        self.requests[direction as usize].fetch_add(1, Relaxed);
    }

    /// One failure of `kind`.
    pub fn failed(&self, kind: Failure) {
        self.failures[kind as usize].fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            connections: self.open.load(Relaxed),
            connections_total: self.opened.load(Relaxed),
            pongs: self.pongs.load(Relaxed),
            requests: DIRECTIONS
                .iter()
                .zip(&self.requests)
                .map(|(name, n)| (*name, n.load(Relaxed)))
                .collect(),
            errors: FAILURES
                .iter()
                .zip(&self.failures)
                .map(|(name, n)| (*name, n.load(Relaxed)))
                .collect(),
        }
    }
}
