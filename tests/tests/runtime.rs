//! The runtime: instance modes, traps, deadlines, grants, init, config,
//! environment, the compile cache and draining on shutdown.

use std::time::Duration;

use berth::runtime::{CompileCache, Environment, InstanceMode, Runtime, Settings, Source};
use berth::transport::memory::MemoryTransport;
use berth::{CallError, ErrorKind, Message};
use berth_tests::{PROBE, start};

fn probe(extra: &str) -> String {
    format!(
        "[[components]]\nname = \"probe\"\nwasm = \"{{probe}}\"\nsubscribe = [\"probe.>\"]\nmax_concurrency = 1\n{extra}\n"
    )
}

async fn error_of(t: &berth_tests::TestHost, subject: &str, body: &str) -> CallError {
    let reply = t.request(subject, body.to_owned()).await.expect("reply");
    CallError::from_reply(&reply).unwrap_or_else(|| panic!("{subject} should fail, got {:?}", reply.body))
}

#[tokio::test]
async fn pooled_instances_are_reused_and_a_trapped_one_is_discarded() {
    let t = start(&probe("")).await.expect("start");
    assert_eq!(t.ask("probe.count", "").await, "1");
    assert_eq!(
        t.ask("probe.count", "").await,
        "2",
        "the same warm instance served again"
    );
    let trap = error_of(&t, "probe.panic", "").await;
    assert_eq!(trap.kind, ErrorKind::Trap, "{trap}");
    assert!(
        trap.message.contains("panicked at probe/src/lib.rs:") && trap.message.contains("probe was asked to panic"),
        "says why, with the guest's panic message: {}",
        trap.message
    );
    assert!(
        trap.message.contains("unreachable"),
        "and what the trap was: {}",
        trap.message
    );
    assert_eq!(
        t.ask("probe.count", "").await,
        "1",
        "a fresh instance replaced the trapped one"
    );
}

#[tokio::test]
async fn fresh_mode_never_reuses_an_instance() {
    let t = start(&probe("instance_mode = \"fresh\"")).await.expect("start");
    for _ in 0..3 {
        assert_eq!(t.ask("probe.count", "").await, "1");
    }
}

#[tokio::test]
async fn endless_loop_is_stopped_at_the_deadline_and_the_component_goes_on() {
    let t = start(&probe("timeout_ms = 200")).await.expect("start");
    let error = error_of(&t, "probe.spin", "").await;
    assert_eq!(error.kind, ErrorKind::Timeout, "{error}");
    assert_eq!(error.code, 504);
    assert_eq!(t.ask("probe.count", "").await, "1", "served again, by a new instance");
}

#[tokio::test]
async fn publish_outside_the_grants_is_forbidden() {
    let t = start(&probe("publish = [\"allowed.>\"]")).await.expect("start");
    let transport = t.host.transport();
    let ok = transport
        .request(
            Message::new("probe.publish", "x").with_header("to", "allowed.one"),
            Duration::from_secs(5),
        )
        .await
        .expect("reply");
    assert_eq!(ok.body, "published");
    let denied = transport
        .request(
            Message::new("probe.publish", "x").with_header("to", "secret.one"),
            Duration::from_secs(5),
        )
        .await
        .expect("reply");
    let error = CallError::from_reply(&denied).expect("error");
    // The guest propagated the host's error with `?`: it arrives as the
    // handler's error, with the host's code and message.
    assert_eq!(error.code, 403);
    assert!(
        error.message.contains("may not publish to `secret.one`"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn handler_errors_keep_code_name_message_and_data() {
    let t = start(&probe("")).await.expect("start");
    let error = error_of(&t, "probe.error", "409").await;
    assert_eq!(error.kind, ErrorKind::Handler);
    assert_eq!((error.code, error.name.as_str()), (409, "Probe Error"));
    assert_eq!(error.data.as_deref(), Some(&[0u8, 159, 146, 150][..]));
}

#[tokio::test]
async fn unhandled_subject_is_its_own_error() {
    let t = start(&probe("")).await.expect("start");
    let error = error_of(&t, "probe.nothing-here", "").await;
    assert_eq!(error.kind, ErrorKind::Unhandled, "{error}");
}

#[tokio::test]
async fn config_reaches_init() {
    let t = start(&probe("[components.config]\ncolour = \"blue\"\nretries = 3"))
        .await
        .expect("start");
    let config: serde_json::Value = serde_json::from_str(&t.ask("probe.config", "").await).expect("json");
    assert_eq!(config, serde_json::json!({ "colour": "blue", "retries": 3 }));
}

#[tokio::test]
async fn failing_init_refuses_the_component_with_its_reason() {
    // (`strict`: without it the host starts without the component and
    // reports it failed; tests/tests/loading.rs.)
    let err = start(&format!(
        "[host]\nstrict = true\n{}",
        probe("[components.config]\nfail_init = true")
    ))
    .await
    .err()
    .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("component `probe`") && text.contains("init refused"),
        "{text}"
    );
}

#[tokio::test]
async fn environment_variables_only_as_granted() {
    let t = start(&probe("[components.env]\nGREETING = \"granted\""))
        .await
        .expect("start");
    assert_eq!(t.ask("probe.env", "GREETING").await, "granted");
    assert_eq!(
        t.ask("probe.env", "PATH").await,
        "<unset>",
        "host environment is not leaked"
    );
}

#[tokio::test]
async fn compile_cache_makes_the_second_load_skip_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(PROBE).expect("probe.wasm");
    let settings = Settings {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(1),
        mode: Some(InstanceMode::Pooled),
        max_idle: 1,
        config_json: "{}".into(),
        max_hostcall_bytes: 4 << 20,
        link_unused_sockets: false,
        fuel: None,
        max_instances: 50,
        max_tables: 50,
        max_batch: 32,
    };
    let env = std::sync::Arc::new(Environment {
        name: "probe".into(),
        grants: Default::default(),
        outbound: std::sync::Arc::new(berth::transport::Sender(
            std::sync::Arc::new(MemoryTransport::default()),
        )),
        env: Vec::new(),
        max_request_timeout: Duration::from_secs(1),
        max_message_bytes: 1 << 20,
        data_dir: None,
        counters: Default::default(),
        keyvalue: Default::default(),
        http_outbound: Vec::new(),
        config: Vec::new(),
        gateway: None,
    });
    for expected in [Source::Compiled, Source::Cached] {
        let runtime = Runtime::new(CompileCache::new(dir.path()), false).expect("runtime");
        let (_, source) = runtime.load(&bytes, settings.clone(), env.clone()).await.expect("load");
        assert_eq!(source, expected);
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let t = start(&probe("")).await.expect("start");
    let transport = t.host.transport();
    let call = tokio::spawn(async move {
        transport
            .request(Message::new("probe.sleep", "150"), Duration::from_secs(5))
            .await
    });
    // Wait until the call is running, observed through the counters.
    let route = t.host.route("probe").expect("route").clone();
    while route.stats.snapshot().in_flight == 0 {
        tokio::task::yield_now().await;
    }
    assert!(
        t.host.shutdown(Duration::from_secs(5)).await,
        "drained within the grace period"
    );
    let reply = call.await.expect("task").expect("reply");
    assert_eq!(reply.body, "slept");
}

#[tokio::test]
async fn a_guest_granted_everything_still_cannot_reach_the_platforms_subjects() {
    let t = start(&probe("publish = [\">\"]\nrequest = [\">\"]"))
        .await
        .expect("start");
    let transport = t.host.transport();
    let publish = |to: &'static str| {
        let transport = transport.clone();
        async move {
            transport
                .request(
                    Message::new("probe.publish", "x").with_header("to", to),
                    Duration::from_secs(5),
                )
                .await
                .expect("reply")
        }
    };
    assert_eq!(publish("orders.new").await.body, "published", "`>` grants the rest");
    for subject in [
        "berth.admin.svc",
        "berth.health.svc",
        "$SRV.INFO",
        "$JS.API.STREAM.DELETE.ORDERS",
        "$KV.bucket.key",
        "$SYS.REQ.SERVER.PING",
        "_INBOX.someone.else",
    ] {
        let error = CallError::from_reply(&publish(subject).await).expect("refused");
        assert_eq!(error.code, 403, "publish to {subject}");
        assert!(error.message.contains("platform"), "{}", error.message);
        assert_eq!(
            t.ask("probe.request", subject).await,
            "error ErrorKind::Forbidden 403",
            "request to {subject}"
        );
    }
    assert_eq!(t.host.route("probe").expect("route").stats.snapshot().forbidden, 14);
}
