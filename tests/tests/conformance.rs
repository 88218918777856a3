//! The conformance suite (docs/conformance.md) against the guest written in
//! each language, on the in-memory transport with the embedded key-value
//! store and on NATS with NATS KV. The command's output and exit codes are
//! tested in host/tests/cli.rs.

use std::path::PathBuf;

use berth::cli::conformance::{Options, run};
use berth::manifest::{KvBackend, TransportKind};
use berth_tests::polyglot::{self, Language};
use tokio::sync::OnceCell;

/// Compiled components, shared by the tests in this binary: compiling a
/// Python or JavaScript component takes seconds.
fn cache_dir() -> PathBuf {
    polyglot::root().join("target/conformance-cache")
}

/// Every check of the contract; the part of it another host's world can
/// express (docs/conformance.md).
const ALL: usize = 24;
const FOREIGN: usize = 10;

async fn check(wasm: PathBuf, transport: TransportKind) {
    check_counted(wasm, transport, ALL).await;
}

async fn check_counted(wasm: PathBuf, transport: TransportKind, checks: usize) {
    let options = Options {
        wasm: wasm.clone(),
        transport,
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        data_dir: cache_dir(),
        keyvalue: match transport {
            TransportKind::Nats => KvBackend::Nats,
            _ => KvBackend::Embedded,
        },
    };
    let outcomes = match run(&options).await {
        Ok(o) => o,
        Err(e) if transport == TransportKind::Nats => {
            panic!("{e:#}\n(is nats-server running on 127.0.0.1:4222? start it with: nats-server -a 127.0.0.1 -js)")
        }
        Err(e) => panic!("{e:#}"),
    };
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|why| format!("{}: {why}", o.name)))
        .collect();
    assert_eq!(outcomes.len(), checks, "every check that applies ran");
    assert!(
        failures.is_empty(),
        "{} on {transport}:\n{}",
        wasm.display(),
        failures.join("\n")
    );
}

async fn built(language: Language) -> PathBuf {
    static PYTHON: OnceCell<PathBuf> = OnceCell::const_new();
    static JAVASCRIPT: OnceCell<PathBuf> = OnceCell::const_new();
    static C: OnceCell<PathBuf> = OnceCell::const_new();
    let cell = match language {
        Language::Python => &PYTHON,
        Language::JavaScript => &JAVASCRIPT,
        Language::C => &C,
    };
    cell.get_or_init(|| async move {
        tokio::task::spawn_blocking(move || polyglot::build(language, "conformance"))
            .await
            .expect("build task")
            .unwrap_or_else(|e| panic!("building the {language:?} conformance guest: {e:#}"))
    })
    .await
    .clone()
}

macro_rules! conformance {
    ($($name:ident: $guest:expr, $transport:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check($guest, $transport).await;
        }
    )*};
}

conformance! {
    rust_on_memory: PathBuf::from(berth_tests::CONFORMANCE), TransportKind::Memory;
    rust_on_nats: PathBuf::from(berth_tests::CONFORMANCE), TransportKind::Nats;
    python_on_memory: built(Language::Python).await, TransportKind::Memory;
    python_on_nats: built(Language::Python).await, TransportKind::Nats;
    javascript_on_memory: built(Language::JavaScript).await, TransportKind::Memory;
    javascript_on_nats: built(Language::JavaScript).await, TransportKind::Nats;
    c_on_memory: built(Language::C).await, TransportKind::Memory;
    c_on_nats: built(Language::C).await, TransportKind::Nats;
}

/// Components written for another host's messaging world keep the part of
/// the contract their world can express.
macro_rules! foreign_conformance {
    ($($name:ident: $guest:expr, $transport:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check_counted(PathBuf::from($guest), $transport, FOREIGN).await;
        }
    )*};
}

/// The Python guests of other hosts' worlds, each written against that
/// world's WIT alone: `wasmcloud` (wasmCloud's messaging) and `messaging`
/// (the WASI messaging proposal).
async fn python_foreign(name: &'static str) -> PathBuf {
    static WASMCLOUD: OnceCell<PathBuf> = OnceCell::const_new();
    static MESSAGING: OnceCell<PathBuf> = OnceCell::const_new();
    let (cell, wit) = match name {
        "wasmcloud" => (&WASMCLOUD, "guests/wasmcloud-echo/wit"),
        _ => (&MESSAGING, "guests/messaging-echo/wit"),
    };
    cell.get_or_init(|| async move {
        tokio::task::spawn_blocking(move || polyglot::build_for(Language::Python, name, wit, "echo"))
            .await
            .expect("build task")
            .unwrap_or_else(|e| panic!("building the Python {name} guest: {e:#}"))
    })
    .await
    .clone()
}

foreign_conformance! {
    python_wasmcloud_on_memory: python_foreign("wasmcloud").await, TransportKind::Memory;
    python_wasmcloud_on_nats: python_foreign("wasmcloud").await, TransportKind::Nats;
    python_wasi_messaging_on_memory: python_foreign("messaging").await, TransportKind::Memory;
    python_wasi_messaging_on_nats: python_foreign("messaging").await, TransportKind::Nats;
    wasmcloud_on_memory: berth_tests::WASMCLOUD_ECHO, TransportKind::Memory;
    wasmcloud_on_nats: berth_tests::WASMCLOUD_ECHO, TransportKind::Nats;
    wasi_messaging_on_memory: berth_tests::MESSAGING_ECHO, TransportKind::Memory;
    wasi_messaging_on_nats: berth_tests::MESSAGING_ECHO, TransportKind::Nats;
}
