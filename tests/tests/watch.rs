//! Watch mode (`berth run --watch`): a component whose wasm file is
//! replaced on disk, the way a build replaces it, is swapped in.

use std::time::Duration;

use berth::core::headers::VERSION;
use berth_tests::{PROBE, relabel, with_reply_headers};

const MEMORY: &str = "[[components]]\nname = \"svc\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\nlabel = \"v1\"\n";

#[tokio::test]
async fn watch_mode_swaps_in_a_rebuilt_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.wasm");
    std::fs::copy(PROBE, &file).expect("copy");
    let t = berth_tests::start(&with_reply_headers(
        &MEMORY.replace("{probe}", &file.display().to_string()),
    ))
    .await
    .expect("start");
    let route = t.host.route("svc").expect("route").clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let _watch = berth::control::watch::spawn(t.host.app(), stop.clone());
    let mut switches = route.versions.switches();
    let rebuilt = relabel(PROBE, "rebuilt");
    // Write it the way a build does: a new file moved over the old one.
    let tmp = dir.path().join("svc.wasm.tmp");
    std::fs::write(&tmp, &rebuilt).expect("write");
    std::fs::rename(&tmp, &file).expect("rename");
    tokio::time::timeout(Duration::from_secs(10), switches.changed())
        .await
        .expect("watch swapped it")
        .expect("open");
    let reply = t.request("probe.count", "").await.expect("reply");
    let active = route.versions.active();
    assert_eq!(
        active.label.as_deref(),
        Some("v1"),
        "a swap keeps the label unless given one"
    );
    assert_eq!(reply.header(VERSION), Some(active.hash.as_str()));
    stop.cancel();
}
