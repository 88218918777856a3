//! A swap that carries a new manifest entry, as `berth dev` sends when the
//! manifest changes: the new version gets the new grants and config, the
//! label stays unless a new one is given, the same code with the same
//! settings is no swap at all, subscriptions and the quarantine policy
//! change live, and the outbound transport is refused with the reason.

use std::time::Duration;

use berth::app::{OpError, SwapRequest};
use berth::{CallError, Message};
use berth_tests::{PROBE, TestHost};

const MANIFEST: &str = "[[components]]\nname = \"svc\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\nlabel = \"v1\"\n\
    [components.config]\nk = 1\n";

fn entry() -> berth::manifest::ComponentConfig {
    let (manifest, _dir) = berth_tests::manifest(MANIFEST).expect("manifest");
    manifest.components[0].clone()
}

fn request(component: Option<berth::manifest::ComponentConfig>) -> SwapRequest {
    SwapRequest {
        wasm: std::fs::read(PROBE).expect("probe").into(),
        label: None,
        config: None,
        component,
    }
}

async fn publish_to(t: &TestHost, to: &str) -> Result<(), CallError> {
    let reply = t
        .host
        .transport()
        .request(
            Message::new("probe.publish", "p").with_header("to", to),
            Duration::from_secs(5),
        )
        .await
        .expect("reply");
    CallError::from_reply(&reply).map_or(Ok(()), Err)
}

#[tokio::test]
async fn a_new_entry_brings_new_grants_and_config_and_keeps_the_label() {
    let t = berth_tests::start(MANIFEST).await.expect("start");
    let e = publish_to(&t, "out.x").await.expect_err("not granted yet");
    assert_eq!(e.code, 403, "{e}");

    let mut granted = entry();
    granted.publish = vec!["out.>".to_owned()];
    granted.config.insert("k".to_owned(), 2.into());
    let report = t.host.swap("svc", request(Some(granted))).await.expect("swapped");
    assert_eq!(report.version, report.previous, "the same code, new settings");
    assert_eq!(report.label.as_deref(), Some("v1"), "the label is kept");
    publish_to(&t, "out.x").await.expect("granted now");
    assert_eq!(t.ask("probe.config", "").await, r#"{"k":2}"#);
    let swaps = t.host.route("svc").expect("svc").versions.status().swaps;
    assert_eq!(swaps, 1);
}

#[tokio::test]
async fn a_new_entry_brings_its_quarantine_policy() {
    let t = berth_tests::start(MANIFEST).await.expect("start");
    let route = t.host.route("svc").expect("svc").clone();
    let mut strict = entry();
    strict.quarantine_after = 1;
    t.host.swap("svc", request(Some(strict))).await.expect("swapped");
    let trap = t.request("probe.panic", "").await.expect("a reply");
    assert!(CallError::from_reply(&trap).is_some(), "it trapped");
    assert_eq!(route.breaker.status().state, "quarantined", "one trap is enough now");
}

#[tokio::test]
async fn the_same_code_with_the_same_settings_is_no_swap() {
    let t = berth_tests::start(MANIFEST).await.expect("start");
    let route = t.host.route("svc").expect("svc").clone();
    let report = t.host.swap("svc", request(None)).await.expect("answered");
    assert_eq!(report.version, report.previous);
    let report = t.host.swap("svc", request(Some(entry()))).await.expect("answered");
    assert_eq!(report.version, report.previous);
    assert_eq!(route.versions.status().swaps, 0, "nothing was swapped");
}

#[tokio::test]
async fn subscriptions_change_live_and_the_outbound_transport_does_not() {
    let t = berth_tests::start(MANIFEST).await.expect("start");
    let route = t.host.route("svc").expect("svc").clone();
    let mut narrowed = entry();
    let (mut only_count, mut also_config) = (entry().subscribe[0].clone(), entry().subscribe[0].clone());
    only_count.subject = "probe.count".to_owned();
    also_config.subject = "probe.config".to_owned();
    narrowed.subscribe = vec![only_count, also_config];
    t.host.swap("svc", request(Some(narrowed))).await.expect("swapped");
    assert_eq!(route.subjects(), ["probe.count", "probe.config"]);
    assert_eq!(
        t.ask("probe.config", "").await,
        r#"{"k":1}"#,
        "a new subscription serves"
    );
    let gone = t.request("probe.env", "HOME").await;
    assert!(
        matches!(gone, Err(berth::transport::TransportError::NoResponders(_))),
        "probe.> is no longer subscribed: {gone:?}"
    );

    let mut moved = entry();
    moved.outbound = Some(berth::manifest::TransportKind::Nats);
    match t.host.swap("svc", request(Some(moved))).await {
        Err(OpError::Refused { reason, .. }) => {
            assert!(reason.to_string().contains("outbound transport changed"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!t.ask("probe.count", "").await.is_empty(), "still serving");
}
