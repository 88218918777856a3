//! Runs: queued messages for a component without `batch-handler` (here
//! wasmCloud's echo, written against wasmCloud's WIT alone) are handed to
//! one instance one call after another, each with its own outcome, and a
//! call that waits does not make the rest wait behind it.

use std::sync::Arc;
use std::time::Duration;

use berth::core::handler::Handler;
use berth::router::Route;
use berth::runtime::WasmHandler;
use berth::runtime::counters::Counters;
use berth::transport::Transport;
use berth::{ErrorKind, Message};
use berth_tests::direct::{self, request, text};
use berth_tests::{WASMCLOUD_ECHO, start};
use tempfile::TempDir;

/// How many times a test queues its messages again when no run formed.
/// Every call yields to the executor at each epoch tick (every
/// millisecond), and a call that yields ends its run, so whether queued
/// messages share one is up to the clock. Each round asserts every outcome;
/// a run must form in at least one.
const ROUNDS: usize = 20;

/// Publishes `messages` while `route`'s component takes nothing, then lets
/// it take them: the router finds them all queued and hands them over
/// together.
async fn queue_together(route: &Route, bus: &dyn Transport, messages: impl IntoIterator<Item = Message>) {
    route.breaker.suspend("filling the queue");
    for m in messages {
        bus.publish(m).await.expect("queued");
    }
    route.breaker.resume();
}

/// The wasmCloud echo, loaded on its own with `max_batch`; its counters.
async fn wasmcloud_echo(max_batch: usize) -> (WasmHandler, Arc<Counters>, TempDir) {
    direct::load(WASMCLOUD_ECHO, max_batch, Duration::from_secs(5)).await
}

#[tokio::test]
async fn queued_messages_run_on_one_instance_each_with_its_own_outcome() {
    let (wc, stats, _dir) = wasmcloud_echo(8).await;
    assert_eq!(Handler::batch_limit(&wc), 8, "no batch-handler, but it takes runs");
    let mut ran_together = false;
    for _ in 0..ROUNDS {
        let before = stats.snapshot();
        let outcomes = wc
            .handle_batch(&[
                request("r.in.echo", "a"),
                request("r.in.fail", ""),
                Message::new("r.in.echo", "an event"),
                request("r.in.echo", "b"),
            ])
            .await;
        assert_eq!(outcomes.len(), 4);
        assert_eq!(text(&outcomes[0]), "a");
        let error = outcomes[1].as_ref().expect_err("fail fails");
        assert_eq!(error.kind, ErrorKind::Handler, "{error}");
        assert!(matches!(outcomes[2], Ok(None)), "an event: {:?}", outcomes[2]);
        assert_eq!(text(&outcomes[3]), "b");
        let s = stats.snapshot();
        assert_eq!(s.batch_failures, before.batch_failures, "a handler error fails no run");
        if (s.batches - before.batches, s.batched - before.batched) == (1, 4) {
            ran_together = true;
            break;
        }
    }
    assert!(
        ran_together,
        "in {ROUNDS} rounds the four never ran as one run: {:?}",
        stats.snapshot()
    );

    let (single, stats, _dir) = wasmcloud_echo(1).await;
    assert_eq!(Handler::batch_limit(&single), 1, "max_batch = 1 turns runs off");
    let outcomes = single
        .handle_batch(&[request("r.in.echo", "a"), request("r.in.echo", "b")])
        .await;
    assert_eq!((text(&outcomes[0]), text(&outcomes[1])), ("a".into(), "b".into()));
    assert_eq!(stats.snapshot().batches, 0);
}

#[tokio::test]
async fn a_trap_ends_the_run_at_its_message_and_the_rest_are_answered() {
    let (wc, _stats, _dir) = wasmcloud_echo(8).await;
    let outcomes = wc
        .handle_batch(&[
            request("r.in.echo", "a"),
            request("r.in.panic", ""),
            request("r.in.echo", "b"),
            request("r.in.echo", "c"),
        ])
        .await;
    assert_eq!(text(&outcomes[0]), "a");
    let trap = outcomes[1].as_ref().expect_err("panic traps");
    assert_eq!(trap.kind, ErrorKind::Trap, "{trap}");
    assert!(trap.message.contains("panicking on purpose"), "{trap}");
    assert_eq!(text(&outcomes[2]), "b", "after the trap, in a call of its own");
    assert_eq!(text(&outcomes[3]), "c");
}

#[tokio::test]
async fn calls_that_wait_run_side_by_side_not_in_turn() {
    let t = start(
        r#"
        [[components]]
        name = "wc"
        wasm = "{wasmcloud_echo}"
        subscribe = ["runs.in.>"]
        request = ["runs.upstream"]
        max_concurrency = 16
        max_batch = 8
        "#,
    )
    .await
    .expect("start");
    let bus = t.host.transport();
    let mut upstream = t.watch("runs.upstream").await;
    let mut replies = t.watch("replies.>").await;
    let route = t.host.route("wc").expect("route").clone();
    let requests = (0..8).map(|i| {
        let mut m = Message::new("runs.in.call", format!("{i}"));
        m.reply_to = Some(format!("replies.{i}"));
        m
    });
    queue_together(&route, &*bus, requests).await;
    // The guest asks upstream with a 1 s timeout: had its calls run in
    // turn, a second request would come only once the first was answered
    // or timed out.
    let wait = |ms: u64| Duration::from_millis(ms);
    let first = tokio::time::timeout(wait(5000), upstream.next())
        .await
        .expect("a request upstream")
        .expect("open");
    let second = tokio::time::timeout(wait(700), upstream.next())
        .await
        .expect("a second request upstream while the first waits: the calls waited in turn")
        .expect("open");
    let mut held = vec![first, second];
    for _ in 2..8 {
        let asked = tokio::time::timeout(wait(5000), upstream.next()).await;
        held.push(asked.expect("every request upstream").expect("open"));
    }
    for mut asked in held {
        let answer = asked
            .message
            .reply(asked.message.body.clone(), Vec::new())
            .expect("a request");
        asked.acker.reply(answer).await.expect("answer");
    }
    let mut answered = Vec::new();
    for _ in 0..8 {
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .expect("a reply within 5 s")
            .expect("open");
        let i = reply
            .message
            .subject
            .strip_prefix("replies.")
            .expect("reply subject")
            .to_owned();
        assert_eq!(reply.message.body, i.as_bytes(), "the answer to {i}");
        answered.push(i);
    }
    answered.sort();
    assert_eq!(answered, (0..8).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn each_call_of_a_run_publishes_in_its_own_messages_trace() {
    let t = start(
        r#"
        [[components]]
        name = "wc"
        wasm = "{wasmcloud_echo}"
        subscribe = ["traced.in.>"]
        publish = ["traced.out.>"]
        max_batch = 8
        "#,
    )
    .await
    .expect("start");
    let bus = t.host.transport();
    let mut out = t.watch("traced.out.>").await;
    let route = t.host.route("wc").expect("route").clone();
    // Events (`publish` answers nothing), each in a trace of its own: the
    // trace id is the body's digit sixteen times over, twice.
    let mut ran_together = false;
    for _ in 0..ROUNDS {
        let before = route.stats.snapshot();
        let events = (1..=6).map(|i| {
            let trace = format!("00-{}-00f067aa0ba902b7-01", i.to_string().repeat(32));
            Message::new("traced.in.publish", format!("{i}")).with_header("traceparent", trace)
        });
        queue_together(&route, &*bus, events).await;
        for _ in 1..=6 {
            let published = tokio::time::timeout(Duration::from_secs(5), out.next())
                .await
                .expect("a publish within 5 s")
                .expect("open")
                .message;
            let i = String::from_utf8(published.body.to_vec()).expect("text");
            let trace = published.header("traceparent").expect("a traceparent");
            assert!(
                trace.starts_with(&format!("00-{}-", i.repeat(32))),
                "the publish for {i} is in its message's trace: {trace}"
            );
        }
        if route.stats.snapshot().batched - before.batched >= 2 {
            ran_together = true;
            break;
        }
    }
    let s = route.stats.snapshot();
    assert!(
        ran_together,
        "in {ROUNDS} rounds no events shared a run (counted as batches): {s:?}"
    );
}
