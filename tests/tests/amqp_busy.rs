//! Health on RabbitMQ answers within 0.5 s while every call slot of the
//! component is busy. (Stopping a host with events in flight:
//! host/tests/amqp_signals.rs.)

mod rabbit;

use std::time::{Duration, Instant};

use berth_tests::start;
use rabbit::Rabbit;

fn manifest(rabbit: &Rabbit) -> String {
    format!(
        r#"
        {host}

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = ["probe.slow.*", "probe.sleep"]
        publish = ["probe.seen.>"]
        max_concurrency = 8
        "#,
        host = rabbit.host_toml(&rabbit.service())
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
    rabbit.cleanup_components(&["probe"]).await;
}
