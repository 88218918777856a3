//! `berth dev` on a project `berth new` made: it builds and serves; a
//! source change is rebuilt and swapped in; a build that fails leaves the
//! last version serving; a manifest change of config or subscriptions is
//! swapped in, a route added serves at once, one of `[host]` restarts the
//! host in the process; what the component publishes is printed.

mod process;

use std::path::Path;
use std::process::Command;

use process::{BERTH, Host, free_port};

fn berth(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BERTH)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn dev_builds_serves_and_follows_sources_and_manifest() {
    let work = tempfile::tempdir().expect("tempdir");
    berth(work.path(), &["new", "devc", "--lang", "c"]);
    let project = work.path().join("devc");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (manifest, source) = (project.join("berth.toml"), project.join("app.c"));
    edit(&manifest, "127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let dev = Host::spawn(Command::new(BERTH).current_dir(&project).arg("dev"));
    dev.wait_for("built devc (c,");
    dev.wait_for("serving 1 component(s)");
    let hello = || berth(&project, &["request", "devc.hello", r#"{"name":"Ada"}"#, "--url", &url]);
    assert_eq!(hello(), r#"{"message":"Hello, Ada!"}"#);

    edit(&source, r#"%s, %s!\""#, r#"%s, %s!!\""#);
    dev.wait_for("swapped devc");
    assert_eq!(hello(), r#"{"message":"Hello, Ada!!"}"#, "the new source serves");

    edit(
        &source,
        "return true;\n}\n\nstatic bool note",
        "return true\n}\n\nstatic bool note",
    );
    let failed = dev.lines_until("build failed: devc");
    assert!(
        failed.iter().any(|l| l.contains("error:")),
        "the compiler's error is shown: {failed:?}"
    );
    assert_eq!(hello(), r#"{"message":"Hello, Ada!!"}"#, "the last good version serves");
    edit(
        &source,
        "return true\n}\n\nstatic bool note",
        "return true;\n}\n\nstatic bool note",
    );
    let fixed = dev.line_with("devc: ");
    assert!(
        fixed.starts_with("unchanged devc") || fixed.starts_with("swapped devc"),
        "{fixed}"
    );

    edit(&manifest, r#"greeting = "Hello""#, r#"greeting = "Hi""#);
    dev.wait_for("swapped devc");
    assert_eq!(hello(), r#"{"message":"Hi, Ada!!"}"#, "the new config serves");

    berth(&project, &["publish", "devc.note", "noted", "--url", &url]);
    dev.wait_for("→ audit.devc: noted");

    edit(
        &manifest,
        r#"subscribe = ["devc.>"]"#,
        r#"subscribe = ["devc.hello", "devc.note"]"#,
    );
    dev.wait_for("swapped devc");
    assert_eq!(hello(), r#"{"message":"Hi, Ada!!"}"#, "subscriptions changed live");

    // A route added to the manifest serves at once, without a restart.
    let routed = || {
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", "--data", r#"{"name":"Cy"}"#, &format!("{url}/hi")])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(routed().contains("no route takes POST /hi"), "{}", routed());
    let mut text = std::fs::read_to_string(&manifest).expect("read");
    text.push_str("\n[[http.routes]]\npath = \"/hi\"\nmethods = [\"POST\"]\nsubject = \"devc.hello\"\n");
    std::fs::write(&manifest, text).expect("write");
    // The host says where the new route is, then dev that the routes changed.
    dev.wait_for(&format!("route POST {url}/hi → devc.hello"));
    dev.wait_for("routes changed: 2 route(s) serve");
    assert_eq!(routed(), r#"{"message":"Hi, Cy!!"}"#);

    edit(&manifest, "name = \"devc\"\nhttp", "name = \"devc2\"\nhttp");
    dev.wait_for("restarting the host: [host], [transports], [keyvalue] or [gateway] changed");
    dev.wait_for("serving 1 component(s)");
    assert_eq!(hello(), r#"{"message":"Hi, Ada!!"}"#, "serving after the restart");
    assert_eq!(
        routed(),
        r#"{"message":"Hi, Cy!!"}"#,
        "the route serves after the restart"
    );

    // A component added to the manifest is built, then the host restarts
    // with it.
    berth(&project, &["new", "second", "--lang", "c", "--dir", "second"]);
    let mut text = std::fs::read_to_string(&manifest).expect("read");
    text.push_str(
        "\n[[components]]\nname = \"second\"\nsource = \"second\"\nwasm = \"second.wasm\"\n\
         subscribe = [\"second.>\"]\npublish = [\"audit.second\"]\n",
    );
    std::fs::write(&manifest, text).expect("write");
    dev.wait_for("built second (c,");
    dev.wait_for("restarting the host: components were added");
    dev.wait_for("serving 2 component(s)");
    let second = berth(
        &project,
        &["request", "second.hello", r#"{"name":"Bo"}"#, "--url", &url],
    );
    assert_eq!(second, r#"{"message":"Hello, Bo!"}"#);
}
