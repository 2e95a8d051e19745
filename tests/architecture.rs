//! docs/architecture.md stays true: every path it names exists, and every module of the
//! library is on it, so the map can neither point at a module that is gone nor miss a new one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("docs/architecture.md"))
        .expect("docs/architecture.md is readable")
}

/// The repository paths the page names: every code span that starts with a top-level
/// folder of the repository (`crates/…`, `api/`, `migrations/down/`, …).
fn named_paths(text: &str) -> BTreeSet<String> {
    const TOP: [&str; 6] = [
        "crates/",
        "api/",
        "migrations/",
        "public/",
        "tests/",
        "docs/",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| TOP.iter().any(|top| span.starts_with(top)))
        .map(str::to_string)
        .collect()
}

/// Every `.rs` file under `dir`, as paths relative to the repository.
fn rust_files(dir: &Path, found: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).expect("the library's folder is readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root()).expect("under the repository");
            found.push(relative.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn every_path_the_page_names_exists() {
    let named = named_paths(&architecture());
    assert!(
        named.len() >= 30,
        "the page names too few paths to be a map: {named:?}"
    );
    let missing: Vec<&String> = named
        .iter()
        .filter(|path| !root().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}

/// A module counts as on the page when the page names its file, or names its folder and
/// the rest of its path in the same line (`crates/…/web/` … `error.rs`).
#[test]
fn every_module_of_the_library_is_on_the_page() {
    let text = architecture();
    let named = named_paths(&text);
    let mut modules = Vec::new();
    rust_files(&root().join("crates/leaderboard/src"), &mut modules);
    assert!(modules.len() > 20, "the library has modules: {modules:?}");
    let on_the_page = |module: &str| {
        named.contains(module)
            || text.lines().any(|line| {
                named_paths(line).iter().any(|folder| {
                    folder.ends_with('/')
                        && module
                            .strip_prefix(folder.as_str())
                            .is_some_and(|rest| line.contains(&format!("`{rest}`")))
                })
            })
    };
    let absent: Vec<&String> = modules.iter().filter(|m| !on_the_page(m)).collect();
    assert!(
        absent.is_empty(),
        "modules missing from docs/architecture.md: {absent:?}"
    );
}
