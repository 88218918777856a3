//! `berth new NAME --lang L`: a project that `berth build` builds, `berth
//! check` accepts and `berth dev` runs as it is — a manifest, a source with
//! one request and one event route, what its toolchain needs, and a short
//! README. The templates are in `host/templates`, built into the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::home;
use crate::manifest::Lang;

const MANIFEST: &str = include_str!("../../templates/berth.toml");
const README: &str = include_str!("../../templates/README.md");

/// The contract, for the languages whose toolchains read WIT: a project
/// carries its own copy, so it builds wherever it is moved.
const WIT: [(&str, &str); 6] = [
    ("wit/backend.wit", include_str!("../../../wit/backend.wit")),
    (
        "wit/deps/keyvalue/atomic.wit",
        include_str!("../../../wit/deps/keyvalue/atomic.wit"),
    ),
    (
        "wit/deps/keyvalue/batch.wit",
        include_str!("../../../wit/deps/keyvalue/batch.wit"),
    ),
    (
        "wit/deps/keyvalue/store.wit",
        include_str!("../../../wit/deps/keyvalue/store.wit"),
    ),
    (
        "wit/deps/keyvalue/watch.wit",
        include_str!("../../../wit/deps/keyvalue/watch.wit"),
    ),
    (
        "wit/deps/keyvalue/world.wit",
        include_str!("../../../wit/deps/keyvalue/world.wit"),
    ),
];

/// The SDK files a project gets a copy of.
const SDK_FILES: [&str; 10] = [
    "berth.py",
    "berth_kv.py",
    "berth_batch.py",
    "berth_gateway.py",
    "berth_middleware.py",
    "berth.js",
    "berth-kv.js",
    "berth-batch.js",
    "berth-gateway.js",
    "berth-middleware.js",
];

/// A language's own files: (path in the project, template).
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
            (".gitignore", "/target\n/data\n*.wasm\n"),
        ],
        Lang::Python => vec![
            ("app.py", include_str!("../../templates/python/app.py")),
            ("berth.py", include_str!("../../../guest-sdk/python/berth.py")),
            ("berth_kv.py", include_str!("../../../guest-sdk/python/berth_kv.py")),
            (
                "berth_batch.py",
                include_str!("../../../guest-sdk/python/berth_batch.py"),
            ),
            (
                "berth_gateway.py",
                include_str!("../../../guest-sdk/python/berth_gateway.py"),
            ),
            (
                "berth_middleware.py",
                include_str!("../../../guest-sdk/python/berth_middleware.py"),
            ),
            (".gitignore", "__pycache__/\n/data\n*.wasm\n"),
        ],
        Lang::Js => vec![
            ("app.js", include_str!("../../templates/javascript/app.js")),
            ("package.json", include_str!("../../templates/javascript/package.json")),
            ("berth.js", include_str!("../../../guest-sdk/javascript/berth.js")),
            ("berth-kv.js", include_str!("../../../guest-sdk/javascript/berth-kv.js")),
            (
                "berth-batch.js",
                include_str!("../../../guest-sdk/javascript/berth-batch.js"),
            ),
            (
                "berth-gateway.js",
                include_str!("../../../guest-sdk/javascript/berth-gateway.js"),
            ),
            (
                "berth-middleware.js",
                include_str!("../../../guest-sdk/javascript/berth-middleware.js"),
            ),
            (".gitignore", "node_modules/\n/data\n*.wasm\n"),
        ],
        Lang::C => vec![
            ("app.c", include_str!("../../templates/c/app.c")),
            (".gitignore", "/data\n*.wasm\n"),
        ],
    };
    if lang != Lang::Rust {
        files.extend(WIT);
    }
    files
}

/// Where Berth's repository tells of the language, for the project's README.
fn guide(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "`README.md`, \"Writing a guest (Rust)\"",
        Lang::Python => "`docs/python.md`",
        Lang::Js => "`docs/javascript.md`",
        Lang::C => "`docs/c.md`",
    }
}

/// What a project needs besides `berth`, for its README.
fn toolchain(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "needs `rustup target add wasm32-wasip2`",
        Lang::Python => "needs `pip install componentize-py==0.25.1`",
        Lang::Js => "needs `npm install` here first",
        Lang::C => "needs `apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32`",
    }
}

/// Every file of the project `name` in `lang`, rendered: (path, text).
/// The Rust project depends on the SDK at `sdk`.
pub fn render(name: &str, lang: Lang, sdk: &Path) -> Vec<(String, String)> {
    let extra = match lang {
        // componentize-py's runtime imports wasi:sockets, unused.
        Lang::Python => "# Python's runtime imports sockets it never opens.\nlink_unused_sockets = true\n",
        _ => "",
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{lang}}", lang_title(lang))
            .replace("{{toolchain}}", toolchain(lang))
            .replace("{{guide}}", guide(lang))
            .replace("{{extra}}", extra)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    [("berth.toml", MANIFEST), ("README.md", README)]
        .into_iter()
        .chain(files(lang))
        .map(|(path, text)| {
            // The SDK and the WIT are copies: their braces are not ours.
            let copied = path.starts_with("wit/") || SDK_FILES.contains(&path);
            let text = if copied { text.to_owned() } else { fill(text) };
            (path.to_owned(), text)
        })
        .collect()
}

fn lang_title(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
        Lang::C => "C",
    }
}

/// Writes the project `name` into `dir` (default `./NAME`), which must not
/// exist or be empty; returns the folder.
pub fn create(name: &str, lang: Lang, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<PathBuf> {
    ensure!(
        crate::manifest::is_name(name),
        "`{name}` cannot name a project: use letters, digits, `-` and `_` (it names the component and its subjects)"
    );
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if let Ok(mut entries) = std::fs::read_dir(&dir) {
        ensure!(
            entries.next().is_none(),
            "{} exists and is not empty: choose another name or --dir",
            dir.display()
        );
    }
    let sdk = match (lang, sdk) {
        (Lang::Rust, Some(sdk)) => sdk,
        (Lang::Rust, None) => home::rust_sdk()?,
        (_, _) => PathBuf::new(),
    };
    if lang == Lang::Rust && !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{} is not the berth-sdk crate: pass --sdk with the guest-sdk folder of a Berth checkout",
            sdk.display()
        );
    }
    for (path, text) in render(name, lang, &sdk) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}
