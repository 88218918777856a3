//! Operating on RabbitMQ: health answers within 0.5 s while the component
//! is busy, and a shutdown with 200 events in flight loses none and handles
//! none twice: what finished is acked, the rest goes back to the queue and
//! the next host handles it.

mod rabbit;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_tests::start;
use rabbit::{AMQP_URL, Rabbit};

const EVENTS: usize = 200;

fn manifest(rabbit: &Rabbit) -> String {
    format!(
        r#"
        [host]
        name = "{service}"
        transport = "amqp"
        [transports.amqp]
        url = "{AMQP_URL}"
        exchange = "{exchange}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["probe.slow.*", "probe.sleep"]
        publish = ["probe.seen.>"]
        max_concurrency = 8
        "#,
        service = rabbit.service(),
        exchange = rabbit.exchange
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_within_half_a_second_while_every_slot_is_busy() {
    let rabbit = Rabbit::new().await;
    let t = start(&manifest(&rabbit)).await.expect("host starts on AMQP");
    let route = t.host.route("probe").expect("probe").clone();
    // Twelve 2-second calls: eight run, four wait at the broker.
    for i in 0..12 {
        rabbit.publish(&format!("probe.slow.busy{i}"), b"2000", &[]).await;
    }
    assert!(
        route
            .stats
            .wait_until(Duration::from_secs(10), |s| s.in_flight == 8)
            .await,
        "all slots busy"
    );
    let started = Instant::now();
    let reply = rabbit
        .call(&format!("berth.health.{}", rabbit.service()), b"", &[])
        .await;
    let took = started.elapsed();
    let health: serde_json::Value = serde_json::from_slice(&reply.data).expect("health is JSON");
    assert_eq!(health["components"][0]["stats"]["in_flight"], 8);
    assert!(took < Duration::from_millis(500), "health took {took:?} while busy");
    t.host.shutdown(Duration::from_secs(10)).await;
    rabbit.cleanup(&[&format!("{}.probe", rabbit.service())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_200_events_in_flight_loses_none_and_repeats_none() {
    let rabbit = Rabbit::new().await;
    let mut seen = rabbit.bind("probe.seen.#").await;
    // The host declares and binds its queue: start it before publishing.
    let first = start(&manifest(&rabbit)).await.expect("first host");
    let route = first.host.route("probe").expect("probe").clone();
    for i in 0..EVENTS {
        rabbit.publish(&format!("probe.slow.e{i}"), b"20", &[]).await;
    }
    // Shut down mid-way: some events done, eight in flight, the rest queued.
    assert!(
        route
            .stats
            .wait_until(Duration::from_secs(20), |s| s.events >= 40 && s.in_flight == 8)
            .await
    );
    assert!(
        first.host.shutdown(Duration::from_secs(10)).await,
        "in-flight calls finished within the grace period"
    );
    let by_first = route.stats.snapshot().events;
    assert!(
        by_first < EVENTS as u64,
        "the first host stopped before the end ({by_first})"
    );

    let second = start(&manifest(&rabbit)).await.expect("second host");
    let mut count: HashMap<String, usize> = HashMap::new();
    while count.len() < EVENTS {
        let d = rabbit.next(&mut seen).await;
        *count
            .entry(String::from_utf8_lossy(d.routing_key.as_str().as_bytes()).into_owned())
            .or_default() += 1;
    }
    let repeated: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "handled twice: {repeated:?}");
    // A call publishes before it ends: wait for the last calls' counts.
    let stats = &second.host.route("probe").expect("probe").stats;
    let rest = EVENTS as u64 - by_first;
    stats
        .wait_until(Duration::from_secs(5), |s| s.events >= rest && s.in_flight == 0)
        .await;
    assert_eq!(
        stats.snapshot().events,
        rest,
        "every event handled exactly once across the two hosts"
    );
    second.host.shutdown(Duration::from_secs(10)).await;
    rabbit.cleanup(&[&format!("{}.probe", rabbit.service())]).await;
}
