//! A component of the standard `wasi:keyvalue/watch-service` world, with
//! nothing of Berth in it: told of each change to the buckets it watches,
//! it records it in the bucket `audit` (the key's new value, or `deleted`)
//! and counts the changes under `changes`.

#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "../../wit/deps/keyvalue",
    world: "watch-service",
    generate_all,
});

use exports::wasi::keyvalue::watcher::Guest;
use wasi::keyvalue::{atomics, store};

struct Watcher;

fn record(key: &str, value: &[u8]) {
    // A watcher has no way to fail a change; a failed write traps, so the
    // host retries the change.
    let audit = store::open("audit").expect("audit is granted");
    audit.set(key, value).expect("audit write");
    atomics::increment(&audit, "changes", 1).expect("audit count");
}

impl Guest for Watcher {
    fn on_set(_bucket: store::Bucket, key: String, value: Vec<u8>) {
        record(&key, &value);
    }

    fn on_delete(_bucket: store::Bucket, key: String) {
        record(&key, b"deleted");
    }
}

export!(Watcher);
