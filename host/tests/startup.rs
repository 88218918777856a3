//! Start-up: HTTP answers at once, `starting`, while components load; the
//! components load side by side, each announced with its size.

mod process;

use std::process::Command;

use process::{Host, free_port};

/// Two probes whose `init` takes a second each.
fn slow_pair(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let manifest = dir.join("berth.toml");
    let probe = |name: &str| {
        format!(
            "[[components]]\nname = \"{name}\"\nwasm = \"{}\"\nsubscribe = [\"{name}.>\"]\ntimeout_ms = 5000\n\
             [components.config]\ninit_sleep_ms = 1000\n",
            berth_tests::PROBE
        )
    };
    std::fs::write(
        &manifest,
        format!(
            "[host]\nhttp = \"127.0.0.1:{port}\"\n{}{}",
            probe("first"),
            probe("second")
        ),
    )
    .expect("write");
    manifest
}

fn health(port: u16) -> (String, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{port}/health")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("body and code");
    (code.to_owned(), serde_json::from_str(body).expect("JSON"))
}

#[test]
fn health_answers_starting_while_components_load_side_by_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let host = Host::run(&slow_pair(dir.path(), port));
    host.wait_for("HTTP admin and ingress listening");
    let (code, body) = health(port);
    assert_eq!((code.as_str(), &body["status"]), ("503", &"starting".into()), "{body}");

    // Both start loading before either has finished: side by side.
    let lines = host.lines_until("component loaded");
    let loading: Vec<&String> = lines.iter().filter(|l| l.contains("loading ")).collect();
    assert_eq!(loading.len(), 2, "both were loading before one finished: {lines:#?}");
    assert!(
        loading[0].contains(" MB)…"),
        "a line per component with its size: {}",
        loading[0]
    );

    host.wait_for("host started");
    let (code, body) = health(port);
    assert_eq!((code.as_str(), &body["status"]), ("200", &"ok".into()), "{body}");
}

#[test]
fn routing_mistakes_are_named_at_start_and_unhandled_names_the_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (manifest, url) = process::manifest_with_http(
        dir.path(),
        &format!(
            "[[components]]\nname = \"probe\"\nwasm = \"{}\"\n\
             subscribe = [\"probe.count\", \"stray.>\"]\npublish = [\"probe.*\"]\n",
            berth_tests::PROBE
        ),
    );
    let host = Host::run(&manifest);
    let start = host.lines_until("host started").join("\n");
    assert!(
        start.contains("subscription `stray.>` of `probe` reaches none of its routes (request probe.count,"),
        "{start}"
    );
    assert!(
        start.contains("route `request probe.sleep` of `probe` is fed by none of its subscriptions"),
        "{start}"
    );
    assert!(
        start.contains("`probe` may publish to `probe.*`, which its own subscription `probe.count` takes"),
        "{start}"
    );
    let stray = Command::new(process::BERTH)
        .args(["request", "stray.x", "--url", &url])
        .output()
        .expect("berth request");
    let err = String::from_utf8_lossy(&stray.stderr);
    assert!(
        err.contains("no handler for subject `stray.x`")
            && err.contains("handles: request probe.count, request probe.sleep"),
        "{err}"
    );
}
