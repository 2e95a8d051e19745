#!/usr/bin/env bash
# A build from source, as Vercel does it for `vercel deploy` and for a Git-connected
# project (run by .ci/run after ci/vercel-build.sh; runs alone too: `bash ci/vercel-source.sh`).
#
# From exactly what Vercel would receive: a fresh clone of the commit (HEAD, or
# LEADERBOARD_VERCEL_REV), with a developer's usual local files planted in it, filtered by
# the pinned CLI's own upload code (ci/vercel-files.mjs: its default ignores, /target,
# then .vercelignore; cross-checked against Git's gitignore matcher), copied into an empty
# directory: no target/, no .git, nothing of this checkout's build. There `vercel build`
# runs offline as on Vercel's build image (VERCEL_BUILD_IMAGE=1: plain
# `cargo build --release --bin <name>` per function), with a hand-written
# .vercel/project.json. Then:
#   - one function per api/*.rs, configs as vercel.json says, binaries in target/release/;
#   - the static output is exactly the commit's public/: the same files, byte for byte,
#     and no *.rs, *.toml, *.sql, *.lock or .env* (the comparison itself is tested first,
#     on a planted leak, so that it cannot pass by seeing nothing);
#   - every binary starts as Vercel starts it and answers against a throwaway PostgreSQL
#     (/api/health 200 with postgres.ok); the newest glibc symbol each needs is printed.
#
# The directory (LEADERBOARD_VERCEL_SOURCE_DIR, default ~/.cache/leaderboard-vercel-source)
# is emptied first and kept afterwards: ci/vercel-zigbuild.sh builds the same upload there
# next, from the same upload, and then removes the upload's target/. Run with `nice`: a from-scratch release build of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh
source ci/vercel-output.sh

install_tools
started=$SECONDS
commit=$(git rev-parse --verify "${LEADERBOARD_VERCEL_REV:-HEAD}^{commit}") || fail "no commit to build"
WORK=${LEADERBOARD_VERCEL_SOURCE_DIR:-${HOME:-/root}/.cache/leaderboard-vercel-source}

# --- the checker of the static output catches a leak ------------------------------------
selftest=$(mktemp -d)
on_exit "rm -rf '$selftest'"
mkdir -p "$selftest/public/js" "$selftest/static/js" "$selftest/static/api"
printf 'page\n' >"$selftest/public/index.html"
printf 'app\n' >"$selftest/public/js/app.js"
printf 'other\n' >"$selftest/public/js/gone.js"
printf 'page\n' >"$selftest/static/index.html"
printf 'changed\n' >"$selftest/static/js/app.js"
for f in Cargo.toml Cargo.lock .env.example api/health.rs V1__x.sql; do printf 'x\n' >"$selftest/static/$f"; done
mapfile -t found < <(compare_static "$selftest/static" "$selftest/public")
for want in "published a source, lock or environment file: Cargo.toml" \
  "published a source, lock or environment file: Cargo.lock" \
  "published a source, lock or environment file: .env.example" \
  "published a source, lock or environment file: api/health.rs" \
  "published a source, lock or environment file: V1__x.sql" \
  "published, but not a file of public/: Cargo.toml" \
  "public/js/gone.js is not published (does .vercelignore hide it?)" \
  "published js/app.js differs from public/js/app.js"; do
  printf '%s\n' "${found[@]}" | grep -qxF -- "$want" ||
    fail "the static-output check missed a planted problem: $want (it reported: ${found[*]})"
done
[ ${#found[@]} = 12 ] || fail "the static-output check reported ${#found[@]} problems on the planted leak, want 12: ${found[*]}"
mapfile -t found < <(compare_static "$selftest/public" "$selftest/public")
[ ${#found[@]} = 0 ] || fail "the static-output check finds problems in public/ compared with itself: ${found[*]}"
log "static-output check: catches the planted leak (12 problems), passes public/ against itself"

# --- what Vercel receives ----------------------------------------------------------------
make_upload "$WORK" "$commit"
link_offline "$WORK/upload"

# --- build -------------------------------------------------------------------------------
log "vercel build in $WORK/upload (VERCEL_BUILD_IMAGE=1: cargo build --release per function, empty target/)"
build_started=$SECONDS
(cd "$WORK/upload" && exec env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR VERCEL_BUILD_IMAGE=1 \
  nice -n 10 timeout 2700 "$VERCEL" build --yes </dev/null) || fail "vercel build exited with $?"
log "vercel build from source took $((SECONDS - build_started)) s"

echo "--- .vercel/output"
(cd "$WORK/upload" && find .vercel/output -maxdepth 4 | LC_ALL=C sort)
echo "---"

check_functions "$WORK/upload" target/release
check_static "$WORK/upload" "$WORK/clone/public"
report_glibc
answer_health
log "from-source build check passed for ${commit:0:12} ($((SECONDS - started)) s)"
