//! The embedded key-value store under SIGKILL: a `berth run` process takes
//! 10,000 writes over NATS, 64 in flight, and is killed half-way. Every
//! write it acknowledged is then readable, and no stored value is torn:
//! each is exactly what some write of that key wrote.

mod process;

use std::collections::HashSet;
use std::time::Duration;

use berth::core::keyvalue::Bucket;
use berth::keyvalue::EMBEDDED_FILE;
use berth::keyvalue::embedded::EmbeddedStore;
use futures_util::StreamExt;
use process::Host;
use serde_json::json;

const WRITES: usize = 10_000;
const IN_FLIGHT: usize = 64;
/// Acknowledged writes after which the host is killed.
const KILL_AFTER: usize = 3_000;

/// The value written to key `i`: long enough to span more than a line of
/// a page, and checkable on its own.
fn value(i: usize) -> String {
    format!("{i:05}-{}", "x".repeat(100))
}

/// Whether a reply carries an error (the NATS service API's header).
fn is_error(reply: &async_nats::Message) -> bool {
    let header = berth::core::headers::ERROR;
    reply.headers.as_ref().is_some_and(|h| h.get(header).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_write_loses_no_acknowledged_write_and_tears_no_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = berth_tests::unique("crash");
    let manifest = dir.path().join("berth.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\ntransport = \"nats\"\ndata_dir = \"{data}\"\n\
             [transports.nats]\nurl = \"{nats}\"\n\
             [keyvalue.b]\n\
             [[components]]\nname = \"keeper\"\nwasm = \"{keeper}\"\nsubscribe = [\"{prefix}.>\"]\n\
             keyvalue = [\"b\"]\nmax_concurrency = {IN_FLIGHT}\ntimeout_ms = 10000\n\
             [components.config]\nprefix = \"{prefix}\"\n",
            data = dir.path().join("data").display(),
            nats = berth_tests::NATS,
            keeper = berth_tests::KEEPER,
        ),
    )
    .expect("write manifest");
    let host = Host::run(&manifest);
    host.wait_for("host started");

    let client = berth_tests::nats_client().await;
    let subject = format!("{prefix}.set");
    let writes = futures_util::stream::iter(0..WRITES)
        .map(|i| {
            let (client, subject) = (client.clone(), subject.clone());
            async move {
                let body = json!({"bucket": "b", "key": format!("k{i}"), "value": value(i)}).to_string();
                let request = client.request(subject, body.into());
                match tokio::time::timeout(Duration::from_secs(3), request).await {
                    Ok(Ok(reply)) if !is_error(&reply) => Some(i),
                    _ => None,
                }
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut acked = HashSet::new();
    let mut answered = 0;
    futures_util::pin_mut!(writes);
    while let Some(outcome) = writes.next().await {
        answered += 1;
        if let Some(i) = outcome {
            acked.insert(i);
            if acked.len() == KILL_AFTER {
                host.signal("-KILL");
            }
        }
    }
    assert_eq!(answered, WRITES);
    assert!(
        (KILL_AFTER..WRITES).contains(&acked.len()),
        "the host died mid-way: {} of {WRITES} writes acknowledged",
        acked.len()
    );
    drop(host);

    let store =
        EmbeddedStore::open(&dir.path().join("data").join(EMBEDDED_FILE)).expect("the file opens after the crash");
    let bucket = store.bucket("b");
    let mut stored = 0;
    for i in 0..WRITES {
        match bucket.get(&format!("k{i}")).await.expect("readable") {
            Some(v) => {
                assert_eq!(v, value(i).as_bytes(), "k{i} holds what was written, whole");
                stored += 1;
            }
            None => assert!(!acked.contains(&i), "k{i} was acknowledged but is gone"),
        }
    }
    assert!(stored >= acked.len(), "{stored} stored, {} acknowledged", acked.len());
}
