//! A newcomer's first steps, in each language: `berth new` makes a project,
//! `berth build` builds it with the pinned toolchain, `berth check`
//! accepts the component, and it serves its two routes as the template
//! says, from its own manifest.

mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth::manifest::Manifest;
use berth::transport::SubscribeOptions;
use berth::{CallError, ErrorKind, Message};
use process::BERTH;

fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(BERTH)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        // Rust projects share the guests' build folder and its compiled
        // dependencies (the template's release profile is the guests').
        .env("CARGO_TARGET_DIR", root().join("target/guests"))
        .output()
        .expect("run berth")
}

fn root() -> PathBuf {
    berth_tests::polyglot::root()
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `berth new` + `edit` + `berth build` + `berth check`; returns the project.
fn make(lang: &str, work: &Path, edit: impl FnOnce(&Path)) -> PathBuf {
    let name = format!("hello-{lang}");
    let made = berth(work, &["new", &name, "--lang", lang]);
    assert!(ok(&made, "berth new").contains(&format!("made {name}")));
    let project = work.join(&name);
    match lang {
        // The guests' lock: the same dependency versions, already built.
        "rust" => std::fs::copy(root().join("guests/Cargo.lock"), project.join("Cargo.lock")).map(drop),
        // The toolchain `scripts/test` installed, instead of `npm install`.
        "js" => std::os::unix::fs::symlink(
            root().join("guests/javascript/node_modules"),
            project.join("node_modules"),
        ),
        _ => Ok(()),
    }
    .expect("prepare the toolchain");
    edit(&project);
    let built = ok(&berth(&project, &["build"]), "berth build");
    assert!(built.starts_with(&format!("built {name} ({lang}")), "{built}");
    let wasm = format!("{name}.wasm");
    let mut check = vec!["check", wasm.as_str()];
    if lang == "python" {
        check.push("--link-unused-sockets");
    }
    ok(&berth(&project, &check), "berth check");
    project
}

/// The project serves what its template promises, from its own manifest.
async fn serves(project: &Path, name: &str) {
    let manifest = Manifest::read(&project.join("berth.toml")).expect("the project's manifest");
    let t = berth_tests::start_manifest(manifest).await.expect("start");
    let hello: serde_json::Value =
        serde_json::from_str(&t.ask(&format!("{name}.hello"), r#"{"name":"Ada"}"#).await).expect("JSON");
    assert_eq!(hello, serde_json::json!({ "message": "Hello, Ada!" }));
    let bad = t.request(&format!("{name}.hello"), "not json").await.expect("a reply");
    let e = CallError::from_reply(&bad).expect("an error");
    assert_eq!((e.kind, e.code), (ErrorKind::Handler, 400), "{e}");

    // The same request over the manifest's HTTP route.
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/hello"))
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .expect("POST /hello");
    assert_eq!(r.status(), 200);
    let hello: serde_json::Value = serde_json::from_str(&r.text().await.expect("body")).expect("JSON");
    assert_eq!(hello, serde_json::json!({ "message": "Hello, Ada!" }));
    let r = http.get(format!("{base}/hello")).send().await.expect("GET /hello");
    assert_eq!(r.status(), 405, "the route takes POST only");

    let transport = t.host.transport();
    let mut audit = transport
        .subscribe(SubscribeOptions {
            pattern: format!("audit.{name}"),
            capacity: 8,
            ..SubscribeOptions::default()
        })
        .await
        .expect("subscribe");
    transport
        .publish(Message::new(format!("{name}.note"), "noted"))
        .await
        .expect("publish");
    let passed = tokio::time::timeout(Duration::from_secs(5), audit.next())
        .await
        .expect("the event is passed on within 5 s")
        .expect("a message");
    assert_eq!(passed.message.body.as_ref(), b"noted");
}

async fn first_hour(lang: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let project = tokio::task::block_in_place(|| make(lang, work.path(), |_| {}));
    serves(&project, &format!("hello-{lang}")).await;
}

/// An app written before the helper layers exported `batch-handler` (no
/// `BatchHandler` line) builds for the world without it and serves.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_app_without_a_batch_handler_still_builds_and_serves() {
    let work = tempfile::tempdir().expect("tempdir");
    let project = tokio::task::block_in_place(|| {
        make("python", work.path(), |project| {
            let app = project.join("app.py");
            let text = std::fs::read_to_string(&app).expect("app.py");
            let older: String = text
                .lines()
                .filter(|l| !l.contains("BatchHandler"))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_ne!(older, text, "the template exports BatchHandler");
            std::fs::write(&app, older).expect("write app.py");
        })
    });
    serves(&project, "hello-python").await;
}

/// An app that exports a middleware is built for its world and stands in
/// front of a route: it answers a request with `x-answer` itself, refuses
/// one without a known token (401) and passes one with `t-ann` on, with
/// `x-user` set (the echo behind it shows the headers it got).
async fn middleware_builds_and_guards_a_route(lang: &str, app: &str, text: &str, answered: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let project = tokio::task::block_in_place(|| {
        make(lang, work.path(), |project| {
            std::fs::write(project.join(app), text).expect("write the app");
        })
    });
    let wasm = project.join(format!("hello-{lang}.wasm"));
    let manifest = format!(
        "[host]\nhttp = \"127.0.0.1:0\"\n\n[[http.routes]]\npath = \"/x\"\nsubject = \"x.get\"\nmiddleware = [\"mw\"]\n\n\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"x.get\"]\n\n\
         [[components]]\nname = \"mw\"\nwasm = \"{}\"\nmiddleware = true\nlink_unused_sockets = true\n",
        wasm.display()
    );
    let t = berth_tests::start(&manifest).await.expect("start");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let get = |headers: &[(&str, &str)]| {
        let request = headers
            .iter()
            .fold(reqwest::Client::new().get(format!("{base}/x")), |r, (k, v)| {
                r.header(*k, *v)
            });
        async move { request.send().await.expect("GET /x") }
    };
    let r = get(&[("x-answer", "42")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), answered);
    assert_eq!(get(&[]).await.status(), 401, "no token");
    let passed = get(&[("authorization", "Bearer t-ann")]).await;
    assert_eq!(passed.status(), 200);
    assert_eq!(
        passed.headers().get("x-user").and_then(|v| v.to_str().ok()),
        Some("ann")
    );
}

/// The link the helper-layer tests build, in Python.
const PY_MIDDLEWARE: &str = r#"
import berth
import berth_middleware

USERS = {"t-ann": "ann"}
router = berth.Router()


def gate(msg):
    answer = berth.header(msg, "x-answer")
    if answer is not None:
        return berth_middleware.respond(berth.reply(f"answered by python: {answer}".encode()))
    token = (berth.header(msg, "authorization") or "").removeprefix("Bearer ")
    if token not in USERS:
        raise berth.Error(401, "Unauthorized", "a known bearer token is required")
    return berth_middleware.pass_on([("x-user", USERS[token])], mark=berth_middleware.SESSION)


Handler = router.handler()
Routes = router.routes()
Middleware = berth_middleware.link(gate)
"#;

/// The same link in JavaScript.
const JS_MIDDLEWARE: &str = r#"
import { BerthError, Router, header, reply } from "./berth.js";
import { link, passOn, respond } from "./berth-middleware.js";

const USERS = { "t-ann": "ann" };
const router = new Router();

export const handler = router.handler();
export const routes = router.routes();
export const middleware = link((msg) => {
  const answer = header(msg, "x-answer");
  if (answer !== undefined) return respond(reply(`answered by javascript: ${answer}`));
  const token = (header(msg, "authorization") ?? "").replace(/^Bearer /, "");
  if (!(token in USERS)) throw new BerthError(401, "Unauthorized", "a known bearer token is required");
  return passOn([["x-user", USERS[token]]], "session");
});
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_python_middleware_builds_and_guards_a_route() {
    middleware_builds_and_guards_a_route("python", "app.py", PY_MIDDLEWARE, "answered by python: 42").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_middleware_builds_and_guards_a_route() {
    middleware_builds_and_guards_a_route("js", "app.js", JS_MIDDLEWARE, "answered by javascript: 42").await;
}

/// A link written against the bindings alone (no helper layer) builds for
/// `middleware-backend`.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_middleware_written_against_the_bindings_builds_too() {
    let app = include_str!("../../guests/python/middleware/app.py");
    middleware_builds_and_guards_a_route("python", "app.py", app, "answered by the python middleware: 42").await;
}

/// In C every component exports the middleware (`c-backend`); a link is
/// the one `berth_setup` registers.
#[tokio::test(flavor = "multi_thread")]
async fn a_c_middleware_builds_and_guards_a_route() {
    let app = include_str!("../../guests/c/middleware/app.c");
    middleware_builds_and_guards_a_route("c", "app.c", app, "answered by the c middleware: 42").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_project_builds_and_serves() {
    first_hour("rust").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_project_builds_and_serves() {
    first_hour("python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_project_builds_and_serves() {
    first_hour("js").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_c_project_builds_and_serves() {
    first_hour("c").await;
}

#[test]
fn new_refuses_a_bad_name_and_a_folder_in_use() {
    let work = tempfile::tempdir().expect("tempdir");
    let bad = berth(work.path(), &["new", "my.app"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.starts_with("berth: `my.app` cannot name a project"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err}");
    std::fs::create_dir(work.path().join("taken")).expect("mkdir");
    std::fs::write(work.path().join("taken/keep.txt"), "mine").expect("write");
    let taken = berth(work.path(), &["new", "taken", "--lang", "python"]);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists and is not empty"));
    assert_eq!(
        std::fs::read_to_string(work.path().join("taken/keep.txt")).expect("kept"),
        "mine"
    );
}

/// componentize-js says only "failed to parse JS source"; the build says
/// where and what.
#[test]
fn a_javascript_syntax_error_is_reported_with_its_line() {
    let work = tempfile::tempdir().expect("tempdir");
    ok(&berth(work.path(), &["new", "typo", "--lang", "js"]), "berth new");
    let project = work.path().join("typo");
    std::os::unix::fs::symlink(
        root().join("guests/javascript/node_modules"),
        project.join("node_modules"),
    )
    .expect("link the toolchain");
    let app = project.join("app.js");
    let mut text = std::fs::read_to_string(&app).expect("read app.js");
    let line = text.lines().count() + 1;
    text.push_str("const broken = (;\n");
    std::fs::write(&app, text).expect("write app.js");
    let build = berth(&project, &["build"]);
    let err = String::from_utf8_lossy(&build.stderr);
    assert!(!build.status.success(), "{err}");
    assert!(
        err.contains("app.js is not valid JavaScript")
            && err.contains(&format!("app.js:{line}"))
            && err.contains("SyntaxError"),
        "{err}"
    );
    // The same in a module of the project's that the app imports.
    std::fs::write(&app, "import { two } from \"./lib.js\";\nexport const handler = two;\n").expect("write app.js");
    std::fs::write(project.join("lib.js"), "export const two = 1 +;\n").expect("write lib.js");
    let build = berth(&project, &["build"]);
    let err = String::from_utf8_lossy(&build.stderr);
    assert!(
        err.contains("lib.js is not valid JavaScript") && err.contains("lib.js:1") && err.contains("SyntaxError"),
        "{err}"
    );
}

#[test]
fn build_and_run_say_what_to_do_when_something_is_missing() {
    let work = tempfile::tempdir().expect("tempdir");
    let run = berth(work.path(), &["run"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("there is no manifest berth.toml") && err.contains("berth new"),
        "{err}"
    );
    let made = berth(work.path(), &["new", "later", "--lang", "c"]);
    ok(&made, "berth new");
    // Not built yet: `berth run` says how to build it.
    let run = berth(&work.path().join("later"), &["run"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("does not exist yet: build it with `berth build`"), "{err}");
    // A toolchain that is missing: one line saying how to get it.
    let made = ok(&berth(work.path(), &["new", "nodeps", "--lang", "js"]), "berth new");
    assert!(made.contains("&& npm install && berth build"), "{made}");
    let build = berth(&work.path().join("nodeps"), &["build"]);
    let err = String::from_utf8_lossy(&build.stderr);
    let folder = work.path().join("nodeps");
    assert!(
        err.contains(&format!("componentize-js is not installed in {}", folder.display()))
            && err.contains("run `npm install` there"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("berth: ")).count(), 1, "{err}");
    // A language no file tells.
    std::fs::remove_file(work.path().join("later/app.c")).expect("rm");
    let build = berth(&work.path().join("later"), &["build"]);
    let err = String::from_utf8_lossy(&build.stderr);
    assert!(
        err.contains("cannot tell the language") && err.contains("lang = "),
        "{err}"
    );
}
