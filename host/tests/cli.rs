//! The `berth` binary: `check` exit codes, and `run` serving until SIGTERM,
//! finishing an in-flight call and exiting 0.

mod process;

use std::process::Command;
use std::time::Duration;

use process::{BERTH, Host};

#[test]
fn check_says_whether_a_component_fits() {
    let good = Command::new(BERTH)
        .args(["check", berth_tests::ECHO])
        .output()
        .expect("run");
    assert!(good.status.success());
    let out = String::from_utf8_lossy(&good.stdout);
    assert!(
        out.contains("berth:backend/handler@0.1.0") && out.contains("ok: berth:backend@0.1.0 backend, with batches"),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").expect("write");
    let bad = Command::new(BERTH).arg("check").arg(&junk).output().expect("run");
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("not a valid wasm component"), "{out}");
    assert!(
        out.contains(r#"not a WebAssembly file (it starts with "not wasm")"#),
        "{out}"
    );
}

#[test]
fn check_judges_a_python_component_as_its_manifest_would() {
    let wasm = berth_tests::polyglot::build(berth_tests::polyglot::Language::Python, "conformance")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let refused = Command::new(BERTH).arg("check").arg(&wasm).output().expect("run");
    assert_eq!(refused.status.code(), Some(1), "componentize-py imports wasi:sockets");
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(
        out.contains("--link-unused-sockets"),
        "says how to check it as configured: {out}"
    );
    let fits = Command::new(BERTH)
        .arg("check")
        .arg(&wasm)
        .arg("--link-unused-sockets")
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&fits.stdout);
    assert!(
        fits.status.success() && out.contains("ok: berth:backend@0.1.0 backend, with batches and state"),
        "{out}"
    );
    assert!(
        !out.contains("\n  exports\n") && out.contains("(and exports, which Berth does not call)"),
        "the toolchain's plain `exports` is not listed as an interface: {out}"
    );
}

#[test]
fn run_with_a_bad_manifest_exits_non_zero_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("berth.toml");
    std::fs::write(&manifest, "[host]\nnmae = \"typo\"\n").expect("write");
    let out = Command::new(BERTH).arg("run").arg(&manifest).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nmae") && err.contains("line 2"), "{err}");
}

/// Waits (10 s at most) until the counters of the component at `index` of
/// the host at `url` satisfy `done`.
fn wait_for_stats(url: &str, index: usize, done: impl Fn(&serde_json::Value) -> bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list: serde_json::Value = reqwest::get(format!("{url}/v1/components"))
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            if done(&list["components"][index]["stats"]) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "counters never got there: {list}"
            );
            tokio::task::yield_now().await;
        }
    });
}

/// `berth run` of one component `name` subscribed to `<name>.>`, with HTTP
/// on a free port, once it listens; and its URL. Sockets are linked, as a
/// Python or JavaScript guest needs (every address stays denied).
fn serve_http(dir: &std::path::Path, name: &str, wasm: &str, env: &[(&str, &str)]) -> (Host, String) {
    let manifest = process::manifest_with_http(
        dir,
        &format!(
            "[[components]]\nname = \"{name}\"\nwasm = \"{wasm}\"\nsubscribe = [\"{name}.>\"]\nlink_unused_sockets = true\n"
        ),
    );
    let host = Host::run_with(&manifest, env);
    host.wait_for("host started");
    let url = host.http();
    (host, url)
}

#[test]
fn run_serves_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, url) = serve_http(dir.path(), "probe", berth_tests::PROBE, &[]);

    let echo = Command::new(BERTH)
        .args(["request", "probe.count", "--url", &url])
        .output()
        .expect("berth request");
    assert!(echo.status.success(), "{}", String::from_utf8_lossy(&echo.stderr));
    assert_eq!(String::from_utf8_lossy(&echo.stdout), "1\n", "text ends with a newline");

    let published = Command::new(BERTH)
        .args(["publish", "probe.event.cli", "from the shell", "--url", &url])
        .output()
        .expect("berth publish");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );

    // Swap in a new version from the shell; a bad one is refused with why.
    let v2 = dir.path().join("probe-v2.wasm");
    std::fs::write(&v2, berth_tests::relabel(berth_tests::PROBE, "v2")).expect("write v2");
    let swapped = Command::new(BERTH)
        .args(["swap", "probe"])
        .arg(&v2)
        .args(["--label", "v2", "--url", &url])
        .output()
        .expect("berth swap");
    assert!(swapped.status.success(), "{}", String::from_utf8_lossy(&swapped.stderr));
    let report: serde_json::Value = serde_json::from_slice(&swapped.stdout).expect("swap prints JSON");
    assert_eq!(report["label"], "v2");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm").expect("write");
    let refused = Command::new(BERTH)
        .args(["swap", "probe"])
        .arg(&bad)
        .args(["--url", &url])
        .output()
        .expect("berth swap");
    assert!(!refused.status.success(), "a bad version is refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("keeps serving"));
    let status = Command::new(BERTH)
        .args(["status", "--url", &url])
        .output()
        .expect("berth status");
    assert!(status.status.success());
    let table = String::from_utf8_lossy(&status.stdout).into_owned();
    let version = report["version"].as_str().expect("version");
    let json = Command::new(BERTH)
        .args(["status", "--json", "--url", &url])
        .output()
        .expect("berth status --json");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["components"][0]["version"], version);
    assert!(
        table.contains("probe") && table.contains(&version[..12]) && table.contains("v2"),
        "{table}"
    );

    // A slow call in flight when SIGTERM arrives must still be answered.
    let slow = {
        let url = url.clone();
        std::thread::spawn(move || {
            Command::new(BERTH)
                .args(["request", "probe.sleep", "400", "--url", &url])
                .output()
                .expect("berth request")
        })
    };
    wait_for_stats(&url, 0, |stats| stats["in_flight"] == 1 && stats["events"] == 1);
    let pid = host.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    host.wait_for("all in-flight calls finished");
    let slow = slow.join().expect("thread");
    assert!(slow.status.success(), "{}", String::from_utf8_lossy(&slow.stderr));
    assert_eq!(String::from_utf8_lossy(&slow.stdout), "slept\n");

    let mut host = host;
    let status = host.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "SIGTERM ends with exit 0");
}

/// `berth status` and `berth request` run in a project's folder talk to
/// that project's host, on whatever port its manifest gives it.
#[test]
fn client_commands_in_a_project_folder_talk_to_its_own_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = process::free_port();
    let manifest = dir.path().join("berth.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\nname = \"mine\"\nhttp = \"127.0.0.1:{port}\"\n[[components]]\nname = \"probe\"\nwasm = \"{}\"\nsubscribe = [\"probe.>\"]\n",
            berth_tests::PROBE
        ),
    )
    .expect("write");
    let host = Host::run_with(&manifest, &[]);
    host.wait_for("host started");
    let in_project = |args: &[&str]| {
        let out = Command::new(BERTH)
            .args(args)
            .current_dir(dir.path())
            .env_remove("BERTH_URL")
            .output()
            .expect("berth");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(in_project(&["request", "probe.count"]), "1\n");
    let table = in_project(&["status"]);
    assert!(
        table.starts_with(&format!("host mine at http://127.0.0.1:{port}\n")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("probe ")), "{table}");
}

#[test]
fn strict_env_names_the_missing_variables_and_json_logs_are_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("berth.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\ntransport = \"nats\"\n[[components]]\nname = \"echo\"\nwasm = \"{}\"\nsubscribe = [\"echo.>\"]\n",
            berth_tests::ECHO
        ),
    )
    .expect("write");
    let out = Command::new(BERTH)
        .args(["--log-format", "json", "run", "--strict-env"])
        .arg(&manifest)
        .env_remove("SERVICE_NAME")
        .env_remove("NATS_URL")
        .env("DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "refused to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SERVICE_NAME, NATS_URL") && !err.contains("DATA_DIR,"),
        "{err}"
    );
    let line = err
        .lines()
        .find(|l| l.contains("strict-env"))
        .expect("the error is logged");
    let json: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(json["level"], "ERROR");
}

#[test]
fn admin_over_nats_answers_info_and_drain_ends_the_process_after_in_flight_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = format!("drain{}", std::process::id());
    let manifest = dir.path().join("berth.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\nname = \"{service}\"\ntransport = \"nats\"\nadmin = true\nadmin_token = \"s3cret\"\nhttp = \"127.0.0.1:0\"\n\
             [transports.nats]\nurl = \"nats://127.0.0.1:4222\"\n\
             [[components]]\nname = \"echo\"\nwasm = \"{}\"\nsubscribe = [\"{service}.echo.>\"]\n\
             [[components]]\nname = \"probe\"\nwasm = \"{}\"\nsubscribe = [\"probe.sleep\"]\n",
            berth_tests::ECHO,
            berth_tests::PROBE
        ),
    )
    .expect("write");
    let mut host = Host::run(&manifest);
    host.wait_for("host started");
    let admin = |args: &[&str]| {
        Command::new(BERTH)
            .arg("admin")
            .arg(&service)
            .args(args)
            .env("BERTH_ADMIN_TOKEN", "s3cret")
            .output()
            .expect("berth admin")
    };

    let table = admin(&["info"]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.ends_with("echo, probe\n") && table.contains(&format!(" {service} ok up ")),
        "one line per host: {table}"
    );
    let info = admin(&["info", "--json"]);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("one JSON line");
    assert_eq!(info["name"].as_str(), Some(service.as_str()));
    assert_eq!(info["components"].as_array().map(Vec::len), Some(2));

    let unknown = admin(&["suspend", "ghost"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // A slow call in flight when the drain arrives is still answered.
    let url = host.http();
    let slow = {
        let url = url.clone();
        std::thread::spawn(move || {
            Command::new(BERTH)
                .args(["request", "probe.sleep", "500", "--url", &url])
                .output()
                .expect("berth request")
        })
    };
    wait_for_stats(&url, 1, |stats| stats["in_flight"] == 1);
    let drained = admin(&["drain", "--host", info["id"].as_str().expect("id")]);
    assert!(drained.status.success(), "{}", String::from_utf8_lossy(&drained.stderr));
    host.wait_for("draining (admin command)");
    host.wait_for("all in-flight calls finished");
    let slow = slow.join().expect("thread");
    assert_eq!(
        String::from_utf8_lossy(&slow.stdout),
        "slept\n",
        "{}",
        String::from_utf8_lossy(&slow.stderr)
    );
    assert_eq!(
        host.child.wait().expect("wait").code(),
        Some(0),
        "a drained host exits 0"
    );
}

/// A trap is one short log line whatever `RUST_BACKTRACE` says: no host
/// backtrace is captured or printed for it (one was ~45 KB per trap).
#[test]
fn a_trap_logs_one_short_line_even_with_rust_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, url) = serve_http(dir.path(), "hostile", berth_tests::HOSTILE, &[("RUST_BACKTRACE", "1")]);
    let trapped = Command::new(BERTH)
        .args(["request", "hostile.panic", "--url", &url])
        .output()
        .expect("berth request");
    assert!(!trapped.status.success());
    host.signal("-TERM");
    // Everything logged from the trap to the end of the drain.
    let logged = host.lines_until("all in-flight calls finished").join("\n");
    assert!(logged.contains("component trapped"), "{logged}");
    let guest: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("stream=\"stderr\"") || l.contains("stream=stderr"))
        .collect();
    assert_eq!(guest.len(), 1, "the panic's report is one record: {guest:?}");
    assert!(
        guest[0].contains("panicked at hostile/src/lib.rs:") && guest[0].contains("hostile panics on purpose"),
        "{guest:?}"
    );
    assert!(logged.len() < 4000, "{} bytes logged:\n{logged}", logged.len());
    assert!(!logged.to_lowercase().contains("stack backtrace"), "{logged}");
}
