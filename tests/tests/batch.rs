//! Batches: several queued messages in one call into a component that
//! exports `berth:backend/batch-handler` (every Rust SDK component does, and
//! every Python, JavaScript and C one built with its helper layer), each
//! message answered and settled by its own outcome.

use std::sync::Arc;
use std::time::Duration;

use berth::core::handler::Handler;
use berth::runtime::counters::Counters;
use berth::runtime::{CompileCache, InstanceMode, Runtime, WasmHandler};
use berth::transport::SubscribeOptions;
use berth::transport::memory::MemoryTransport;
use berth::{ErrorKind, Message};
use berth_tests::bench::{environment, settings};
use berth_tests::direct::{self, kind, request, text};
use berth_tests::{ECHO, PROBE, start};
use tempfile::TempDir;

/// The probe guest, loaded on its own with `max_batch`; its counters.
async fn probe(max_batch: usize) -> (WasmHandler, Arc<Counters>, TempDir) {
    load(PROBE, max_batch).await
}

async fn load(wasm: &str, max_batch: usize) -> (WasmHandler, Arc<Counters>, TempDir) {
    direct::load(wasm, max_batch, Duration::from_millis(500)).await
}

#[tokio::test]
async fn a_batch_is_one_call_on_one_instance_with_an_outcome_per_message() {
    let (probe, stats, _dir) = probe(8).await;
    assert_eq!(Handler::batch_limit(&probe), 8, "the SDK exports batch-handler");
    let outcomes = probe
        .handle_batch(&[
            request("probe.count", ""),
            request("probe.error", "404"),
            Message::new("probe.nobody-handles-this", "an event"),
            request("probe.count", ""),
        ])
        .await;
    assert_eq!(outcomes.len(), 4);
    assert_eq!(text(&outcomes[0]), "1");
    let error = outcomes[1].as_ref().expect_err("probe.error fails");
    assert_eq!((error.kind, error.code), (ErrorKind::Handler, 404), "{error}");
    assert_eq!(kind(&outcomes[2]), ErrorKind::Unhandled, "an event's own error");
    assert_eq!(text(&outcomes[3]), "2", "the same instance, in order");
    let s = stats.snapshot();
    assert_eq!((s.batches, s.batched, s.batch_failures), (1, 4, 0));
}

#[tokio::test]
async fn bodies_headers_and_addresses_cross_a_batch_byte_for_byte() {
    let (echo, stats, _dir) = load(ECHO, 8).await;
    let binary: Vec<u8> = (0..=255).collect();
    let mut with_headers = request("echo.headers", "{\"json\": true}");
    with_headers.headers = vec![
        ("x-dup".into(), "1".into()),
        ("x-dup".into(), "2".into()),
        ("x-ünïcode".into(), "välue".into()),
    ];
    with_headers.correlation_id = Some("corr-1".into());
    let mut binary_request = request("echo.binary", "");
    binary_request.body = binary.clone().into();
    let outcomes = echo
        .handle_batch(&[
            with_headers.clone(),
            binary_request,
            request("echo.empty", ""),
            Message::new("echo.event", vec![0xff, 0xfe]),
        ])
        .await;
    let reply = |i: usize| match &outcomes[i] {
        Ok(Some(reply)) => reply.clone(),
        other => panic!("outcome {i}: expected a reply, got {other:?}"),
    };
    assert_eq!(reply(0).body, with_headers.body);
    assert_eq!(reply(0).headers, with_headers.headers, "in order, repeats and all");
    assert_eq!(reply(1).body, binary, "every byte value, invalid UTF-8 included");
    assert!(reply(2).body.is_empty());
    assert!(matches!(outcomes[3], Ok(None)), "an event: done, no reply");
    assert_eq!(stats.snapshot().batches, 1, "all four in one call");
}

#[tokio::test]
async fn a_trap_fails_only_its_own_message_and_the_batch_reruns_one_by_one() {
    let (probe, stats, _dir) = probe(8).await;
    let outcomes = probe
        .handle_batch(&[
            request("probe.count", ""),
            request("probe.panic", ""),
            request("probe.count", ""),
        ])
        .await;
    // Run again alone: the first count on a fresh instance (the batch's
    // trapped and was dropped), the panic traps alone and takes its
    // instance with it, the last count on another fresh one.
    assert_eq!(text(&outcomes[0]), "1");
    assert_eq!(kind(&outcomes[1]), ErrorKind::Trap);
    assert_eq!(text(&outcomes[2]), "1");
    let s = stats.snapshot();
    assert_eq!((s.batches, s.batch_failures), (0, 1));
}

#[tokio::test]
async fn a_batch_that_outlives_the_deadline_reruns_one_by_one() {
    let (probe, stats, _dir) = probe(8).await;
    // A spin that never ends next to a quick request: the batch hits the
    // deadline, then each runs under a deadline of its own.
    let outcomes = probe
        .handle_batch(&[request("probe.count", ""), request("probe.spin", "")])
        .await;
    assert_eq!(text(&outcomes[0]), "1", "answered when run alone");
    assert_eq!(kind(&outcomes[1]), ErrorKind::Timeout);
    assert_eq!(stats.snapshot().batch_failures, 1);
}

#[tokio::test]
async fn a_traced_message_runs_alone_so_its_outbound_calls_carry_its_trace() {
    let (probe, stats, _dir) = probe(8).await;
    let mut traced = request("probe.count", "");
    traced.headers.push((
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    ));
    let outcomes = probe
        .handle_batch(&[request("probe.count", ""), traced, request("probe.count", "")])
        .await;
    // The two untraced ones share a call, then the traced one runs alone
    // on the same (warm) instance.
    let counts: Vec<String> = outcomes.iter().map(text).collect();
    assert_eq!(counts, ["1", "3", "2"]);
    let s = stats.snapshot();
    assert_eq!((s.batches, s.batched), (1, 2));
}

#[tokio::test]
async fn max_batch_1_makes_one_call_per_message() {
    let (probe, stats, _dir) = probe(1).await;
    assert_eq!(Handler::batch_limit(&probe), 1);
    let outcomes = probe
        .handle_batch(&[request("probe.count", ""), request("probe.count", "")])
        .await;
    assert_eq!(outcomes.iter().map(text).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(stats.snapshot().batches, 0);
}

/// Through the router: requests and events queued while the component was
/// suspended are taken in batches of at most `max_batch`, and every reply
/// goes to its own requester with its own body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_are_served_in_batches_and_each_reply_finds_its_requester() {
    let t = start(
        "[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n\
         max_concurrency = 32\nmax_batch = 8\n",
    )
    .await
    .expect("start");
    let route = t.host.route("echo").expect("route").clone();
    let bus = t.host.transport();
    let mut replies = bus
        .subscribe(SubscribeOptions {
            pattern: "replies.>".into(),
            capacity: 64,
            ..SubscribeOptions::default()
        })
        .await
        .expect("subscribe");
    route.breaker.suspend("filling the queue");
    for i in 0..20 {
        let mut m = Message::new(format!("echo.{i}"), format!("body {i}"));
        m.reply_to = Some(format!("replies.{i}"));
        bus.publish(m).await.expect("queued");
    }
    for i in 0..4 {
        bus.publish(Message::new(format!("echo.event.{i}"), "event"))
            .await
            .expect("queued");
    }
    route.breaker.resume();
    for _ in 0..20 {
        let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
            .await
            .expect("a reply within 10 s")
            .expect("subscription open");
        let i = reply.message.subject.strip_prefix("replies.").expect("reply subject");
        assert_eq!(reply.message.body, format!("body {i}").as_bytes(), "reply to {i}");
    }
    let stats = &route.stats;
    assert!(
        stats
            .wait_until(Duration::from_secs(10), |s| s.requests == 20 && s.events == 4)
            .await,
        "all handled: {:?}",
        stats.snapshot()
    );
    let s = stats.snapshot();
    // Nearly all in batches: a message may run alone if the first calls
    // of fresh instances on a loaded machine were slow enough to move the
    // component off its loop for a moment (off it, calls take one each).
    assert!(s.batched >= 16, "the queued messages went in batches: {s:?}");
    assert!(s.batched <= s.batches * 8, "no batch over max_batch = 8: {s:?}");
    assert_eq!(s.errors, 0, "{s:?}");
}

/// A language's SDK answers a batch as the Rust one does: outcomes in
/// order, errors with their codes and data, bodies and headers byte for
/// byte. `json` is how that language writes `{"sum":5}` and `{"spout":true}`.
async fn sdk_answers_a_batch(language: berth_tests::polyglot::Language, json: fn(&str) -> String) {
    let wasm = berth_tests::polyglot::build(language, "conformance").expect("the conformance guest builds");
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(CompileCache::new(dir.path()), false).expect("runtime");
    let env = environment(&MemoryTransport::default());
    let stats = env.counters.clone();
    let mut settings = settings(InstanceMode::Pooled, true);
    settings.max_batch = 8;
    let bytes = std::fs::read(wasm).expect("guest");
    let (guest, _) = runtime.load(&bytes, settings, env).await.expect("load");
    assert_eq!(
        Handler::batch_limit(&guest),
        8,
        "{language:?}: the SDK exports batch-handler"
    );

    let mut echo = request("c.in.echo", "");
    echo.body = vec![0, 255, b'x', 0xc3].into();
    echo.headers = vec![("a".into(), "1".into()), ("ü".into(), "two words".into())];
    let outcomes = guest
        .handle_batch(&[
            echo.clone(),
            request("c.in.fail", ""),
            request("c.in.json", r#"{"a": 2, "b": 3}"#),
            Message::new("c.in.nobody", "an event nobody handles"),
            request("c.in.json", "not json"),
        ])
        .await;
    assert_eq!(outcomes.len(), 5);
    let reply = outcomes[0].as_ref().expect("echo").as_ref().expect("a reply");
    assert_eq!(reply.body, echo.body, "the body, byte for byte");
    assert_eq!(reply.headers, echo.headers);
    let teapot = outcomes[1].as_ref().expect_err("fail");
    assert_eq!(
        (teapot.kind, teapot.code, teapot.name.as_str()),
        (ErrorKind::Handler, 418, "I'm a teapot")
    );
    assert_eq!(teapot.data.as_deref(), Some(json(r#"{"spout":true}"#).as_bytes()));
    assert_eq!(text(&outcomes[2]), json(r#"{"sum":5}"#));
    assert_eq!(kind(&outcomes[3]), ErrorKind::Unhandled);
    let bad = outcomes[4].as_ref().expect_err("bad JSON");
    assert_eq!(bad.code, 400, "{bad}");
    let s = stats.snapshot();
    assert_eq!((s.batches, s.batched, s.batch_failures), (1, 5, 0));
}

#[tokio::test]
async fn the_python_sdk_answers_a_batch_as_the_rust_one_does() {
    // Python's json.dumps puts a space after `:`.
    sdk_answers_a_batch(berth_tests::polyglot::Language::Python, |j| j.replace(':', ": ")).await;
}

#[tokio::test]
async fn the_javascript_sdk_answers_a_batch_as_the_rust_one_does() {
    sdk_answers_a_batch(berth_tests::polyglot::Language::JavaScript, str::to_owned).await;
}

#[tokio::test]
async fn the_c_helper_layer_answers_a_batch_as_the_rust_one_does() {
    sdk_answers_a_batch(berth_tests::polyglot::Language::C, str::to_owned).await;
}
