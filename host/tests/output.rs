//! What the command line prints, as a tool should: a tool's stderr holds
//! only Berth's own lines, without colours off a terminal and without the
//! client libraries' connection chatter; a tool's error is one plain line.

mod process;

use std::process::Command;

use process::BERTH;

#[test]
fn a_tool_prints_no_library_chatter_and_no_colours() {
    berth_tests::wait_for_port(4222, std::time::Duration::from_secs(5), "nats-server (127.0.0.1:4222)");
    // NO_COLOR unset: colours are off because stderr is not a terminal.
    let out = Command::new(BERTH)
        .args(["services", "--quiet-ms", "100", "--json"])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("berth services");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "nothing but Berth's own lines on stderr"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    serde_json::from_str::<serde_json::Value>(&stdout).expect("JSON with --json");

    let work = tempfile::tempdir().expect("tempdir");
    let made = Command::new(BERTH)
        .current_dir(work.path())
        .args(["new", "plain", "--lang", "c"])
        .env_remove("NO_COLOR")
        .output()
        .expect("berth new");
    assert!(made.status.success());
    let built = Command::new(BERTH)
        .current_dir(work.path().join("plain"))
        .arg("build")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("berth build");
    let err = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{err}");
    assert!(
        err.contains("building") && !err.contains('\u{1b}'),
        "untimed, uncoloured: {err:?}"
    );
    assert!(!err.starts_with("20"), "a tool's lines carry no timestamp: {err:?}");
}

#[test]
fn a_tool_s_error_is_one_plain_line() {
    let out = Command::new(BERTH)
        .args(["status", "--url", "http://127.0.0.1:9"])
        .env_remove("NO_COLOR")
        .output()
        .expect("berth status");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("berth: cannot reach the host"), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
}
