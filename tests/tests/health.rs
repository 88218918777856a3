//! Health and discovery, every way they are asked: `GET /health` and
//! `/v1/components` over HTTP, the `berth.health.<service>` subject on the
//! memory transport, NATS and AMQP, Telestion's health subject, the NATS
//! service API (`$SRV.PING/INFO/STATS`), health while the broker is down,
//! while every call slot is busy, and while a new version loads.

mod rabbit;

use std::time::{Duration, Instant};

use berth::app::SwapRequest;
use berth_tests::{NATS, PROBE, relabel, start};
use rabbit::Rabbit;
use serde_json::Value;

const WEB: &str = "[host]\nname = \"web\"\n\
    [[components]]\nname = \"greeter\"\nwasm = \"{greeter}\"\nsubscribe = [\"greet.>\"]\npublish = [\"events.>\"]\n\
    [[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\ntimeout_ms = 200\n";

fn two_on_amqp(rabbit: &Rabbit, service: &str) -> String {
    format!(
        "{host}\n[[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n\
         [[components]]\nname = \"probe\"\nwasm = \"{{probe}}\"\nsubscribe = [\"probe.request\"]\n",
        host = rabbit.host_toml(service)
    )
}

fn busy_on_amqp(rabbit: &Rabbit) -> String {
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

#[tokio::test]
async fn the_host_answers_its_health_subject_on_the_memory_transport() {
    let t = berth_tests::start(
        "[host]\nname = \"svc-a\"\n[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n",
    )
    .await
    .expect("start");
    let health: serde_json::Value = serde_json::from_str(&t.ask("berth.health.svc-a", "").await).expect("JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["components"][0]["name"], "echo");
}

#[tokio::test]
async fn health_and_components() {
    let t = start(WEB).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["name"], "web");
    assert_eq!(health["errors"], 0, "Telestion's error count, at the top level");
    let failed = t.request("probe.error", "500").await.expect("reply");
    assert!(berth::CallError::from_reply(&failed).is_some());
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(health["errors"], 1, "every component's failed calls");
    let list: Value = reqwest::get(format!("{base}/v1/components"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["components"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["greeter", "probe"]);
    let version = list["components"][0]["version"].as_str().expect("version");
    assert_eq!(version.len(), 64, "sha-256 hex");
}

#[tokio::test]
async fn health_is_503_while_the_broker_is_down() {
    let server = berth_tests::nats_server::NatsServer::start(&[]);
    let t = start(&format!(
        "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"{}\"\n\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n",
        server.url()
    ))
    .await
    .expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let health = || async { reqwest::get(format!("{base}/health")).await.expect("health") };
    assert_eq!(health().await.status(), 200);
    let listed: serde_json::Value = reqwest::get(format!("{base}/v1/components"))
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["transports"][0]["kind"], "nats");
    assert_eq!(listed["transports"][0]["slow_consumer_events"], 0);

    drop(server); // the broker goes away
    // The client notices the closed socket at once; ask until it has (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let down = loop {
        let response = health().await;
        if response.status() == 503 {
            break response.json::<serde_json::Value>().await.expect("JSON");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health stayed 200 with the broker down"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(down["status"], "unavailable");
    assert_eq!(down["transports"][0]["connected"], false);
    drop(_stop);
}

#[tokio::test]
async fn the_host_answers_health_and_the_nats_service_protocol() {
    let nats = berth_tests::nats_client().await;
    let p = berth_tests::unique("t");
    let t = start(&format!(
        "[host]\nname = \"{p}svc\"\ntransport = \"nats\"\ntelestion = true\n\
         [[components]]\nname = \"{p}echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"{p}.echo.>\", \"{p}.again.*\"]\nlabel = \"1.2.3\"\n\
         [[components]]\nname = \"{p}probe\"\nwasm = \"{{probe}}\"\nsubscribe = [\"{p}.nowhere\"]\n"
    ))
    .await
    .expect("start");
    assert_eq!(t.ask(&format!("{p}.echo.x"), "counted").await, "counted");
    for n in 0..3 {
        assert_eq!(t.ask(&format!("{p}.again.{n}"), "again").await, "again");
    }
    // The probe has no route for this subject: each call fails as unhandled.
    for _ in 0..2 {
        let reply = t.request(&format!("{p}.nowhere"), "?").await.expect("a reply");
        assert!(berth::CallError::from_reply(&reply).is_some(), "an error reply");
    }

    let health = nats
        .request(format!("berth.health.{p}svc"), "".into())
        .await
        .expect("health answers");
    let health: serde_json::Value = serde_json::from_slice(&health.payload).expect("JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["name"], format!("{p}svc"));
    assert_eq!(health["components"][0]["name"], format!("{p}echo"));
    // Telestion mode: other hosts may answer too; any answer must be a health document.
    let telestion = nats
        .request("__telestion__/health", "".into())
        .await
        .expect("telestion health answers");
    let telestion: serde_json::Value = serde_json::from_slice(&telestion.payload).expect("JSON");
    assert!(telestion["status"].is_string());
    assert!(
        telestion["name"].is_string() && telestion["errors"].is_u64(),
        "Telestion's name and error count: {telestion}"
    );

    let ask = async |subject: String, schema: &str| -> Value {
        let reply = nats.request(subject.clone(), "".into()).await.expect(&subject);
        let v: Value = serde_json::from_slice(&reply.payload).expect("JSON");
        micro_schema_holds(schema, &v);
        v
    };
    let ping = ask(format!("$SRV.PING.{p}echo"), "ping_response").await;
    assert_eq!(ping["version"], "1.2.3");
    let id = ping["id"].as_str().expect("id").to_owned();
    let info = ask(format!("$SRV.INFO.{p}echo.{id}"), "info_response").await;
    assert_eq!(info["endpoints"][0]["subject"], format!("{p}.echo.>"));
    assert_eq!(info["endpoints"][0]["name"], format!("{p}-echo-all"));
    assert_eq!(info["endpoints"][1]["name"], format!("{p}-again-any"));

    let stats = ask(format!("$SRV.STATS.{p}echo"), "stats_response").await;
    let endpoints = stats["endpoints"].as_array().expect("endpoints");
    let counts: Vec<_> = endpoints
        .iter()
        .map(|e| (&e["num_requests"], &e["num_errors"]))
        .collect();
    assert_eq!(counts, [(&1.into(), &0.into()), (&3.into(), &0.into())], "{stats}");
    for e in endpoints {
        assert!(e["processing_time"].as_u64().is_some_and(|ns| ns > 0), "{e}");
        assert!(e["average_processing_time"].as_u64().is_some_and(|ns| ns > 0), "{e}");
        assert!(e.get("data").is_none(), "no `data: null`: {e}");
    }
    let failing = ask(format!("$SRV.STATS.{p}probe"), "stats_response").await;
    let endpoint = &failing["endpoints"][0];
    assert_eq!(
        (&endpoint["num_requests"], &endpoint["num_errors"]),
        (&2.into(), &2.into())
    );
    assert!(
        endpoint["last_error"].as_str().is_some_and(|e| e.contains("unhandled")),
        "the last error is kept: {endpoint}"
    );
}

/// `value` is what the NATS service API's JSON schema `kind` allows, as
/// the `nats micro` tooling checks it (tests/schemas/nats-micro-v1).
fn micro_schema_holds(kind: &str, value: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/nats-micro-v1/{kind}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema")).expect("schema JSON");
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{kind} breaks the schema: {errors:?}\n{value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_within_half_a_second_while_every_slot_is_busy_on_nats() {
    let client = berth_tests::nats_client().await;
    let (p, service) = (berth_tests::unique("t"), format!("busy{}", berth_tests::unique("t")));
    let t = start(&format!(
        "[host]\nname = \"{service}\"\ntransport = \"nats\"\n[transports.nats]\nurl = \"nats://{NATS}\"\n\
         [[components]]\nname = \"probe\"\nwasm = \"{{probe}}\"\nsubscribe = [\"probe.sleep\"]\nmax_concurrency = 2\n"
    ))
    .await
    .expect("start");
    let route = t.host.route("probe").expect("probe").clone();
    // Four 2-second calls: two run, two wait.
    let _busy: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.request("probe.sleep", "2000".into()).await })
        })
        .collect();
    assert!(
        route
            .stats
            .wait_until(Duration::from_secs(10), |s| s.in_flight == 2)
            .await,
        "both slots busy ({p})"
    );
    let started = std::time::Instant::now();
    let reply = client
        .request(format!("berth.health.{service}"), "".into())
        .await
        .expect("health answers");
    let took = started.elapsed();
    let health: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(health["components"][0]["stats"]["in_flight"], 2);
    assert!(took < Duration::from_millis(500), "health took {took:?} while busy");
}

#[tokio::test]
async fn the_host_answers_its_health_subject_over_amqp() {
    let rabbit = Rabbit::new().await;
    let service = rabbit.service();
    let _t = start(&two_on_amqp(&rabbit, &service))
        .await
        .expect("host starts on AMQP");
    let reply = rabbit.call(&format!("berth.health.{service}"), b"", &[]).await;
    let health: serde_json::Value = serde_json::from_slice(&reply.data).expect("JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["transports"][0]["kind"], "amqp");
    assert_eq!(health["components"].as_array().map(Vec::len), Some(2));
    rabbit.cleanup_components(&["echo", "probe"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_swapping_while_a_new_version_loads_and_serving_after() {
    let t = start("[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\n")
        .await
        .expect("start");
    let shared = t.host.app();
    let state = |shared: &berth::app::App| shared.components()[0]["state"]["state"].clone();
    assert_eq!(state(&shared), "serving");
    // A new hash is compiled, not taken from the cache: long enough to see.
    let swapping = tokio::spawn({
        let shared = shared.clone();
        async move {
            shared
                .swap(
                    "probe",
                    SwapRequest {
                        wasm: relabel(PROBE, "loading").into(),
                        label: Some("2".into()),
                        config: None,
                        component: None,
                    },
                )
                .await
        }
    });
    let mut seen = false;
    while !swapping.is_finished() {
        if state(&shared) == "swapping" {
            seen = true;
            // Health stays ok: the old version serves meanwhile.
            assert!(shared.health().0, "healthy while swapping");
            break;
        }
        tokio::task::yield_now().await;
    }
    swapping.await.expect("task").expect("swap");
    assert!(seen, "the state said `swapping` while the new version loaded");
    assert_eq!(state(&shared), "serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_within_half_a_second_while_every_slot_is_busy_on_amqp() {
    let rabbit = Rabbit::new().await;
    let t = start(&busy_on_amqp(&rabbit)).await.expect("host starts on AMQP");
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
