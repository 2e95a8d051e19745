#!/usr/bin/env bash
# The prebuilt path: `vercel build` in the working tree, offline, and a check of what it
# produced and of what `vercel deploy --prebuilt` would upload (run by .ci/run after the
# tests; runs alone too: `bash ci/vercel-build.sh`).
#
# Builds with the official Rust builder of the pinned Vercel CLI, as on Vercel's build
# image (VERCEL_BUILD_IMAGE=1: plain `cargo build --release --bin <name>`, into this
# checkout's target/), from a hand-written .vercel/project.json (no login, no API: the CLI
# retries the API and carries on). A missing project.json makes `vercel build` build
# nothing and still exit 0, so everything is judged from .vercel/output, never from the
# exit code (checks in ci/vercel-output.sh):
#   - one function per file in api/ (api/<name>.rs -> functions/api/<name>.func), no other;
#   - each .vc-config.json: runtime and handler `executable`, memory 128, maxDuration 300;
#   - each referenced binary exists and is in what `vercel deploy --prebuilt` would upload
#     (the CLI's own list: a binary that .vercelignore matches is silently left out);
#   - the static output is exactly public/ as it is on disk: the same files, byte for
#     byte, and no *.rs, *.toml, *.sql, *.lock or .env* (no Cargo.toml, sources, tests ...);
#   - each binary starts the way Vercel starts it (VERCEL_DEV_PORT) and answers over HTTP
#     against a throwaway PostgreSQL: /_vercel/ping 200, its own route below 500 (a 503
#     would mean no database), /api/health 200 with postgres ok.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh
source ci/vercel-output.sh

install_tools

# --- a hand-written project link, removed afterwards ------------------------------------
# A developer's real link (from `vercel link`) is put back as it was.
mkdir -p .vercel
if [ -e .vercel/project.json ]; then
  backup=$(mktemp "$ROOT/.vercel/project.json.saved.XXXXXX")
  mv .vercel/project.json "$backup"
  on_exit "mv -f '$backup' '$ROOT/.vercel/project.json'"
else
  on_exit "rm -f '$ROOT/.vercel/project.json'"
fi
link_offline "$ROOT"

# --- build -------------------------------------------------------------------------------
rm -rf .vercel/output
log "vercel build (VERCEL_BUILD_IMAGE=1: cargo build --release per function)"
started=$SECONDS
# The builder takes the `cargo` from ~/.cargo/bin first; CARGO_TARGET_DIR, if set, is
# honoured (the filePathMap check below follows whatever target dir it reports).
VERCEL_BUILD_IMAGE=1 timeout 2700 "$VERCEL" build --yes </dev/null ||
  fail "vercel build exited with $?"
log "vercel build took $((SECONDS - started)) s"

echo "--- .vercel/output"
find .vercel/output -maxdepth 4 | sort
echo "---"

[ -f .vercel/output/config.json ] || fail ".vercel/output/config.json missing"

# --- the functions, the static output, the prebuilt upload -------------------------------
check_functions "$ROOT"
check_static "$ROOT" "$ROOT/public"

# `vercel deploy --prebuilt` uploads .vercel/output and the files its configs point at,
# less what .vercelignore matches: every binary must be in that list.
uploads=$(mktemp)
on_exit "rm -f '$uploads'"
vercel_files prebuilt "$ROOT" >"$uploads" || fail "listing the prebuilt upload with the Vercel CLI"
missing=()
for name in "${FUNCTIONS[@]}"; do
  rel=${BINARY[$name]#"$ROOT/"}
  grep -qxF -- "$rel" "$uploads" ||
    missing+=("\`vercel deploy --prebuilt\` would upload api/$name without its binary $rel (.vercelignore matches it?)")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf '  - %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} binar(y/ies) missing from the prebuilt upload"
fi
log "the prebuilt upload ($(wc -l <"$uploads") files) holds every binary"

# Vercel's runtime is Amazon Linux 2023 (glibc 2.34): a binary needing a newer glibc
# symbol would not start there. Built with the machine's own glibc here (informational;
# ci/vercel-zigbuild.sh checks the cross-compiled build against 2.34).
report_glibc
answer_health
log "vercel build check passed ($((SECONDS - started)) s)"
