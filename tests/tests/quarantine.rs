//! Quarantine end to end: a component that keeps trapping stops getting
//! messages (they wait at the broker), shows why, is retried after its
//! cooldown, and an operator can resume it.

use std::time::Duration;

use berth::Message;
use berth_tests::{TestHost, start};
use serde_json::Value;

fn hostile(extra: &str) -> String {
    format!(
        "[[components]]\nname = \"hostile\"\nwasm = \"{{hostile}}\"\nsubscribe = [\"hostile.>\"]\nlink_unused_sockets = true\nmax_concurrency = 1\n{extra}\n"
    )
}

async fn trap_times(t: &TestHost, n: usize) {
    for _ in 0..n {
        let reply = t.request("hostile.panic", "").await.expect("reply");
        assert!(berth::CallError::from_reply(&reply).is_some());
    }
}

#[tokio::test]
async fn repeated_traps_quarantine_until_an_operator_resumes() {
    let t = start(&hostile("quarantine_after = 3\nquarantine_ms = 600000"))
        .await
        .expect("start");
    let (base, _guard) = t.serve_http("127.0.0.1:0").await;
    trap_times(&t, 3).await;

    let list: Value = reqwest::get(format!("{base}/v1/components"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let state = &list["components"][0]["state"];
    assert_eq!(state["state"], "quarantined", "{list}");
    assert!(
        state["reason"]
            .as_str()
            .is_some_and(|r| r.contains("3 faults in a row") && r.contains("trapped")),
        "{state}"
    );
    let health = reqwest::get(format!("{base}/health")).await.expect("get");
    assert_eq!(health.status(), 503, "every component is quarantined");

    // A message sent now waits at the broker instead of being handled.
    let transport = t.host.transport();
    let pending = tokio::spawn(async move {
        transport
            .request(Message::new("hostile.ok", ""), Duration::from_secs(20))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // a window in which nothing may happen
    assert!(!pending.is_finished(), "a quarantined component takes no message");
    assert_eq!(t.host.route("hostile").expect("route").stats.snapshot().requests, 3);

    let resumed = reqwest::Client::new()
        .post(format!("{base}/v1/components/hostile/resume"))
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), 200);
    let reply = pending.await.expect("task").expect("reply");
    assert_eq!(reply.body, "fine", "the waiting message was handled after resume");
    let health = reqwest::get(format!("{base}/health")).await.expect("get");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn after_the_cooldown_a_successful_trial_closes_the_breaker() {
    let t = start(&hostile("quarantine_after = 2\nquarantine_ms = 50"))
        .await
        .expect("start");
    trap_times(&t, 2).await;
    let route = t.host.route("hostile").expect("route").clone();
    assert_eq!(route.breaker.status().state, "quarantined");
    assert_eq!(
        t.ask("hostile.ok", "").await,
        "fine",
        "the trial call after the cooldown"
    );
    let status = route.breaker.status();
    assert_eq!((status.state, status.quarantines), ("serving", 1));
}
