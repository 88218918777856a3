//! The documentation stays true: every manifest in it parses and validates
//! as `berth run` would, and every Rust example is a guest that the build
//! compiles (`guests/<name>`), word for word.

use std::path::Path;

use berth::manifest::Manifest;

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

/// The guest whose source is `code`, if any.
fn guest_with(code: &str) -> Option<String> {
    let guests = berth_tests::polyglot::root().join("guests");
    std::fs::read_dir(&guests).ok()?.flatten().find_map(|entry| {
        let source = std::fs::read_to_string(entry.path().join("src/lib.rs")).ok()?;
        source
            .ends_with(code)
            .then(|| entry.file_name().to_string_lossy().into_owned())
    })
}

#[test]
fn the_keyvalue_guide_is_true() {
    let doc = "docs/keyvalue.md";
    let blocks = blocks(&berth_tests::polyglot::root().join(doc));
    let mut checked = 0;
    for (lang, text) in &blocks {
        match lang.as_str() {
            "toml" => check_manifest(doc, text),
            "rust" => assert!(
                guest_with(text).is_some(),
                "{doc}: this Rust example is no guest's source; put it in guests/<name>/src/lib.rs:\n{text}"
            ),
            other => panic!("{doc}: a `{other}` block that no test checks"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "{doc}: every block checked");
}
