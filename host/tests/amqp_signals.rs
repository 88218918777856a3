//! The `berth` process on RabbitMQ, stopped with 200 events in flight:
//! SIGTERM finishes what runs, acks it, hands the rest back and exits 0,
//! so the next process handles every event exactly once; SIGKILL loses
//! nothing either (acks come after calls), at the price of redoing the
//! calls that were cut off.

#[path = "../../tests/tests/rabbit/mod.rs"]
mod rabbit;

mod process;

use std::collections::HashMap;

use lapin::Consumer;
use process::Host;
use rabbit::{AMQP_URL, Rabbit};

const EVENTS: usize = 200;

fn manifest(rabbit: &Rabbit, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("berth.toml");
    std::fs::write(
        &path,
        format!(
            "[host]\nname = \"{service}\"\ntransport = \"amqp\"\ndata_dir = \"{data}\"\n\
             [transports.amqp]\nurl = \"{AMQP_URL}\"\nexchange = \"{exchange}\"\n\
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

/// Starts a host, sends 200 slow events, stops the host with `signal` once
/// 40 were handled, and lets a second host finish. Returns how often each
/// event was handled and the first host's exit code.
async fn stop_midway(signal: &str) -> (HashMap<String, usize>, Option<i32>) {
    let rabbit = Rabbit::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = manifest(&rabbit, dir.path());
    let mut seen = rabbit.bind("probe.seen.#").await;
    // The host declares and binds its queue: start it before publishing.
    let mut first = Host::run(&manifest);
    first.wait_for("host started");
    for i in 0..EVENTS {
        rabbit.publish(&format!("probe.slow.e{i}"), b"20", &[]).await;
    }
    let mut count = HashMap::new();
    see(&rabbit, &mut seen, &mut count, 40).await;
    first.signal(signal);
    let code = first.child.wait().expect("wait").code();
    assert!(count.len() < EVENTS, "the first host stopped before the end");

    let second = Host::run(&manifest);
    second.wait_for("host started");
    see(&rabbit, &mut seen, &mut count, EVENTS).await;
    drop(second);
    rabbit.cleanup_components(&["probe"]).await;
    (count, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_200_events_in_flight_handles_each_exactly_once() {
    let (count, code) = stop_midway("-TERM").await;
    assert_eq!(code, Some(0), "SIGTERM ends with exit 0");
    let repeated: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "handled twice after SIGTERM: {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_and_redoes_only_what_was_in_flight() {
    let (count, code) = stop_midway("-KILL").await;
    assert_eq!(code, None, "killed by a signal");
    assert_eq!(count.len(), EVENTS, "every event handled");
    // What ran (8 calls) or sat unacked in the host (prefetch 8) may run again.
    let repeated = count.values().filter(|n| **n > 1).count();
    assert!(repeated <= 16, "{repeated} events handled twice");
}
