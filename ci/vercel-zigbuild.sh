#!/usr/bin/env bash
# The laptop path: `vercel build` without VERCEL_BUILD_IMAGE, as a developer runs it before
# `vercel deploy --prebuilt` (run by .ci/run after ci/vercel-source.sh; runs alone too:
# `bash ci/vercel-zigbuild.sh`). Vercel's Rust builder then cross-compiles every function
# with `cargo zigbuild --target x86_64-unknown-linux-gnu --release`, so that the binaries
# run on Vercel's Amazon Linux 2023 whatever the laptop's glibc. Checked:
#   - one function per api/*.rs, binaries in target/x86_64-unknown-linux-gnu/release/;
#   - the newest GLIBC_ symbol version each binary needs (objdump -T), printed, and none
#     newer than 2.34 (Amazon Linux 2023);
#   - the static output is exactly the commit's public/;
#   - every binary starts as Vercel starts it and answers against a throwaway PostgreSQL
#     (/api/health 200 with postgres.ok).
#
# It builds the upload that ci/vercel-source.sh prepared for the same commit (its
# directory, LEADERBOARD_VERCEL_SOURCE_DIR, default ~/.cache/leaderboard-vercel-source,
# saving the clone; measured, its cross build shares no compiled crates with the native
# one), or prepares it itself the same way. Never this checkout's target/.
#
# Tools, installed once into LEADERBOARD_ZIG_DIR (default ~/.cache/leaderboard-zig) and
# reused: zig from the PyPI package `ziglang` (in a venv of its own) and cargo-zigbuild
# (`cargo install --locked`), both pinned below.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh
source ci/vercel-output.sh

ZIGLANG_VERSION=0.13.0.post1
CARGO_ZIGBUILD_VERSION=0.24.1
GLIBC_MAX=2.34
ZIG_DIR=${LEADERBOARD_ZIG_DIR:-${HOME:-/root}/.cache/leaderboard-zig}

install_tools
command -v objdump >/dev/null || {
  log "installing: binutils"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >/dev/null
}

# --- zig (PyPI ziglang) and cargo-zigbuild, cached ---------------------------------------
python=$ZIG_DIR/venv/bin/python
if [ "$("$python" -c 'import importlib.metadata as m; print(m.version("ziglang"))' 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
  log "installing ziglang==$ZIGLANG_VERSION into $ZIG_DIR/venv"
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  }
  rm -rf "$ZIG_DIR/venv"
  python3 -m venv "$ZIG_DIR/venv" || fail "python3 -m venv $ZIG_DIR/venv"
  timeout 600 "$ZIG_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
    "ziglang==$ZIGLANG_VERSION" </dev/null || fail "pip install ziglang==$ZIGLANG_VERSION"
fi
zigbuild=$ZIG_DIR/cargo/bin/cargo-zigbuild
if [ "$("$zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ]; then
  log "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $ZIG_DIR/cargo (cargo install --locked)"
  nice -n 10 timeout 1200 cargo install --quiet --locked --force --root "$ZIG_DIR/cargo" \
    --version "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild </dev/null ||
    fail "cargo install cargo-zigbuild $CARGO_ZIGBUILD_VERSION"
fi
# cargo finds `cargo zigbuild` on PATH; cargo-zigbuild runs zig as `python -m ziglang`.
export PATH=$ZIG_DIR/cargo/bin:$PATH
export CARGO_ZIGBUILD_PYTHON_PATH=$python
log "zig $("$python" -m ziglang version) (PyPI ziglang $ZIGLANG_VERSION), $("$zigbuild" --version)"

# --- the upload, from ci/vercel-source.sh or made here -------------------------------------
started=$SECONDS
commit=$(git rev-parse --verify "${LEADERBOARD_VERCEL_REV:-HEAD}^{commit}") || fail "no commit to build"
WORK=${LEADERBOARD_VERCEL_SOURCE_DIR:-${HOME:-/root}/.cache/leaderboard-vercel-source}
if [ "$(cat "$WORK/commit" 2>/dev/null)" = "$commit" ] && [ -d "$WORK/upload" ] && [ -d "$WORK/clone" ]; then
  log "building the upload of ${commit:0:12} that ci/vercel-source.sh prepared in $WORK"
else
  make_upload "$WORK" "$commit"
fi
link_offline "$WORK/upload"
rm -rf "$WORK/upload/.vercel/output"

# --- build -------------------------------------------------------------------------------
log "vercel build in $WORK/upload (no VERCEL_BUILD_IMAGE: cargo zigbuild --target x86_64-unknown-linux-gnu)"
build_started=$SECONDS
(cd "$WORK/upload" && exec env -u VERCEL_BUILD_IMAGE -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR \
  nice -n 10 timeout 2700 "$VERCEL" build --yes </dev/null) || fail "vercel build exited with $?"
log "vercel build with cargo zigbuild took $((SECONDS - build_started)) s"

echo "--- .vercel/output"
(cd "$WORK/upload" && find .vercel/output -maxdepth 4 | LC_ALL=C sort)
echo "---"

check_functions "$WORK/upload" target/x86_64-unknown-linux-gnu/release
report_glibc "$GLIBC_MAX"
check_static "$WORK/upload" "$WORK/clone/public"
answer_health
log "zigbuild check passed for ${commit:0:12} ($((SECONDS - started)) s)"
# Both builds of the upload (this one and ci/vercel-source.sh's) are checked: their
# target/ (over a gigabyte) goes, as the next run starts from an empty one anyway.
log "removing the upload's target/ ($(du -sm "$WORK/upload/target" | cut -f1) MB)"
rm -rf "$WORK/upload/target"
