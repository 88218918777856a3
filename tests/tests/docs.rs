//! The documentation stays true: every code block of the README and of
//! docs/ is checked by what it is.
//!
//! - Manifests parse and validate as `berth run` would.
//! - Sources are, word for word, a guest that the build compiles
//!   (`guests/…`) or a file `berth new hello` writes (which
//!   `host/tests/new.rs` builds and serves in every language).
//! - WIT is part of the contract in `wit/`.
//! - Shell lines: `berth` command lines parse as the binary parses them;
//!   scripts exist; install commands are the ones `scripts/test` runs;
//!   `curl` against the quickstart is run, and its output is the one shown.
//! - `text` blocks: the command-line synopsis names real commands and
//!   flags, the layout real folders, the frame grammar the frame codec's
//!   tags.

use std::path::{Path, PathBuf};

use berth::cli::Cli;
use berth::manifest::{Lang, Manifest};
use clap::{CommandFactory, Parser};

fn root() -> PathBuf {
    berth_tests::polyglot::root()
}

/// The fenced blocks of a Markdown file: (language, text).
fn blocks(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{}: a code block is not closed", path.display());
    out
}

/// Every Markdown file the checks cover.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

/// Parses and validates a manifest from the docs, with every `wasm` a
/// built guest (the docs name files the reader builds).
fn check_manifest(doc: &str, text: &str) {
    let text: String = text
        .lines()
        .map(|l| match l.trim_start().starts_with("wasm =") {
            true => format!("wasm = \"{}\"", berth_tests::KEEPER),
            false => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut manifest =
        Manifest::parse(&text).unwrap_or_else(|e| panic!("{doc}: a manifest does not parse: {e:#}\n{text}"));
    manifest.resolve_paths(Path::new("."));
    manifest
        .validate()
        .unwrap_or_else(|e| panic!("{doc}: a manifest does not validate: {e:#}\n{text}"));
}

/// Whether `code` is a guest's source or a file of the project `berth new
/// hello` makes.
fn is_built_source(code: &str) -> bool {
    let templated = Lang::ALL
        .iter()
        .flat_map(|lang| berth::cli::new::render("hello", *lang, Path::new("")))
        .any(|(_, text)| text == code);
    templated || guest_files(&root().join("guests")).iter().any(|f| f.ends_with(code))
}

/// The sources of every guest: `src/lib.rs` and `app.*`, at any depth.
fn guest_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && !matches!(name.as_str(), "node_modules" | "target") {
            out.extend(guest_files(&path));
        } else if name == "lib.rs" || name.starts_with("app.") {
            out.extend(std::fs::read_to_string(&path).ok());
        }
    }
    out
}

fn check_wit(doc: &str, code: &str) {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let wit = std::fs::read_to_string(root().join("wit/backend.wit")).expect("wit/backend.wit");
    assert!(
        squash(&wit).contains(&squash(code)),
        "{doc}: this WIT is not in wit/backend.wit:\n{code}"
    );
}

/// Each command of a shell block, continuation lines joined and comments
/// (and `$ ` prompts) left out.
fn commands(code: &str) -> Vec<String> {
    let joined = code.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .flat_map(|l| l.split("&&").map(|c| c.trim().to_owned()).collect::<Vec<_>>())
        .collect()
}

fn check_shell(doc: &str, code: &str) {
    let script_test = std::fs::read_to_string(root().join("scripts/test")).expect("scripts/test");
    for command in commands(code) {
        let words = shlex::split(&command).unwrap_or_else(|| panic!("{doc}: cannot split `{command}`"));
        match words[0].as_str() {
            "berth" => {
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{doc}: `{command}` is not a berth command line:\n{e}");
                }
            }
            "berth-cc" => {
                let main = std::fs::read_to_string(root().join("guest-sdk/c/berth-cc/src/main.rs")).expect("main.rs");
                for flag in words.iter().filter_map(|w| w.strip_prefix("--")) {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    assert!(main.contains(flag), "{doc}: berth-cc has no --{flag}");
                }
            }
            script if script.starts_with("scripts/") => {
                let path = root().join(script);
                let meta = std::fs::metadata(&path).unwrap_or_else(|_| panic!("{doc}: no {script}"));
                assert!(
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
                    "{doc}: {script} is not executable"
                );
            }
            "pip" | "npm" | "apt-get" | "rustup" if words.iter().any(|w| w == "install" || w == "add") => {
                for package in words.iter().skip(2).filter(|w| !w.starts_with('-')) {
                    assert!(
                        script_test.contains(package.as_str()),
                        "{doc}: `{command}` installs {package}, which scripts/test does not"
                    );
                }
            }
            "cargo" => {
                if let Some(i) = words.iter().position(|w| w == "-p") {
                    let package = &words[i + 1];
                    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
                    assert!(
                        manifest.contains(package.trim_start_matches("berth-").trim_start_matches("berth"))
                            || package == "berth",
                        "{doc}: no workspace package {package}"
                    );
                }
            }
            "docker" => assert!(root().join("Dockerfile").is_file(), "{doc}: no Dockerfile"),
            "cd" | "mkdir" | "cp" => {}
            "curl" => {} // run by `the_quickstart_answers_as_shown`
            other => panic!("{doc}: `{other}` in a shell block, which no test checks: {command}"),
        }
    }
}

fn check_text(doc: &str, code: &str) {
    let first = code.trim_start();
    if first.starts_with("berth ") {
        let cli = Cli::command();
        for line in code.lines().filter(|l| l.starts_with("berth ")) {
            let name = line.split_whitespace().nth(1).unwrap_or("");
            let sub = cli
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{doc}: `berth {name}` is no command"));
            for flag in line
                .split_whitespace()
                .filter_map(|w| w.trim_start_matches('[').strip_prefix("--"))
            {
                let flag = flag.trim_end_matches(']').split(['=', ' ']).next().unwrap_or("");
                assert!(
                    sub.get_arguments().any(|a| a.get_long() == Some(flag)),
                    "{doc}: `berth {name}` has no --{flag}"
                );
            }
        }
    } else if first.contains(" = ") && first.contains("batch") {
        let codec = std::fs::read_to_string(root().join("guest-sdk/frames/src/lib.rs")).expect("frames");
        for tag in ["b'B'", "b'O'"] {
            assert!(codec.contains(tag), "{doc}: the frame codec has no {tag} tag");
        }
    } else {
        for folder in code
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.ends_with('/'))
        {
            assert!(
                root().join(folder).is_dir(),
                "{doc}: the layout names {folder}, which is not there"
            );
        }
    }
}

#[test]
fn every_code_block_is_checked() {
    let mut checked = 0;
    for path in documents() {
        let doc = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        for (lang, code) in blocks(&path) {
            match lang.as_str() {
                "toml" => check_manifest(&doc, &code),
                "rust" | "python" | "js" | "c" => assert!(
                    is_built_source(&code),
                    "{doc}: this {lang} is neither a guest's source nor a file `berth new` writes:\n{code}"
                ),
                "wit" => check_wit(&doc, &code),
                "sh" => check_shell(&doc, &code),
                "text" => check_text(&doc, &code),
                other => panic!("{doc}: a `{other}` block, which no test checks (tag it sh, toml, text, ...)"),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} blocks found: is the block reader broken?"
    );
}

/// The README's first `curl`, run against the quickstart's manifest, prints
/// what the README says it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_answers_as_shown() {
    let readme = blocks(&root().join("README.md"));
    let (command, shown) = readme
        .iter()
        .filter(|(lang, _)| lang == "sh")
        .find_map(|(_, code)| {
            let mut lines = code.lines();
            let curl = lines.find(|l| l.starts_with("curl "))?;
            let shown = lines.next()?.strip_prefix("# ")?;
            Some((curl.to_owned(), shown.to_owned()))
        })
        .expect("the README shows a curl and its answer");
    let manifest = Manifest::read(&root().join("berth.toml")).expect("berth.toml");
    let t = berth_tests::start_manifest(manifest)
        .await
        .expect("start the quickstart");
    let (url, _stop) = t.serve_http("127.0.0.1:0").await;
    let command = command.replace("127.0.0.1:8080", url.trim_start_matches("http://"));
    let words = shlex::split(&command).expect("words");
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(&words[0]).args(&words[1..]).output())
        .await
        .expect("joined")
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown, "{command}");
}
