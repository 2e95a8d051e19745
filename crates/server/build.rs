//! Embeds every file of the repository's `public/` (the dashboard, also Vercel's static
//! output) into the `leaderboard` binary, so the local server serves it from any working
//! directory and inside a container. Writes `$OUT_DIR/public_files.rs`: a sorted table of
//! (URL path, `include_bytes!`) pairs. Cargo re-runs this when anything under `public/`
//! changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let public = manifest.join("../../public");
    println!("cargo:rerun-if-changed={}", public.display());
    let mut files = Vec::new();
    if public.is_dir() {
        collect(&public, &public, &mut files);
    }
    files.sort();
    let mut out = String::from(
        "/// Every file of `public/`: URL path (from `/`) and contents, sorted by path.\n",
    );
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (url, path) in &files {
        writeln!(
            out,
            "    ({url:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("public_files.rs");
    std::fs::write(dest, out).expect("write public_files.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let name = entry.file_name();
        // Editor and OS litter is not part of the site.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("under public/");
            let url = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let absolute = path.canonicalize().unwrap_or(path.clone());
            files.push((format!("/{url}"), absolute));
        }
    }
}
