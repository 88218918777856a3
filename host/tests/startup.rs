//! Start-up: HTTP answers at once, `starting`, while components load; the
//! components load side by side, each announced with its size.

mod process;

use std::process::Command;

use process::Host;

/// Two probes whose `init` takes a second each.
fn slow_pair(dir: &std::path::Path) -> std::path::PathBuf {
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
        format!("[host]\nhttp = \"127.0.0.1:0\"\n{}{}", probe("first"), probe("second")),
    )
    .expect("write");
    manifest
}

fn health(url: &str) -> (String, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &format!("{url}/health")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("body and code");
    (code.to_owned(), serde_json::from_str(body).expect("JSON"))
}

#[test]
fn health_answers_starting_while_components_load_side_by_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::run(&slow_pair(dir.path()));
    let url = host.http();
    let (code, body) = health(&url);
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
    let (code, body) = health(&url);
    assert_eq!((code.as_str(), &body["status"]), ("200", &"ok".into()), "{body}");
}

#[test]
fn routing_mistakes_are_named_at_start_and_unhandled_names_the_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = process::manifest_with_http(
        dir.path(),
        &format!(
            "[[components]]\nname = \"probe\"\nwasm = \"{}\"\n\
             subscribe = [\"probe.count\", \"stray.>\"]\npublish = [\"probe.*\"]\n",
            berth_tests::PROBE
        ),
    );
    let host = Host::run(&manifest);
    let start = host.lines_until("host started").join("\n");
    let url = host.http();
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
