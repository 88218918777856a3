//! What a component gets from WASI: no files, no sockets, and its stdout
//! and stderr as log lines tagged with its name.

use std::io::Write;
use std::sync::{Arc, Mutex};

use berth_tests::start;

const PROBE: &str = "[[components]]\nname = \"probe\"\nwasm = \"{probe}\"\nsubscribe = [\"probe.>\"]\n";

#[tokio::test]
async fn no_filesystem_and_no_sockets() {
    let t = start(PROBE).await.expect("start");
    let file = t.ask("probe.read-file", "/etc/hostname").await;
    assert!(file.starts_with("denied"), "{file}");
    // A component that imports sockets loads only when the manifest says
    // so, and even then every address is denied.
    let hostile = start(
        "[[components]]\nname = \"hostile\"\nwasm = \"{hostile}\"\nsubscribe = [\"hostile.>\"]\nlink_unused_sockets = true\n",
    )
    .await
    .expect("start");
    let socket = hostile.ask("hostile.socket", "").await;
    assert!(socket.starts_with("denied"), "{socket}");
}

#[tokio::test]
async fn a_granted_folder_is_private_to_the_component() {
    let without = start(PROBE).await.expect("start");
    assert!(
        without.ask("probe.write-file", "x").await.starts_with("denied"),
        "no folder unless granted"
    );

    let t = start(&format!("{PROBE}filesystem = true\n")).await.expect("start");
    assert_eq!(t.ask("probe.write-file", "kept").await, "kept");
    let on_disk = t.data_dir.path().join("components/probe/note.txt");
    assert_eq!(
        std::fs::read_to_string(&on_disk).expect("written under DATA_DIR"),
        "kept"
    );
    for outside in ["/etc/hostname", "/data/../../etc/hostname", "../etc/hostname"] {
        let read = t.ask("probe.read-file", outside).await;
        assert!(read.starts_with("denied"), "{outside}: {read}");
    }
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn stdout_and_stderr_become_log_lines_tagged_with_the_component() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = start(PROBE).await.expect("start");
    assert_eq!(t.ask("probe.print", "hello log").await, "printed");
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    let out = logs
        .lines()
        .find(|l| l.contains("out: hello log"))
        .unwrap_or_else(|| panic!("stdout line in:\n{logs}"));
    assert!(
        out.contains("INFO") && out.contains("component=\"probe\"") && out.contains("stream=\"stdout\""),
        "{out}"
    );
    let err = logs
        .lines()
        .find(|l| l.contains("err: hello log"))
        .unwrap_or_else(|| panic!("stderr line in:\n{logs}"));
    assert!(err.contains("WARN") && err.contains("stream=\"stderr\""), "{err}");
}
