//! A private three-server NATS cluster: the host connects to all of them
//! (`url` lists several), creates its JetStream stream with the manifest's
//! `replicas = 3`, and when the stream's leader is killed (SIGKILL) in the
//! middle of a run, nothing is lost: every message stays in the stream
//! once and is acked by the host, which acks only after a successful call.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use berth_tests::jetstream::{publish_numbered, wait_all_acked};
use berth_tests::nats_server::NatsCluster;
use berth_tests::start;

const EVENTS: u64 = 600;
const DEADLINE: Duration = Duration::from_secs(120);

/// Waits until the cluster's JetStream has a leader: a replicated stream
/// can be made (a fresh cluster takes a few seconds to elect one).
async fn ready(js: &jetstream::Context, started: Instant) {
    loop {
        let probe = js
            .get_or_create_stream(jetstream::stream::Config {
                name: "READY".to_owned(),
                subjects: vec!["ready.check".to_owned()],
                num_replicas: 3,
                ..Default::default()
            })
            .await;
        if probe.is_ok() {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "the cluster elected no leader: {probe:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_loses_nothing_when_its_leader_is_killed() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(urls.split(", ").collect::<Vec<_>>())
        .await
        .expect("the cluster accepts clients");
    let js = jetstream::new(client.clone());
    ready(&js, started).await;

    let t = start(&format!(
        r#"
        [host]
        name = "cluster"
        transport = "nats"
        [transports.nats]
        url = "{urls}"

        [[components]]
        name = "probe"
        wasm = "{{probe}}"
        subscribe = [{{ subject = "probe.event.*", stream = "EVENTS", replicas = 3 }}]
        publish = ["probe.seen.>"]
        max_concurrency = 8
        "#
    ))
    .await
    .expect("host starts on the cluster");
    let mut stream = js.get_stream("EVENTS").await.expect("the host made the stream");
    let info = stream.info().await.expect("stream info").clone();
    assert_eq!(info.config.num_replicas, 3, "replicas from the manifest");
    let leader = info.cluster.and_then(|c| c.leader).expect("the stream has a leader");

    let index: usize = leader
        .trim_start_matches("berth-test-")
        .parse()
        .expect("a server of ours");
    let strike = |i: u64| {
        if i == EVENTS / 3 {
            cluster.kill(index);
        }
    };
    let retries = publish_numbered(
        &js,
        EVENTS,
        |i| format!("probe.event.{i}"),
        "x",
        strike,
        started + DEADLINE,
    )
    .await;

    let state = stream.get_info().await.expect("stream info").state;
    assert_eq!(state.messages, EVENTS, "the stream kept every message once");
    wait_all_acked(&js, "EVENTS", "cluster_probe", started + DEADLINE).await;
    let stats = t.host.route("probe").expect("route").stats.snapshot();
    assert!(stats.events >= EVENTS, "every message handled at least once: {stats:?}");
    eprintln!(
        "killed the stream's leader {leader} after {} messages; the publisher retried {retries} time(s); \
         the host handled {} deliveries of {EVENTS} messages",
        EVENTS / 3,
        stats.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_only_in_flight_when_a_hosts_server_is_killed() {
    const REQUESTS: usize = 3000;
    const IN_FLIGHT: usize = 16;
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3);
    let url = |i: usize| cluster.servers[i].as_ref().expect("running").url();
    // Each host starts on a server of its own (and learns the others from
    // it); the requester is on the third, which stays.
    let host = |name: &str, url: String| {
        format!(
            r#"
            [host]
            name = "{name}"
            transport = "nats"
            [transports.nats]
            url = "{url}"

            [[components]]
            name = "echo"
            wasm = "{{echo}}"
            subscribe = [{{ subject = "clustered.echo", group = "echoes" }}]
            "#
        )
    };
    let a = start(&host("a", url(0))).await.expect("host a");
    let b = start(&host("b", url(1))).await.expect("host b");
    let client = async_nats::connect(url(2)).await.expect("requester");
    // Both hosts answer before the kill (their interest reached server 2).
    loop {
        if client.request("clustered.echo", "up".into()).await.is_ok() {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the hosts never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, sent) = (client.clone(), sent.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                    let answer =
                        tokio::time::timeout(Duration::from_secs(2), client.request("clustered.echo", "x".into()))
                            .await;
                    if !matches!(answer, Ok(Ok(ref m)) if m.payload == "x") {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    // Kill host a's server once a third of the requests went out.
    while sent.load(std::sync::atomic::Ordering::Relaxed) < REQUESTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill(0);
    let mut failed = 0;
    for l in load {
        failed += l.await.expect("load task");
    }
    assert!(
        failed <= IN_FLIGHT,
        "{failed} of {REQUESTS} requests failed; at most the {IN_FLIGHT} in flight may"
    );
    // Host a is back, through a server it learned of.
    let waited = Instant::now();
    while !a.host.transport().status().connected {
        assert!(waited.elapsed() < Duration::from_secs(30), "host a did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = |t: &berth_tests::TestHost| t.host.route("echo").expect("echo").stats.snapshot().requests;
    eprintln!(
        "{failed} of {REQUESTS} requests failed when host a's server was killed; a served {}, b {}",
        served(&a),
        served(&b)
    );
}
