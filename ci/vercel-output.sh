# Checks of a `vercel build` output, shared by ci/vercel-build.sh (prebuilt, in the working
# tree), ci/vercel-source.sh (from what Vercel receives) and ci/vercel-zigbuild.sh (the
# laptop's cross-compiling build). Sourced after ci/common.sh, not run.
#
# - check_functions PROJECT [BIN_DIR]: PROJECT/.vercel/output holds one function per file
#   in PROJECT/api (api/<name>.rs -> functions/api/<name>.func), no other, each with runtime
#   and handler `executable`, memory 128, maxDuration 300, and a binary named after the
#   function inside PROJECT (below BIN_DIR when given, e.g. target/release). Sets FUNCTIONS
#   (names) and BINARY[name] (absolute path).
# - compare_static STATIC PUBLIC: prints one line per problem: a file published that is not
#   in PUBLIC or differs from it, a file of PUBLIC not published, and any published name
#   that looks like a source, lock or environment file (*.rs *.toml *.sql *.lock .env*).
# - check_static PROJECT PUBLIC: compare_static on PROJECT/.vercel/output/static.
# - report_glibc [MAX]: the newest GLIBC_ symbol version each binary needs (objdump -T),
#   printed per function; with MAX, fails when one needs a newer one.
# - answer_health: starts every binary as Vercel does (VERCEL_DEV_PORT) against a
#   throwaway PostgreSQL, all at once: /_vercel/ping 200, its own route below 500 (503
#   would mean no database), and the health function's /api/health 200 with postgres.ok
#   (each binary serves its own route whatever the path, as on Vercel).
# - vercel_files source|prebuilt DIR: the upload list of the pinned CLI (ci/vercel-files.mjs).

FUNCTIONS=()
declare -A BINARY=()

vercel_files() {
  LEADERBOARD_VERCEL_CLI=$VERCEL_DIR/node_modules/vercel \
    node "$(dirname "${BASH_SOURCE[0]}")/vercel-files.mjs" "$1" "$2" | LC_ALL=C sort
}

# files_below DIR: regular files and symlinks below DIR, relative, sorted (none if no DIR).
files_below() {
  [ -d "$1" ] || return 0
  (cd "$1" && find . -mindepth 1 \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)
}

check_functions() {
  local project=$1 bin_dir=${2:-} problems=() f name bin sources built configs
  FUNCTIONS=()
  BINARY=()
  [ -f "$project/.vercel/output/config.json" ] || fail "$project/.vercel/output/config.json missing"
  mapfile -t sources < <(cd "$project/api" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
  [ ${#sources[@]} -gt 0 ] || fail "$project/api holds no files"
  for f in "${sources[@]}"; do
    case $f in
      *.rs) FUNCTIONS+=("${f%.rs}") ;;
      *) problems+=("api/$f is not a Rust file: every file in api/ must be a function") ;;
    esac
  done
  mapfile -t built < <(cd "$project/.vercel/output/functions/api" 2>/dev/null &&
    find . -type d -name '*.func' | sed 's|^\./||; s|\.func$||' | LC_ALL=C sort)
  for name in "${FUNCTIONS[@]}"; do
    [[ " ${built[*]} " == *" $name "* ]] || problems+=("api/$name.rs has no function (.vercel/output/functions/api/$name.func)")
  done
  for name in "${built[@]}"; do
    [[ " ${FUNCTIONS[*]} " == *" $name "* ]] || problems+=("function api/$name.func has no api/$name.rs")
  done

  # "name<TAB>binary path relative to the project" per function, or PROBLEM lines.
  configs=$(cd "$project" && node -e '
    const fs = require("fs"), path = require("path");
    for (const name of process.argv.slice(1)) {
      const file = `.vercel/output/functions/api/${name}.func/.vc-config.json`;
      let c;
      try { c = JSON.parse(fs.readFileSync(file, "utf8")); }
      catch (e) { console.log(`PROBLEM\t${file}: ${e.message}`); continue; }
      const want = { runtime: "executable", handler: "executable", memory: 128, maxDuration: 300 };
      for (const [k, v] of Object.entries(want))
        if (c[k] !== v) console.log(`PROBLEM\t${file}: ${k} is ${JSON.stringify(c[k])}, want ${JSON.stringify(v)}`);
      const bin = c.filePathMap && c.filePathMap.executable;
      if (typeof bin !== "string") { console.log(`PROBLEM\t${file}: no filePathMap.executable`); continue; }
      if (path.isAbsolute(bin) || bin.startsWith("..")) { console.log(`PROBLEM\t${file}: binary ${bin} is outside the project (a prebuilt deploy would not upload it)`); continue; }
      console.log(`${name}\t${bin}`);
    }
  ' "${built[@]}")
  while IFS=$'\t' read -r name bin; do
    [ -n "$name" ] || continue
    if [ "$name" = PROBLEM ]; then problems+=("$bin"); continue; fi
    if [ ! -f "$project/$bin" ] || [ ! -x "$project/$bin" ]; then
      problems+=("api/$name: binary $bin missing or not executable")
      continue
    fi
    [ "${bin##*/}" = "${name##*/}" ] || problems+=("api/$name: binary is $bin, not named after the function")
    [ -z "$bin_dir" ] || [ "$bin" = "$bin_dir/$name" ] || problems+=("api/$name: binary is $bin, want $bin_dir/$name")
    BINARY[$name]=$(cd "$project" && realpath "$bin")
  done <<<"$configs"

  if [ ${#problems[@]} -gt 0 ]; then
    printf '  - %s\n' "${problems[@]}" >&2
    fail "${#problems[@]} problem(s) with the functions in $project/.vercel/output"
  fi
  log "${#FUNCTIONS[@]} functions (${FUNCTIONS[*]}), configs as vercel.json says, binaries present"
}

compare_static() {
  local static=$1 public=$2 f
  local -a published expected
  mapfile -t published < <(files_below "$static")
  mapfile -t expected < <(files_below "$public")
  [ ${#expected[@]} -gt 0 ] ||
    echo "$public holds no files: Vercel would then publish every uploaded file (sources included) as static"
  for f in "${published[@]}"; do
    case ${f##*/} in
      *.rs | *.toml | *.sql | *.lock | .env*) echo "published a source, lock or environment file: $f" ;;
    esac
  done
  while IFS= read -r f; do
    [ -n "$f" ] && echo "published, but not a file of public/: $f"
  done < <(LC_ALL=C comm -23 <(printf '%s\n' "${published[@]}") <(printf '%s\n' "${expected[@]}"))
  while IFS= read -r f; do
    [ -n "$f" ] && echo "public/$f is not published (does .vercelignore hide it?)"
  done < <(LC_ALL=C comm -13 <(printf '%s\n' "${published[@]}") <(printf '%s\n' "${expected[@]}"))
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    cmp -s "$static/$f" "$public/$f" || echo "published $f differs from public/$f"
  done < <(LC_ALL=C comm -12 <(printf '%s\n' "${published[@]}") <(printf '%s\n' "${expected[@]}"))
}

check_static() {
  local project=$1 public=$2 problems count
  mapfile -t problems < <(compare_static "$project/.vercel/output/static" "$public")
  if [ ${#problems[@]} -gt 0 ]; then
    printf '  - %s\n' "${problems[@]}" >&2
    fail "${#problems[@]} problem(s) with the static output: it must be exactly public/"
  fi
  count=$(files_below "$public" | wc -l)
  log "static output = public/: the same $count file(s), byte for byte, nothing else"
}

# glibc_needed BINARY: the newest GLIBC_x.y symbol version it needs, e.g. 2.34.
glibc_needed() {
  objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -u -V | tail -n 1
}

report_glibc() {
  local max=${1:-} name need over=()
  command -v objdump >/dev/null || fail "objdump not found (apt-get install binutils)"
  for name in "${FUNCTIONS[@]}"; do
    need=$(glibc_needed "${BINARY[$name]}")
    [ -n "$need" ] || fail "api/$name: objdump -T shows no GLIBC_ symbol in ${BINARY[$name]}"
    log "api/$name needs glibc $need at most (${BINARY[$name]#"$PWD/"})"
    if [ -n "$max" ] && [ "$(printf '%s\n%s\n' "$need" "$max" | sort -V | tail -n 1)" != "$max" ]; then
      over+=("api/$name needs glibc $need, newer than $max")
    fi
  done
  if [ ${#over[@]} -gt 0 ]; then
    printf '  - %s\n' "${over[@]}" >&2
    fail "${#over[@]} binar(y/ies) would not start on Vercel's Amazon Linux 2023 (glibc $max)"
  fi
}

answer_health() {
  local name port out status body secret=ci-vercel-output-secret
  local -A pids=() ports=() outs=()
  [ -n "${POSTGRES_URL:-}" ] || start_postgres
  for name in "${FUNCTIONS[@]}"; do
    port=$(free_port)
    out=$(mktemp)
    on_exit "rm -f '$out'"
    # All at once: cold starts racing for the migrations, as on a fresh deployment.
    env -u VERCEL_IPC_PATH VERCEL_DEV_PORT="$port" POSTGRES="$POSTGRES_URL" SECRET="$secret" \
      LOG_LEVEL=warn "${BINARY[$name]}" >"$out" 2>&1 </dev/null &
    pids[$name]=$!
    ports[$name]=$port
    outs[$name]=$out
    on_exit "stop_process ${pids[$name]} 5"
  done
  body=$(mktemp)
  on_exit "rm -f '$body'"
  for name in "${FUNCTIONS[@]}"; do
    port=${ports[$name]}
    wait_for_line "${outs[$name]}" "Dev server listening: $port" 60 || {
      cat "${outs[$name]}" >&2
      fail "${BINARY[$name]} did not print 'Dev server listening: $port' within 60 s"
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
    log "api/$name: started from ${BINARY[$name]##*/}, GET /api/$name -> $status"
  done
}

# --- what Vercel receives ----------------------------------------------------------------
# make_upload WORK COMMIT: WORK/clone is a fresh clone of COMMIT (of the repository in
# $ROOT), with a developer's usual local files planted in it (an env file, the local
# database, build output, a project link), as a `vercel deploy` from a checkout would
# meet them. WORK/upload is an empty directory that receives exactly the files the pinned
# CLI would upload from WORK/clone (ci/vercel-files.mjs: the CLI's own code), and
# WORK/upload.list their list. Fails when the CLI would upload a file that is not in the
# commit, or when gitignore semantics (git check-ignore over the same rules) disagree with
# the CLI's matcher on any file (a rule that means one thing to Git and another to Vercel).
# Writes WORK/commit last, once all of it is in place.
PLANTED=(.env .env.local .env.production crates/leaderboard/.env .data/postgres/PG_VERSION
  target/release/health target/x86_64-unknown-linux-gnu/release/health .vercel/project.json
  node_modules/left-over/index.js)

make_upload() {
  local work=$1 commit=$2 f problems=() scratch
  rm -rf "$work"
  mkdir -p "$work"
  git clone -q --no-local --no-checkout "$ROOT" "$work/clone" || fail "git clone $ROOT"
  git -C "$work/clone" -c advice.detachedHead=false checkout -q --detach "$commit" ||
    fail "git checkout $commit in the clone"
  git -C "$work/clone" ls-files -z | tr '\0' '\n' | LC_ALL=C sort >"$work/tracked.list"
  for f in "${PLANTED[@]}"; do
    mkdir -p "$work/clone/$(dirname "$f")"
    printf 'planted by ci/vercel-output.sh: must not be uploaded\n' >"$work/clone/$f"
  done

  vercel_files source "$work/clone" >"$work/upload.list" || fail "listing the upload with the Vercel CLI"
  [ -s "$work/upload.list" ] || fail "the Vercel CLI would upload nothing from $work/clone"
  while IFS= read -r f; do
    problems+=("would upload $f, which is not a file of commit ${commit:0:12} (a local file: add a rule to .vercelignore)")
  done < <(grep -v '/$' "$work/upload.list" | LC_ALL=C comm -23 - "$work/tracked.list")

  # The same rules with gitignore semantics: Git's matcher over an empty copy of the tree.
  scratch=$work/gitignore-check
  git init -q "$scratch"
  { vercel_files defaults "$work/clone"; cat "$work/clone/.vercelignore" 2>/dev/null || true; } \
    >"$scratch/.git/info/exclude"
  while IFS= read -r f; do
    mkdir -p "$scratch/$(dirname "$f")"
    : >"$scratch/$f"
  done < <(cat "$work/tracked.list"; printf '%s\n' "${PLANTED[@]}")
  # check-ignore prints the ignored ones (exit 1 when none is: not an error here).
  { cat "$work/tracked.list"; printf '%s\n' "${PLANTED[@]}"; } | LC_ALL=C sort -u |
    { git -C "$scratch" -c core.ignorecase=true check-ignore --no-index --stdin || [ $? = 1 ]; } |
    LC_ALL=C sort >"$work/git-ignored.list"
  { cat "$work/tracked.list"; printf '%s\n' "${PLANTED[@]}"; } | LC_ALL=C sort -u |
    LC_ALL=C comm -23 - "$work/git-ignored.list" >"$work/git-kept.list"
  while IFS= read -r f; do
    problems+=("Git's gitignore matcher keeps $f, Vercel's CLI leaves it out: make the rule mean the same to both")
  done < <(grep -v '/$' "$work/upload.list" | LC_ALL=C comm -13 - "$work/git-kept.list")
  while IFS= read -r f; do
    problems+=("Vercel's CLI uploads $f, Git's gitignore matcher leaves it out: make the rule mean the same to both")
  done < <(grep -v '/$' "$work/upload.list" | LC_ALL=C comm -23 - "$work/git-kept.list")
  rm -rf "$scratch"

  if [ ${#problems[@]} -gt 0 ]; then
    printf '  - %s\n' "${problems[@]}" >&2
    fail "${#problems[@]} problem(s) with what Vercel would receive"
  fi

  mkdir "$work/upload"
  # --no-recursion: a directory entry (the CLI uploads an empty one as such) brings nothing along.
  tar -C "$work/clone" --no-recursion --verbatim-files-from -T "$work/upload.list" -cf - |
    tar -xf - -C "$work/upload" || fail "copying the upload"
  [ ! -e "$work/upload/target" ] || fail "the upload holds a target/ directory"
  printf '%s\n' "$commit" >"$work/commit"
  log "upload of ${commit:0:12}: $(grep -cv '/$' "$work/upload.list") of $(wc -l <"$work/tracked.list") files of the commit ($(du -sh "$work/upload" | cut -f1)); none of the ${#PLANTED[@]} planted local files; Git and the CLI agree"
}

# link_offline PROJECT: a hand-written .vercel/project.json (no login, no API: the CLI
# retries the API and carries on). Without one `vercel build` builds nothing and exits 0.
link_offline() {
  mkdir -p "$1/.vercel"
  printf '%s\n' '{"projectId":"prj_leaderboard_ci_offline","orgId":"team_leaderboard_ci_offline","settings":{"framework":null}}' \
    >"$1/.vercel/project.json"
}
