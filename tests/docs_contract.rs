//! The documentation against itself and against docs/openapi.json, without a database:
//! docs/api.md and the OpenAPI document list the same routes and, per route, the same
//! query parameters; api.md's configuration table lists the variables of .env.example;
//! the README stays short and keeps its two commands; every relative link of the README
//! and of docs/ leads to a file (and heading) of the repository; and no file of the
//! repository points at the team's folders outside it.
//!
//! api.md's conventions, which the parser below relies on: a route is a heading
//! `### <METHOD> /api/<name>` (its section ends at the next heading of level 1 to 3), and its
//! query parameters are the rows `` | `name` | `` of the table under its
//! `#### Query parameters` heading (which ends at the next heading of any level).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most lines the README may have: a newcomer reads it in five minutes.
const README_MAX_LINES: usize = 150;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `"GET /api/regions"` → the query parameters the section lists (`None`: the section has
/// no `#### Query parameters` heading).
type Routes = BTreeMap<String, Option<BTreeSet<String>>>;

/// The level of a Markdown heading line (`## x` → 2), outside code blocks.
fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
}

/// The name in a table row `` | `name` | … ``.
fn row_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("| `")?;
    let (name, _) = rest.split_once("` |")?;
    Some(name)
}

/// The routes of api.md and the query parameters of each (see the module documentation).
fn api_md_routes(text: &str) -> Routes {
    let mut routes = Routes::new();
    let mut route: Option<String> = None;
    let mut in_parameters = false;
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(level) = heading_level(line) {
            let title = line[level..].trim();
            in_parameters = false;
            if level <= 3 {
                route = None;
            }
            if level == 3 {
                if let Some((method, path)) = title.split_once(' ') {
                    let is_method = !method.is_empty()
                        && method.bytes().all(|b| b.is_ascii_uppercase())
                        && path.starts_with("/api/");
                    if is_method {
                        let key = format!("{method} {path}");
                        assert!(
                            routes.insert(key.clone(), None).is_none(),
                            "docs/api.md lists {key} twice"
                        );
                        route = Some(key);
                    }
                }
            }
            if level == 4 && title == "Query parameters" {
                if let Some(route) = &route {
                    let slot = routes.get_mut(route).expect("the route was inserted");
                    assert!(
                        slot.is_none(),
                        "docs/api.md: {route} has two Query parameters headings"
                    );
                    *slot = Some(BTreeSet::new());
                    in_parameters = true;
                }
            }
            continue;
        }
        if in_parameters {
            if let (Some(route), Some(name)) = (&route, row_name(line)) {
                let listed = routes
                    .get_mut(route)
                    .and_then(Option::as_mut)
                    .expect("inside a Query parameters section");
                assert!(
                    listed.insert(name.to_string()),
                    "docs/api.md: {route} lists the parameter {name} twice"
                );
            }
        }
    }
    routes
}

fn openapi() -> Value {
    serde_json::from_str(&read("docs/openapi.json")).expect("docs/openapi.json is JSON")
}

/// The routes of the OpenAPI document (every method but HEAD and OPTIONS, which every GET
/// route and every route answer alike) and the names of their query parameters.
fn openapi_routes(doc: &Value) -> Routes {
    let resolve = |parameter: &Value| -> Value {
        match parameter["$ref"].as_str() {
            Some(target) => {
                let pointer = target
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("non-local reference {target}"));
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling reference {target}"))
                    .clone()
            }
            None => parameter.clone(),
        }
    };
    let mut routes = Routes::new();
    let paths = doc["paths"].as_object().expect("openapi.json has paths");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        let shared: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (method, operation) in item {
            if matches!(method.as_str(), "parameters" | "head" | "options")
                || !operation.is_object()
            {
                continue;
            }
            let own: Vec<Value> = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let names: BTreeSet<String> = shared
                .iter()
                .chain(&own)
                .map(resolve)
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    p["name"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{method} {path}: a parameter without a name"))
                        .to_string()
                })
                .collect();
            routes.insert(
                format!("{} {path}", method.to_ascii_uppercase()),
                Some(names),
            );
        }
    }
    routes
}

#[test]
fn the_parser_reads_the_conventions_of_api_md() {
    let text = "\
# Title
### Headers
| `Allow` | x |
## Routes
### GET /api/a
#### Query parameters
| parameter | type |
| --- | --- |
| `one` | string |
| `two` | string |
#### Answer
| `not_a_parameter` | x |
```
### GET /api/in_code
```
### POST /api/b
#### Query parameters
None.
### GET /api/c
## Configuration
| `NOT_A_PARAMETER` | x |
";
    let routes = api_md_routes(text);
    let want: Routes = [
        (
            "GET /api/a".to_string(),
            Some(["one".to_string(), "two".to_string()].into()),
        ),
        ("POST /api/b".to_string(), Some(BTreeSet::new())),
        ("GET /api/c".to_string(), None),
    ]
    .into();
    assert_eq!(routes, want);
}

#[test]
fn api_md_and_openapi_list_the_same_routes() {
    let documented = api_md_routes(&read("docs/api.md"));
    let described = openapi_routes(&openapi());
    let in_md: BTreeSet<&String> = documented.keys().collect();
    let in_openapi: BTreeSet<&String> = described.keys().collect();
    assert!(in_openapi.len() >= 8, "openapi.json: {in_openapi:?}");
    assert_eq!(
        in_md,
        in_openapi,
        "routes only in docs/api.md: {:?}; only in docs/openapi.json: {:?}",
        in_md.difference(&in_openapi).collect::<Vec<_>>(),
        in_openapi.difference(&in_md).collect::<Vec<_>>()
    );
}

#[test]
fn api_md_and_openapi_list_the_same_query_parameters_per_route() {
    let documented = api_md_routes(&read("docs/api.md"));
    let described = openapi_routes(&openapi());
    let mut compared = 0;
    for (route, parameters) in &described {
        let Some(listed) = documented.get(route) else {
            continue; // api_md_and_openapi_list_the_same_routes reports it
        };
        let listed = listed.as_ref().unwrap_or_else(|| {
            panic!("docs/api.md: {route} has no \"#### Query parameters\" heading")
        });
        let parameters = parameters
            .as_ref()
            .expect("openapi routes always have a set");
        assert_eq!(
            listed,
            parameters,
            "{route}: only in docs/api.md: {:?}; only in docs/openapi.json: {:?}",
            listed.difference(parameters).collect::<Vec<_>>(),
            parameters.difference(listed).collect::<Vec<_>>()
        );
        compared += parameters.len();
    }
    // aggregated_stats alone has seven; a parser that found none would compare nothing.
    assert!(compared >= 20, "only {compared} parameters compared");
}

/// The rows `` | `NAME` | `` of the table in api.md's `## Configuration` section.
fn configuration_rows(text: &str) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(level) = heading_level(line) {
            if level <= 2 {
                inside = line[level..].trim() == "Configuration";
            }
            continue;
        }
        if let (true, Some(name)) = (inside, row_name(line)) {
            rows.insert(name.to_string());
        }
    }
    rows
}

/// The variables `.env.example` sets or shows commented out (`NAME=…`, `# NAME=…`).
fn env_example_variables(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.trim_start_matches('#').trim())
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name)
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_configuration_table_lists_the_variables_of_env_example() {
    let table = configuration_rows(&read("docs/api.md"));
    let example = env_example_variables(&read(".env.example"));
    assert!(example.len() >= 10, ".env.example: {example:?}");
    assert_eq!(
        table,
        example,
        "only in docs/api.md's Configuration table: {:?}; only in .env.example: {:?}",
        table.difference(&example).collect::<Vec<_>>(),
        example.difference(&table).collect::<Vec<_>>()
    );
}

#[test]
fn the_readme_is_short_and_keeps_its_two_commands() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move details to docs/"
    );
    // .ci/run and the tests of the run command rely on these two.
    for command in ["cargo run --bin leaderboard", "cargo test"] {
        let block = format!("```sh\n{command}\n```");
        assert!(
            readme.contains(&block),
            "README.md lost its command block {block:?}"
        );
    }
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, other punctuation dropped.
fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated one also gets `-1`, `-2`, …).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        if let Some(level) = heading_level(line) {
            let base = anchor(line[level..].trim());
            let count = seen.entry(base.clone()).or_insert(0);
            found.insert(if *count == 0 {
                base.clone()
            } else {
                format!("{base}-{count}")
            });
            *count += 1;
        }
    }
    found
}

/// The targets of the inline links `](target)` of a Markdown text.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| rest[..end].to_string())
        })
        .collect()
}

#[test]
fn relative_links_of_the_readme_and_docs_lead_somewhere() {
    let mut files = vec![root().join("README.md"), root().join("bench/README.md")];
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/ exists");
    for entry in docs {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable Markdown file");
        let dir = file.parent().expect("a file has a directory");
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let linked = normalise(&if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            });
            checked += 1;
            let relative = linked.strip_prefix(root()).unwrap_or(&linked).display();
            if !linked.exists() {
                broken.push(format!("{}: {target}", file.display()));
                continue;
            }
            if let (Some(fragment), true) = (fragment, linked.is_file()) {
                let text = std::fs::read_to_string(&linked).expect("a readable linked file");
                if !anchors(&text).contains(fragment) {
                    broken.push(format!(
                        "{}: {target} (no heading #{fragment} in {relative})",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} links checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// `path` without `.` and `..` components (the files need not exist).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Directories that are not the repository's own files: build output, Git's data, local
/// databases and deployment output, installed packages.
const SKIPPED: &[&str] = &["target", ".git", "node_modules", ".data", ".vercel"];

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            walk(&entry.path(), files);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
}

#[test]
fn no_file_points_outside_the_repository() {
    // Built here so that this file does not mention them itself.
    let forbidden: Vec<String> = [["..", "/shared"], ["shared", "/spec"], ["shared", "/notes"]]
        .iter()
        .map(|parts| parts.concat())
        .collect();
    let mut files = Vec::new();
    walk(&root(), &mut files);
    assert!(files.len() > 50, "only {} files found", files.len());
    assert!(
        files.iter().any(|f| f.ends_with("docs/api.md")),
        "the walk missed docs/api.md"
    );
    let mut found = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for pattern in &forbidden {
            if bytes
                .windows(pattern.len())
                .any(|w| w == pattern.as_bytes())
            {
                found.push(format!("{} mentions {pattern}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "files pointing outside the repository:\n{}",
        found.join("\n")
    );
}
