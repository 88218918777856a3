//! Hot-swap: a running component replaced under load with no restart, no
//! dropped subscription and no lost message, on the in-memory transport,
//! NATS and AMQP; slow calls finish on the old version; bad versions are
//! refused while the old one serves; a failing version is rolled back;
//! watch mode and the HTTP API swap too.
//!
//! The two "versions" are the probe guest and the same guest with a custom
//! section appended (`relabel`): same behaviour, different hash, so the
//! `Berth-Version` reply header tells which one answered.

mod rabbit;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth::app::{OpError, SwapRequest};
use berth::core::headers::VERSION as VERSION_HEADER;
use berth::transport::Transport;
use berth::{CallError, Message};
use berth_tests::{PROBE, TestHost, relabel, with_reply_headers};

const SWAPS: usize = 20;

/// A host whose replies carry `Berth-Version`: how these tests tell which
/// version answered.
async fn start(manifest: &str) -> anyhow::Result<TestHost> {
    berth_tests::start(&with_reply_headers(manifest)).await
}
/// Most requests one load loop sends, so a stuck swap cannot spin forever.
const MAX_PER_LOOP: usize = 50_000;

fn swap(wasm: &[u8], label: &str) -> SwapRequest {
    SwapRequest {
        wasm: wasm.to_vec().into(),
        label: Some(label.to_owned()),
        config: None,
        component: None,
    }
}

/// Client loops that request `probe.count` until stopped; each returns how
/// many replies each version gave, or the first failure.
fn load(
    transport: Arc<dyn Transport>,
    loops: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Result<HashMap<String, u64>, String>>> {
    (0..loops)
        .map(|_| {
            let (transport, stop) = (transport.clone(), stop.clone());
            tokio::spawn(async move {
                let mut by_version = HashMap::new();
                for _ in 0..MAX_PER_LOOP {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let reply = transport
                        .request(Message::new("probe.count", ""), Duration::from_secs(5))
                        .await
                        .map_err(|e| format!("request failed: {e}"))?;
                    if let Some(e) = CallError::from_reply(&reply) {
                        return Err(format!("error reply: {e}"));
                    }
                    let version = reply.header(VERSION_HEADER).ok_or("reply without a version header")?;
                    *by_version.entry(version.to_owned()).or_insert(0) += 1;
                }
                Ok(by_version)
            })
        })
        .collect()
}

/// v1 → v2 → v1 ... `SWAPS` times under continuous load: no request fails,
/// each is answered by v1 or v2, and once a swap returns only the new
/// version answers.
async fn swap_under_load(t: &TestHost) {
    let v1 = std::fs::read(PROBE).expect("probe");
    let v2 = relabel(PROBE, "v2");
    let stop = Arc::new(AtomicBool::new(false));
    let loops = load(t.host.transport(), 4, stop.clone());
    let mut hashes = Vec::new();
    for i in 0..SWAPS {
        let (wasm, label) = if i % 2 == 0 { (&v2, "v2") } else { (&v1, "v1") };
        let report = t.host.swap("svc", swap(wasm, label)).await.expect("swap succeeds");
        let reply = t.request("probe.count", "").await.expect("reply after the swap");
        assert_eq!(
            reply.header(VERSION_HEADER),
            Some(report.version.as_str()),
            "swap {i}: only the new version answers"
        );
        hashes.push(report.version);
    }
    stop.store(true, Ordering::Relaxed);
    let mut total: HashMap<String, u64> = HashMap::new();
    for l in loops {
        for (version, n) in l.await.expect("load loop").expect("no request failed during the swaps") {
            *total.entry(version).or_insert(0) += n;
        }
    }
    let known: Vec<&String> = hashes[..2].iter().collect();
    assert!(
        total.keys().all(|v| known.contains(&v)),
        "answered only by v1 or v2: {total:?}"
    );
    assert_eq!(total.len(), 2, "both versions answered some of the load: {total:?}");
    assert!(
        total.values().sum::<u64>() >= SWAPS as u64,
        "the load kept flowing: {total:?}"
    );
    let status = t.host.route("svc").expect("route").versions.status();
    assert_eq!(status.swaps, SWAPS as u64);
}

const MEMORY: &str = r#"
[[components]]
name = "svc"
wasm = "{probe}"
subscribe = ["probe.>"]
label = "v1"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_on_memory_lose_nothing() {
    let t = start(MEMORY).await.expect("start");
    swap_under_load(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_on_nats_lose_nothing() {
    let service = rabbit::unique("swapsvc");
    let t = start(&format!(
        "[host]\nname = \"{service}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://127.0.0.1:4222\"\n{MEMORY}"
    ))
    .await
    .unwrap_or_else(|e| {
        panic!(
            "host on NATS did not start ({e:#}). Start NATS with:\n  start-stop-daemon --start --oknodo --background \
             --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        )
    });
    swap_under_load(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_on_amqp_lose_nothing() {
    let rabbit = rabbit::Rabbit::new().await;
    let service = rabbit.service();
    let t = start(&format!(
        "[host]\nname = \"{service}\"\ntransport = \"amqp\"\n[transports.amqp]\nurl = \"{}\"\nexchange = \"{}\"\n{MEMORY}",
        rabbit::AMQP_URL,
        rabbit.exchange
    ))
    .await
    .expect("host starts on AMQP");
    swap_under_load(&t).await;
    rabbit.cleanup(&[&format!("{service}.svc")]).await;
}

#[tokio::test]
async fn a_slow_call_started_on_v1_finishes_on_v1() {
    let t = start(MEMORY).await.expect("start");
    let v1 = t.host.route("svc").expect("route").versions.active().hash.clone();
    let route = t.host.route("svc").expect("route").clone();
    let transport = t.host.transport();
    let slow = tokio::spawn(async move {
        transport
            .request(Message::new("probe.sleep", "300"), Duration::from_secs(5))
            .await
    });
    assert!(
        route
            .stats
            .wait_until(Duration::from_secs(5), |s| s.in_flight == 1)
            .await,
        "the slow call started"
    );
    let report = t
        .host
        .swap("svc", swap(&relabel(PROBE, "v2"), "v2"))
        .await
        .expect("swap");
    let now = t.request("probe.count", "").await.expect("reply");
    assert_eq!(
        now.header(VERSION_HEADER),
        Some(report.version.as_str()),
        "new calls go to v2 at once"
    );
    let slow = slow.await.expect("task").expect("slow reply");
    assert_eq!(slow.body, "slept");
    assert_eq!(
        slow.header(VERSION_HEADER),
        Some(v1.as_str()),
        "the slow call finished on v1"
    );
}

#[tokio::test]
async fn invalid_or_failing_versions_are_refused_while_the_old_one_serves() {
    let t = start(MEMORY).await.expect("start");
    let v2 = t
        .host
        .swap("svc", swap(&relabel(PROBE, "v2"), "v2"))
        .await
        .expect("v2")
        .version;

    let garbage = t
        .host
        .swap("svc", swap(b"\0asm garbage", "v3"))
        .await
        .expect_err("not a component");
    assert!(matches!(garbage, OpError::Refused { .. }), "{garbage}");
    assert!(garbage.to_string().contains("keeps serving"), "{garbage}");

    let mut failing = swap(&relabel(PROBE, "v3"), "v3");
    failing.config = Some(
        serde_json::json!({ "fail_init": true })
            .as_object()
            .cloned()
            .expect("object"),
    );
    let init = t.host.swap("svc", failing).await.expect_err("init fails");
    assert!(format!("{init}").contains("init refused: fail_init is set"), "{init}");

    let missing = t
        .host
        .swap("nope", swap(&relabel(PROBE, "v3"), "v3"))
        .await
        .expect_err("no such component");
    assert!(matches!(missing, OpError::NotFound(_)));

    let reply = t.request("probe.count", "").await.expect("reply");
    assert_eq!(reply.header(VERSION_HEADER), Some(v2.as_str()), "v2 still serves");
    assert_eq!(
        t.host.route("svc").expect("route").versions.status().label.as_deref(),
        Some("v2")
    );
}

#[tokio::test]
async fn a_version_that_traps_on_every_message_is_rolled_back() {
    let t = start(MEMORY).await.expect("start");
    let route = t.host.route("svc").expect("route").clone();
    let v1 = route.versions.active().hash.clone();
    let mut broken = swap(&relabel(PROBE, "v4"), "v4");
    broken.config = Some(
        serde_json::json!({ "trap_all": true })
            .as_object()
            .cloned()
            .expect("object"),
    );
    let mut switches = route.versions.switches();
    t.host.swap("svc", broken).await.expect("v4 loads: its init is fine");
    switches.borrow_and_update();
    let mut traps = 0;
    for _ in 0..3 {
        let reply = t.request("probe.count", "").await.expect("reply");
        if CallError::from_reply(&reply).is_some_and(|e| e.kind == berth::ErrorKind::Trap) {
            traps += 1;
        }
    }
    assert_eq!(traps, 3, "v4 trapped on each call until the rollback");
    tokio::time::timeout(Duration::from_secs(5), switches.changed())
        .await
        .expect("rolled back")
        .expect("open");
    let reply = t.request("probe.count", "").await.expect("reply");
    assert!(CallError::from_reply(&reply).is_none(), "v1 serves again");
    assert_eq!(reply.header(VERSION_HEADER), Some(v1.as_str()));
    let status = route.versions.status();
    let why = status.last_rollback.expect("the reason is kept");
    assert!(
        why.contains("v4") && why.contains("failed 3 calls") && why.contains("trap"),
        "{why}"
    );
    assert_eq!(
        route.breaker.status().state,
        "serving",
        "v1 is not quarantined for v4's traps"
    );
}

#[tokio::test]
async fn swap_over_http_reports_the_new_version_and_refuses_bad_ones() {
    let t = start(MEMORY).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let ok = http
        .put(format!("{base}/v1/components/svc?label=v2"))
        .body(relabel(PROBE, "v2"))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let report: serde_json::Value = ok.json().await.expect("JSON");
    assert_eq!(report["label"], "v2");
    let listed: serde_json::Value = http
        .get(format!("{base}/v1/components"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["components"][0]["version"], report["version"]);
    assert_eq!(listed["components"][0]["versions"]["label"], "v2");

    let bad = http
        .put(format!("{base}/v1/components/svc"))
        .body("not wasm")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.expect("JSON");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("keeps serving")),
        "{body}"
    );
    let missing = http
        .put(format!("{base}/v1/components/nope"))
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), 404);
    drop(_stop);
}

#[tokio::test]
async fn swaps_of_one_component_wait_for_each_other_but_not_for_other_components() {
    let t = start(&format!(
        "{MEMORY}\n[[components]]\nname = \"other\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n"
    ))
    .await
    .expect("start");
    // Compile v2 once, so the swap below takes milliseconds from the cache
    // and "still waiting after 200 ms" can only mean it is blocked.
    let v1 = std::fs::read(PROBE).expect("probe");
    t.host.swap("svc", swap(&relabel(PROBE, "v2"), "v2")).await.expect("v2");
    t.host.swap("svc", swap(&v1, "v1")).await.expect("v1");
    // Hold `svc`'s swap lock, as a swap in progress does.
    let held = t.host.route("svc").expect("route").versions.lock().await;
    let other = t.host.swap("other", swap(&relabel(berth_tests::ECHO, "o2"), "o2"));
    let report = tokio::time::timeout(Duration::from_secs(10), other)
        .await
        .expect("a swap of another component is not blocked")
        .expect("swap");
    assert_eq!(report.label.as_deref(), Some("o2"));
    let same = t.host.swap("svc", swap(&relabel(PROBE, "v2"), "v2"));
    tokio::pin!(same);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut same)
            .await
            .is_err(),
        "a second swap of `svc` waits for the one in progress"
    );
    drop(held);
    let report = same.await.expect("then it goes through");
    assert_eq!(report.label.as_deref(), Some("v2"));
}
