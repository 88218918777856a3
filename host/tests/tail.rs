//! `berth tail` and `GET /v1/tail/{pattern}`: what passes through a host
//! on the in-memory transport, as it passes; a reader that falls behind
//! loses messages (and is told how many) but never slows the bus.

mod process;

use std::process::Command;
use std::time::Duration;

use berth::Message;
use process::{BERTH, Host};

#[test]
fn tail_prints_what_a_component_publishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = process::manifest_with_http(
        dir.path(),
        &format!(
            "[[components]]\nname = \"greeter\"\nwasm = \"{}\"\nsubscribe = [\"greet.>\"]\npublish = [\"events.>\"]\n",
            berth_tests::GREETER
        ),
    );
    let host = Host::run(&manifest);
    host.wait_for("host started");
    let url = host.http();
    let tail = Host::spawn(Command::new(BERTH).args(["tail", "events.>", "--url", &url]));
    host.wait_for("tail started");
    let asked = Command::new(BERTH)
        .args(["request", "greet.world", r#"{"name":"Ada"}"#, "--url", &url])
        .output()
        .expect("berth request");
    assert!(asked.status.success(), "{}", String::from_utf8_lossy(&asked.stderr));
    let line = tail.line_with("events.greeted");
    assert_eq!(line, r#"events.greeted: {"name":"Ada"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_loses_messages_not_the_bus() {
    let t = berth_tests::start("[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n")
        .await
        .expect("start");
    let (url, _stop) = t.serve_http("127.0.0.1:0").await;
    let mut stalled = reqwest::get(format!("{url}/v1/tail/flood.>")).await.expect("tail");
    assert_eq!(stalled.status(), 200);
    // Nothing reads the stream while the bus is flooded with more than the
    // tail's buffer and the socket's hold: every publish must still go
    // through at once.
    let transport = t.host.transport();
    let body = "x".repeat(4096);
    for i in 0..3_000 {
        tokio::time::timeout(
            Duration::from_millis(500),
            transport.publish(Message::new(format!("flood.{i}"), body.clone())),
        )
        .await
        .unwrap_or_else(|_| panic!("publish {i} waited for the tail's reader"))
        .expect("published");
    }
    assert_eq!(t.ask("echo.x", "ok").await, "ok", "the host still answers");
    // The count of what was lost comes before the next message the reader
    // has room for: keep some coming while the backlog is read.
    let ticks = tokio::spawn(async move {
        for i in 0..200 {
            let _ = transport.publish(Message::new(format!("flood.tick.{i}"), "t")).await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    // Searched a chunk at a time, with the end of the one before (a line
    // may be split between them).
    let (mut window, mut first) = (String::new(), false);
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stalled.chunk())
            .await
            .expect("the stream goes on")
            .expect("a chunk")
            .expect("not closed");
        window.push_str(&String::from_utf8_lossy(&chunk));
        first |= window.contains(r#""subject":"flood.0""#);
        if window.contains(r#"{"dropped":"#) {
            break;
        }
        let keep = window.len().saturating_sub(64);
        window.drain(..window.ceil_char_boundary(keep));
    }
    ticks.abort();
    assert!(first, "the first messages came through");
}
