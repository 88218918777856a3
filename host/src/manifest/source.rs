//! Where a component's sources are and what they are written in, for
//! `berth build`, `berth dev` and `berth new`.

use std::path::Path;

use serde::Deserialize;

/// A language Berth builds components from, with its pinned toolchain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// cargo and the `wasm32-wasip2` target, with `berth-sdk`.
    Rust,
    /// componentize-py, with `berth.py`.
    Python,
    /// componentize-js, with `berth.js`.
    #[serde(alias = "javascript")]
    #[value(alias = "javascript")]
    Js,
    /// clang and wasi-libc through berth-cc, with `berth.h`.
    C,
}

impl Lang {
    /// Every language, in the order `berth new --help` lists them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// Its name in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// The language of the sources in `dir`, told by the file that starts
    /// a project in it: `Cargo.toml`, `app.py`, `package.json` or `app.js`,
    /// any `.c` file. `None` if nothing there says.
    pub fn infer(dir: &Path) -> Option<Lang> {
        let has = |file: &str| dir.join(file).is_file();
        if has("Cargo.toml") {
            Some(Lang::Rust)
        } else if has("app.py") {
            Some(Lang::Python)
        } else if has("package.json") || has("app.js") {
            Some(Lang::Js)
        } else {
            let mut entries = std::fs::read_dir(dir).ok()?;
            entries
                .any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "c")))
                .then_some(Lang::C)
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_told_by_the_project_s_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Lang::infer(dir.path()), None);
        std::fs::write(dir.path().join("main.c"), "").expect("write");
        assert_eq!(Lang::infer(dir.path()), Some(Lang::C));
        std::fs::write(dir.path().join("app.py"), "").expect("write");
        assert_eq!(Lang::infer(dir.path()), Some(Lang::Python));
        std::fs::write(dir.path().join("Cargo.toml"), "").expect("write");
        assert_eq!(Lang::infer(dir.path()), Some(Lang::Rust));
    }
}
