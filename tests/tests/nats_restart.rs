//! 1,000 JetStream messages across a restart of the NATS server: the host's
//! client reconnects, its pull consumer and its core subscriptions resume,
//! messages in flight at the restart are redelivered, and in the end every
//! message is acked (which the host does only after a successful call) with
//! nothing pending.
//!
//! The test runs its own `nats-server` (installed with the machine's NATS)
//! on a free loopback port with a private store, so it can stop and start
//! it without touching the shared server.

use std::time::{Duration, Instant};

use berth_tests::jetstream::{publish_numbered, wait_all_acked};
use berth_tests::nats_server::NatsServer;
use berth_tests::start;

const EVENTS: u64 = 1000;
const DEADLINE: Duration = Duration::from_secs(90);

async fn client(port: u16) -> async_nats::Client {
    async_nats::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("private nats-server accepts clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jetstream_messages_survive_a_server_restart() {
    let server = NatsServer::start(&[]);
    let client = client(server.port()).await;
    let t = start(&format!(
        r#"
        [host]
        name = "restart"
        transport = "nats"
        [transports.nats]
        url = "{}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.event.*", stream = "EVENTS" }}]
        publish = ["probe.seen.>"]
        max_concurrency = 8

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["echo.>"]
        "#,
        server.url()
    ))
    .await
    .expect("host starts on the private server");

    let started = Instant::now();
    let js = async_nats::jetstream::new(client.clone());
    let mut server = Some(server);
    let restart = |i: u64| {
        if i == EVENTS * 3 / 10 {
            // Restart the server in the middle of the run.
            server = Some(server.take().expect("running").restart());
        }
    };
    let retries = publish_numbered(
        &js,
        EVENTS,
        |i| format!("probe.event.{i}"),
        "x",
        restart,
        started + DEADLINE,
    )
    .await;
    let connects = client.statistics().connects.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        connects >= 2,
        "the client saw the server go and come back ({connects} connects)"
    );

    let stream = js.get_stream("EVENTS").await.expect("stream survived the restart");
    // Core subscriptions came back too.
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("echo.after", "still here".into()),
    )
    .await
    .expect("in time")
    .expect("echo answers after the restart");
    assert_eq!(reply.payload, "still here");
    let state = stream.get_info().await.expect("stream info").state;
    assert_eq!(
        state.messages, EVENTS,
        "the stream kept every message across the restart, once"
    );
    // Every message is acked by the host, none pending or in flight.
    wait_all_acked(&js, "EVENTS", "restart_probe", started + DEADLINE).await;
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert!(
        stats.events >= EVENTS,
        "the host handled every message at least once: {stats:?}"
    );
    let status = t.host.transport().status();
    assert!(
        status.connected && status.reconnects >= 1,
        "the host counted its reconnect: {status:?}"
    );
    eprintln!(
        "publisher retried {retries} time(s), {connects} connects; the host handled {} deliveries of {EVENTS} messages",
        stats.events
    );
}
