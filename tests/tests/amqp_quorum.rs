//! RabbitMQ quorum queues: `queue_type = "quorum"` on a subscription
//! declares its queue as one (with the broker's own delivery limit and the
//! dead-letter exchange), events flow through it as through a classic
//! queue, and what cannot be one is refused by the manifest.

#[path = "rabbit/mod.rs"]
mod rabbit;

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use rabbit::Rabbit;

#[tokio::test]
async fn a_quorum_queue_carries_events_and_is_declared_as_one() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let t = berth_tests::start(&format!(
        r#"
        {host}
        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.event.*", queue_type = "quorum" }}]
        publish = ["probe.seen.>"]
        "#,
        host = rabbit.host_toml(&service)
    ))
    .await
    .expect("host starts with a quorum queue");
    let mut seen = rabbit.bind("probe.seen.#").await;
    for i in 0..50 {
        rabbit.publish(&format!("probe.event.e{i}"), b"x", &[]).await;
    }
    let mut keys = std::collections::BTreeSet::new();
    while keys.len() < 50 {
        keys.insert(rabbit.next(&mut seen).await.routing_key.to_string());
    }

    // The broker holds it as a quorum queue: declaring it classic is refused.
    let queue = format!("{service}.probe");
    let channel = rabbit.connection.create_channel().await.expect("channel");
    // (With the other arguments as the host gave them, so that the type is
    // what differs.)
    let mut classic = FieldTable::default();
    classic.insert("x-queue-type".into(), AMQPValue::LongString("classic".into()));
    classic.insert("x-delivery-limit".into(), AMQPValue::LongInt(20));
    let dlx = format!("{}.dlx", rabbit.exchange);
    classic.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.into()));
    let refused = channel
        .queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), classic)
        .await
        .expect_err("it is not a classic queue");
    assert!(refused.to_string().contains("x-queue-type"), "{refused}");
    drop(t);
    rabbit.cleanup_components(&["probe"]).await;
}

#[test]
fn what_cannot_be_a_quorum_queue_is_refused() {
    let said = |text: &str| {
        berth_tests::manifest(text)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
    };
    let component = |sub: &str| {
        format!(
            "[host]\ntransport = \"amqp\"\n[[components]]\nname = \"p\"\nwasm = \"{{probe}}\"\nsubscribe = [{sub}]\n"
        )
    };
    let broadcast = said(&component(
        r#"{ subject = "a.b", queue_type = "quorum", broadcast = true }"#,
    ));
    assert!(broadcast.contains("broadcast"), "{broadcast}");
    let on_nats = said(&component(
        r#"{ subject = "a.b", queue_type = "quorum", transport = "nats" }"#,
    ));
    assert!(on_nats.contains("its transport is not amqp"), "{on_nats}");
    let typo = said(&component(r#"{ subject = "a.b", queue_type = "stream" }"#));
    assert!(typo.contains("queue_type"), "{typo}");
}
