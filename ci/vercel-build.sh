#!/usr/bin/env bash
# `vercel build`, offline, and a check of what it produced (run by .ci/run after the tests;
# runs alone too: `bash ci/vercel-build.sh`).
#
# Builds with the official Rust builder of the pinned Vercel CLI, as on Vercel's build
# image (VERCEL_BUILD_IMAGE=1: plain `cargo build --release --bin <name>`), from a
# hand-written .vercel/project.json (no login, no API: the CLI retries the API and carries
# on). A missing project.json makes `vercel build` build nothing and still exit 0, so
# everything is judged from .vercel/output, never from the exit code:
#   - one function per file in api/ (api/<name>.rs -> functions/api/<name>.func), no other;
#   - each .vc-config.json: runtime and handler `executable`, memory 128, maxDuration 300;
#   - each referenced binary exists, is not hidden by .vercelignore (a prebuilt deploy
#     would silently leave it out), starts the way Vercel starts it (VERCEL_DEV_PORT) and
#     answers over HTTP against a throwaway PostgreSQL: /_vercel/ping 200, its own route
#     below 500 (a 503 would mean no database), /api/health 200 with postgres ok;
#   - nothing at all is published as a static file (no Cargo.toml, sources, .env*,
#     migrations, tests ...: .vercelignore keeps them out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh

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
printf '%s\n' '{"projectId":"prj_leaderboard_ci_offline","orgId":"team_leaderboard_ci_offline","settings":{"framework":null}}' \
  >.vercel/project.json

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

# --- one function per file in api/ ---------------------------------------------------------
problems=()
mapfile -t sources < <(cd api && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ ${#sources[@]} -gt 0 ] || fail "api/ holds no files"
expected=()
for f in "${sources[@]}"; do
  case $f in
    *.rs) expected+=("${f%.rs}") ;;
    *) problems+=("api/$f is not a Rust file: every file in api/ must be a function") ;;
  esac
done
mapfile -t built < <(cd .vercel/output/functions/api 2>/dev/null &&
  find . -type d -name '*.func' | sed 's|^\./||; s|\.func$||' | LC_ALL=C sort)
for name in "${expected[@]}"; do
  [[ " ${built[*]} " == *" $name "* ]] || problems+=("api/$name.rs has no function (.vercel/output/functions/api/$name.func)")
done
for name in "${built[@]}"; do
  [[ " ${expected[*]} " == *" $name "* ]] || problems+=("function api/$name.func has no api/$name.rs")
done

# --- each function's config ---------------------------------------------------------------
# Prints "name<TAB>binary path (relative to the repository)" per function, or problems.
configs=$(node -e '
  const fs = require("fs"), path = require("path");
  let bad = 0;
  for (const name of process.argv.slice(1)) {
    const file = `.vercel/output/functions/api/${name}.func/.vc-config.json`;
    let c;
    try { c = JSON.parse(fs.readFileSync(file, "utf8")); }
    catch (e) { console.log(`PROBLEM\t${file}: ${e.message}`); bad++; continue; }
    const want = { runtime: "executable", handler: "executable", memory: 128, maxDuration: 300 };
    for (const [k, v] of Object.entries(want))
      if (c[k] !== v) { console.log(`PROBLEM\t${file}: ${k} is ${JSON.stringify(c[k])}, want ${JSON.stringify(v)}`); bad++; }
    const bin = c.filePathMap && c.filePathMap.executable;
    if (typeof bin !== "string") { console.log(`PROBLEM\t${file}: no filePathMap.executable`); bad++; continue; }
    if (path.isAbsolute(bin) || bin.startsWith("..")) { console.log(`PROBLEM\t${file}: binary ${bin} is outside the repository (a prebuilt deploy would not upload it)`); bad++; continue; }
    console.log(`${name}\t${bin}`);
  }
' "${built[@]}")
declare -A binary=()
while IFS=$'\t' read -r name bin; do
  [ -n "$name" ] || continue
  if [ "$name" = PROBLEM ]; then problems+=("$bin"); continue; fi
  if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
    problems+=("api/$name: binary $bin missing or not executable")
    continue
  fi
  [ "$(basename "$bin")" = "$(basename "$name")" ] || problems+=("api/$name: binary is $bin, not named after the function")
  binary[$name]=$bin
done <<<"$configs"

# --- .vercelignore must not hide a binary (`vercel deploy --prebuilt` drops them) --------
if [ -f .vercelignore ] && [ ${#binary[@]} -gt 0 ]; then
  scratch=$(mktemp -d)
  on_exit "rm -rf '$scratch'"
  git init -q "$scratch"
  cp .vercelignore "$scratch/.gitignore"
  for name in "${!binary[@]}"; do
    mkdir -p "$scratch/$(dirname "${binary[$name]}")"
    : >"$scratch/${binary[$name]}"
    if git -C "$scratch" -c core.ignorecase=true check-ignore -q --no-index "${binary[$name]}"; then
      problems+=(".vercelignore hides ${binary[$name]}: \`vercel deploy --prebuilt\` would upload api/$name without its binary")
    fi
  done
  for f in "${sources[@]}"; do
    mkdir -p "$scratch/api/$(dirname "$f")"
    : >"$scratch/api/$f"
    if git -C "$scratch" -c core.ignorecase=true check-ignore -q --no-index "api/$f"; then
      problems+=(".vercelignore hides api/$f: Vercel would not see the function")
    fi
  done
fi

# --- nothing published as a static file ------------------------------------------------
if [ -d .vercel/output/static ]; then
  mapfile -t statics < <(cd .vercel/output/static && find . -mindepth 1 \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)
  for f in "${statics[@]}"; do
    case ${f##*/} in
      Cargo.toml | Cargo.lock | *.rs | .env* | *.sql) what="source or secret" ;;
      *) what="file" ;;
    esac
    case $f in migrations/* | tests/* | crates/* | target/*) what="source or build" ;; esac
    problems+=("published as a static file ($what): $f (exclude it in .vercelignore)")
  done
fi

# --- binaries built for Vercel's image (informational) ---------------------------------
# Vercel's build image is Amazon Linux 2023 (glibc 2.34); a binary needing a newer glibc
# symbol would not start there.
for name in "${!binary[@]}"; do
  need=$(objdump -T "${binary[$name]}" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1 || true)
  [ -n "$need" ] && log "api/$name needs ${need/_/ } at most"
  break
done

if [ ${#problems[@]} -gt 0 ]; then
  printf '  - %s\n' "${problems[@]}" >&2
  fail "${#problems[@]} problem(s) in .vercel/output"
fi
log "${#expected[@]} functions, configs as vercel.json says, no static files"

# --- start every binary the way Vercel does, against a throwaway database ----------------
start_postgres
SECRET=ci-build-check-secret
declare -A pids=() ports=() outs=()
for name in "${expected[@]}"; do
  port=$(free_port)
  out=$(mktemp)
  on_exit "rm -f '$out'"
  # All at once: cold starts racing for the migrations, as on a fresh deployment.
  env -u VERCEL_IPC_PATH VERCEL_DEV_PORT="$port" POSTGRES="$POSTGRES_URL" SECRET="$SECRET" \
    LOG_LEVEL=warn "${binary[$name]}" >"$out" 2>&1 </dev/null &
  pids[$name]=$!
  ports[$name]=$port
  outs[$name]=$out
  on_exit "stop_process ${pids[$name]} 5"
done
body=$(mktemp)
on_exit "rm -f '$body'"
for name in "${expected[@]}"; do
  port=${ports[$name]}
  wait_for_line "${outs[$name]}" "Dev server listening: $port" 60 || {
    cat "${outs[$name]}" >&2
    fail "${binary[$name]} did not print 'Dev server listening: $port' within 60 s"
  }
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/_vercel/ping") || true
  [ "$status" = 200 ] || fail "api/$name: /_vercel/ping answered $status"
  status=$(curl -s -o "$body" -w '%{http_code}' --max-time 60 "http://127.0.0.1:$port/api/$name") || true
  case $status in
    [234]??) ;;
    *)
      cat "$body" "${outs[$name]}" >&2
      fail "api/$name: GET /api/$name answered $status (503: the database is not reachable)"
      ;;
  esac
  if [ "$name" = health ]; then
    [ "$status" = 200 ] || { cat "$body" >&2; fail "GET /api/health answered $status"; }
    json_check "$body" 'b.postgres && b.postgres.ok === true' || fail "/api/health: $(cat "$body")"
  fi
  log "api/$name: started from ${binary[$name]}, GET /api/$name -> $status"
done
[ -n "${ports[health]:-}" ] || fail "no api/health.rs: nothing to check the database with"
log "vercel build check passed ($((SECONDS - started)) s)"
