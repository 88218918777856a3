//! The fault checker: every message numbered, every delivery recorded, and
//! what was lost, duplicated or unexpected counted, in the manner of the
//! Jepsen queue checkers, while a fault strikes in the middle of a run.
//!
//! The system: `berth run` processes on a private `nats-server` (its own
//! port and store), the `probe` guest reading `probe.slow.<n>` through a
//! JetStream durable consumer (8 calls in flight, each 5 ms) and
//! publishing `probe.seen.<n>` once a call is done. A stream of the
//! checker's keeps those records (so none is missed while the checker's
//! own connection is down in a broker restart), and the checker reads them
//! all once the host has acked every message. The host acks after the
//! call and publishes the record before the ack, so a message acked
//! without a record would be one lost.
//!
//! Faults: SIGKILL of the host (a new one takes over), SIGTERM of the host
//! (it finishes, hands back, exits; a new one takes over), a restart of
//! the NATS server, a hot-swap storm (a swap every 100 ms), and two on the
//! network between host and server, through a proxy the checker controls
//! (the checker itself talks to the server directly): every connection
//! killed (the host reconnects), and a cut of three seconds (nothing
//! passes either way, the connection stays open, as in a partition TCP
//! outlives; the server redelivers what was not acked within `ack_wait_ms`).
//!
//! Each run sends `BERTH_CHAOS_MESSAGES` messages (300 by default, as CI
//! runs it; more on demand) and prints its counts; the guarantees asserted
//! are README's: nothing lost, nothing unexpected, duplicates at most the
//! calls in flight at the fault (none for a SIGTERM or a swap).

mod process;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use berth_tests::jetstream::{publish_numbered, wait_all_acked};
use berth_tests::nats_server::NatsServer;
use berth_tests::proxy::Proxy;
use futures_util::StreamExt;
use process::Host;

/// Calls in flight in the host (its `max_concurrency`).
const IN_FLIGHT: u64 = 8;
const DEADLINE: Duration = Duration::from_secs(120);

fn messages() -> u64 {
    std::env::var("BERTH_CHAOS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(300)
}

/// What one run saw.
#[derive(Debug, Default)]
struct Checker {
    sent: u64,
    seen: HashMap<u64, u64>,
    unexpected: u64,
}

/// A run's counts.
#[derive(Debug)]
struct Report {
    sent: u64,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
}

impl Checker {
    /// A delivery of `probe.seen.<n>`.
    fn record(&mut self, subject: &str) {
        match subject.strip_prefix("probe.seen.").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) if n < self.sent => *self.seen.entry(n).or_default() += 1,
            _ => self.unexpected += 1,
        }
    }

    fn report(&self) -> Report {
        Report {
            sent: self.sent,
            lost: self.sent - self.seen.len() as u64,
            duplicated: self.seen.values().map(|n| n - 1).sum(),
            unexpected: self.unexpected,
        }
    }
}

/// A fault, struck once a third of the messages were seen.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillHost,
    StopHost,
    RestartBroker,
    SwapStorm,
    KillConnection,
    CutNetwork,
}

/// How long the network cut lasts: longer than the subscription's
/// `ack_wait_ms`, so the server redelivers behind the cut.
const CUT: Duration = Duration::from_secs(3);

fn manifest(dir: &std::path::Path, nats: &str) -> std::path::PathBuf {
    process::manifest_with_http(
        dir,
        &format!(
            "name = \"chaos\"\ntransport = \"nats\"\ndata_dir = \"{data}\"\n\
             [transports.nats]\nurl = \"{nats}\"\n\
             [[components]]\nname = \"probe\"\nwasm = \"{probe}\"\n\
             subscribe = [{{ subject = \"probe.slow.*\", stream = \"CHAOS\", ack_wait_ms = 2000 }}]\n\
             publish = [\"probe.seen.>\"]\nmax_concurrency = {IN_FLIGHT}\n",
            data = dir.display(),
            probe = berth_tests::PROBE,
        ),
    )
}

/// Runs `fault` against a fresh system and returns the checker's counts.
async fn run(fault: Fault) -> Report {
    let started = Instant::now();
    let mut server = Some(NatsServer::start(&[]));
    let nats_url = server.as_ref().map(NatsServer::url).unwrap_or_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = server.as_ref().map(NatsServer::port).unwrap_or_default();
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    let path = manifest(dir.path(), &proxy.nats_url());
    let mut host = Host::run(&path);
    host.wait_for("host started");

    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&nats_url)
        .await
        .expect("checker connects");
    let js = jetstream::new(client.clone());
    let records = js
        .get_or_create_stream(jetstream::stream::Config {
            name: "SEEN".to_owned(),
            subjects: vec!["probe.seen.>".to_owned()],
            ..Default::default()
        })
        .await
        .expect("the checker's stream");
    let mut checker = Checker {
        sent: messages(),
        ..Checker::default()
    };
    let publisher = tokio::spawn({
        let (js, count) = (js.clone(), checker.sent);
        async move {
            publish_numbered(
                &js,
                count,
                |i| format!("probe.slow.{i}"),
                "5",
                |_| {},
                started + DEADLINE,
            )
            .await
        }
    });

    let mut storm: Option<tokio::task::JoinHandle<()>> = None;
    let stored = |mut stream: jetstream::stream::Stream| async move {
        stream.info().await.map(|i| i.state.messages).unwrap_or(0)
    };
    // Strike once a third of the messages are done.
    while stored(records.clone()).await < checker.sent / 3 {
        assert!(
            started.elapsed() < DEADLINE,
            "{fault:?}: the host never got a third done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match fault {
        Fault::KillHost | Fault::StopHost => {
            host.signal(if matches!(fault, Fault::KillHost) {
                "-KILL"
            } else {
                "-TERM"
            });
            let _ = host.child.wait();
            host = Host::run(&path);
            host.wait_for("host started");
        }
        Fault::RestartBroker => server = Some(server.take().expect("running").restart()),
        Fault::SwapStorm => storm = Some(tokio::spawn(process::swap_storm(host.http(), Default::default()))),
        Fault::KillConnection => assert!(proxy.kill_connections() > 0, "the host was connected"),
        Fault::CutNetwork => {
            proxy.cut();
            tokio::time::sleep(CUT).await;
            proxy.heal();
        }
    }
    publisher.await.expect("publisher");
    // Every message acked: every record is stored.
    wait_all_acked(&js, "CHAOS", "chaos_probe", started + DEADLINE).await;
    if let Some(storm) = storm {
        storm.abort();
    }
    let reader: jetstream::consumer::PullConsumer = records
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a reader of the records");
    let mut batches = reader.messages().await.expect("records");
    let total = stored(records.clone()).await;
    for _ in 0..total {
        let record = tokio::time::timeout(Duration::from_secs(10), batches.next())
            .await
            .expect("a record in time")
            .expect("the records go on")
            .expect("a record");
        checker.record(&record.subject);
    }
    drop(host);
    drop(proxy);
    drop(server);
    checker.report()
}

/// Runs `fault` and holds the run to the guarantees.
async fn check(fault: Fault, most_duplicates: u64) {
    let report = run(fault).await;
    eprintln!("chaos {fault:?}: {} messages, {report:?}", report.sent);
    assert_eq!(report.lost, 0, "{fault:?} lost messages: {report:?}");
    assert_eq!(report.unexpected, 0, "{fault:?}: {report:?}");
    assert!(
        report.duplicated <= most_duplicates,
        "{fault:?}: more duplicates than calls in flight: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_host_loses_nothing() {
    check(Fault::KillHost, IN_FLIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_host_loses_and_repeats_nothing() {
    check(Fault::StopHost, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing() {
    check(Fault::RestartBroker, IN_FLIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_every_100_ms_loses_and_repeats_nothing() {
    check(Fault::SwapStorm, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_loses_nothing() {
    check(Fault::KillConnection, IN_FLIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_loses_nothing() {
    check(Fault::CutNetwork, IN_FLIGHT).await;
}
