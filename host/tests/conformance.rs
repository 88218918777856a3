//! `berth conformance`, the command: a line per check, exit 1 on any
//! failure, and one error (exit 2) for a backend that is not a guest of
//! the contract. (The checks themselves, in every language:
//! tests/tests/conformance.rs.)

mod process;

use std::process::Command;

use process::BERTH;

#[test]
fn the_command_prints_a_line_per_check_and_fails_on_any_failure() {
    let berth = BERTH;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let pass = Command::new(berth)
        .args(["conformance", berth_tests::CONFORMANCE, "--data-dir"])
        .arg(data_dir.path())
        .output()
        .expect("run berth conformance");
    let out = String::from_utf8_lossy(&pass.stdout);
    assert!(pass.status.success(), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("PASS  ")).count(), 24, "{out}");
    assert!(out.contains("24 passed, 0 failed (memory transport)"), "{out}");

    // The echo guest answers everything with an echo: the error, JSON,
    // config, publish and event checks must fail, and say why.
    let fail = Command::new(berth)
        .args(["conformance", berth_tests::ECHO, "--data-dir"])
        .arg(data_dir.path())
        .output()
        .expect("run berth conformance");
    let out = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{out}");
    assert!(out.contains("PASS  echo: text body"), "{out}");
    assert!(
        out.contains("FAIL  error: code, name, message and data: expected an error"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  event: handled, publishes: nothing published"),
        "{out}"
    );

    // A backend whose routes take none of the contract's subjects is not
    // checked check by check (each would fail as `unhandled`): one error
    // says what the checks are for.
    let refused = Command::new(berth)
        .args(["conformance", berth_tests::GREETER, "--data-dir"])
        .arg(data_dir.path())
        .output()
        .expect("run berth conformance");
    let (out, err) = (
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr),
    );
    assert_eq!(refused.status.code(), Some(2), "the checks could not run: {out}{err}");
    assert!(!out.contains("FAIL  "), "{out}");
    assert!(
        err.contains("routes request greet.>, and none of them takes the contract's subjects")
            && err.contains("docs/conformance.md"),
        "{err}"
    );
}
