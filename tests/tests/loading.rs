//! Bad input at load time: each fails with an error naming what is wrong
//! and where, and never panics. With `[host] strict` a component that
//! does not load stops the start; without it the component is reported as
//! failed and the others serve.

use std::io::Write;

use berth::manifest::Manifest;
use berth_tests::{PROBE, start};

fn text_of(err: anyhow::Error) -> String {
    format!("{err:#}")
}

/// Writes `bytes` to a temp file and returns a manifest running it.
fn manifest_for(bytes: &[u8]) -> (tempfile::NamedTempFile, String) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(bytes).expect("write");
    let text = format!(
        "[host]\nstrict = true\n[[components]]\nname = \"bad\"\nwasm = \"{}\"\nsubscribe = [\"bad.>\"]\n",
        file.path().display()
    );
    (file, text)
}

async fn start_error(bytes: &[u8]) -> String {
    let (_file, text) = manifest_for(bytes);
    text_of(start(&text).await.err().expect("the host refuses to start"))
}

#[tokio::test]
async fn unknown_key_is_named_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("berth.toml");
    std::fs::write(
        &path,
        "[host]\nname = \"x\"\n\n[[components]]\nname = \"a\"\nwasm = \"a.wasm\"\nsubscibe = [\"a\"]\n",
    )
    .expect("write");
    let text = text_of(Manifest::load(&path).expect_err("typo"));
    assert!(text.contains("subscibe"), "{text}");
    assert!(text.contains("line 7"), "{text}");
    assert!(text.contains(&path.display().to_string()), "names the file: {text}");
}

#[tokio::test]
async fn missing_manifest_and_missing_wasm_are_named() {
    let text = text_of(Manifest::load(std::path::Path::new("/nonexistent/berth.toml")).expect_err("missing"));
    assert!(text.contains("/nonexistent/berth.toml"), "{text}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("berth.toml");
    std::fs::write(&path, "[[components]]\nname = \"ghost\"\nwasm = \"ghost.wasm\"\n").expect("write");
    let text = text_of(Manifest::load(&path).expect_err("missing wasm"));
    assert!(
        text.contains("component `ghost`") && text.contains("ghost.wasm") && text.contains("does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn random_bytes_are_not_a_component() {
    let text = start_error(b"\x00asm but not really, just some random bytes").await;
    assert!(
        text.contains("component `bad`") && text.contains("not a valid wasm component"),
        "{text}"
    );
}

#[tokio::test]
async fn truncated_component_is_refused() {
    let bytes = std::fs::read(PROBE).expect("probe.wasm");
    let text = start_error(&bytes[..bytes.len() / 2]).await;
    assert!(text.contains("not a valid wasm component"), "{text}");
}

#[tokio::test]
async fn core_module_is_not_a_component() {
    let module = wat::parse_str("(module (func (export \"run\")))").expect("wat");
    let text = start_error(&module).await;
    assert!(text.contains("not a valid wasm component"), "{text}");
    assert!(text.contains("a core WebAssembly module, not a component"), "{text}");
}

#[tokio::test]
async fn component_without_the_handler_export_does_not_fit() {
    let component = wat::parse_str("(component)").expect("wat");
    let text = start_error(&component).await;
    assert!(text.contains("does not fit the berth:backend contract"), "{text}");
    assert!(
        text.contains("berth:backend/handler"),
        "names the missing export: {text}"
    );
}

/// The host checks the handler's types in a component's first instance
/// and calls its later instances without checking again, so one whose
/// functions have other types must be refused before any call.
#[tokio::test]
async fn a_handler_export_of_other_types_is_refused_at_load() {
    let component = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $h
                (export "init" (func $f))
                (export "handle-request" (func $f))
                (export "handle-event" (func $f)))
            (export "berth:backend/handler@0.1.0" (instance $h)))"#,
    )
    .expect("wat");
    let text = start_error(&component).await;
    assert!(
        text.contains("its `berth:backend/handler@0.1.0` export does not match the berth:backend contract"),
        "{text}"
    );
}

#[tokio::test]
async fn component_importing_an_unknown_interface_names_the_import() {
    let component =
        wat::parse_str(r#"(component (import "acme:evil/backdoor" (instance (export "open" (func)))))"#).expect("wat");
    let text = start_error(&component).await;
    assert!(
        text.contains("cannot link") && text.contains("acme:evil/backdoor"),
        "{text}"
    );
}

/// A component importing one function of `interface`, as a toolchain would.
fn importing(interface: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component (import "{interface}" (instance (export "f" (func)))))"#
    ))
    .expect("wat")
}

#[tokio::test]
async fn component_importing_sockets_is_refused_unless_allowed() {
    let text = start_error(&importing("wasi:sockets/tcp@0.2.6")).await;
    assert!(
        text.contains("refused") && text.contains("wasi:sockets/tcp@0.2.6"),
        "{text}"
    );
    assert!(text.contains("link_unused_sockets"), "says what to do: {text}");

    // Allowed, it gets past the socket check (and is then judged like any
    // other component: this one does not export the handler).
    let (_file, manifest) = manifest_for(&importing("wasi:sockets/tcp@0.2.6"));
    let text = text_of(
        start(&format!("{manifest}link_unused_sockets = true\n"))
            .await
            .err()
            .expect("refused"),
    );
    assert!(!text.contains("refused:"), "{text}");
}

#[tokio::test]
async fn component_importing_wasi_http_is_refused_naming_it() {
    let text = start_error(&importing("wasi:http/outgoing-handler@0.2.6")).await;
    assert!(
        text.contains("cannot link") && text.contains("wasi:http/outgoing-handler@0.2.6"),
        "{text}"
    );
}

#[tokio::test]
async fn check_reports_what_is_wrong() {
    let runtime = berth::runtime::Runtime::new(berth::runtime::CompileCache::disabled(), false).expect("runtime");
    let good = runtime.inspect(&std::fs::read(PROBE).expect("probe.wasm"), false);
    assert!(good.fits(), "{good}");
    assert!(
        good.exports.iter().any(|e| e == "berth:backend/handler@0.1.0"),
        "{good}"
    );
    let bad = runtime.inspect(&wat::parse_str("(component)").expect("wat"), false);
    assert!(!bad.fits());
    assert!(bad.to_string().contains("problem:"), "{bad}");
}

#[tokio::test]
async fn instance_and_table_limits_are_per_component() {
    let text = |n: u32| {
        format!(
            "[host]\nstrict = true\n[[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\nmax_instances = {n}\nmax_tables = {n}\n"
        )
    };
    let t = start(&text(50)).await.expect("the default fits echo");
    assert_eq!(t.ask("echo.x", "fits").await, "fits");
    let err = match start(&text(1)).await {
        Ok(_) => panic!("echo needs more than one core instance"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("component `echo`") && (err.contains("instance") || err.contains("table")),
        "{err}"
    );
    let err = berth_tests::manifest(&text(1000))
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        err.contains("max_instances = 1000") && err.contains("must be between 1 and 100"),
        "{err}"
    );
}

#[tokio::test]
async fn a_data_dir_the_host_cannot_write_stops_the_start() {
    let file = tempfile::NamedTempFile::new().expect("file");
    let (mut manifest, _dir) =
        berth_tests::manifest("[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\n")
            .expect("manifest");
    // A file where the folder should be: no compile cache, no component
    // folders could be made in it.
    manifest.host.data_dir = file.path().to_path_buf();
    let err = match berth::Host::start(&manifest).await {
        Ok(_) => panic!("a host must not start without a writable DATA_DIR"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("DATA_DIR") && err.contains("is not a folder this host can write to"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_that_does_not_load_is_reported_and_the_others_serve() {
    let (_file, bad) = manifest_for(b"\x00asm but not really");
    let bad = bad.replace("[host]\nstrict = true\n", "");
    let text = format!(
        "[host]\nname = \"tenants\"\nhttp = \"127.0.0.1:0\"\n\
         [[http.routes]]\npath = \"/guarded\"\nsubject = \"echo.x\"\nmiddleware = [\"bad\"]\n\
         {bad}middleware = true\n\n[[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n\
         [[components]]\nname = \"behind\"\nwasm = \"{{echo}}\"\nsubscribe = [{{ subject = \"behind.>\", middleware = [\"bad\"] }}]\n"
    );
    let t = start(&text).await.expect("the good tenant serves");
    assert_eq!(t.ask("echo.x", "still here").await, "still here");

    let app = t.host.app();
    let (healthy, health) = app.health();
    assert!(healthy, "a component serves: {health}");
    let state = |name: &str| {
        health["components"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .map(|c| c["state"].clone())
            .unwrap_or_default()
    };
    assert_eq!(state("bad")["state"], "failed", "{health}");
    let reason = state("bad")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("not a valid wasm component"), "{reason}");
    // A component behind the failed one as middleware does not serve
    // without it.
    assert_eq!(state("behind")["state"], "failed", "{health}");
    assert!(
        state("behind")["reason"]
            .as_str()
            .is_some_and(|r| r.contains("middleware `bad`"))
    );
    assert_eq!(state("echo")["state"], "serving", "{health}");

    let (url, _stop) = t.serve_http("127.0.0.1:0").await;
    let metrics = berth_tests::scrape_metrics(&url).await;
    assert!(
        metrics.contains(r#"berth_component_failed{service="tenants",component="bad"} 1"#),
        "{metrics}"
    );
    // A route behind it answers 503, saying why.
    let guarded = reqwest::get(format!("{url}/guarded")).await.expect("route");
    assert_eq!(guarded.status(), 503);
    let body = guarded.text().await.expect("body");
    assert!(body.contains("component `bad` failed to load"), "{body}");
    let swap = berth::app::SwapRequest {
        wasm: std::fs::read(berth_tests::ECHO).expect("echo").into(),
        label: None,
        config: None,
        component: None,
    };
    let refused = app.swap("bad", swap).await.expect_err("not running");
    assert_eq!(refused.code(), 409, "{refused}");
    assert!(refused.to_string().contains("restart the host"), "{refused}");

    // `strict` keeps the fail-fast start.
    let strict = text.replace("[host]\n", "[host]\nstrict = true\n");
    let err = format!("{:#}", start(&strict).await.err().expect("strict refuses"));
    assert!(
        err.contains("strict") && err.contains("not a valid wasm component"),
        "{err}"
    );
}

#[tokio::test]
async fn a_host_whose_every_component_failed_is_unhealthy() {
    let (_file, bad) = manifest_for(b"not wasm");
    let t = start(&bad.replace("[host]\nstrict = true\n", ""))
        .await
        .expect("starts");
    let (healthy, health) = t.host.app().health();
    assert!(!healthy, "nothing serves: {health}");
}
