//! The `berth` process on RabbitMQ, struck with 200 events in flight:
//! SIGTERM finishes what runs, acks it, hands the rest back and exits 0,
//! so the next process handles every event exactly once; SIGKILL loses
//! nothing either (acks come after calls), at the price of redoing the
//! calls that were cut off. The same holds for the network between host
//! and broker, broken through a proxy the test controls: every connection
//! killed (the host reconnects; the broker gives back what was unacked) or
//! cut for three seconds (nothing passes, the connection stays open). A
//! swap every 100 ms while the events run redoes nothing.

#[path = "../../tests/tests/rabbit/mod.rs"]
mod rabbit;

mod process;

use std::collections::HashMap;

use berth_tests::proxy::Proxy;
use lapin::Consumer;
use process::Host;
use rabbit::{AMQP_URL, Rabbit};

const EVENTS: usize = 200;

fn manifest(rabbit: &Rabbit, dir: &std::path::Path, url: &str, coalesce_acks: bool) -> std::path::PathBuf {
    let path = dir.join("berth.toml");
    std::fs::write(
        &path,
        format!(
            "[host]\nname = \"{service}\"\ntransport = \"amqp\"\ndata_dir = \"{data}\"\nhttp = \"127.0.0.1:0\"\n\
             [transports.amqp]\nurl = \"{url}\"\nexchange = \"{exchange}\"\ncoalesce_acks = {coalesce_acks}\n\
             [[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.slow.*\"]\n\
             publish = [\"probe.seen.>\"]\nmax_concurrency = 8\n",
            service = rabbit.service(),
            data = dir.display(),
            exchange = rabbit.exchange,
            probe = berth_tests::PROBE,
        ),
    )
    .expect("write manifest");
    path
}

/// Reads `probe.seen.*` until `n` distinct events were seen; counts per event.
async fn see(rabbit: &Rabbit, seen: &mut Consumer, count: &mut HashMap<String, usize>, n: usize) {
    while count.len() < n {
        let d = rabbit.next(seen).await;
        *count.entry(d.routing_key.as_str().to_owned()).or_default() += 1;
    }
}

/// What strikes the host once 40 events were handled.
#[derive(Clone, Copy)]
enum Fault {
    /// This signal; a second host then finishes.
    Signal(&'static str),
    /// Every connection between host and broker closed.
    KillConnection,
    /// Nothing passes between host and broker for three seconds.
    CutNetwork,
    /// The component swapped in again every 100 ms until the end.
    SwapStorm,
}

/// Starts a host (through a proxy to the broker), sends 200 slow events,
/// strikes with `fault` once 40 were handled, and waits until every event
/// was handled. Returns how often each was, and the exit code of a host
/// stopped by a signal.
async fn strike_midway(fault: Fault) -> (HashMap<String, usize>, Option<i32>) {
    strike_acking(fault, true).await
}

/// [`strike_midway`], with `[transports.amqp] coalesce_acks` as given.
async fn strike_acking(fault: Fault, coalesce_acks: bool) -> (HashMap<String, usize>, Option<i32>) {
    let rabbit = Rabbit::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], 5672))).await;
    let url = AMQP_URL.replace("127.0.0.1:5672", &proxy.address());
    let manifest = manifest(&rabbit, dir.path(), &url, coalesce_acks);
    let mut seen = rabbit.bind("probe.seen.#").await;
    // The host declares and binds its queue: start it before publishing.
    let mut first = Host::run(&manifest);
    first.wait_for("host started");
    // Long enough events that a storm sees a dozen swaps.
    let millis: &[u8] = if matches!(fault, Fault::SwapStorm) {
        b"60"
    } else {
        b"20"
    };
    for i in 0..EVENTS {
        rabbit.publish(&format!("probe.slow.e{i}"), millis, &[]).await;
    }
    let mut count = HashMap::new();
    see(&rabbit, &mut seen, &mut count, 40).await;
    let mut code = None;
    let mut second = None;
    let mut storm = None;
    let swapped = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    match fault {
        Fault::Signal(signal) => {
            first.signal(signal);
            code = first.child.wait().expect("wait").code();
            assert!(count.len() < EVENTS, "the first host stopped before the end");
            let next = Host::run(&manifest);
            next.wait_for("host started");
            second = Some(next);
        }
        Fault::KillConnection => assert!(proxy.kill_connections() > 0, "the host was connected"),
        Fault::CutNetwork => {
            proxy.cut();
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            proxy.heal();
        }
        Fault::SwapStorm => storm = Some(tokio::spawn(process::swap_storm(first.http(), swapped.clone()))),
    }
    see(&rabbit, &mut seen, &mut count, EVENTS).await;
    if let Some(storm) = storm {
        storm.abort();
        let swapped = swapped.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("amqp swap storm: {swapped} swaps while the events ran");
        assert!(swapped >= 5, "only {swapped} swaps while the events ran");
    }
    drop((first, second));
    rabbit.cleanup_components(&["probe"]).await;
    (count, code)
}

/// What ran (8 calls) or sat unacked in the host (prefetch 8) may run
/// again after a fault; nothing else.
const MOST_REDONE: usize = 16;

fn redone(count: &HashMap<String, usize>) -> usize {
    assert_eq!(count.len(), EVENTS, "every event handled");
    count.values().filter(|n| **n > 1).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_200_events_in_flight_handles_each_exactly_once() {
    let (count, code) = strike_midway(Fault::Signal("-TERM")).await;
    assert_eq!(code, Some(0), "SIGTERM ends with exit 0");
    let repeated: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "handled twice after SIGTERM: {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_and_redoes_only_what_was_in_flight() {
    let (count, code) = strike_midway(Fault::Signal("-KILL")).await;
    assert_eq!(code, None, "killed by a signal");
    let repeated = redone(&count);
    eprintln!("amqp SIGKILL: {repeated} of {EVENTS} events handled twice");
    assert!(repeated <= MOST_REDONE, "{repeated} events handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_each_ack_sent_alone_redoes_at_most_the_calls_running() {
    let (count, _) = strike_acking(Fault::Signal("-KILL"), false).await;
    let repeated = redone(&count);
    eprintln!("amqp SIGKILL, coalesce_acks = false: {repeated} of {EVENTS} events handled twice");
    assert!(repeated <= 8, "{repeated} events handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_loses_nothing_and_redoes_only_what_was_in_flight() {
    let (count, _) = strike_midway(Fault::KillConnection).await;
    let repeated = redone(&count);
    eprintln!("amqp connection kill: {repeated} of {EVENTS} events handled twice");
    assert!(repeated <= MOST_REDONE, "{repeated} events handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_loses_nothing_and_redoes_only_what_was_in_flight() {
    let (count, _) = strike_midway(Fault::CutNetwork).await;
    let repeated = redone(&count);
    eprintln!("amqp network cut: {repeated} of {EVENTS} events handled twice");
    assert!(repeated <= MOST_REDONE, "{repeated} events handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_every_100_ms_loses_and_redoes_nothing() {
    let (count, _) = strike_midway(Fault::SwapStorm).await;
    let repeated = redone(&count);
    assert_eq!(repeated, 0, "{repeated} events handled twice across swaps");
}
