use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// Where Debian/Ubuntu install one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Locates the directory holding `initdb` and `postgres`.
///
/// Order: `PG_BINDIR` (an explicit override is never second-guessed: if it lacks the
/// binaries that is an error), `pg_config --bindir` (on Debian that may be the
/// client-only package pointing at a directory without a server, so it is checked),
/// the highest `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bindir() -> Result<PathBuf, Error> {
    find_bindir_with(
        std::env::var_os("PG_BINDIR"),
        true,
        Path::new(DEBIAN_ROOT),
        std::env::var_os("PATH"),
    )
}

/// [`find_bindir`] with every input explicit, so tests need not touch process-global env vars.
pub(crate) fn find_bindir_with(
    pg_bindir: Option<OsString>,
    use_pg_config: bool,
    versions_root: &Path,
    path_var: Option<OsString>,
) -> Result<PathBuf, Error> {
    if let Some(dir) = pg_bindir.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_server_binaries(&dir) {
            Ok(dir)
        } else {
            Err(Error::BinariesNotFound {
                pg_bindir: Some(dir),
            })
        };
    }
    if use_pg_config {
        if let Some(dir) = pg_config_bindir().filter(|d| has_server_binaries(d)) {
            return Ok(dir);
        }
    }
    if let Some(dir) = highest_versioned_bindir(versions_root) {
        return Ok(dir);
    }
    if let Some(path_var) = path_var {
        if let Some(dir) = std::env::split_paths(&path_var).find(|d| has_server_binaries(d)) {
            return Ok(dir);
        }
    }
    Err(Error::BinariesNotFound { pg_bindir: None })
}

pub(crate) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "postgres"]
        .iter()
        .all(|name| dir.join(name).is_file())
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// Picks `<root>/<version>/bin` with the highest numeric version that has the server binaries.
fn highest_versioned_bindir(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(parse_version) else {
            continue;
        };
        let bin = entry.path().join("bin");
        if !has_server_binaries(&bin) {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// Parses "15" or "9.6" into comparable numeric parts; anything else is not a version dir.
fn parse_version(name: &str) -> Option<Vec<u64>> {
    name.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering() {
        assert!(parse_version("10") > parse_version("9.6"));
        assert_eq!(parse_version("main"), None);
    }
}
